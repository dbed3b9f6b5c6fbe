/*
 * test_diag.c - stall reports and the stats report (core/diag.c,
 * core/stats.c).
 *
 * Reports go to a file (SMOLSCALE_LOG) that the test reads back.  The
 * stalling tasks block or compute in functions of this file, some static
 * and none exported, so the report must name them from the executable's
 * own symbol table.  Times are generous: nothing here asserts how long
 * anything took, only what the report says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "smolscale.h"
#include "util.h"

static char log_path[256];

/* ThreadSanitizer delivers a signal to a thread blocked in read() only
 * once it returns: then a blocked task's report has no stack, and says
 * why (diag.c). */
static int tsan_blocked_no_stack(const char *t)
{
	return under_tsan() &&
	       strstr(t, "(no stack: the worker did not take the signal");
}

/* Configure a fresh process's executor to report to a new log file. */
static void report_to_log(const char *report_ms)
{
	char dir[] = "/tmp/ss-diag.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(log_path, sizeof log_path, "%s/log", dir);
	setenv("SMOLSCALE_LOG", log_path, 1);
	setenv("SMOLSCALE_STALL_REPORT", "1", 1);
	setenv("SMOLSCALE_STALL_REPORT_MS", report_ms, 1);
}

/* The log's text (static buffer), once it contains `want`, waiting up to
 * timeout_ms; the text so far otherwise. */
static const char *log_text(const char *want, int timeout_ms)
{
	static char buf[1 << 16];
	int64_t end = now_ms() + timeout_ms;

	for (;;) {
		int fd = open(log_path, O_RDONLY | O_CLOEXEC);
		ssize_t n = 0;
		if (fd >= 0) {
			n = read(fd, buf, sizeof buf - 1);
			close(fd);
		}
		buf[n > 0 ? n : 0] = '\0';
		if ((want && strstr(buf, want)) || now_ms() > end)
			return buf;
		sleep_ms(10);
	}
}

static int pipefd[2];

__attribute__((noinline)) static void diag_blocked_in_read(void)
{
	char c;

	while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
		;
	__asm__ volatile("" ::: "memory"); /* keep the frame */
}

static void *blocker_task(void *arg)
{
	(void)arg;
	diag_blocked_in_read();
	return NULL;
}

static atomic_int stop_spin;

__attribute__((noinline)) static void diag_computing(void)
{
	spin_until(&stop_spin, 5000);
	__asm__ volatile("" ::: "memory");
}

static void *spinner_task(void *arg)
{
	(void)arg;
	diag_computing();
	return NULL;
}

