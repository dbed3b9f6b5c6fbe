/*
 * pipeline.c - a pipeline of in-house thread pools with the API of
 * Pithikos/C-Thread-Pool (tests/pools/thpool.h), plain C and pthreads, no
 * smolscale headers.  The pool is a shared library (libthpool-bench), so
 * every call to it goes through this program's PLT: run it natively and
 * under libsmolscale-preload.so with SMOLSCALE_POOLS=shim/pools/thpool.conf
 * (shim/pools.c rewrites those GOT entries and runs the work on
 * smolscale's workers) to compare CPU time; the stdout line must come out
 * the same both ways.  bench/pools/run does that with `smolscale ab`.
 *
 * S stages, each a thpool of T threads.  A stage's job churns the
 * message's state through W rounds of a 64-bit hash mix (deterministic:
 * counted in iterations, not time; about 5 ns a round) and hands the
 * message to the next stage with thpool_add_work; the last stage folds a
 * hash of the message into an order-independent checksum (an atomic sum)
 * and counts it.  The main thread feeds stage 0: every 1 ms (absolute
 * clock_nanosleep deadlines on CLOCK_MONOTONIC, 1 µs timer slack) it
 * submits the messages due by then, R/1000 per tick; with --rate 0 it
 * submits them all as fast as it can (throughput mode).  Then it calls
 * thpool_wait on each stage in order (stage i's jobs submit to stage i+1
 * before they end, so once stage i is idle nothing more reaches i+1),
 * and thpool_destroy on each.
 *
 *   pipeline [--stages S] [--threads T] [--rate R] [--seconds D]
 *            [--messages N] [--work W] [--latency] [--quiet]
 *
 *   --stages S    pipeline stages (default 4)
 *   --threads T   threads of each pool (thpool_init's num_threads,
 *                 default 4)
 *   --rate R      messages/s, 0 = as fast as possible (default 20000)
 *   --seconds D   feed for D seconds: N = R * D (default 3)
 *   --messages N  messages in all, overrides --seconds (default R * D, or
 *                 300000 when R is 0)
 *   --work W      mix rounds per message per stage (default 100: about
 *                 0.5 µs on the 2-core dev box)
 *   --latency     also time every message from its submission to stage
 *                 0 until the last stage is done with it, and print the
 *                 percentiles on stderr (two clock reads per message)
 *   --quiet       print nothing on stderr
 *
 * stdout: "pools-pipeline stages=S messages=N delivered=N
 *         checksum=0x%016x", which depends only on S, N and W.
 * stderr: wall seconds (first submission until every stage is idle),
 *         achieved rate, CPU user+sys seconds (getrusage RUSAGE_SELF,
 *         taken after the pools are destroyed), CPU µs per message, the
 *         feeding thread's own CPU µs per message, voluntary/involuntary
 *         context switches; with --latency the latency percentiles.
 *
 * Exit status: 0; 1 when a pool cannot be made, a submission fails or
 * not every message was delivered; 2 on a bad option.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "thpool.h"

#define TICK_NS		1000000ull	/* feed every 1 ms */

struct msg {
	uint64_t h;		/* state, churned by every stage */
	int stage;		/* the stage it is queued on or running in */
	uint64_t fed, lat;	/* --latency: ns */
};

struct stage {
	threadpool pool;
	uint64_t salt;
};

static long opt_stages = 4, opt_threads = 4, opt_rate = 20000;
static long opt_seconds = 3, opt_messages = -1, opt_work = 100;
static int opt_latency, opt_quiet;

