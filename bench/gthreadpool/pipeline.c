/*
 * pipeline.c - a legacy GThreadPool pipeline, plain GLib, no smolscale
 * headers.  Run it natively and under libsmolscale-preload.so to compare
 * CPU time; the stdout line must come out the same both ways.
 *
 * S stages, each a shared (non-exclusive) GThreadPool of at most M
 * threads.  Stage i's func churns the message's state through W rounds
 * of a 64-bit hash mix (deterministic: counted in iterations, not time)
 * and pushes the message on to stage i+1; the last stage folds a hash of
 * the message into an order-independent checksum (an atomic sum) and
 * counts it.  The main thread feeds: every 1 ms (absolute
 * clock_nanosleep deadlines on CLOCK_MONOTONIC, 1 µs timer slack) it
 * pushes the messages due by then, R/1000 per tick; with --rate 0 it
 * pushes them all as fast as it can (throughput mode).  It then waits for
 * the last message to leave the last stage and frees the pools with
 * g_thread_pool_free(p, FALSE, TRUE).
 *
 *   pipeline [--stages S] [--max-threads M] [--rate R] [--messages N]
 *            [--work W] [--quiet]
 *
 *   --stages S       pipeline stages (default 4)
 *   --max-threads M  max_threads of each pool, -1 for unlimited (default 2)
 *   --rate R         messages/s, 0 = as fast as possible (default 20000)
 *   --messages N     messages in all (default 3 s worth: 3 * R, or 60000
 *                    when R is 0)
 *   --work W         mix rounds per message per stage (default 500,
 *                    about 2 µs: ~3.9 ns a round on the
 *                    2-core AMD EPYC dev box)
 *   --quiet          print nothing on stderr
 *
 * stdout: "pipeline stages=S messages=N checksum=0x%016x", which depends
 *         only on S, N and W.
 * stderr: wall seconds (first push to last delivery), achieved rate, CPU
 *         user+sys seconds (getrusage RUSAGE_SELF, taken after the pools
 *         are freed), CPU µs per message, the feeding thread's own CPU µs
 *         per message, and voluntary/involuntary context switches.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include <glib.h>

#define DEFAULT_WORK	500
#define TICK_NS		1000000ull	/* feed every 1 ms */

struct msg {
	uint64_t h;		/* state, churned by every stage */
};

struct stage {
	GThreadPool *pool;
	struct stage *next;	/* NULL for the last stage */
	uint64_t salt;
};

static gint opt_stages = 4;
static gint opt_max_threads = 2;
static gint opt_rate = 20000;
static gint opt_messages = -1;
static gint opt_work = DEFAULT_WORK;
static gboolean opt_quiet;

static GOptionEntry entries[] = {
	{ "stages", 's', 0, G_OPTION_ARG_INT, &opt_stages,
	  "pipeline stages (default 4)", "S" },
	{ "max-threads", 'm', 0, G_OPTION_ARG_INT, &opt_max_threads,
	  "max_threads of each pool, -1 unlimited (default 2)", "M" },
	{ "rate", 'r', 0, G_OPTION_ARG_INT, &opt_rate,
	  "messages/s, 0 = as fast as possible (default 20000)", "R" },
	{ "messages", 'n', 0, G_OPTION_ARG_INT, &opt_messages,
	  "messages in all (default 3 s worth, 60000 at rate 0)", "N" },
	{ "work", 'w', 0, G_OPTION_ARG_INT, &opt_work,
	  "mix rounds per message per stage (default 500)", "W" },
	{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet,
	  "no report on stderr", NULL },
	{ NULL }
};

static long nmsgs;
static unsigned work_rounds;
static _Atomic uint64_t checksum;
static atomic_long delivered;
static GMutex done_lock;
static GCond done_cond;
static gboolean done;

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

