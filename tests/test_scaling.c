/*
 * test_scaling.c - the pool's size: it grows to SMOLSCALE_THREADS=4 workers
 * under four long tasks, and with SMOLSCALE_IDLE_MS=100 shrinks afterwards
 * to at most one idle worker (seen both in ss_stats() and in
 * /proc/self/task), after which spawning still works; and with
 * SMOLSCALE_MAX_THREADS=3 compensation for blocked workers adds threads
 * but never more than three.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define SPINNERS 4
#define SHRINK_MS 3000
#define NAPPERS 8
#define MAX_HIDDEN 256

static atomic_long started;
static atomic_int go;

static void *spin(void *arg)
{
	atomic_fetch_add(&started, 1);
	spin_until(&go, WAIT_MS);
	return arg;
}

/* Live threads named ss-worker-N, from /proc. */
static size_t proc_workers(void)
{
	static struct hidden_thread h[MAX_HIDDEN];
	size_t n = hidden_threads(h, MAX_HIDDEN), k, workers = 0;

	for (k = 0; k < n; k++)
		workers += strncmp(h[k].comm, "ss-worker-", 10) == 0;
	return workers;
}

START_TEST(grow_then_shrink)
{
	int64_t end = now_ms() + (sanitized() ? 4 : 1) * SHRINK_MS;
	ss_task *t[SPINNERS];
	struct ss_stats st;
	int i;

	setenv("SMOLSCALE_THREADS", "4", 1);
	setenv("SMOLSCALE_IDLE_MS", "100", 1);
	for (i = 0; i < SPINNERS; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(spin, NULL));
	ck_assert_msg(wait_count(&started, SPINNERS, WAIT_MS), "only %ld of %d spinners started",
		      atomic_load(&started), SPINNERS);
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_ge(st.threads, SPINNERS);
	ck_assert_uint_ge(proc_workers(), SPINNERS);
	atomic_store(&go, 1);
	for (i = 0; i < SPINNERS; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	do {
		sleep_ms(20);
		ck_assert_int_eq(ss_stats(&st), 0);
	} while ((st.threads > 1 || st.threads_exited < SPINNERS - 1) && now_ms() < end);
	ck_assert_msg(st.threads <= 1, "%llu workers left after the idle timeout",
		      (unsigned long long)st.threads);
	ck_assert_uint_ge(st.threads_exited, SPINNERS - 1);
	end = now_ms() + 1000;
	while (proc_workers() > 1 && now_ms() < end)
		sleep_ms(5);
	ck_assert_uint_le(proc_workers(), 1);
	ck_assert_int_eq(ss_join(ss_spawn(ident, NULL), NULL), 0);
}
END_TEST

static void *nap(void *arg)
{
	sleep_ms(100);
	return arg;
}

START_TEST(max_threads_caps_compensation)
{
	ss_task *t[NAPPERS];
	struct ss_stats st;
	size_t most = 0, w;
	int i;

	setenv("SMOLSCALE_THREADS", "1", 1);
	setenv("SMOLSCALE_MAX_THREADS", "3", 1);
	for (i = 0; i < NAPPERS; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(nap, (void *)(intptr_t)i));
	for (i = 0; i < 50; i++) {
		w = proc_workers();
		most = w > most ? w : most;
		sleep_ms(4);
	}
	for (i = 0; i < NAPPERS; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_le(most, 3);
	ck_assert_uint_le(st.peak_threads, 3);
	ck_assert_uint_ge(st.peak_threads, 2);
	ck_assert_uint_ge(st.compensations, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("scaling");
	TCase *tc = tcase_new("scaling");

	tcase_add_test(tc, grow_then_shrink);
	tcase_add_test(tc, max_threads_caps_compensation);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
