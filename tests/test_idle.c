/*
 * test_idle.c - an idle pool sleeps without timers: after a burst of work
 * (with compensation threads) and 300 ms to settle, the hidden threads
 * (names starting "ss-") together make no context switch during one
 * second, both with the default SMOLSCALE_IDLE_MS (nobody exits yet) and
 * after SMOLSCALE_IDLE_MS=100 shrank the pool.  Up to 2 switches are
 * tolerated, for a straggler finishing its last park; a thread that
 * appears during the second counts all its switches, one that exits counts
 * one.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "smolscale.h"
#include "util.h"

#define MAX_HIDDEN 256
#define BURST 20000
#define BATCH 100
#define NAPPERS 4
#define SETTLE_MS 300
#define QUIET_MS 1000
#define TOLERANCE 2
#define SHRINK_MS 3000

static void *nap(void *arg)
{
	sleep_ms(50);
	return arg;
}

/* Tiny tasks in batches, beside a few sleepers that stall their workers. */
static void burst(void)
{
	ss_task *s[NAPPERS], *t[BATCH];
	size_t done, i;

	for (i = 0; i < NAPPERS; i++)
		ck_assert_ptr_nonnull(s[i] = ss_spawn(nap, NULL));
	for (done = 0; done < scaled(BURST); done += BATCH) {
		for (i = 0; i < BATCH; i++)
			ck_assert_ptr_nonnull(t[i] = ss_spawn(ident, NULL));
		for (i = 0; i < BATCH; i++)
			ck_assert_int_eq(ss_join(t[i], NULL), 0);
	}
	for (i = 0; i < NAPPERS; i++)
		ck_assert_int_eq(ss_join(s[i], NULL), 0);
}

static const struct hidden_thread *find(const struct hidden_thread *h, size_t n, pid_t tid)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (h[k].tid == tid)
			return &h[k];
	return NULL;
}

/* Context switches of the hidden threads over QUIET_MS; what switched is
 * described in why. */
static uint64_t switches_while_idle(char *why, size_t size)
{
	static struct hidden_thread a[MAX_HIDDEN], b[MAX_HIDDEN];
	size_t na = hidden_threads(a, MAX_HIDDEN), nb, k, len = 0;
	const struct hidden_thread *old;
	uint64_t sum = 0, d;

	sleep_ms(QUIET_MS);
	nb = hidden_threads(b, MAX_HIDDEN);
	why[0] = '\0';
	for (k = 0; k < nb; k++) {
		old = find(a, na, b[k].tid);
		d = old ? b[k].ctxsw - old->ctxsw : b[k].ctxsw;
		if (d && len < size)
			len += (size_t)snprintf(why + len, size - len, " %s%s:%llu", b[k].comm,
						old ? "" : "(new)", (unsigned long long)d);
		sum += d;
	}
	for (k = 0; k < na; k++)
		if (!find(b, nb, a[k].tid)) {
			if (len < size)
				len += (size_t)snprintf(why + len, size - len, " %s(exited)",
							a[k].comm);
			sum++;
		}
	return sum;
}

static void check_quiet(void)
{
	char why[1024];
	uint64_t n;

	sleep_ms(SETTLE_MS);
	n = switches_while_idle(why, sizeof why);
	ck_assert_msg(n <= TOLERANCE, "%llu context switches in an idle second:%s",
		      (unsigned long long)n, why);
}

START_TEST(quiet_after_burst)
{
	burst();
	check_quiet();
}
END_TEST

START_TEST(quiet_after_shrink)
{
	int64_t end = now_ms() + (sanitized() ? 4 : 1) * SHRINK_MS;
	struct ss_stats st;

	setenv("SMOLSCALE_IDLE_MS", "100", 1);
	burst();
	do {
		sleep_ms(20);
		ck_assert_int_eq(ss_stats(&st), 0);
	} while (st.threads > 1 && now_ms() < end);
	ck_assert_uint_le(st.threads, 1);
	check_quiet();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("idle");
	TCase *tc = tcase_new("idle");

	tcase_add_test(tc, quiet_after_burst);
	tcase_add_test(tc, quiet_after_shrink);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