START_TEST(blocked_task_named)
{
	struct stat st;
	const char *t;
	ss_task *task;

	report_to_log("50");
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	ck_assert_ptr_nonnull(task = ss_spawn(blocker_task, NULL));
	t = log_text("diag_blocked_in_read", 5000);
	ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
	ck_assert_int_eq(ss_join(task, NULL), 0);
	ck_assert_msg(strstr(t, "smolscale: stall: worker "), "no report: '%s'", t);
	ck_assert_msg(strstr(t, "in the system call read"), "system call not named: '%s'", t);
	if (!tsan_blocked_no_stack(t)) {
		ck_assert_msg(strstr(t, "diag_blocked_in_read"),
			      "blocking function not named: '%s'", t);
		ck_assert_msg(strstr(t, "entry blocker_task"), "entry not named: '%s'", t);
	}
	ck_assert_msg(strstr(t, " for ") && strstr(t, " ms,"), "no duration: '%s'", t);
	/* Private: a report may show what a program does. */
	ck_assert_int_eq(stat(log_path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* The lowest free descriptor, as open() would return it. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	close(fd);
	return fd;
}

START_TEST(computing_task_named)
{
	const char *t;
	ss_task *task;
	int low;

	report_to_log("50");
	low = lowest_free_fd();
	ck_assert_ptr_nonnull(task = ss_spawn(spinner_task, NULL));
	t = log_text("diag_computing", 5000);
	atomic_store(&stop_spin, 1);
	ck_assert_int_eq(ss_join(task, NULL), 0);
	ck_assert_msg(strstr(t, "diag_computing"), "computing function not named: '%s'", t);
	ck_assert_msg(strstr(t, "entry spinner_task"), "entry not named: '%s'", t);
	/* The pool, the log, the stats region and libunwind (whose memory
	 * validation wants a pipe of its own) take no low descriptor: a
	 * daemon counts on open() returning the lowest free one. */
	ck_assert_int_eq(lowest_free_fd(), low);
}
END_TEST

static void *fiber_blocker(void *arg)
{
	(void)arg;
	diag_blocked_in_read();
	return NULL;
}

START_TEST(blocked_fiber_named)
{
	const char *t;
	ss_task *f;

	report_to_log("50");
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	ck_assert_ptr_nonnull(f = ss_go(fiber_blocker, NULL));
	t = log_text("diag_blocked_in_read", 5000);
	ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
	ck_assert_int_eq(ss_join(f, NULL), 0);
	if (tsan_blocked_no_stack(t))
		return;
	ck_assert_msg(strstr(t, "has run one fiber for"), "not reported as a fiber: '%s'", t);
	ck_assert_msg(strstr(t, "diag_blocked_in_read"), "blocking function not named: '%s'", t);
	ck_assert_msg(strstr(t, "entry fiber_blocker"), "entry not named: '%s'", t);
}
END_TEST

/* A fiber with the smallest stack, most of it in use, blocked: the
 * capture's handler runs on the worker's alternate stack, not on it. */
__attribute__((noinline)) static void deep_then_block(int depth)
{
	volatile char pad[1024];

	pad[0] = (char)depth;
	if (depth > 0)
		deep_then_block(depth - 1);
	else
		diag_blocked_in_read();
	__asm__ volatile("" ::"r"(pad) : "memory");
}

static void *small_fiber(void *arg)
{
	(void)arg;
	deep_then_block(9); /* about 10 KiB of a 16 KiB stack */
	return NULL;
}

START_TEST(small_fiber_stack)
{
	const char *t;
	ss_task *f;

	report_to_log("50");
	setenv("SMOLSCALE_FIBER_STACK", "16K", 1);
	ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
	ck_assert_ptr_nonnull(f = ss_go(small_fiber, NULL));
	t = log_text("smolscale: stall: worker", 5000);
	sleep_ms(100);
	ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
	ck_assert_int_eq(ss_join(f, NULL), 0);
	t = log_text("diag_blocked_in_read", 1000);
	ck_assert_msg(strstr(t, "smolscale: stall: worker "), "no report: '%s'", t);
	if (!tsan_blocked_no_stack(t))
		ck_assert_msg(strstr(t, "deep_then_block"), "frames not named: '%s'", t);
}
END_TEST

static atomic_int eintr_seen;
static int release_pipe[2];

/* Blocked in poll() on a pipe until the test writes to it, in that one
 * system call all along (poll is never restarted after a handler: a
 * signal shows as EINTR). */
static void *sleeper_task(void *arg)
{
	struct pollfd p = { release_pipe[0], POLLIN, 0 };

	(void)arg;
	while (poll(&p, 1, -1) < 0)
		if (errno == EINTR)
			atomic_fetch_add(&eintr_seen, 1);
	return NULL;
}

/* Twenty tasks stalled the same way: one is signalled (its wait ends
 * early with EINTR), the others are counted at its site without one.
 * They are released only once all twenty are counted: a fixed sleep (300
 * ms, six thresholds) was sometimes over before the monitor looked at it
 * twice, 50 ms apart, when the process stood still for a while (under
 * valgrind on a busy machine, one stall of twenty went uncounted). */
START_TEST(known_site_not_signalled)
{
	enum { N = 20 };
	ss_task *t[N];
	struct ss_stats s;
	int64_t end;

	report_to_log("50");
	setenv("SMOLSCALE_THREADS", "2", 1);
	ck_assert_int_eq(pipe2(release_pipe, O_CLOEXEC), 0);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(sleeper_task, NULL));
	end = now_ms() + (sanitized() ? 60000 : 10000);
	do {
		ck_assert_int_eq(ss_stats(&s), 0);
		if (s.stalls >= N)
			break;
		sleep_ms(10);
	} while (now_ms() < end);
	ck_assert_int_eq(write(release_pipe[1], "x", 1), 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	ck_assert_int_eq(ss_stats(&s), 0);
	ck_assert_uint_eq(s.stalls, N);
	ck_assert_msg(atomic_load(&eintr_seen) <= 1, "%d waits interrupted",
		      atomic_load(&eintr_seen));
}
END_TEST

/* The same stack twice: one report, two stalls counted at one site. */
START_TEST(same_stack_reported_once)
{
	struct ss_stats s;
	const char *t, *p;
	int reports = 0;

	report_to_log("50");
	for (int i = 0; i < 2; i++) {
		ss_task *task;
		ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
		ck_assert_ptr_nonnull(task = ss_spawn(blocker_task, NULL));
		/* Held well past the threshold: the monitor looks every few
		 * ms and ss-diag reports within a few more. */
		sleep_ms(400);
		ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
		ck_assert_int_eq(ss_join(task, NULL), 0);
		close(pipefd[0]);
		close(pipefd[1]);
	}
	ck_assert_int_eq(ss_stats(&s), 0);
	ck_assert_uint_eq(s.stalls, 2);
	t = log_text("diag_blocked_in_read", 2000);
	for (p = t; (p = strstr(p, "smolscale: stall: worker ")); p++)
		reports++;
	ck_assert_msg(reports == 1, "%d reports of one stack: '%s'", reports, t);
	/* The stats report shows the site with both. */
	setenv("SMOLSCALE_STATS", "1", 1);
}
END_TEST

/* Without SMOLSCALE_STALL_REPORT nothing is reported, but long tasks are
 * counted, and no signal is ever sent. */
START_TEST(counted_not_reported)
{
	struct ss_stats s;
	ss_task *task;

	setenv("SMOLSCALE_STALL_REPORT_MS", "50", 1);
	ck_assert_ptr_nonnull(task = ss_spawn(spinner_task, NULL));
	sleep_ms(300);
	atomic_store(&stop_spin, 1);
	ck_assert_int_eq(ss_join(task, NULL), 0);
	ck_assert_int_eq(ss_stats(&s), 0);
	ck_assert_uint_eq(s.stalls, 1);
}
END_TEST

static void on_urg(int sig)
{
	(void)sig;
}

/* A program that handles SIGURG itself keeps it: reports come without a
 * stack, and say why. */
START_TEST(program_owns_sigurg)
{
	struct sigaction sa = { .sa_handler = on_urg };
	const char *t;
	ss_task *task;

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGURG, &sa, NULL), 0);
	report_to_log("50");
	ck_assert_ptr_nonnull(task = ss_spawn(spinner_task, NULL));
	t = log_text("(no stack", 5000);
	atomic_store(&stop_spin, 1);
	ck_assert_int_eq(ss_join(task, NULL), 0);
	ck_assert_msg(strstr(t, "the program handles SIGURG itself"), "'%s'", t);
	ck_assert_msg(strstr(t, "entry unknown"), "'%s'", t);
	ck_assert_int_eq(sigaction(SIGURG, NULL, &sa), 0);
	ck_assert_ptr_eq((void *)sa.sa_handler, (void *)on_urg);
}
END_TEST

