/*
 * test_task.c - ss_spawn, ss_join and ss_detach: results, the error codes of
 * misuse (NULL, second join, join or detach of a detached task, self-join),
 * and a million tasks spawned from several threads that each run exactly
 * once: all joined, half detached, all detached right after spawn (detach
 * racing the task's end), and all joined with SMOLSCALE_STEAL=1.
 *
 * Joining or detaching a handle that was already detached returns EINVAL
 * ("detached") or ESRCH ("stale", once the task finished and its record was
 * released); which one depends on timing, so both are accepted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "smolscale.h"
#include "util.h"

#define MANY 1000000
#define WAIT_MS 30000

static void *plus_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

START_TEST(join_returns_result)
{
	ss_task *t = ss_spawn(plus_one, (void *)41);
	void *r = NULL;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 42);
	t = ss_spawn(plus_one, NULL);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ss_join(t, NULL), 0);
}
END_TEST

START_TEST(null_arguments)
{
	errno = 0;
	ck_assert_ptr_null(ss_spawn(NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ss_join(NULL, NULL), EINVAL);
	ck_assert_int_eq(ss_detach(NULL), EINVAL);
}
END_TEST

START_TEST(second_join_is_stale)
{
	ss_task *t = ss_spawn(plus_one, (void *)1);
	void *r = NULL;

	ck_assert_int_eq(ss_join(t, &r), 0);
	r = (void *)7;
	ck_assert_int_eq(ss_join(t, &r), ESRCH);
	ck_assert_ptr_eq(r, (void *)7);
	ck_assert_int_eq(ss_detach(t), ESRCH);
}
END_TEST

/* A task held running until `go` is set; `done` says it returned. */
static atomic_int started, go, done;

static void *held(void *arg)
{
	atomic_store(&started, 1);
	spin_until(&go, WAIT_MS);
	atomic_store(&done, 1);
	return arg;
}

static int detached_code(int rc)
{
	return rc == EINVAL || rc == ESRCH;
}

START_TEST(join_detached)
{
	ss_task *t = ss_spawn(held, NULL);

	ck_assert(spin_until(&started, WAIT_MS));
	ck_assert_int_eq(ss_detach(t), 0);
	ck_assert_msg(detached_code(ss_join(t, NULL)), "join of a running detached task");
	atomic_store(&go, 1);
	ck_assert(spin_until(&done, WAIT_MS));
	ck_assert_msg(detached_code(ss_join(t, NULL)), "join of a finished detached task");
}
END_TEST

START_TEST(detach_twice)
{
	ss_task *t = ss_spawn(held, NULL);

	ck_assert_int_eq(ss_detach(t), 0);
	ck_assert_msg(detached_code(ss_detach(t)), "second detach of a running task");
	atomic_store(&go, 1);
	ck_assert(spin_until(&done, WAIT_MS));
	ck_assert_msg(detached_code(ss_detach(t)), "detach of a finished detached task");
}
END_TEST

/* The task joins its own handle, published by the spawner. */
static _Atomic(ss_task *) self;
static atomic_int self_rc = -1;

static void *join_self(void *arg)
{
	ss_task *me;

	while (!(me = atomic_load(&self)))
		sched_yield();
	atomic_store(&self_rc, ss_join(me, NULL));
	return arg;
}

START_TEST(self_join_is_edeadlk)
{
	ss_task *t = ss_spawn(join_self, NULL);
	int64_t end = now_ms() + WAIT_MS;

	ck_assert_ptr_nonnull(t);
	atomic_store(&self, t);
	/* Join only once the task is done, so it is not "being joined". */
	while (atomic_load(&self_rc) < 0 && now_ms() < end)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&self_rc), EDEADLK);
	ck_assert_int_eq(ss_join(t, NULL), 0);
}
END_TEST

/*
 * The many-task workload: `spawners` threads spawn n tasks between them;
 * task i bumps runs[i] and returns ~i.  Task i is detached right after its
 * spawn when detach_every divides i, the others are joined.
 */
static struct {
	size_t n, spawners, detach_every;
	_Atomic unsigned char *runs;
	atomic_long ran, bad;
} w;

static void *count_run(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	atomic_fetch_add_explicit(&w.runs[i], 1, memory_order_relaxed);
	atomic_fetch_add(&w.ran, 1);
	return (void *)~i;
}

static int detached(size_t i)
{
	return w.detach_every && i % w.detach_every == 0;
}

static void *spawner(void *arg)
{
	size_t part = (uintptr_t)arg, i;
	size_t lo = part * w.n / w.spawners, hi = (part + 1) * w.n / w.spawners;
	ss_task **t = calloc(hi - lo, sizeof *t);
	void *r;

	for (i = lo; i < hi; i++) {
		t[i - lo] = ss_spawn(count_run, (void *)i);
		if (!t[i - lo])
			atomic_fetch_add(&w.bad, 1);
		else if (detached(i) && ss_detach(t[i - lo]))
			atomic_fetch_add(&w.bad, 1);
	}
	for (i = lo; i < hi; i++)
		if (t[i - lo] && !detached(i) &&
		    (ss_join(t[i - lo], &r) || r != (void *)~(uintptr_t)i))
			atomic_fetch_add(&w.bad, 1);
	free(t);
	return NULL;
}

static void run_many(size_t n, size_t spawners, size_t detach_every)
{
	pthread_t th[spawners];
	size_t i, twice = 0, never = 0;

	w.n = n;
	w.spawners = spawners;
	w.detach_every = detach_every;
	w.runs = calloc(n, 1);
	for (i = 0; i < spawners; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, spawner, (void *)i), 0);
	for (i = 0; i < spawners; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&w.bad), 0);
	ck_assert_msg(wait_count(&w.ran, (long)n, WAIT_MS), "only %ld of %zu tasks ran",
		      atomic_load(&w.ran), n);
	for (i = 0; i < n; i++) {
		never += w.runs[i] == 0;
		twice += w.runs[i] > 1;
	}
	ck_assert_msg(!never && !twice, "%zu tasks never ran, %zu ran more than once",
		      never, twice);
	ck_assert_int_eq(atomic_load(&w.ran), (long)n);
	free((void *)w.runs);
}

START_TEST(million_joined)
{
	run_many(scaled(MANY), 4, 0);
}
END_TEST

START_TEST(million_half_detached)
{
	run_many(scaled(MANY), 4, 2);
}
END_TEST

START_TEST(detach_right_after_spawn)
{
	run_many(scaled(MANY / 4), 8, 1);
}
END_TEST

START_TEST(million_joined_stealing)
{
	setenv("SMOLSCALE_STEAL", "1", 1);
	run_many(scaled(MANY), 4, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("task");
	TCase *api = tcase_new("api");
	TCase *many = tcase_new("many");

	tcase_add_test(api, join_returns_result);
	tcase_add_test(api, null_arguments);
	tcase_add_test(api, second_join_is_stale);
	tcase_add_test(api, join_detached);
	tcase_add_test(api, detach_twice);
	tcase_add_test(api, self_join_is_edeadlk);
	tcase_add_test(many, million_joined);
	tcase_add_test(many, million_half_detached);
	tcase_add_test(many, detach_right_after_spawn);
	tcase_add_test(many, million_joined_stealing);
	suite_add_tcase(s, api);
	suite_add_tcase(s, many);
	return run_suite(s);
}
