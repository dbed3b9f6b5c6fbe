/*
 * test_blocking.c - tasks that block: 4 x CPUs tasks that all wait on one
 * barrier finish without any hint (the monitor must add threads for the
 * blocked workers) and with ss_blocking_begin()/ss_blocking_end() around
 * the wait; the hints are no-ops outside a worker and nest; and a task that
 * sleeps without a hint delays the tasks queued behind it by at most a
 * bound: with one worker and SMOLSCALE_STALL_MS=10, 100 tiny tasks spawned
 * after a 500 ms sleeper all finish within 20 x STALL_MS + 200 ms = 400 ms
 * (about the documented detection delay, with room for a loaded machine),
 * while the sleeper still sleeps.  Under a sanitizer the sleeper sleeps 2 s
 * and the bound is 1 s.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define TINY 100
#define STALL_MS 10

static pthread_barrier_t barrier;
static atomic_int hinted;

static void *wait_barrier(void *arg)
{
	int rc;

	if (atomic_load(&hinted))
		ss_blocking_begin();
	rc = pthread_barrier_wait(&barrier);
	if (atomic_load(&hinted))
		ss_blocking_end();
	return (void *)(intptr_t)rc;
}

/* Spawn 4 x CPUs barrier waiters from this thread and join them all. */
static void run_barrier(void)
{
	int n = 4 * online_cpus(), i, serial = 0;
	ss_task *t[n];
	void *r;

	ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, (unsigned)n), 0);
	for (i = 0; i < n; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(wait_barrier, NULL));
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		ck_assert((intptr_t)r == 0 || (intptr_t)r == PTHREAD_BARRIER_SERIAL_THREAD);
		serial += (intptr_t)r == PTHREAD_BARRIER_SERIAL_THREAD;
	}
	ck_assert_int_eq(serial, 1);
	pthread_barrier_destroy(&barrier);
}

START_TEST(barrier_without_hints)
{
	run_barrier();
}
END_TEST

START_TEST(barrier_with_hints)
{
	atomic_store(&hinted, 1);
	run_barrier();
}
END_TEST

static void *nested_hints(void *arg)
{
	ss_blocking_begin();
	ss_blocking_begin();
	sleep_ms(5);
	ss_blocking_end();
	sleep_ms(5);
	ss_blocking_end();
	return arg;
}

START_TEST(hints_nest_and_are_noops_outside)
{
	void *r = NULL;

	ss_blocking_begin();
	ss_blocking_end();
	ss_blocking_end();
	ck_assert_int_eq(ss_join(ss_spawn(nested_hints, (void *)9), &r), 0);
	ck_assert_ptr_eq(r, (void *)9);
}
END_TEST

static atomic_int sleeper_started, sleeper_done;

static void *sleeper(void *arg)
{
	atomic_store(&sleeper_started, 1);
	sleep_ms((int)(intptr_t)arg);
	atomic_store(&sleeper_done, 1);
	return NULL;
}

static void *tiny(void *arg)
{
	return arg;
}

START_TEST(sleeper_does_not_delay_others)
{
	int sleep_for = sanitized() ? 2000 : 500;
	int64_t bound = sanitized() ? 1000 : 20 * STALL_MS + 200, t0, elapsed;
	ss_task *s, *t[TINY];
	int i, still_sleeping;

	setenv("SMOLSCALE_THREADS", "1", 1);
	setenv("SMOLSCALE_STALL_MS", "10", 1);
	s = ss_spawn(sleeper, (void *)(intptr_t)sleep_for);
	ck_assert(spin_until(&sleeper_started, WAIT_MS));
	t0 = now_ms();
	for (i = 0; i < TINY; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(tiny, NULL));
	for (i = 0; i < TINY; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	elapsed = now_ms() - t0;
	still_sleeping = !atomic_load(&sleeper_done);
	ck_assert_msg(still_sleeping && elapsed <= bound,
		      "tiny tasks took %lld ms (bound %lld ms), sleeper %s",
		      (long long)elapsed, (long long)bound,
		      still_sleeping ? "still sleeping" : "already done");
	ck_assert_int_eq(ss_join(s, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blocking");
	TCase *tc = tcase_new("blocking");

	tcase_add_test(tc, barrier_without_hints);
	tcase_add_test(tc, barrier_with_hints);
	tcase_add_test(tc, hints_nest_and_are_noops_outside);
	tcase_add_test(tc, sleeper_does_not_delay_others);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
