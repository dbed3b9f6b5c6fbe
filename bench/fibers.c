/*
 * fibers.c - bench-fibers: smolscale's fibers and channels on the workloads
 * of bench/rust (ss-rust-peers), so that bench/fibers-run can print them
 * next to tokio, smol and async-global-executor.
 *
 *   bench-fibers --workload NAME [--iters N] [--threads N] [--quick]
 *                [--seconds S]
 *
 * Prints one tab-separated line on stdout, as ss-rust-peers does:
 *
 *   workload executor threads iters median_ns min_ns max_ns cpu_s
 *   cpu_per_wall cpu_us_per_msg rate
 *
 * executor is "smolscale", or "smolscale-steal" when SMOLSCALE_STEAL=1 is in
 * the environment (classic work-stealing in the same library).  threads is
 * --threads (which sets SMOLSCALE_THREADS before the first call), else
 * SMOLSCALE_THREADS, else the CPUs this process may use.  median_ns, min_ns
 * and max_ns are over the wall times of the timed iterations (one iteration
 * = the unit that each workload below names, NOT one task or one message).
 * cpu_s is user+sys CPU time of the whole process (all threads; getrusage
 * RUSAGE_SELF) over the timed iterations only.  The last three columns are
 * underloaded_cpu's, "-" for the other workloads.
 *
 * The driver is one fiber that main() runs with ss_block_on(), as the Rust
 * side runs its driver future with block_on: it first warms the pool up
 * (two rounds of 4 x threads empty fibers, spawned and joined), then runs
 * one untimed warm-up iteration of the workload, then --iters timed ones.
 * Unlike the Rust drivers, which run on the main thread outside the pool,
 * this one runs on a worker: it is a fiber like the others, and its
 * ss_join()s and channel calls park it.  "spawn" below is ss_go(), "await"
 * is ss_join(), yield is ss_yield(), sleeping is ss_sleep_ns() to an
 * absolute CLOCK_MONOTONIC deadline, channels are ss_chan (bounded), the
 * reply slot is ss_oneshot; a closed channel (ss_chan_close, EPIPE) stands
 * for a dropped sender.
 *
 * Workloads (default iters; --quick in brackets), as in bench/rust/src/main.rs:
 *   spawn_one        the driver spawns one empty fiber and joins it.
 *                    50,000 [10,000].
 *   spawn_many       the driver spawns 25,000 empty fibers, then joins them
 *                    in spawn order.  20 [5].
 *   yield_now        the driver spawns 300 fibers that each yield 300 times;
 *                    joins all 300.  50 [10].
 *   ping_pong        a server and a client fiber share one bounded(10)
 *                    request channel; the client sends 1,000 requests (i,
 *                    fresh one-shot) one after another and waits for each
 *                    reply (i + 1, checked); the server replies until the
 *                    channel closes (the client closes it when done).  The
 *                    driver joins the client, then the server.  500 [100].
 *   fanout           one bounded(1) channel; the driver spawns 1,000
 *                    receivers that each receive one value and return it,
 *                    then a sender of 0..999; joins the sender, then every
 *                    receiver, and checks the sum.  200 [50].
 *   context_switch_quiet
 *                    set up once, untimed: 300 forwarders linked by 301
 *                    bounded(1) channels, forwarder k receiving from channel
 *                    k and sending to k+1 until its input closes (then it
 *                    closes its output); iteration = the driver sends one
 *                    token into channel 0 and receives it from channel 300.
 *                    Torn down afterwards (close channel 0, the close
 *                    cascades, all forwarders joined).  3,000 [1,000].
 *   context_switch_busy
 *                    the same with a ring of 30, plus 300 background fibers
 *                    spawned after the ring that yield until a stop flag
 *                    (an atomic) is set after the timed iterations.
 *                    1,000 [200].
 *   underloaded_cpu  64 producer/consumer pairs, each on its own bounded(64)
 *                    channel, delivering 50,000 messages/s in all for
 *                    --seconds (3 s) [1 s]: producer i sends
 *                    round(50,000 x seconds / 64) messages in batches of 4,
 *                    one batch per absolute deadline t0 + i x 5.12 ms / 64
 *                    + b x 5.12 ms; consumers count until their channel
 *                    closes; the driver joins the 64 consumers, then the
 *                    producers.  Warm-up at 0.25 s.  Extra columns over the
 *                    timed iterations: cpu_per_wall, cpu_us_per_msg, rate
 *                    (messages / wall second).  1 [1].
 * A wrong result (count, sum, value) or a failed call prints a message on
 * stderr and exits 1; bad options exit 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "smolscale.h"

#define MANY 25000
#define YIELD_TASKS 300
#define YIELDS 300
#define PING_PONGS 1000u
#define PING_QUEUE 10
#define FANOUT 1000u
#define RING_QUIET 300
#define RING_BUSY 30
#define BUSY_TASKS 300
#define PAIRS 64u
#define RATE 50000u             /* messages per second, all pairs together */
#define BATCH 4u
#define PAIR_QUEUE 64
#define WARM_SECONDS 0.25       /* underloaded_cpu's warm-up */

