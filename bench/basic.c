/*
 * basic.c - the basic benchmarks: spawn cost and idle cost of smolscale
 * against the naive fixed pool (naive_pool.c), one peer per process.
 *
 *   basic --peer smolscale|naive --workload spawn_one|spawn_many|idle
 *         [--iters N] [--reps R] [--timeout S] [--verbose]
 *
 * Prints one TSV line: workload peer value unit cpu_s nvcsw nivcsw, where
 * cpu_s is the process's user+sys CPU time and nvcsw/nivcsw its voluntary
 * and involuntary context switches (all threads, getrusage RUSAGE_SELF)
 * over the measured interval.
 *
 *   spawn_one   N times (default 100000): spawn one empty task, join it.
 *               value: ns per spawn+join, median of 5 batches.
 *   spawn_many  R times (default 20): spawn N (default 25000) empty tasks,
 *               then join them all.  value: ns per task, median of reps.
 *   idle        a burst of N (default 25000) tasks, 100 ms of rest, then
 *               exactly one idle second.  value: CPU ms in that second.
 *
 * Every workload warms up first (the pool is started and its threads
 * exist).  --verbose prints per-thread context switches of the idle second
 * and, for smolscale, ss_stats() to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "naive_pool.h"
#include "smolscale.h"

#define BATCHES 5

struct peer {
	const char *name;
	void (*start)(void);
	void *(*spawn)(void *(*fn)(void *), void *arg);
	void *(*join)(void *handle);
	void (*stop)(void);
};

struct sample {
	struct timespec wall;
	struct rusage ru;
};

struct delta {
	double wall_s, cpu_s;
	long nvcsw, nivcsw;
};

static const char *workload_name = "?", *peer_name = "?";
static int verbose;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "basic (%s, %s): ", workload_name, peer_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *empty(void *arg)
{
	return arg;
}

/* ------------------------------------------------------------- peers */

static void ss_start(void)
{
}

static void *ss_spawn_peer(void *(*fn)(void *), void *arg)
{
	ss_task *t = ss_spawn(fn, arg);

	if (!t)
		die("ss_spawn: %s", strerror(errno));
	return t;
}

static void *ss_join_peer(void *handle)
{
	void *result = NULL;
	int err = ss_join(handle, &result);

	if (err)
		die("ss_join: %s", strerror(err));
	return result;
}

static void ss_stop(void)
{
	struct ss_stats st;

	if (!verbose || ss_stats(&st))
		return;
	fprintf(stderr, "ss_stats: threads %llu peak %llu created %llu exited %llu "
	        "spawned %llu completed %llu parks %llu wakeups %llu "
	        "balancer_moves %llu preemptions %llu compensations %llu\n",
	        (unsigned long long)st.threads, (unsigned long long)st.peak_threads,
	        (unsigned long long)st.threads_created,
	        (unsigned long long)st.threads_exited,
	        (unsigned long long)st.tasks_spawned,
	        (unsigned long long)st.tasks_completed,
	        (unsigned long long)st.parks, (unsigned long long)st.wakeups,
	        (unsigned long long)st.balancer_moves,
	        (unsigned long long)st.preemptions,
	        (unsigned long long)st.compensations);
}

static struct np_pool *pool;

static void naive_start(void)
{
	pool = np_pool_new(0);
	if (!pool)
		die("np_pool_new: %s", strerror(errno));
	if (verbose)
		fprintf(stderr, "naive pool: %d threads\n", np_pool_threads(pool));
}

static void *naive_spawn(void *(*fn)(void *), void *arg)
{
	struct np_task *t = np_submit(pool, fn, arg);

	if (!t)
		die("np_submit: %s", strerror(errno));
	return t;
}

static void *naive_join(void *handle)
{
	return np_wait(handle);
}

static void naive_stop(void)
{
	np_pool_free(pool);
}

static const struct peer peers[] = {
	{ "smolscale", ss_start, ss_spawn_peer, ss_join_peer, ss_stop },
	{ "naive", naive_start, naive_spawn, naive_join, naive_stop },
};

/* ----------------------------------------------------------- measuring */

