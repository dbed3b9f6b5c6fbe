/*
 * workloads.c - the benchmark workloads, written against peer.h only and
 * linked with one peer adapter (peers/<name>.c) into bench-<name>.
 *
 *   bench-<peer> --workload W [--threads N] [--quick] [--timeout S]
 *
 * Runs one workload in this process and prints one TSV line:
 *
 *   workload peer median min max unit cpu_s nvcsw nivcsw status
 *   cpu_per_wall p50_us p99_us rate feed_us
 *
 * median, min and max are the workload's figure over its repetitions in
 * this process; cpu_s is user+sys CPU time of the whole process (all
 * threads, getrusage RUSAGE_SELF) over the measured interval (all
 * repetitions, not the warm-up), nvcsw and nivcsw its voluntary and
 * involuntary context switches over the same interval.  status is ok,
 * error (a wrong result), deadlock (fork_join finished no large subtree
 * and used under 20 ms of CPU time in 2 s)
 * or timeout (the run passed --timeout, default 20 s, 10 s with --quick);
 * the watchdog thread then prints the line with the figures of the
 * repetitions that finished ("-" if none) and the CPU time and switches
 * so far, and exits 0.
 * The last five columns are the pipelines' extras, "-" for the other
 * workloads: CPU seconds per wall second, latency p50 and p99 from feed
 * to last stage (µs), the achieved rate (messages per second from the
 * first feed to the last delivery), and the feeding thread's own CPU µs
 * per message (getrusage RUSAGE_THREAD: its sleeps, its submissions and
 * the wake-ups they cost), the part of cpu_us that is the same loop for
 * every peer plus the peer's price of a submission from outside.
 *
 * Workloads (--quick: fewer repetitions, pipelines fed for 1 s):
 *   spawn_one    spawn one empty task into a new group and wait for it;
 *                ns per op, 5 batches of 10,000 ops (3 of 2,000).
 *   spawn_many   25,000 empty tasks into one group, then wait; ns per task,
 *                5 repetitions (3).
 *   fork_join    fib(25), every call with n > 5 spawns fib(n-1) and
 *                fib(n-2) into a new group and waits for it inside its
 *                task (17,710 such calls, 35,420 tasks), n <= 5 computes
 *                serially; ms per fib(25), 5 repetitions (3).
 *   blocking     2 x workers tasks that sleep 100 ms, then 1,000 tiny
 *                tasks; ms from submitting the first tiny task until all
 *                tiny tasks finished, 5 repetitions (3).
 *   pipeline_2k, pipeline_20k
 *                64 stages, each hop a peer_detach() from the previous
 *                stage's task, fed by the main function at 2,000 resp.
 *                20,000 messages/s for 3 s (absolute clock_nanosleep
 *                deadlines, batches when the period is under 50 µs);
 *                CPU µs per message, plus the extras above.  One
 *                repetition: bench/run repeats the process.
 *   idle         after a burst of 5,000 tasks and 100 ms of rest,
 *                the CPU ms of the whole process over one idle second,
 *                measured after peer_run() returned.
 * Workers means --threads, or the CPUs this process may use.  Every
 * workload warms the pool up first (two groups of 4 x workers empty
 * tasks) so that thread creation is not measured.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

#define MAX_REPS 16
#define MANY 25000
#define FIB_N 25
#define FIB_CUTOFF 5
#define FIB_RESULT 75025
#define TINY 1000
#define STAGES 64
#define MIN_PERIOD_NS 50000L
#define STALL_S 2           /* fork_join: no progress this long ... */
#define STALL_CPU_S 0.02    /* ... and this little CPU time is a deadlock */
#define PROGRESS_N 15       /* fork_join: calls this large count as progress */
#define BURST 5000

struct sample {
	uint64_t wall_ns;
	struct rusage ru;
};

struct result {
	double fig[MAX_REPS];   /* the figure of each repetition */
	atomic_int n;           /* release: fig[0..n) are written */
	const char *status;
	double cpu_per_wall, p50_us, p99_us, rate;   /* pipelines, else NAN */
	double feed_us;         /* pipelines: the feeding thread's CPU µs/msg */
};

struct workload {
	const char *name;
	const char *unit;
	void (*run)(struct result *r);
	int deadlock;           /* a stall (see watchdog) is a deadlock */
};

static const struct workload *workload;
static int quick, threads, workers;
static struct sample start;         /* of the measured interval */
static atomic_int measuring;        /* start is valid */
static struct sample stop;          /* the end of the measured interval */
static atomic_long progress;        /* deadlock workloads count steps */
static struct result res = { .status = "ok", .cpu_per_wall = NAN,
                             .p50_us = NAN, .p99_us = NAN, .rate = NAN,
                             .feed_us = NAN };

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000u, .tv_nsec = ns % 1000000000u };
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = ns_ts(ns);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void take_sample(struct sample *s)
{
	s->wall_ns = now_ns();
	getrusage(RUSAGE_SELF, &s->ru);
}