static const char *executor = "smolscale";
static int threads;

/* ------------------------------------------------------------ helpers */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A wrong result or a failed call, on any thread or fiber: no exit
 * handlers, the pool's threads may be parked anywhere. */
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-fibers: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static double cpu_time(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		die("getrusage: %s", strerror(errno));
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
	       + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return 1;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("out of memory");
	return p;
}

static ss_task *go(void *(*fn)(void *), void *arg)
{
	ss_task *t = ss_go(fn, arg);

	if (!t)
		die("ss_go: %s", strerror(errno));
	return t;
}

static void *join(ss_task *t)
{
	void *v;
	int err = ss_join(t, &v);

	if (err)
		die("ss_join: %s", strerror(err));
	return v;
}

static ss_chan *chan(size_t capacity, size_t elem_size)
{
	ss_chan *c = ss_chan_new(capacity, elem_size);

	if (!c)
		die("ss_chan_new: %s", strerror(errno));
	return c;
}

static void chan_close(ss_chan *c)
{
	int err = ss_chan_close(c);

	if (err)
		die("ss_chan_close: %s", strerror(err));
}

/* Receive into *v: true, or false when c is closed and drained. */
static bool chan_recv(ss_chan *c, void *v, const char *what)
{
	int err = ss_chan_recv(c, v);

	if (err && err != EPIPE)
		die("%s: ss_chan_recv: %s", what, strerror(err));
	return !err;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* ---------------------------------------------------------- measurement */

struct meas {
	uint64_t *times;        /* ns per timed iteration */
	size_t iters;
	double cpu_s;
	bool extra;             /* underloaded_cpu: the three below */
	double cpu_per_wall, cpu_us_per_msg, rate;
};

/* One untimed warm-up call of body(arg), then m->iters timed ones. */
static void timed(struct meas *m, void (*body)(void *), void *arg)
{
	double cpu0;

	body(arg);
	cpu0 = cpu_time();
	for (size_t i = 0; i < m->iters; i++) {
		uint64_t t = now_ns();

		body(arg);
		m->times[i] = now_ns() - t;
	}
	m->cpu_s = cpu_time() - cpu0;
}

/* ------------------------------------------------------------ workloads */

static void *empty(void *arg)
{
	return arg;
}

static void warm_pool(void)
{
	size_t n = 4 * (size_t)threads;
	ss_task **t = xmalloc(n * sizeof *t);

	for (int r = 0; r < 2; r++) {
		for (size_t i = 0; i < n; i++)
			t[i] = go(empty, NULL);
		for (size_t i = 0; i < n; i++)
			join(t[i]);
	}
	free(t);
}

static void spawn_one(void *arg)
{
	(void)arg;
	join(go(empty, NULL));
}

/* The driver's task handles: static, so that the driver fiber needs
 * little stack (SMOLSCALE_FIBER_STACK may be as small as 16 KiB). */
static ss_task *many[MANY];

static void spawn_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < MANY; i++)
		many[i] = go(empty, NULL);
	for (int i = 0; i < MANY; i++)
		join(many[i]);
}

static void *yielder(void *arg)
{
	for (int i = 0; i < YIELDS; i++)
		ss_yield();
	return arg;
}

static void yield_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < YIELD_TASKS; i++)
		many[i] = go(yielder, NULL);
	for (int i = 0; i < YIELD_TASKS; i++)
		join(many[i]);
}

/* ping_pong */

struct request {
	uint32_t v;
	ss_oneshot *reply;
};

static void *ping_server(void *arg)
{
	ss_chan *c = arg;
	struct request r;

	while (chan_recv(c, &r, "ping_pong server")) {
		uint32_t v = r.v + 1;

		/* As the Rust side: a reply nobody waits for is dropped. */
		(void)ss_oneshot_send(r.reply, &v);
	}
	return NULL;
}

