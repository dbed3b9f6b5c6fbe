/*
 * test_cancel.c - ss_cancel: a task cancelled before it started never runs
 * and its join returns ECANCELED (cancelling twice returns 0 both times); a
 * running or finished task cannot be cancelled (EBUSY); misuse codes; and
 * cancels racing the workers from several threads, where every task either
 * ran exactly once (cancel said EBUSY, join 0) or never ran (cancel said 0,
 * join ECANCELED), and tasks_cancelled counts the latter.
 *
 * To keep a task from starting, the test runs with one worker at most
 * (SMOLSCALE_THREADS=1 and SMOLSCALE_MAX_THREADS=1) and holds it in a task
 * that spins on the CPU, then spawns and cancels.  The cap is what makes
 * it sure: a spinner that the machine keeps off its CPU (a busy machine,
 * valgrind, which runs one thread at a time) looks blocked to the monitor,
 * which would start a compensating worker to run the queued tasks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define RACERS 4
#define RACE_TASKS 200000
#define CHUNK 32

static atomic_int started, go;
static atomic_long ran;

/* Holds its worker, spinning, until `go`. */
static void *hold(void *arg)
{
	atomic_store(&started, 1);
	spin_until(&go, WAIT_MS);
	return arg;
}

static void *mark(void *arg)
{
	atomic_fetch_add(&ran, 1);
	return arg;
}

START_TEST(cancel_before_start)
{
	ss_task *h, *t, *d;
	struct ss_stats st;
	void *r;

	setenv("SMOLSCALE_THREADS", "1", 1);
	setenv("SMOLSCALE_MAX_THREADS", "1", 1); /* no compensation */
	h = ss_spawn(hold, NULL);
	ck_assert(spin_until(&started, WAIT_MS));
	t = ss_spawn(mark, (void *)5);
	d = ss_spawn(mark, (void *)6);
	ck_assert_int_eq(ss_cancel(t), 0);
	ck_assert_int_eq(ss_cancel(t), 0);
	ck_assert_int_eq(ss_cancel(d), 0);
	ck_assert_int_eq(ss_detach(d), 0);
	/* Joining needs no worker: the join releases the handle at once,
	 * and a second join finds it stale, while the worker is still held
	 * (and the cancelled tasks are still in its queue). */
	ck_assert_int_eq(ss_join(t, &r), ECANCELED);
	ck_assert_int_eq(ss_join(t, NULL), ESRCH);
	atomic_store(&go, 1);
	ck_assert_int_eq(ss_join(h, NULL), 0);
	/* The pool still works, and the cancelled tasks did not run. */
	ck_assert_int_eq(ss_join(ss_spawn(mark, NULL), NULL), 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_eq(st.tasks_cancelled, 2);
}
END_TEST

START_TEST(cancel_running_is_ebusy)
{
	ss_task *h = ss_spawn(hold, (void *)3);
	void *r = NULL;

	ck_assert(spin_until(&started, WAIT_MS));
	ck_assert_int_eq(ss_cancel(h), EBUSY);
	atomic_store(&go, 1);
	ck_assert_int_eq(ss_join(h, &r), 0);
	ck_assert_ptr_eq(r, (void *)3);
}
END_TEST

START_TEST(cancel_finished_is_ebusy)
{
	ss_task *t = ss_spawn(mark, (void *)4);
	void *r = NULL;

	ck_assert(wait_count(&ran, 1, WAIT_MS));
	sleep_ms(20);
	ck_assert_int_eq(ss_cancel(t), EBUSY);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)4);
}
END_TEST

START_TEST(cancel_misuse)
{
	ss_task *t = ss_spawn(hold, NULL);
	int rc;

	ck_assert_int_eq(ss_cancel(NULL), EINVAL);
	ck_assert_int_eq(ss_detach(t), 0);
	rc = ss_cancel(t);
	/* Detached: EINVAL, or ESRCH if the handle is already stale. */
	ck_assert_msg(rc == EINVAL || rc == ESRCH, "cancel of a detached task: %d", rc);
	atomic_store(&go, 1);
	t = ss_spawn(mark, NULL);
	ck_assert_int_eq(ss_join(t, NULL), 0);
	ck_assert_int_eq(ss_cancel(t), ESRCH);
}
END_TEST

/* Race: each racer spawns CHUNK tasks, cancels them newest first, and
 * checks every outcome once all are joined. */
static struct {
	size_t n;
	_Atomic unsigned char *runs;
	atomic_long cancelled, bad;
} race;

static void *race_task(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	atomic_fetch_add_explicit(&race.runs[i], 1, memory_order_relaxed);
	return (void *)~i;
}

/* Join task i, whose cancel returned rc; count what does not add up. */
static void settle(ss_task *t, size_t i, int rc)
{
	void *r = NULL;
	int jrc = ss_join(t, &r);

	if (rc == 0 && jrc == ECANCELED && race.runs[i] == 0)
		atomic_fetch_add(&race.cancelled, 1);
	else if (!(rc == EBUSY && jrc == 0 && race.runs[i] == 1 &&
		   r == (void *)~(uintptr_t)i))
		atomic_fetch_add(&race.bad, 1);
}

static void *racer(void *arg)
{
	size_t part = (uintptr_t)arg, i, k;
	size_t lo = part * race.n / RACERS, hi = (part + 1) * race.n / RACERS;
	ss_task **t = calloc(hi - lo, sizeof *t);
	int *rc = calloc(hi - lo, sizeof *rc);

	for (i = lo; i < hi; i += CHUNK) {
		size_t end = i + CHUNK < hi ? i + CHUNK : hi;

		for (k = i; k < end; k++)
			t[k - lo] = ss_spawn(race_task, (void *)k);
		for (k = end; k-- > i;)
			rc[k - lo] = t[k - lo] ? ss_cancel(t[k - lo]) : -1;
	}
	for (i = lo; i < hi; i++)
		if (t[i - lo])
			settle(t[i - lo], i, rc[i - lo]);
		else
			atomic_fetch_add(&race.bad, 1);
	free(rc);
	free(t);
	return NULL;
}

START_TEST(cancel_races)
{
	pthread_t th[RACERS];
	struct ss_stats st;
	size_t i;

	race.n = scaled(RACE_TASKS);
	race.runs = calloc(race.n, 1);
	for (i = 0; i < RACERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, racer, (void *)i), 0);
	for (i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(atomic_load(&race.bad), 0);
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_eq(st.tasks_cancelled, (uint64_t)atomic_load(&race.cancelled));
	ck_assert_uint_ge(st.tasks_completed, race.n - st.tasks_cancelled);
	free((void *)race.runs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cancel");
	TCase *tc = tcase_new("cancel");

	tcase_add_test(tc, cancel_before_start);
	tcase_add_test(tc, cancel_running_is_ebusy);
	tcase_add_test(tc, cancel_finished_is_ebusy);
	tcase_add_test(tc, cancel_misuse);
	tcase_add_test(tc, cancel_races);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