static double cpu_s(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec + ru->ru_stime.tv_sec
	       + (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static void measure_begin(void)
{
	take_sample(&start);
	atomic_store(&measuring, 1);
}

static void measure_end(void)
{
	take_sample(&stop);
}

static int cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* ----------------------------------------------------------- reporting */

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reported;                /* under report_lock */

static void add_fig(struct result *r, double v)
{
	int n = atomic_load_explicit(&r->n, memory_order_relaxed);

	r->fig[n] = v;
	atomic_store_explicit(&r->n, n + 1, memory_order_release);
}

static void put_num(double v, int prec, const char *sep)
{
	if (isnan(v))
		printf("-%s", sep);
	else
		printf("%.*f%s", prec, v, sep);
}

/* Print the line: the figures of res, its extras if `extras`, the
 * measured interval from start to s (none before measure_begin). */
static void print_line(const char *status, const struct sample *s, int extras)
{
	int n = atomic_load_explicit(&res.n, memory_order_acquire);
	double v[MAX_REPS], med = NAN, lo = NAN, hi = NAN;

	if (n) {
		memcpy(v, res.fig, n * sizeof *v);
		qsort(v, n, sizeof *v, cmp_double);
		med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
		lo = v[0];
		hi = v[n - 1];
	}
	printf("%s\t%s\t", workload->name, peer_name);
	put_num(med, 3, "\t");
	put_num(lo, 3, "\t");
	put_num(hi, 3, "\t");
	printf("%s\t", workload->unit);
	if (atomic_load(&measuring))
		printf("%.6f\t%ld\t%ld\t", cpu_s(&s->ru) - cpu_s(&start.ru),
		       s->ru.ru_nvcsw - start.ru.ru_nvcsw,
		       s->ru.ru_nivcsw - start.ru.ru_nivcsw);
	else
		printf("-\t-\t-\t");
	printf("%s\t", status);
	put_num(extras ? res.cpu_per_wall : NAN, 4, "\t");
	put_num(extras ? res.p50_us : NAN, 1, "\t");
	put_num(extras ? res.p99_us : NAN, 1, "\t");
	put_num(extras ? res.rate : NAN, 1, "\t");
	put_num(extras ? res.feed_us : NAN, 2, "\n");
	fflush(stdout);
}

/* Claim the one line of output.  If the watchdog has claimed it, it holds
 * the lock until it ends the process, so this does not return. */
static void claim_report(void)
{
	pthread_mutex_lock(&report_lock);
	reported = 1;
	pthread_mutex_unlock(&report_lock);
}

/* Watchdog thread: at the run's end (limit_s after start) or, for a
 * deadlock workload, after STALL_S without progress and with next to no
 * CPU time, print the line with what finished so far and end the process
 * (peers' threads may be stuck, so no exit handlers). */
static void *watchdog(void *arg)
{
	uint64_t end = now_ns() + (uint64_t)(*(double *)arg * 1e9), t;
	long seen = -1, p;
	double cpu = -1;
	const char *status = "timeout";
	struct sample s;

	for (;;) {
		t = now_ns() + STALL_S * 1000000000ull;
		sleep_until(t < end ? t : end);
		take_sample(&s);
		p = atomic_load_explicit(&progress, memory_order_relaxed);
		if (s.wall_ns >= end)
			break;
		if (workload->deadlock && p == seen && cpu_s(&s.ru) - cpu < STALL_CPU_S) {
			status = "deadlock";
			break;
		}
		seen = p;
		cpu = cpu_s(&s.ru);
	}
	pthread_mutex_lock(&report_lock);
	if (reported) {
		pthread_mutex_unlock(&report_lock);
		return NULL;
	}
	take_sample(&s);
	print_line(status, &s, 0);
	_exit(0);
}

static void watchdog_start(double limit_s)
{
	static double limit;
	pthread_t t;

	limit = limit_s;
	if (pthread_create(&t, NULL, watchdog, &limit)) {
		fprintf(stderr, "bench-%s: no watchdog thread\n", peer_name);
		exit(1);
	}
	pthread_detach(t);
}

/* ------------------------------------------------------------- common */

static void empty(void *arg)
{
}

static void group_of_empty(int n)
{
	struct peer_group *g = peer_group_new();

	for (int i = 0; i < n; i++)
		peer_spawn(g, empty, NULL);
	peer_wait(g);
	peer_group_free(g);
}

static void warm_up(void)
{
	group_of_empty(4 * workers);
	group_of_empty(4 * workers);
}

/* Warm up, then run rep() reps times, each returning its figure. */
static void repeat(struct result *r, double (*rep)(void), int reps)
{
	warm_up();
	measure_begin();
	for (int i = 0; i < reps; i++) {
		add_fig(r, rep());
		atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
	}
	measure_end();
}

struct main_args {
	struct result *r;
	double (*rep)(void);
	int reps;
};

static void repeat_main(void *arg)
{
	struct main_args *a = arg;

	repeat(a->r, a->rep, a->reps);
}

static void run_repeat(struct result *r, double (*rep)(void), int reps)
{
	struct main_args a = { r, rep, reps };

	peer_run(repeat_main, &a);
}

/* ------------------------------------------------- spawn_one, spawn_many */

static double one_rep(void)
{
	long ops = quick ? 2000 : 10000;
	uint64_t t0 = now_ns();

	for (long i = 0; i < ops; i++)
		group_of_empty(1);
	return (double)(now_ns() - t0) / ops;
}

static void spawn_one(struct result *r)
{
	run_repeat(r, one_rep, quick ? 3 : 5);
}

static double many_rep(void)
{
	uint64_t t0 = now_ns();

	group_of_empty(MANY);
	return (double)(now_ns() - t0) / MANY;
}

static void spawn_many(struct result *r)
{
	run_repeat(r, many_rep, quick ? 3 : 5);
}

/* ----------------------------------------------------------- fork_join */

struct fib {
	int n;
	long result;
};

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void fib_task(void *arg)
{
	struct fib *f = arg, a = { f->n - 1, 0 }, b = { f->n - 2, 0 };
	struct peer_group *g;

	if (f->n <= FIB_CUTOFF) {
		f->result = fib_serial(f->n);
		return;
	}
	g = peer_group_new();
	peer_spawn(g, fib_task, &a);
	peer_spawn(g, fib_task, &b);
	peer_wait(g);
	peer_group_free(g);
	f->result = a.result + b.result;
	if (f->n >= PROGRESS_N)
		atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

static int fib_wrong;

static double fib_rep(void)
{
	struct fib f = { FIB_N, 0 };
	uint64_t t0 = now_ns();

	fib_task(&f);
	if (f.result != FIB_RESULT)
		fib_wrong = 1;
	return (now_ns() - t0) / 1e6;
}

static void fork_join(struct result *r)
{
	run_repeat(r, fib_rep, quick ? 3 : 5);
	if (fib_wrong)
		r->status = "error";
}

/* ------------------------------------------------------------ blocking */

static atomic_long tiny_runs;
static atomic_long tiny_left;
static _Atomic uint64_t tiny_done_ns;

static void sleeper(void *arg)
{
	usleep(100000);
}

/* The last tiny task to finish stamps the time, so the figure does not
 * depend on how a peer's wait treats the sleepers (OpenMP's taskwait
 * waits for every child of the task, sleepers included). */
static void tiny(void *arg)
{
	atomic_fetch_add_explicit(&tiny_runs, 1, memory_order_relaxed);
	if (atomic_fetch_sub(&tiny_left, 1) == 1)
		atomic_store(&tiny_done_ns, now_ns());
}

static double blocking_rep(void)
{
	struct peer_group *s = peer_group_new(), *t = peer_group_new();
	uint64_t t0;

	for (int i = 0; i < 2 * workers; i++)
		peer_spawn(s, sleeper, NULL);
	atomic_store(&tiny_left, TINY);
	t0 = now_ns();
	for (int i = 0; i < TINY; i++)
		peer_spawn(t, tiny, NULL);
	peer_wait(t);
	peer_wait(s);
	peer_group_free(t);
	peer_group_free(s);
	return (atomic_load(&tiny_done_ns) - t0) / 1e6;
}

static void blocking(struct result *r)
{
	run_repeat(r, blocking_rep, quick ? 3 : 5);
	if (atomic_load(&tiny_runs) != (long)TINY * r->n)
		r->status = "error";
}

/* ------------------------------------------------------------ pipelines */

struct msg {
	int stage;
	uint64_t fed, done;
};

static struct msg *msgs;
static long nmsgs, offered;         /* messages, per second */
static atomic_long delivered;
static sem_t all_delivered;

/* One stage: pass the message on, or deliver it after the last stage. */
static void hop(void *arg)
{
	struct msg *m = arg;

	if (++m->stage < STAGES) {
		peer_detach(hop, m);
		return;
	}
	m->done = now_ns();
	/* acq_rel: the last deliverer sees every message's done time. */
	if (atomic_fetch_add_explicit(&delivered, 1, memory_order_acq_rel) + 1 == nmsgs)
		sem_post(&all_delivered);
}

/* Feed nmsgs messages at the offered rate, batch messages per deadline. */
static void feed(void)
{
	uint64_t t0 = now_ns(), period = 1000000000u / offered;
	long batch = period >= MIN_PERIOD_NS ? 1 : (MIN_PERIOD_NS + period - 1) / period;

	for (long i = 0; i < nmsgs; i++) {
		if (i % batch == 0)
			sleep_until(t0 + i * period);
		msgs[i].fed = now_ns();
		peer_detach(hop, &msgs[i]);
	}
}

static void pipeline_main(void *arg)
{
	struct result *r = arg;
	int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	uint64_t *lat = malloc(nmsgs * sizeof *lat), last = 0;
	struct rusage feed0, feed1;

	if (!lat) {
		fprintf(stderr, "bench-%s: out of memory\n", peer_name);
		exit(1);
	}
	warm_up();
	/* 1 µs timer slack instead of 50 so that the pace holds. */
	prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
	measure_begin();
	getrusage(RUSAGE_THREAD, &feed0);
	feed();
	getrusage(RUSAGE_THREAD, &feed1);
	while (sem_wait(&all_delivered))
		;
	measure_end();
	prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);

	for (long i = 0; i < nmsgs; i++) {
		lat[i] = msgs[i].done - msgs[i].fed;
		if (msgs[i].done > last)
			last = msgs[i].done;
	}
	qsort(lat, nmsgs, sizeof *lat, cmp_u64);
	add_fig(r, (cpu_s(&stop.ru) - cpu_s(&start.ru)) * 1e6 / nmsgs);
	r->cpu_per_wall = (cpu_s(&stop.ru) - cpu_s(&start.ru))
	                  / ((stop.wall_ns - start.wall_ns) / 1e9);
	r->p50_us = lat[nmsgs / 2] / 1e3;
	r->p99_us = lat[nmsgs * 99 / 100] / 1e3;
	r->rate = nmsgs / ((last - msgs[0].fed) / 1e9);
	r->feed_us = (cpu_s(&feed1) - cpu_s(&feed0)) * 1e6 / nmsgs;
	free(lat);
}

static void pipeline(struct result *r, long rate)
{
	offered = rate;
	nmsgs = rate * (quick ? 1 : 3);
	msgs = calloc(nmsgs, sizeof *msgs);
	if (!msgs || sem_init(&all_delivered, 0, 0)) {
		fprintf(stderr, "bench-%s: out of memory\n", peer_name);
		exit(1);
	}
	peer_run(pipeline_main, r);
	free(msgs);
}

static void pipeline_2k(struct result *r)
{
	pipeline(r, 2000);
}

static void pipeline_20k(struct result *r)
{
	pipeline(r, 20000);
}

/* ---------------------------------------------------------------- idle */

static void burst(void *arg)
{
	warm_up();
	group_of_empty(BURST);
}

static void idle(struct result *r)
{
	peer_run(burst, NULL);
	sleep_until(now_ns() + 100000000u);
	measure_begin();
	sleep_until(start.wall_ns + 1000000000u);
	measure_end();
	add_fig(r, (cpu_s(&stop.ru) - cpu_s(&start.ru)) * 1e3);
}

/* ---------------------------------------------------------------- main */

static const struct workload workloads[] = {
	{ "spawn_one", "ns", spawn_one, 0 },
	{ "spawn_many", "ns", spawn_many, 0 },
	{ "fork_join", "ms", fork_join, 1 },
	{ "blocking", "ms", blocking, 0 },
	{ "pipeline_2k", "cpu_us", pipeline_2k, 0 },
	{ "pipeline_20k", "cpu_us", pipeline_20k, 0 },
	{ "idle", "cpu_ms", idle, 0 },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(void)
{
	fprintf(stderr, "usage: bench-%s --workload W [--threads N] [--quick] "
	        "[--timeout S]\nworkloads:", peer_name);
	for (size_t i = 0; i < COUNT(workloads); i++)
		fprintf(stderr, " %s", workloads[i].name);
	fputc('\n', stderr);
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
	if (errno || *end || v <= 0 || v > 100000) {
		fprintf(stderr, "bench-%s: %s wants a positive number, not '%s'\n",
		        peer_name, opt, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long timeout = 0;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "--quick")) {
			quick = 1;
		} else if (!strcmp(opt, "--workload") && i + 1 < argc) {
			for (size_t j = 0; j < COUNT(workloads); j++)
				if (!strcmp(argv[i + 1], workloads[j].name))
					workload = &workloads[j];
			i++;
		} else if (!strcmp(opt, "--threads")) {
			threads = number(opt, argv[++i]);
		} else if (!strcmp(opt, "--timeout")) {
			timeout = number(opt, argv[++i]);
		} else {
			usage();
		}
	}
	if (!workload)
		usage();
	workers = threads ? threads : cpus();
	watchdog_start(timeout ? timeout : quick ? 10 : 20);
	if (peer_init(threads)) {
		claim_report();
		print_line("error", &start, 0);
		return 1;
	}
	workload->run(&res);
	claim_report();
	print_line(res.status, &stop, 1);
	peer_fini();
	return 0;
}