static void *ping_client(void *arg)
{
	ss_chan *c = arg;
	int err;

	for (uint32_t i = 0; i < PING_PONGS; i++) {
		struct request r = { i, ss_oneshot_new(sizeof(uint32_t)) };
		uint32_t v;

		if (!r.reply)
			die("ss_oneshot_new: %s", strerror(errno));
		if ((err = ss_chan_send(c, &r)))
			die("ping_pong: server gone: %s", strerror(err));
		if ((err = ss_oneshot_recv(r.reply, &v)))
			die("ping_pong: no reply: %s", strerror(err));
		if (v != i + 1)
			die("ping_pong: wrong reply %u to %u", v, i);
		ss_oneshot_free(r.reply);
	}
	chan_close(c);
	return NULL;
}

static void ping_pong(void *arg)
{
	ss_chan *c = chan(PING_QUEUE, sizeof(struct request));
	ss_task *server, *client;

	(void)arg;
	server = go(ping_server, c);
	client = go(ping_client, c);
	join(client);
	join(server);
	ss_chan_free(c);
}

/* fanout */

static ss_task *rx[FANOUT];

static void *fan_receiver(void *arg)
{
	uint32_t v;

	if (!chan_recv(arg, &v, "fanout receiver"))
		die("fanout: closed");
	return (void *)(uintptr_t)v;
}

static void *fan_sender(void *arg)
{
	int err;

	for (uint32_t i = 0; i < FANOUT; i++)
		if ((err = ss_chan_send(arg, &i)))
			die("fanout: receivers gone: %s", strerror(err));
	chan_close(arg);
	return NULL;
}

static void fanout(void *arg)
{
	ss_chan *c = chan(1, sizeof(uint32_t));
	ss_task *tx;
	uint64_t sum = 0;

	(void)arg;
	for (unsigned i = 0; i < FANOUT; i++)
		rx[i] = go(fan_receiver, c);
	tx = go(fan_sender, c);
	join(tx);
	for (unsigned i = 0; i < FANOUT; i++)
		sum += (uintptr_t)join(rx[i]);
	ss_chan_free(c);
	if (sum != (uint64_t)FANOUT * (FANOUT - 1) / 2)
		die("fanout: wrong sum %llu", (unsigned long long)sum);
}

/* context_switch_quiet, context_switch_busy */

struct ring {
	int n;
	ss_chan **ch;           /* n + 1: the driver sends into ch[0] and
	                         * receives from ch[n] */
	struct fwd {
		ss_chan *in, *out;
	} *fwd;
	ss_task **tasks;
	uint64_t token;
};

static void *forwarder(void *arg)
{
	struct fwd *f = arg;
	uint64_t v;

	while (chan_recv(f->in, &v, "ring forwarder"))
		if (ss_chan_send(f->out, &v))
			break;
	/* The Rust forwarder drops its sender here. */
	ss_chan_close(f->out);
	return NULL;
}

static void ring_new(struct ring *r, int n)
{
	r->n = n;
	r->ch = xmalloc((n + 1) * sizeof *r->ch);
	r->fwd = xmalloc(n * sizeof *r->fwd);
	r->tasks = xmalloc(n * sizeof *r->tasks);
	r->token = 0;
	r->ch[0] = chan(1, sizeof(uint64_t));
	for (int k = 0; k < n; k++) {
		r->ch[k + 1] = chan(1, sizeof(uint64_t));
		r->fwd[k] = (struct fwd){ r->ch[k], r->ch[k + 1] };
		r->tasks[k] = go(forwarder, &r->fwd[k]);
	}
}

static void ring_free(struct ring *r)
{
	chan_close(r->ch[0]);
	for (int k = 0; k < r->n; k++)
		join(r->tasks[k]);
	for (int k = 0; k <= r->n; k++)
		ss_chan_free(r->ch[k]);
	free(r->tasks);
	free(r->fwd);
	free(r->ch);
}

static void lap(void *arg)
{
	struct ring *r = arg;
	uint64_t token = ++r->token, v;
	int err;

	if ((err = ss_chan_send(r->ch[0], &token)))
		die("ring broken: %s", strerror(err));
	if (!chan_recv(r->ch[r->n], &v, "ring") || v != token)
		die("ring: wrong token");
}

static atomic_bool stop;

static void *busy(void *arg)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		ss_yield();
	return arg;
}

static void context_switch(struct meas *m, bool is_busy)
{
	struct ring r;
	ss_task **bg = many;
	int nbg = is_busy ? BUSY_TASKS : 0;

	ring_new(&r, is_busy ? RING_BUSY : RING_QUIET);
	for (int i = 0; i < nbg; i++)
		bg[i] = go(busy, NULL);
	timed(m, lap, &r);
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	for (int i = 0; i < nbg; i++)
		join(bg[i]);
	ring_free(&r);
}

/* underloaded_cpu */