static void take_sample(struct sample *s)
{
	clock_gettime(CLOCK_MONOTONIC, &s->wall);
	getrusage(RUSAGE_SELF, &s->ru);
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static double ts_s(struct timespec ts)
{
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct delta diff(const struct sample *a, const struct sample *b)
{
	struct delta d;

	d.wall_s = ts_s(b->wall) - ts_s(a->wall);
	d.cpu_s = tv_s(b->ru.ru_utime) + tv_s(b->ru.ru_stime)
	          - tv_s(a->ru.ru_utime) - tv_s(a->ru.ru_stime);
	d.nvcsw = b->ru.ru_nvcsw - a->ru.ru_nvcsw;
	d.nivcsw = b->ru.ru_nivcsw - a->ru.ru_nivcsw;
	return d;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_s(ts);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Sleep until exactly s seconds after the absolute monotonic time *from. */
static void sleep_until(const struct timespec *from, double s)
{
	struct timespec t = *from;
	long ns = (long)(s * 1e9);

	t.tv_sec += ns / 1000000000L;
	t.tv_nsec += ns % 1000000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

/* -------------------------------------------------------- per thread */

#define MAX_THREADS 1024

struct thread_cs {
	int tid;
	char name[32];
	long nvcsw, nivcsw;
};

static long status_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Read the context switches of every thread of this process into ts. */
static int thread_cs(struct thread_cs *ts, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[300], buf[4096];
	int n = 0;

	if (!d)
		return 0;
	while (n < max && (e = readdir(d))) {
		FILE *f;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = 0;
		ts[n].tid = atoi(e->d_name);
		sscanf(buf, "Name:\t%31s", ts[n].name);
		ts[n].nvcsw = status_field(buf, "\nvoluntary_ctxt_switches:");
		ts[n].nivcsw = status_field(buf, "\nnonvoluntary_ctxt_switches:");
		n++;
	}
	closedir(d);
	return n;
}

static void print_thread_cs(const struct thread_cs *a, int na,
                            const struct thread_cs *b, int nb)
{
	for (int i = 0; i < nb; i++) {
		long v = b[i].nvcsw, iv = b[i].nivcsw;

		for (int j = 0; j < na; j++) {
			if (a[j].tid == b[i].tid) {
				v -= a[j].nvcsw;
				iv -= a[j].nivcsw;
				break;
			}
		}
		fprintf(stderr, "thread %d %-16s nvcsw %ld nivcsw %ld\n",
		        b[i].tid, b[i].name, v, iv);
	}
}

/* ---------------------------------------------------------- workloads */

static void spawn_join_one(const struct peer *p, long n)
{
	for (long i = 0; i < n; i++) {
		void *arg = (void *)(uintptr_t)(i + 1);

		if (p->join(p->spawn(empty, arg)) != arg)
			die("task %ld returned a wrong result", i);
	}
}

static void spawn_join_many(const struct peer *p, void **h, long n)
{
	for (long i = 0; i < n; i++)
		h[i] = p->spawn(empty, (void *)(uintptr_t)(i + 1));
	for (long i = 0; i < n; i++)
		if (p->join(h[i]) != (void *)(uintptr_t)(i + 1))
			die("task %ld returned a wrong result", i);
}

static double spawn_one(const struct peer *p, long n, int reps, struct delta *d)
{
	long batch = n / BATCHES > 0 ? n / BATCHES : 1;
	double ns[BATCHES];
	struct sample a, b;

	spawn_join_one(p, batch / 2 + 1);
	take_sample(&a);
	for (int i = 0; i < BATCHES; i++) {
		double t0 = now_s();

		spawn_join_one(p, batch);
		ns[i] = (now_s() - t0) * 1e9 / batch;
	}
	take_sample(&b);
	*d = diff(&a, &b);
	return median(ns, BATCHES);
}

static double spawn_many(const struct peer *p, long n, int reps, struct delta *d)
{
	void **h = malloc(n * sizeof *h);
	double *ns = malloc(reps * sizeof *ns), m;
	struct sample a, b;

	if (!h || !ns)
		die("out of memory");
	spawn_join_many(p, h, n);
	take_sample(&a);
	for (int i = 0; i < reps; i++) {
		double t0 = now_s();

		spawn_join_many(p, h, n);
		ns[i] = (now_s() - t0) * 1e9 / n;
	}
	take_sample(&b);
	*d = diff(&a, &b);
	m = median(ns, reps);
	free(ns);
	free(h);
	return m;
}

static double idle(const struct peer *p, long n, int reps, struct delta *d)
{
	static struct thread_cs ta[MAX_THREADS], tb[MAX_THREADS];
	void **h = malloc(n * sizeof *h);
	struct timespec t0;
	struct sample a, b;
	int na = 0, nb;

	if (!h)
		die("out of memory");
	spawn_join_many(p, h, n);
	free(h);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sleep_until(&t0, 0.1);
	if (verbose)
		na = thread_cs(ta, MAX_THREADS);
	take_sample(&a);
	sleep_until(&a.wall, 1.0);
	take_sample(&b);
	if (verbose) {
		nb = thread_cs(tb, MAX_THREADS);
		print_thread_cs(ta, na, tb, nb);
	}
	*d = diff(&a, &b);
	return d->cpu_s * 1e3;
}

struct workload {
	const char *name;
	const char *unit;
	long iters;
	double (*run)(const struct peer *p, long n, int reps, struct delta *d);
};

static const struct workload workloads[] = {
	{ "spawn_one", "ns", 100000, spawn_one },
	{ "spawn_many", "ns", 25000, spawn_many },
	{ "idle", "cpu_ms", 25000, idle },
};

/* --------------------------------------------------------------- main */

static char alarm_msg[128];

/* A hang: say where, with smolscale's counters (snprintf is not
 * async-signal-safe, but the process exits right after). */
static void on_alarm(int sig)
{
	struct ss_stats st;
	char buf[256];
	int n;

	(void)!write(2, alarm_msg, strlen(alarm_msg));
	if (!strcmp(peer_name, "smolscale") && !ss_stats(&st)) {
		n = snprintf(buf, sizeof buf, "ss_stats: threads %llu active %llu "
		             "blocked %llu idle %llu spawned %llu completed %llu\n",
		             (unsigned long long)st.threads,
		             (unsigned long long)st.active_workers,
		             (unsigned long long)st.blocked_workers,
		             (unsigned long long)st.idle_workers,
		             (unsigned long long)st.tasks_spawned,
		             (unsigned long long)st.tasks_completed);
		if (n > 0)
			(void)!write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
	}
	_exit(124);
}

static void usage(void)
{
	fprintf(stderr, "usage: basic --peer smolscale|naive "
	        "--workload spawn_one|spawn_many|idle\n"
	        "             [--iters N] [--reps R] [--timeout S] [--verbose]\n");
	exit(2);
}

static long number(const char *opt, const char *s)
{
	char *end;
	long v;

	if (!s)
		usage();
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0) {
		fprintf(stderr, "basic: %s wants a positive number, not '%s'\n", opt, s);
		exit(2);
	}
	return v;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv)
{
	const struct peer *p = NULL;
	const struct workload *w = NULL;
	long iters = 0, reps = 20, timeout = 300;
	struct delta d;
	double value;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = argv[i + 1];

		if (!strcmp(opt, "--verbose")) {
			verbose = 1;
			continue;
		}
		if (!strcmp(opt, "-h") || !strcmp(opt, "--help"))
			usage();
		i++;
		if (!strcmp(opt, "--peer")) {
			for (size_t j = 0; val && j < COUNT(peers); j++)
				if (!strcmp(val, peers[j].name))
					p = &peers[j];
		} else if (!strcmp(opt, "--workload")) {
			for (size_t j = 0; val && j < COUNT(workloads); j++)
				if (!strcmp(val, workloads[j].name))
					w = &workloads[j];
		} else if (!strcmp(opt, "--iters")) {
			iters = number(opt, val);
		} else if (!strcmp(opt, "--reps")) {
			reps = number(opt, val);
		} else if (!strcmp(opt, "--timeout")) {
			timeout = number(opt, val);
		} else {
			usage();
		}
	}
	if (!p || !w)
		usage();
	peer_name = p->name;
	workload_name = w->name;
	snprintf(alarm_msg, sizeof alarm_msg, "basic (%s, %s): timed out after %ld s\n",
	         workload_name, peer_name, timeout);
	signal(SIGALRM, on_alarm);
	alarm(timeout);

	p->start();
	value = w->run(p, iters ? iters : w->iters, (int)reps, &d);
	printf("%s\t%s\t%.*f\t%s\t%.6f\t%ld\t%ld\n", w->name, p->name,
	       strcmp(w->unit, "ns") ? 3 : 1, value, w->unit, d.cpu_s,
	       d.nvcsw, d.nivcsw);
	fflush(stdout);
	p->stop();
	return 0;
}