/* Parse " key=NUMBER" out of a stats line. */
static long long field(const char *text, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof k, " %s=", key);
	p = strstr(text, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

static void *nap_task(void *arg)
{
	(void)arg;
	sleep_ms(1);
	return NULL;
}

/* SMOLSCALE_STATS_SIGNAL: the report, parsed. */
START_TEST(stats_signal_report)
{
	enum { N = 200 };
	const char *t, *w;
	int workers = 0;

	report_to_log("1000");
	setenv("SMOLSCALE_STATS_SIGNAL", "USR2", 1);
	setenv("SMOLSCALE_THREADS", "2", 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ss_join(ss_spawn(nap_task, NULL), NULL), 0);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	t = log_text("stall-reports", 5000);
	ck_assert_msg(strstr(t, "smolscale: stats "), "no report: '%s'", t);
	ck_assert_int_eq(field(t, "tasks_spawned"), N);
	ck_assert_int_eq(field(t, "tasks_completed"), N);
	ck_assert_int_eq(field(t, "target_workers"), 2);
	ck_assert_int_ge(field(t, "threads"), 1);
	ck_assert_int_eq(field(t, "stalls"), 0);
	for (w = t; (w = strstr(w, "smolscale: worker ")); w++) {
		char line[256];
		size_t n = strcspn(w, "\n");
		snprintf(line, sizeof line, " %.*s", (int)n, w);
		ck_assert_int_ge(field(line, "busy_ms"), 0);
		ck_assert_int_ge(field(line, "parked_ms"), 0);
		ck_assert_int_ge(field(line, "cpu_ms"), 0);
		ck_assert_int_ge(field(line, "tasks"), 0);
		workers++;
	}
	ck_assert_int_eq(workers, field(t, "threads"));
}
END_TEST

/* A log that cannot be opened: one line on stderr, reports to stderr. */
START_TEST(log_unopenable)
{
	int err[2];
	char buf[8192];
	ssize_t n, got = 0;
	ss_task *task;
	int64_t end;

	setenv("SMOLSCALE_LOG", "/nonexistent-dir/ss.log", 1);
	setenv("SMOLSCALE_STALL_REPORT", "1", 1);
	setenv("SMOLSCALE_STALL_REPORT_MS", "50", 1);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(dup2(err[1], 2), 2);
	ck_assert_ptr_nonnull(task = ss_spawn(spinner_task, NULL));
	end = now_ms() + 5000;
	while (now_ms() < end && (size_t)got < sizeof buf - 1) {
		n = read(err[0], buf + got, sizeof buf - 1 - (size_t)got);
		if (n > 0)
			got += n;
		buf[got] = '\0';
		if (strstr(buf, "diag_computing"))
			break;
		sleep_ms(10);
	}
	atomic_store(&stop_spin, 1);
	ck_assert_int_eq(ss_join(task, NULL), 0);
	ck_assert_msg(strstr(buf, "SMOLSCALE_LOG=\"/nonexistent-dir/ss.log\" cannot be opened"),
		      "'%s'", buf);
	ck_assert_msg(strstr(buf, "diag_computing"), "report not on stderr: '%s'", buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("diag");
	TCase *tc = tcase_new("stall-reports");

	tcase_add_test(tc, blocked_task_named);
	tcase_add_test(tc, computing_task_named);
	tcase_add_test(tc, blocked_fiber_named);
	tcase_add_test(tc, same_stack_reported_once);
	tcase_add_test(tc, small_fiber_stack);
	tcase_add_test(tc, known_site_not_signalled);
	tcase_add_test(tc, counted_not_reported);
	tcase_add_test(tc, program_owns_sigurg);
	tcase_add_test(tc, log_unopenable);
	suite_add_tcase(s, tc);
	tc = tcase_new("stats");
	tcase_add_test(tc, stats_signal_report);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