struct producer {
	ss_chan *c;
	uint64_t first;         /* the first deadline, ns */
	uint64_t period;        /* between batches, ns */
	uint64_t n;             /* messages to send */
};

static void *consumer(void *arg)
{
	uint64_t v, n = 0;

	while (chan_recv(arg, &v, "underloaded_cpu consumer"))
		n++;
	return (void *)(uintptr_t)n;
}

static void *producer(void *arg)
{
	struct producer *p = arg;
	uint64_t next = p->first, sent = 0;
	int err;

	while (sent < p->n) {
		uint64_t now = now_ns(), b;

		if (next > now && (err = ss_sleep_ns(next - now)))
			die("ss_sleep_ns: %s", strerror(err));
		b = p->n - sent < BATCH ? p->n - sent : BATCH;
		for (; b > 0; b--, sent++)
			if ((err = ss_chan_send(p->c, &sent)))
				die("underloaded_cpu: consumer gone: %s", strerror(err));
		next += p->period;
	}
	chan_close(p->c);
	return NULL;
}

/* One underloaded run; returns the messages delivered. */
static uint64_t underloaded(double seconds)
{
	/* Rust's f64::round for a positive value, without libm. */
	uint64_t per_pair = (uint64_t)((double)RATE * seconds / PAIRS + 0.5);
	uint64_t period = 1000000000ull * PAIRS * BATCH / RATE, t0, n = 0;
	struct producer p[PAIRS];
	ss_task *cons[PAIRS], *prod[PAIRS];

	t0 = now_ns();
	for (unsigned i = 0; i < PAIRS; i++) {
		p[i] = (struct producer){ chan(PAIR_QUEUE, sizeof(uint64_t)),
		                          t0 + period * i / PAIRS, period,
		                          per_pair };
		cons[i] = go(consumer, p[i].c);
		prod[i] = go(producer, &p[i]);
	}
	for (unsigned i = 0; i < PAIRS; i++)
		n += (uintptr_t)join(cons[i]);
	for (unsigned i = 0; i < PAIRS; i++) {
		join(prod[i]);
		ss_chan_free(p[i].c);
	}
	if (n != per_pair * PAIRS)
		die("underloaded_cpu: lost messages: %llu of %llu",
		    (unsigned long long)n, (unsigned long long)(per_pair * PAIRS));
	return n;
}

static void underloaded_cpu(struct meas *m, double seconds)
{
	uint64_t msgs = 0, wall_ns = 0;
	double cpu0, wall;

	underloaded(WARM_SECONDS);
	cpu0 = cpu_time();
	for (size_t i = 0; i < m->iters; i++) {
		uint64_t t = now_ns();

		msgs += underloaded(seconds);
		m->times[i] = now_ns() - t;
	}
	m->cpu_s = cpu_time() - cpu0;
	for (size_t i = 0; i < m->iters; i++)
		wall_ns += m->times[i];
	wall = wall_ns * 1e-9;
	m->extra = true;
	m->cpu_per_wall = m->cpu_s / wall;
	m->cpu_us_per_msg = m->cpu_s * 1e6 / msgs;
	m->rate = msgs / wall;
}

/* ----------------------------------------------------------------- run */

enum wl {
	W_SPAWN_ONE,
	W_SPAWN_MANY,
	W_YIELD_NOW,
	W_PING_PONG,
	W_FANOUT,
	W_CS_QUIET,
	W_CS_BUSY,
	W_UNDERLOADED,
	W_COUNT
};

static const struct {
	const char *name;
	size_t iters, quick_iters;
} workloads[W_COUNT] = {
	[W_SPAWN_ONE] = { "spawn_one", 50000, 10000 },
	[W_SPAWN_MANY] = { "spawn_many", 20, 5 },
	[W_YIELD_NOW] = { "yield_now", 50, 10 },
	[W_PING_PONG] = { "ping_pong", 500, 100 },
	[W_FANOUT] = { "fanout", 200, 50 },
	[W_CS_QUIET] = { "context_switch_quiet", 3000, 1000 },
	[W_CS_BUSY] = { "context_switch_busy", 1000, 200 },
	[W_UNDERLOADED] = { "underloaded_cpu", 1, 1 },
};

struct job {
	enum wl w;
	double seconds;
	struct meas m;
};