static struct stage *stages;
static int nstages;
static long nmsgs;
static unsigned work_rounds;
static _Atomic uint64_t checksum;
static atomic_long delivered;

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t churn(uint64_t h, unsigned rounds)
{
	for (unsigned i = 0; i < rounds; i++)
		h = mix64(h + i);
	return h;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ru_cpu_s(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec + ru->ru_stime.tv_sec +
	       (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static void submit(int s, struct msg *m);

static void stage_job(void *arg)
{
	struct msg *m = arg;
	int s = m->stage;

	m->h = churn(m->h ^ stages[s].salt, work_rounds);
	if (s + 1 < nstages) {
		submit(s + 1, m);
		return;
	}
	if (opt_latency)
		m->lat = now_ns() - m->fed;
	atomic_fetch_add_explicit(&checksum, mix64(m->h), memory_order_relaxed);
	atomic_fetch_add_explicit(&delivered, 1, memory_order_relaxed);
}

static void submit(int s, struct msg *m)
{
	m->stage = s;
	if (thpool_add_work(stages[s].pool, stage_job, m) != 0) {
		fprintf(stderr, "pipeline: thpool_add_work failed on stage %d\n", s);
		exit(1);
	}
}

static void feed_one(struct msg *m)
{
	if (opt_latency)
		m->fed = now_ns();
	submit(0, m);
}

static void feed(struct msg *msgs)
{
	long i = 0;

	if (opt_rate == 0) {
		for (; i < nmsgs; i++)
			feed_one(&msgs[i]);
		return;
	}
	uint64_t t0 = now_ns();
	for (uint64_t k = 0; i < nmsgs; k++) {
		uint64_t d = t0 + k * TICK_NS;
		struct timespec ts = { (time_t)(d / 1000000000u),
				       (long)(d % 1000000000u) };
		long upto = (long)((uint64_t)opt_rate * (k + 1) / 1000);

		if (upto > nmsgs)
			upto = nmsgs;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		for (; i < upto; i++)
			feed_one(&msgs[i]);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void print_latency(const struct msg *msgs)
{
	uint64_t *lat = malloc((size_t)nmsgs * sizeof *lat);

	if (!lat) {
		fprintf(stderr, "pipeline: no memory for the latencies\n");
		return;
	}
	for (long i = 0; i < nmsgs; i++)
		lat[i] = msgs[i].lat;
	qsort(lat, (size_t)nmsgs, sizeof *lat, cmp_u64);
	fprintf(stderr,
		"pipeline: latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
		lat[nmsgs / 2] / 1e3, lat[nmsgs * 9 / 10] / 1e3,
		lat[nmsgs * 99 / 100] / 1e3, lat[nmsgs * 999 / 1000] / 1e3,
		lat[nmsgs - 1] / 1e3);
	free(lat);
}

static const char usage[] =
"usage: pipeline [--stages S] [--threads T] [--rate R] [--seconds D]\n"
"                [--messages N] [--work W] [--latency] [--quiet]\n";

/* A long in [lo, hi] from optarg, or exit 2. */
static long num(const char *opt, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(optarg, &end, 10);
	if (errno || end == optarg || *end || v < lo || v > hi) {
		fprintf(stderr, "pipeline: --%s wants a number from %ld to %ld, not '%s'\n",
			opt, lo, hi, optarg);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "stages", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 'd' },
		{ "messages", required_argument, NULL, 'n' },
		{ "work", required_argument, NULL, 'w' },
		{ "latency", no_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct msg *msgs;
	struct rusage ru0, ru1, feed0, feed1;
	uint64_t t0, t1;
	int c, slack;

	while ((c = getopt_long(argc, argv, "s:t:r:d:n:w:lqh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opt_stages = num("stages", 1, 64); break;
		case 't': opt_threads = num("threads", 1, 1024); break;
		case 'r': opt_rate = num("rate", 0, 100000000); break;
		case 'd': opt_seconds = num("seconds", 1, 3600); break;
		case 'n': opt_messages = num("messages", 1, 100000000); break;
		case 'w': opt_work = num("work", 0, 100000000); break;
		case 'l': opt_latency = 1; break;
		case 'q': opt_quiet = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pipeline: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}
	if (opt_messages < 0)
		opt_messages = opt_rate > 0 ? opt_rate * opt_seconds : 300000;
	if (opt_messages > 100000000) {
		fprintf(stderr, "pipeline: more than 100000000 messages\n");
		return 2;
	}
	nmsgs = opt_messages;
	nstages = (int)opt_stages;
	work_rounds = (unsigned)opt_work;

	msgs = calloc((size_t)nmsgs, sizeof *msgs);
	stages = calloc((size_t)nstages, sizeof *stages);
	if (!msgs || !stages) {
		fprintf(stderr, "pipeline: out of memory\n");
		return 1;
	}
	for (long i = 0; i < nmsgs; i++)
		msgs[i].h = mix64((uint64_t)i + 1);
	for (int s = 0; s < nstages; s++) {
		stages[s].salt = mix64(0x5354414745ull + (uint64_t)s);
		stages[s].pool = thpool_init((int)opt_threads);
		if (!stages[s].pool) {
			fprintf(stderr, "pipeline: thpool_init(%ld) failed\n", opt_threads);
			return 1;
		}
	}

	slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
	getrusage(RUSAGE_SELF, &ru0);
	getrusage(RUSAGE_THREAD, &feed0);
	t0 = now_ns();
	feed(msgs);
	getrusage(RUSAGE_THREAD, &feed1);
	for (int s = 0; s < nstages; s++)
		thpool_wait(stages[s].pool);
	t1 = now_ns();
	if (slack > 0)
		prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
	for (int s = 0; s < nstages; s++)
		thpool_destroy(stages[s].pool);
	getrusage(RUSAGE_SELF, &ru1);

	long got = atomic_load(&delivered);
	printf("pools-pipeline stages=%d messages=%ld delivered=%ld checksum=0x%016" PRIx64 "\n",
	       nstages, nmsgs, got, atomic_load(&checksum));
	fflush(stdout);
	if (got != nmsgs) {
		fprintf(stderr, "pipeline: %ld of %ld messages delivered\n", got, nmsgs);
		return 1;
	}

	double wall = (t1 - t0) / 1e9;
	double cpu = ru_cpu_s(&ru1) - ru_cpu_s(&ru0);

	if (!opt_quiet) {
		fprintf(stderr,
			"pipeline: stages=%d threads=%ld rate=%ld work=%ld\n"
			"pipeline: wall %.3f s, achieved %.0f msg/s\n"
			"pipeline: cpu %.3f s (user %.3f sys %.3f), %.2f cpu us/msg, "
			"feeder %.2f cpu us/msg\n"
			"pipeline: ctxsw voluntary %ld involuntary %ld\n",
			nstages, opt_threads, opt_rate, opt_work,
			wall, nmsgs / wall,
			cpu,
			(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
				(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
			(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
				(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6,
			cpu * 1e6 / nmsgs,
			(ru_cpu_s(&feed1) - ru_cpu_s(&feed0)) * 1e6 / nmsgs,
			ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
		if (opt_latency)
			print_latency(msgs);
	}

	free(stages);
	free(msgs);
	return 0;
}