static void stage_func(gpointer data, gpointer user_data)
{
	struct msg *m = data;
	struct stage *st = user_data;
	GError *err = NULL;

	m->h = churn(m->h ^ st->salt, work_rounds);
	if (st->next) {
		if (!g_thread_pool_push(st->next->pool, m, &err))
			g_error("g_thread_pool_push: %s", err->message);
		return;
	}
	atomic_fetch_add_explicit(&checksum, mix64(m->h), memory_order_relaxed);
	if (atomic_fetch_add(&delivered, 1) + 1 == nmsgs) {
		g_mutex_lock(&done_lock);
		done = TRUE;
		g_cond_signal(&done_cond);
		g_mutex_unlock(&done_lock);
	}
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

static void push(GThreadPool *pool, struct msg *m)
{
	GError *err = NULL;

	if (!g_thread_pool_push(pool, m, &err))
		g_error("g_thread_pool_push: %s", err->message);
}

static void feed(GThreadPool *first, struct msg *msgs)
{
	long i = 0;

	if (opt_rate == 0) {
		for (; i < nmsgs; i++)
			push(first, &msgs[i]);
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
			push(first, &msgs[i]);
	}
}

int main(int argc, char **argv)
{
	GOptionContext *ctx;
	GError *err = NULL;
	struct stage *stages;
	struct msg *msgs;
	struct rusage ru0, ru1, feed0, feed1;
	uint64_t t0, t1;
	int slack;

	ctx = g_option_context_new("- a legacy GThreadPool pipeline");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
		fprintf(stderr, "pipeline: %s\n", err->message);
		return 2;
	}
	g_option_context_free(ctx);
	if (opt_messages < 0)
		opt_messages = opt_rate > 0 ? 3 * opt_rate : 60000;
	if (opt_stages < 1 || opt_max_threads == 0 || opt_max_threads < -1 ||
	    opt_rate < 0 || opt_rate > 100000000 || opt_messages < 1 ||
	    opt_work < 0) {
		fprintf(stderr, "pipeline: bad option value\n");
		return 2;
	}
	nmsgs = opt_messages;
	work_rounds = (unsigned)opt_work;

	msgs = g_new(struct msg, nmsgs);
	for (long i = 0; i < nmsgs; i++)
		msgs[i].h = mix64((uint64_t)i + 1);
	stages = g_new0(struct stage, opt_stages);
	for (int s = opt_stages - 1; s >= 0; s--) {
		stages[s].salt = mix64(0x5354414745ull + s);
		stages[s].next = s + 1 < opt_stages ? &stages[s + 1] : NULL;
		stages[s].pool = g_thread_pool_new(stage_func, &stages[s],
						   opt_max_threads, FALSE,
						   &err);
		if (!stages[s].pool) {
			fprintf(stderr, "pipeline: g_thread_pool_new: %s\n",
				err->message);
			return 1;
		}
	}

	slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
	getrusage(RUSAGE_SELF, &ru0);
	getrusage(RUSAGE_THREAD, &feed0);
	t0 = now_ns();
	feed(stages[0].pool, msgs);
	getrusage(RUSAGE_THREAD, &feed1);
	g_mutex_lock(&done_lock);
	while (!done)
		g_cond_wait(&done_cond, &done_lock);
	g_mutex_unlock(&done_lock);
	t1 = now_ns();
	if (slack > 0)
		prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);

	for (int s = 0; s < opt_stages; s++)
		g_thread_pool_free(stages[s].pool, FALSE, TRUE);
	getrusage(RUSAGE_SELF, &ru1);

	printf("pipeline stages=%d messages=%ld checksum=0x%016" PRIx64 "\n",
	       opt_stages, nmsgs, atomic_load(&checksum));
	fflush(stdout);

	double wall = (t1 - t0) / 1e9;
	double cpu = ru_cpu_s(&ru1) - ru_cpu_s(&ru0);

	if (!opt_quiet)
		fprintf(stderr,
			"pipeline: stages=%d max_threads=%d rate=%d work=%d\n"
			"pipeline: wall %.3f s, achieved %.0f msg/s\n"
			"pipeline: cpu %.3f s (user %.3f sys %.3f), %.2f cpu us/msg, "
			"feeder %.2f cpu us/msg\n"
			"pipeline: ctxsw voluntary %ld involuntary %ld\n",
			opt_stages, opt_max_threads, opt_rate, opt_work,
			wall, nmsgs / wall,
			cpu,
			(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
				(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
			(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
				(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6,
			cpu * 1e6 / nmsgs,
			(ru_cpu_s(&feed1) - ru_cpu_s(&feed0)) * 1e6 / nmsgs,
			ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);

	g_free(stages);
	g_free(msgs);
	return 0;
}