/* The driver fiber. */
static void *run(void *arg)
{
	struct job *j = arg;

	warm_pool();
	switch (j->w) {
	case W_SPAWN_ONE:
		timed(&j->m, spawn_one, NULL);
		break;
	case W_SPAWN_MANY:
		timed(&j->m, spawn_many, NULL);
		break;
	case W_YIELD_NOW:
		timed(&j->m, yield_many, NULL);
		break;
	case W_PING_PONG:
		timed(&j->m, ping_pong, NULL);
		break;
	case W_FANOUT:
		timed(&j->m, fanout, NULL);
		break;
	case W_CS_QUIET:
		context_switch(&j->m, false);
		break;
	case W_CS_BUSY:
		context_switch(&j->m, true);
		break;
	case W_UNDERLOADED:
		underloaded_cpu(&j->m, j->seconds);
		break;
	default:
		die("no workload");
	}
	return j;
}

/* ---------------------------------------------------------------- main */

static void usage(int code)
{
	FILE *f = code ? stderr : stdout;

	fprintf(f, "usage: bench-fibers --workload NAME [--iters N] [--threads N] [--quick]\n"
	        "                    [--seconds S]\nworkloads:");
	for (int i = 0; i < W_COUNT; i++)
		fprintf(f, " %s", workloads[i].name);
	fprintf(f, "\nprints: workload executor threads iters median_ns min_ns max_ns cpu_s "
	        "cpu_per_wall cpu_us_per_msg rate (tab-separated)\n"
	        "executor: smolscale, or smolscale-steal with SMOLSCALE_STEAL=1\n");
	exit(code);
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bad(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-fibers: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* A positive whole number in [1, max], or -1. */
static long positive(const char *s, long max)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	return errno || *end || v <= 0 || v > max ? -1 : v;
}

int main(int argc, char **argv)
{
	static struct job job;
	int w = -1, quick = 0;
	long iters = 0, n;
	double seconds = 0;
	const char *s;
	uint64_t *t, median;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(opt, "--quick")) {
			quick = 1;
		} else if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			usage(0);
		} else if (!strcmp(opt, "--workload")) {
			w = -1;
			for (int j = 0; val && j < W_COUNT; j++)
				if (!strcmp(val, workloads[j].name))
					w = j;
			if (w < 0)
				bad("--workload is one of spawn_one spawn_many yield_now "
				    "ping_pong fanout context_switch_quiet "
				    "context_switch_busy underloaded_cpu");
			i++;
		} else if (!strcmp(opt, "--iters")) {
			if ((iters = positive(val, 100000000)) < 0)
				bad("--iters wants a positive number");
			i++;
		} else if (!strcmp(opt, "--threads")) {
			if ((n = positive(val, 4096)) < 0)
				bad("--threads wants a positive number (at most 4096)");
			threads = n;
			i++;
		} else if (!strcmp(opt, "--seconds")) {
			char *end;

			seconds = val ? strtod(val, &end) : 0;
			if (!val || *end || !(seconds > 0) || !isfinite(seconds))
				bad("--seconds wants a positive number");
			i++;
		} else {
			fprintf(stderr, "bench-fibers: unknown option '%s'\n", opt);
			usage(2);
		}
	}
	if (w < 0)
		usage(2);

	/* Before the first call: the executor reads its variables once. */
	if (threads) {
		char buf[16];

		snprintf(buf, sizeof buf, "%d", threads);
		setenv("SMOLSCALE_THREADS", buf, 1);
	} else if ((s = getenv("SMOLSCALE_THREADS")) &&
	           (n = positive(s + strspn(s, " \t"), 4096)) > 0) {
		threads = n;
	} else {
		threads = cpus();
	}
	if ((s = getenv("SMOLSCALE_STEAL")) && positive(s + strspn(s, " \t"), 1) == 1)
		executor = "smolscale-steal";

	job.w = w;
	job.seconds = seconds > 0 ? seconds : quick ? 1.0 : 3.0;
	job.m.iters = iters ? (size_t)iters
	              : quick ? workloads[w].quick_iters : workloads[w].iters;
	job.m.times = xmalloc(job.m.iters * sizeof *job.m.times);
	if (ss_block_on(run, &job) != &job)
		die("ss_block_on: %s", strerror(errno));

	t = job.m.times;
	n = job.m.iters;
	qsort(t, n, sizeof *t, cmp_u64);
	median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	printf("%s\t%s\t%d\t%ld\t%llu\t%llu\t%llu\t%.4f\t", workloads[w].name,
	       executor, threads, n, (unsigned long long)median,
	       (unsigned long long)t[0], (unsigned long long)t[n - 1],
	       job.m.cpu_s);
	if (job.m.extra)
		printf("%.4f\t%.3f\t%.0f\n", job.m.cpu_per_wall,
		       job.m.cpu_us_per_msg, job.m.rate);
	else
		printf("-\t-\t-\n");
	free(t);
	return 0;
}
