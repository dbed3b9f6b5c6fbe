/*
 * test_threads.c - the library's hidden threads: none exists before the
 * first spawn (lazy start); they are named ss-worker-N (N distinct),
 * ss-balancer and ss-monitor (one each), and no other thread is added; and
 * each blocks every standard signal that can be blocked (all of 1..31 but
 * SIGKILL and SIGSTOP), so that signals sent to the process reach the
 * program's own threads.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smolscale.h"
#include "util.h"

#define MAX_HIDDEN 256
#define SLEEPERS 4
#define TINY 200
#define SEARCH_MS 3000

static void *nap(void *arg)
{
	sleep_ms(300);
	return arg;
}

START_TEST(lazy_start)
{
	static struct hidden_thread h[MAX_HIDDEN];

	ck_assert(no_library_threads());
	ck_assert_int_eq(ss_join(ss_spawn(ident, NULL), NULL), 0);
	ck_assert_uint_gt(hidden_threads(h, MAX_HIDDEN), 0);
}
END_TEST

enum { WORKER = 1, BALANCER = 2, MONITOR = 4, DIAG = 8, ALL_KINDS = 15 };

/* Which kind of hidden thread comm names, or 0 if none. */
static int kind(const char *comm)
{
	unsigned n;
	int end = 0;

	if (strcmp(comm, "ss-balancer") == 0)
		return BALANCER;
	if (strcmp(comm, "ss-monitor") == 0)
		return MONITOR;
	if (strcmp(comm, "ss-diag") == 0)
		return DIAG;
	if (sscanf(comm, "ss-worker-%u%n", &n, &end) == 1 && comm[end] == '\0' &&
	    comm[10] >= '0' && comm[10] <= '9')
		return WORKER;
	return 0;
}

/* Whether no two of h[0..n) have the same name. */
static int unique_names(const struct hidden_thread *h, size_t n)
{
	size_t j, k;

	for (k = 0; k < n; k++)
		for (j = 0; j < k; j++)
			if (strcmp(h[j].comm, h[k].comm) == 0)
				return 0;
	return 1;
}

/*
 * Keep the pool busy (sleepers that stall their workers while tiny tasks
 * wait) and sample the hidden threads until all three kinds show up (and,
 * if unique, no name twice: a thread names itself once it runs, so a new
 * one briefly bears its creator's name).  Fill h[] with that sample and
 * return its size, or 0 if none came within SEARCH_MS.
 */
static size_t sample_busy_pool(struct hidden_thread *h, int unique)
{
	ss_task *s[SLEEPERS], *t[TINY];
	int64_t end = now_ms() + SEARCH_MS;
	int seen, found = 0, i;
	size_t n = 0, k;

	for (i = 0; i < SLEEPERS; i++)
		ck_assert_ptr_nonnull(s[i] = ss_spawn(nap, NULL));
	for (i = 0; i < TINY; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(ident, NULL));
	while (!found && now_ms() < end) {
		n = hidden_threads(h, MAX_HIDDEN);
		for (k = 0, seen = 0; k < n; k++)
			seen |= kind(h[k].comm);
		found = seen == ALL_KINDS && (!unique || unique_names(h, n));
		if (!found)
			sleep_ms(5);
	}
	for (i = 0; i < TINY; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	for (i = 0; i < SLEEPERS; i++)
		ck_assert_int_eq(ss_join(s[i], NULL), 0);
	return found ? n : 0;
}

START_TEST(thread_names)
{
	static struct hidden_thread h[MAX_HIDDEN];
	size_t n, k;

	setenv("SMOLSCALE_THREADS", "2", 1);
	n = sample_busy_pool(h, 1);
	ck_assert_msg(n > 0, "no sample with each of ss-worker-N, ss-balancer, ss-monitor, ss-diag once");
	for (k = 0; k < n; k++)
		ck_assert_msg(kind(h[k].comm), "unexpected thread name '%s'", h[k].comm);
	ck_assert_msg(library_threads_named(SEARCH_MS), "%d threads, %zu of them hidden",
		      count_threads(), hidden_threads(h, MAX_HIDDEN));
}
END_TEST

START_TEST(signals_blocked)
{
	static struct hidden_thread h[MAX_HIDDEN];
	uint64_t want = 0;
	size_t n, k;
	int sig;

	/* SigBlk is the kernel's mask for the thread: under valgrind that
	 * is valgrind's own (it emulates the program's, and never blocks
	 * the signals of its own faults, SIGSEGV, SIGBUS, SIGILL...). */
	if (under_valgrind())
		return;
	for (sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			want |= UINT64_C(1) << (sig - 1);
	n = sample_busy_pool(h, 0);
	ck_assert_msg(n > 0, "not all of ss-worker-N, ss-balancer, ss-monitor, ss-diag showed up");
	for (k = 0; k < n; k++)
		ck_assert_msg((h[k].sigblk & want) == want,
			      "%s (tid %d) leaves signals unblocked: SigBlk %016llx",
			      h[k].comm, (int)h[k].tid, (unsigned long long)h[k].sigblk);
}
END_TEST

/* With stall reports on, a worker lets in SIGURG (the stack capture's
 * signal, core/diag.c) and nothing else; the other hidden threads none. */
START_TEST(signals_stall_report)
{
	static struct hidden_thread h[MAX_HIDDEN];
	uint64_t want = 0, urg = UINT64_C(1) << (SIGURG - 1);
	size_t n, k;
	int sig;

	/* SigBlk under valgrind is valgrind's mask (signals_blocked). */
	if (under_valgrind())
		return;
	setenv("SMOLSCALE_STALL_REPORT", "1", 1);
	for (sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			want |= UINT64_C(1) << (sig - 1);
	/* A worker sampled in its first instants still has the mask it was
	 * created with (everything blocked): look again, a few times. */
	for (int tries = 0;; tries++) {
		int early = 0;
		n = sample_busy_pool(h, 0);
		ck_assert_msg(n > 0, "not all hidden threads showed up");
		for (k = 0; k < n; k++)
			early += kind(h[k].comm) == WORKER && (h[k].sigblk & urg);
		if (!early || tries == 20)
			break;
		sleep_ms(20);
	}
	for (k = 0; k < n; k++) {
		uint64_t w = kind(h[k].comm) == WORKER ? want & ~urg : want;
		ck_assert_msg((h[k].sigblk & w) == w,
			      "%s (tid %d) leaves signals unblocked: SigBlk %016llx",
			      h[k].comm, (int)h[k].tid, (unsigned long long)h[k].sigblk);
		if (kind(h[k].comm) == WORKER)
			ck_assert_msg(!(h[k].sigblk & urg),
				      "%s blocks SIGURG with stall reports on",
				      h[k].comm);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_new("hidden-threads");

	tcase_add_test(tc, lazy_start);
	tcase_add_test(tc, thread_names);
	tcase_add_test(tc, signals_blocked);
	tcase_add_test(tc, signals_stall_report);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
