/*
 * stress.c - the stress and soak driver of smolscale's native API (issue
 * 8, "Hardening"): several driver threads at once issue seeded random
 * mixes of every operation, and everything is accounted for exactly.
 *
 *   stress [--seed S] [--seconds N | --minutes N] [--threads N]
 *          [--epoch N] [--only OP,OP...] [--verbose]
 *
 * Without --seconds or --minutes it runs the short mode of `make check`
 * (tests/stress/run.sh): 10 s, scaled down in a sanitizer build (6 s
 * under ASan, 4 s under TSan; SS_SANITIZER names the sanitizer when the
 * compiler does not tell).  The seed (random unless --seed) is printed
 * first, so that any run can be repeated with the same mix of operations
 * (what happens in what order between threads is, of course, not
 * repeatable).  --threads sets the number of driver threads (4),
 * --epoch the seconds between exact checks (2.5 s, 15 s from a minute
 * on), --only restricts the mix to the named operations (to narrow a
 * failure down), --verbose prints every check and each operation's count
 * and mean time.  The SMOLSCALE_* settings apply as in any program (say
 * SMOLSCALE_STEAL=1, SMOLSCALE_THREADS=1).
 *
 * The operations (one driver issues one at a time; the drivers run at
 * once; the simpler ones are issued now and then from a fiber or a plain
 * task instead of the driver thread, the others have a coordinator that
 * runs there, in a fiber or in a task):
 *
 *   spawn+join    plain tasks and fibers, joined in random order (result
 *                 checked; a second join, detach and cancel give ESRCH);
 *                 a task may spawn a child and join or detach it
 *   spawn+detach  tasks detached at once (a second detach EINVAL/ESRCH)
 *   cancel        tasks and fibers cancelled racing their start: ss_cancel
 *                 returns 0 (the task never runs, its join is ECANCELED,
 *                 a second cancel 0 again) or EBUSY (it runs: its join
 *                 gets its result, a second cancel EBUSY); joined or
 *                 detached
 *   fibers        fibers that yield, sleep 0-2 ms and join children,
 *                 joined from the driver or from a fiber (ss_block_on)
 *   channel       capacity 0, 1 or 16; 1-4 producers and 1-4 consumers,
 *                 fibers, plain tasks or an ordinary thread, blocking and
 *                 try_ calls; some producers and consumers are cancelled
 *                 mid-stream (a cancelled send or receive moves nothing);
 *                 every message has a sequence number per producer and a
 *                 check word: each consumer sees each producer's messages
 *                 in order, every message sent is received exactly once
 *   oneshot       request/reply: clients send a request carrying a
 *                 one-shot, servers reply or close it without a value
 *   group         ss_group_* under IGNORE, PROPAGATE and CUSTOM policies
 *                 (per group and per task), plain tasks and fibers,
 *                 nested spawns into the same group, nested groups,
 *                 ss_group_cancel, errors; the wait's result is checked
 *                 against the errors that were to propagate, a group
 *                 that was not cancelled ran everything, and it is reused
 *   blocking      tasks that block in usleep() or in a pipe read that the
 *                 driver releases later, with and without
 *                 ss_blocking_begin/end, while short tasks must still run
 *   burst         up to 600 tiny tasks at once (from a worker: more than
 *                 its ring holds), joined in order or in reverse, some
 *                 detached
 *   parked        fibers cancelled while parked in recv, send, sleep and
 *                 a one-shot receive (their wait and every later one
 *                 return ECANCELED; a sibling on the same channel is not
 *                 disturbed; a cancelled send sent nothing)
 *
 * Accounting.  Every task gets a slot in its driver's arena; the task
 * increments it atomically as its last act (a second run is reported at
 * once) and the driver records what it expects: run exactly once, never
 * run (ss_cancel returned 0, or a group skipped it), or not spawned.  The
 * arena is checked and reset every round (a few operations), so memory
 * stays bounded however long the run.  Every few seconds (an epoch) and
 * at the end the drivers stop between rounds and the library's own
 * counters must agree exactly with the driver's: tasks_spawned (every
 * successful spawn, ss_go, group spawn and ss_block_on), tasks_completed
 * (every task function that ran), tasks_cancelled (every successful
 * cancel plus every group task skipped), so that tasks_spawned ==
 * tasks_completed + tasks_cancelled: no handle leaked, nothing left
 * queued.  Also then: no worker counted as blocked, every worker parked
 * (nothing runnable left), and fiber_stacks within the stack caches'
 * bound (16 per worker thread ever at once plus 1024 process-wide).
 *
 * Waits the driver bounds itself (a detached task that never runs, a
 * fiber that never starts, counters that never agree) fail after 60 s
 * (180 s in a sanitizer build; 10 s and 20 s for the counters); a
 * watchdog reports an operation stuck 30 s longer than that as a hang.
 * Any violation prints one line "stress: FAIL: ..." with the seed, then
 * the library's counters and what each driver was doing, to stderr, and
 * exits 1 at once.  Success prints, on stdout, a line of details
 * (cancels, group skips and errors, fibers, RSS) and last:
 *
 *   stress: seed=S seconds=T tasks=N tasks_per_s=R peak_threads=P
 *           proc_threads=Q messages=M ok
 *
 * (one line): tasks are the task functions that ran, peak_threads is
 * ss_stats' peak of worker threads, proc_threads the peak of the
 * process's own thread count (/proc/self/status, sampled every 10 ms:
 * workers, hidden threads, drivers, helper threads), messages the channel
 * messages and one-shot replies delivered and checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "smolscale.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif

/* The stack caches' bounds (core/fiber.h; README "Fibers"). */
#define STACK_CACHE_PER_WORKER 16
#define STACK_CACHE_GLOBAL 1024

#define MAX_DRIVERS 64
#define ARENA_SLOTS 4096
#define OPS_PER_ROUND 12
#define MS 1000000ull

/* ------------------------------------------------------------ settings */

static uint64_t g_seed;
static int g_ndrivers = 4;
static double g_seconds;
static double g_epoch_s;
static int g_verbose;
static int g_san;        /* 0 none, 1 ASan, 2 TSan */
static unsigned g_div;   /* sizes divided by this under a sanitizer */
static int64_t g_hang_ms;

/* ------------------------------------------------------------ counters */

static atomic_ulong g_spawned;   /* successful spawns of any kind */
static atomic_ulong g_ran;       /* task functions that ran */
static atomic_ulong g_cancelled; /* tasks ss_cancel stopped (returned 0) */
static atomic_ulong g_skipped;   /* group tasks a cancelled group skipped */
static atomic_ulong g_messages;  /* messages and replies checked */
static atomic_ulong g_cancel_lost; /* ss_cancel returned EBUSY */
static atomic_ulong g_parked_cancels; /* fibers cancelled while parked */
static atomic_ulong g_group_errors;   /* group waits that returned an error */
static atomic_int g_failed;

static atomic_int g_stop;
static atomic_int g_epoch_req;
static atomic_uint g_epoch_gen;
static atomic_int g_epoch_parked;
static atomic_int g_proc_peak;

/* ---------------------------------------------------------- utilities */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* errno, read in a function of its own: a fiber may move to another
 * thread across a suspension point (smolscale.h). */
static __attribute__((noinline)) int errno_now(void)
{
	return errno;
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

static unsigned rbelow(struct rng *r, unsigned n)
{
	return n ? (unsigned)(rnext(r) % n) : 0;
}

/* order[0..n) = 0..n-1 in a random order (Fisher-Yates). */
static void shuffled(struct rng *r, unsigned *order, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		order[i] = i;
	for (unsigned i = n; i > 1; i--) {
		unsigned j = rbelow(r, i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

/* True with probability 1/n. */
static bool one_in(struct rng *r, unsigned n)
{
	return rbelow(r, n) == 0;
}

static void spin(unsigned n)
{
	volatile unsigned x = 0;

	for (unsigned i = 0; i < n; i++)
		x += i;
}

static unsigned scaled(unsigned n)
{
	n /= g_div;
	return n ? n : 1;
}

static void print_stats(FILE *f, const char *prefix)
{
	struct ss_stats s;

	ss_stats(&s);
	fprintf(f,
	        "%sthreads=%" PRIu64 " active=%" PRIu64 " blocked=%" PRIu64
	        " idle=%" PRIu64 " spawned=%" PRIu64 " completed=%" PRIu64
	        " cancelled=%" PRIu64 " peak_threads=%" PRIu64
	        " threads_created=%" PRIu64 " threads_exited=%" PRIu64
	        " compensations=%" PRIu64 " preemptions=%" PRIu64
	        " fibers=%" PRIu64 " fiber_stacks=%" PRIu64 " suspends=%" PRIu64
	        "\n",
	        prefix, s.threads, s.active_workers, s.blocked_workers,
	        s.idle_workers, s.tasks_spawned, s.tasks_completed,
	        s.tasks_cancelled, s.peak_threads, s.threads_created,
	        s.threads_exited, s.compensations, s.preemptions,
	        s.fibers_spawned, s.fiber_stacks, s.suspends);
	fprintf(f,
	        "%sdriver: spawned=%lu ran=%lu cancelled=%lu skipped=%lu\n",
	        prefix, atomic_load(&g_spawned), atomic_load(&g_ran),
	        atomic_load(&g_cancelled), atomic_load(&g_skipped));
}

static void print_drivers(FILE *f);

/* Report a violation and exit 1 at once (from any thread: the other
 * threads and the library's state are left as they are). */
static __attribute__((format(printf, 1, 2), noreturn)) void
fail(const char *fmt, ...)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lock);
	if (atomic_exchange(&g_failed, 1) == 0) {
		fprintf(stderr, "stress: FAIL: %s (seed=%" PRIu64 ")\n", msg,
		        g_seed);
		print_stats(stderr, "stress:   ");
		print_drivers(stderr);
		fflush(stderr);
		fflush(stdout);
	}
	_exit(1);
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case ESRCH: return "ESRCH";
	case EBUSY: return "EBUSY";
	case ECANCELED: return "ECANCELED";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN";
	case EDEADLK: return "EDEADLK";
	case ENOMEM: return "ENOMEM";
	default: return "other";
	}
}

#define EXPECT_RC(call, want)                                                 \
	do {                                                                  \
		int rc_ = (call);                                             \
		if (rc_ != (want))                                            \
			fail("%s returned %d (%s), expected %s", #call, rc_,  \
			     ename(rc_), ename(want));                        \
	} while (0)

/* ---------------------------------------------------------- task slots */

enum {
	EXP_FREE,    /* allocated, not spawned: must never run */
	EXP_RUN,     /* must run exactly once */
	EXP_NOT_RUN, /* cancelled or skipped: must never run */
	EXP_MAY,     /* group task of a group that may be cancelled:
	              * resolved to RUN or NOT_RUN after the wait */
};

enum {
	F_FIBER = 1,       /* spawned with ss_go / ss_group_go */
	F_CANCEL = 2,      /* may be cancelled: its waits may be ECANCELED */
	F_LEAF = 4,        /* spawns no children */
	F_HINT = 8,        /* blocking: with ss_blocking_begin/end */
};

struct driver;

struct slot {
	atomic_uint runs;
	atomic_uint expect;
	/* Written before the task is spawned, read by it. */
	struct driver *d;
	const char *what;
	uint64_t tag;
	unsigned idx;
	unsigned flags;
	unsigned depth;
	int policy;          /* group: effective policy */
	void *ctx;
	/* Group tasks: the error returned, and whether it was to propagate. */
	atomic_int err;
	atomic_int propagated;
};

struct driver {
	int id;
	pthread_t th;
	struct rng rng;
	uint64_t round;
	unsigned op;
	struct slot *slots;
	atomic_uint nslots;
	_Atomic(const char *) doing;
	atomic_llong since_ms;
	atomic_ullong w_round; /* round and op, for the watchdog */
	atomic_uint w_op;
	atomic_int parked; /* waiting at an epoch */
	atomic_int done;
	unsigned long ops[16];
	double op_s[16];   /* seconds spent per kind */
};

static struct driver g_drivers[MAX_DRIVERS];

static void doing(struct driver *d, const char *what)
{
	atomic_store(&d->doing, what);
	atomic_store(&d->w_round, d->round);
	atomic_store(&d->w_op, d->op);
	atomic_store(&d->since_ms, now_ms());
}

/* A fresh slot of d's arena, or NULL if the round used it up (the caller
 * then spawns nothing).  May be called from tasks. */
static struct slot *slot_new(struct driver *d, const char *what,
                             unsigned flags, unsigned expect)
{
	unsigned i = atomic_fetch_add(&d->nslots, 1);
	struct slot *s;

	if (i >= ARENA_SLOTS)
		return NULL;
	s = &d->slots[i];
	s->d = d;
	s->what = what;
	s->idx = i;
	s->flags = flags;
	s->depth = 0;
	s->policy = 0;
	s->ctx = NULL;
	s->tag = mix64(g_seed ^ ((uint64_t)d->id << 56) ^
	               (d->round << 16) ^ i);
	atomic_store_explicit(&s->err, 0, memory_order_relaxed);
	atomic_store_explicit(&s->propagated, 0, memory_order_relaxed);
	atomic_store_explicit(&s->expect, expect, memory_order_release);
	return s;
}

static void *slot_value(const struct slot *s)
{
	return (void *)(uintptr_t)(mix64(s->tag) | 1);
}

/* The last act of every task function: count the run, once. */
static void ran(struct slot *s)
{
	if (s) {
		const char *what = s->what;
		struct driver *d = s->d;
		unsigned idx = s->idx;
		uint64_t round = d->round;
		unsigned prev = atomic_fetch_add_explicit(&s->runs, 1,
		                                          memory_order_acq_rel);

		if (prev != 0)
			fail("%s task (driver %d, round %" PRIu64
			     ", slot %u) ran %u times",
			     what, d->id, round, idx, prev + 1);
	}
	atomic_fetch_add(&g_ran, 1);
}

static void spawned(void)
{
	atomic_fetch_add(&g_spawned, 1);
}

/* ---------------------------------------------------------- work tasks */

static void *work_task(void *arg);

static ss_task *spawn_work(struct slot *s)
{
	ss_task *h = (s->flags & F_FIBER) ? ss_go(work_task, s)
	                                  : ss_spawn(work_task, s);

	if (!h)
		fail("%s of a %s task: NULL (errno %d)",
		     (s->flags & F_FIBER) ? "ss_go" : "ss_spawn", s->what,
		     errno_now());
	spawned();
	return h;
}

static void join_work(ss_task *h, struct slot *s)
{
	void *r = NULL;
	int rc = ss_join(h, &r);

	if (rc != 0)
		fail("ss_join of a %s task (slot %u) returned %s", s->what,
		     s->idx, ename(rc));
	if (r != slot_value(s))
		fail("ss_join of a %s task (slot %u) gave %p, not its result %p",
		     s->what, s->idx, r, slot_value(s));
}

/* A sleep: 0 ms to 2 ms.  A fiber that may be cancelled may see
 * ECANCELED; nothing else may. */
static void nap(const struct slot *s, struct rng *r)
{
	uint64_t ns = rbelow(r, 2 * MS + 1);
	int rc = ss_sleep_ns(ns);

	if (rc != 0 && !(rc == ECANCELED && (s->flags & F_CANCEL) &&
	                 (s->flags & F_FIBER)))
		fail("ss_sleep_ns(%" PRIu64 ") in a %s task returned %s", ns,
		     s->what, ename(rc));
}

/* A plain task or a fiber: a few steps of computing, yielding, sleeping
 * (mostly fibers: a plain task's sleep holds its worker) and a child
 * task, joined or detached. */
static void *work_task(void *arg)
{
	struct slot *s = arg;
	struct rng r = { s->tag };
	bool fiber = s->flags & F_FIBER;
	unsigned steps = rbelow(&r, fiber ? 6 : 3);
	void *v;

	for (unsigned i = 0; i < steps; i++) {
		switch (rbelow(&r, 8)) {
		case 0:
		case 1:
		case 2:
			spin(rbelow(&r, 3000));
			break;
		case 3:
		case 4:
			ss_yield();
			break;
		case 5:
			if (fiber || one_in(&r, 8))
				nap(s, &r);
			break;
		default:
			if (!(s->flags & F_LEAF) && one_in(&r, 2)) {
				unsigned f = F_LEAF | (one_in(&r, 3) ? F_FIBER : 0);
				struct slot *c = slot_new(s->d, "nested", f,
				                          EXP_RUN);
				ss_task *h;

				if (!c)
					break;
				h = spawn_work(c);
				if (one_in(&r, 2))
					join_work(h, c);
				else
					EXPECT_RC(ss_detach(h), 0);
			}
			break;
		}
	}
	v = slot_value(s);
	ran(s);
	return v;
}

/* ----------------------------------------------------------- contexts */

/* Where an operation's coordinator runs: on the driver thread itself, in
 * a fiber (ss_block_on), or in a plain task (spawned and joined). */
struct call {
	void (*fn)(struct driver *, void *);
	struct driver *d;
	void *arg;
	struct slot *s;
};

static void *call_fiber(void *a)
{
	struct call *c = a;
	void *v;

	c->fn(c->d, c->arg);
	v = c->s ? slot_value(c->s) : (void *)0x5e1f;
	ran(c->s);
	return v;
}

static void run_in(struct driver *d, int where,
                   void (*fn)(struct driver *, void *), void *arg)
{
	struct call c = { fn, d, arg, NULL };
	void *r;

	if (where == 1) {
		c.s = slot_new(d, "block_on", F_FIBER, EXP_RUN);
		spawned(); /* before: the fiber may run and count at once */
		r = ss_block_on(call_fiber, &c);
		if (r != (c.s ? slot_value(c.s) : (void *)0x5e1f))
			fail("ss_block_on returned %p (errno %d)", r,
			     errno_now());
	} else if (where == 2) {
		ss_task *h;

		c.s = slot_new(d, "coordinator", 0, EXP_RUN);
		h = ss_spawn(call_fiber, &c);
		if (!h)
			fail("ss_spawn of a coordinator: NULL");
		spawned();
		r = NULL;
		EXPECT_RC(ss_join(h, &r), 0);
		if (r != (c.s ? slot_value(c.s) : (void *)0x5e1f))
			fail("a coordinator task returned %p", r);
	} else {
		fn(d, arg);
	}
}

static int pick_where(struct driver *d)
{
	unsigned x = rbelow(&d->rng, 8);

	return x < 4 ? 0 : x < 7 ? 1 : 2;
}

/* -------------------------------------------------- op: spawn + join */

static void op_spawn_join(struct driver *d, void *unused)
{
	unsigned n = 1 + rbelow(&d->rng, 16);
	ss_task *h[16];
	struct slot *s[16];
	unsigned order[16];

	for (unsigned i = 0; i < n; i++) {
		unsigned f = one_in(&d->rng, 3) ? F_FIBER : 0;

		s[i] = slot_new(d, "spawn+join", f, EXP_RUN);
		if (!s[i]) {
			n = i;
			break;
		}
		h[i] = spawn_work(s[i]);
	}
	shuffled(&d->rng, order, n);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = order[k];

		join_work(h[i], s[i]);
		if (one_in(&d->rng, 8)) {
			/* The handle is consumed: generation-checked. */
			EXPECT_RC(ss_join(h[i], NULL), ESRCH);
			EXPECT_RC(ss_detach(h[i]), ESRCH);
			EXPECT_RC(ss_cancel(h[i]), ESRCH);
		}
	}
	(void)unused;
}

/* ------------------------------------------------ op: spawn + detach */

static void op_spawn_detach(struct driver *d, void *unused)
{
	unsigned n = 1 + rbelow(&d->rng, 16);

	for (unsigned i = 0; i < n; i++) {
		unsigned f = one_in(&d->rng, 3) ? F_FIBER : 0;
		struct slot *s = slot_new(d, "spawn+detach", f, EXP_RUN);
		ss_task *h;
		int rc;

		if (!s)
			break;
		h = spawn_work(s);
		EXPECT_RC(ss_detach(h), 0);
		if (one_in(&d->rng, 8)) {
			rc = ss_detach(h);
			if (rc != EINVAL && rc != ESRCH)
				fail("a second ss_detach returned %s, expected "
				     "EINVAL or ESRCH", ename(rc));
		}
	}
	(void)unused;
}

/* ------------------------------------------------------ op: cancel */

static void op_cancel(struct driver *d, void *unused)
{
	unsigned n = 1 + rbelow(&d->rng, 12);
	ss_task *h[12];
	struct slot *s[12];
	int rc[12];
	unsigned order[12];
	unsigned delay = rbelow(&d->rng, 4);

	for (unsigned i = 0; i < n; i++) {
		unsigned f = F_CANCEL | (one_in(&d->rng, 3) ? F_FIBER : 0);

		/* EXP_MAY until ss_cancel tells. */
		s[i] = slot_new(d, "cancel", f, EXP_MAY);
		if (!s[i]) {
			n = i;
			break;
		}
		h[i] = spawn_work(s[i]);
	}
	switch (delay) {
	case 1:
		spin(rbelow(&d->rng, 20000));
		break;
	case 2:
		ss_yield();
		break;
	case 3:
		ss_sleep_ns(rbelow(&d->rng, 200000));
		break;
	}
	/* Cancel in an order of its own. */
	shuffled(&d->rng, order, n);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = order[k];

		rc[i] = ss_cancel(h[i]);
		if (rc[i] == 0) {
			atomic_store(&s[i]->expect, EXP_NOT_RUN);
			atomic_fetch_add(&g_cancelled, 1);
		} else if (rc[i] == EBUSY) {
			atomic_store(&s[i]->expect, EXP_RUN);
			atomic_fetch_add(&g_cancel_lost, 1);
		} else {
			fail("ss_cancel of a queued or running task returned %s",
			     ename(rc[i]));
		}
		if (one_in(&d->rng, 4)) {
			int again = ss_cancel(h[i]);

			if (again != rc[i])
				fail("a second ss_cancel returned %s after %s",
				     ename(again), ename(rc[i]));
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (one_in(&d->rng, 3)) {
			EXPECT_RC(ss_detach(h[i]), 0);
			if (one_in(&d->rng, 4)) {
				/* Detached: EINVAL, or ESRCH once it is gone. */
				int again = ss_cancel(h[i]);

				if (again != EINVAL && again != ESRCH)
					fail("ss_cancel of a detached task returned "
					     "%s", ename(again));
			}
		} else if (rc[i] == 0) {
			void *r = (void *)0x1;
			int j = ss_join(h[i], &r);

			if (j != ECANCELED)
				fail("ss_join of a task that ss_cancel stopped "
				     "returned %s, expected ECANCELED", ename(j));
			if (atomic_load(&s[i]->runs) != 0)
				fail("a task ran although ss_cancel returned 0 "
				     "(driver %d, slot %u)", d->id, s[i]->idx);
		} else {
			join_work(h[i], s[i]);
		}
	}
	(void)unused;
}

/* ------------------------------------------------------ op: fibers */

struct fibers_op {
	unsigned n;
	struct slot *s[32];
	ss_task *h[32];
};

static void fibers_join(struct driver *d, void *arg)
{
	struct fibers_op *op = arg;

	for (unsigned i = 0; i < op->n; i++)
		join_work(op->h[i], op->s[i]);
	(void)d;
}

static void op_fibers(struct driver *d, void *unused)
{
	struct fibers_op op = { .n = 1 + rbelow(&d->rng, 32) };

	for (unsigned i = 0; i < op.n; i++) {
		op.s[i] = slot_new(d, "fiber", F_FIBER, EXP_RUN);
		if (!op.s[i]) {
			op.n = i;
			break;
		}
		op.h[i] = spawn_work(op.s[i]);
	}
	run_in(d, rbelow(&d->rng, 2), fibers_join, &op);
	(void)unused;
}

/* ------------------------------------------------------ op: channel */

#define MAXP 4
#define MAXC 4

enum { K_FIBER, K_TASK, K_THREAD };

struct chan_op;

struct part {
	void *op; /* struct chan_op or struct os_op */
	struct slot *s;
	unsigned id;
	int kind;
	int try_ops;
	int victim;
	int cancel_rc;
	ss_task *h;
	pthread_t th;
	atomic_uint count; /* sent (producers) or received (consumers) */
	int last[MAXP];    /* consumers: last sequence seen per producer */
};

struct msg {
	uint32_t prod;
	uint32_t seq;
	uint64_t check;
};

struct chan_op {
	ss_chan *c;
	unsigned cap, np, nc, m;
	uint64_t tag;
	struct part prod[MAXP];
	struct part cons[MAXC];
	atomic_uchar *delivered; /* np * m */
	atomic_uint received;
};

static uint64_t msg_check(const struct chan_op *op, uint32_t p, uint32_t seq)
{
	return mix64(op->tag ^ ((uint64_t)p << 32) ^ seq);
}

static const char *kind_name(int k)
{
	return k == K_FIBER ? "fiber" : k == K_TASK ? "task" : "thread";
}

/* A send: blocking, or a few try_send first. */
static int chan_send(ss_chan *c, const void *m, int try_ops)
{
	for (int i = 0; i < try_ops; i++) {
		int rc = ss_chan_try_send(c, m);

		if (rc != EAGAIN)
			return rc;
		ss_yield();
	}
	return ss_chan_send(c, m);
}

static int chan_recv(ss_chan *c, void *m, int try_ops)
{
	for (int i = 0; i < try_ops; i++) {
		int rc = ss_chan_try_recv(c, m);

		if (rc != EAGAIN)
			return rc;
		ss_yield();
	}
	return ss_chan_recv(c, m);
}

static void *producer(void *arg)
{
	struct part *p = arg;
	struct chan_op *op = p->op;
	struct rng r = { p->s ? p->s->tag : op->tag ^ p->id };
	void *v = p->s ? slot_value(p->s) : NULL;

	for (uint32_t seq = 0; seq < op->m; seq++) {
		struct msg m = { p->id, seq, msg_check(op, p->id, seq) };
		int rc = chan_send(op->c, &m, p->try_ops);

		if (rc == ECANCELED) {
			if (!p->victim || p->kind != K_FIBER)
				fail("ss_chan_send in a producer %s that nobody "
				     "cancelled returned ECANCELED",
				     kind_name(p->kind));
			break;
		}
		if (rc != 0)
			fail("ss_chan_send (capacity %u) in a producer %s "
			     "returned %s", op->cap, kind_name(p->kind),
			     ename(rc));
		atomic_store(&p->count, seq + 1);
		if (one_in(&r, 16))
			ss_yield();
		if (p->kind == K_FIBER && one_in(&r, 64))
			ss_sleep_ns(rbelow(&r, 2 * MS + 1));
	}
	if (p->kind != K_THREAD)
		ran(p->s);
	return v;
}

static void *consumer(void *arg)
{
	struct part *p = arg;
	struct chan_op *op = p->op;
	struct rng r = { p->s ? p->s->tag : op->tag ^ (p->id + 100) };
	void *v = p->s ? slot_value(p->s) : NULL;
	struct msg m;
	int rc;

	for (unsigned i = 0; i < MAXP; i++)
		p->last[i] = -1;
	for (;;) {
		rc = chan_recv(op->c, &m, p->try_ops);
		if (rc == EPIPE)
			break;
		if (rc == ECANCELED) {
			if (!p->victim || p->kind != K_FIBER)
				fail("ss_chan_recv in a consumer %s that nobody "
				     "cancelled returned ECANCELED",
				     kind_name(p->kind));
			break;
		}
		if (rc != 0)
			fail("ss_chan_recv (capacity %u) returned %s", op->cap,
			     ename(rc));
		if (m.prod >= op->np || m.seq >= op->m ||
		    m.check != msg_check(op, m.prod, m.seq))
			fail("a message arrived corrupt (capacity %u): producer "
			     "%u seq %u check %016" PRIx64, op->cap, m.prod,
			     m.seq, m.check);
		if ((int)m.seq <= p->last[m.prod])
			fail("consumer %u (%s, capacity %u) got producer %u's "
			     "message %u after its message %d",
			     p->id, kind_name(p->kind), op->cap, m.prod, m.seq,
			     p->last[m.prod]);
		p->last[m.prod] = (int)m.seq;
		if (atomic_fetch_add(&op->delivered[m.prod * op->m + m.seq], 1))
			fail("producer %u's message %u (capacity %u) was "
			     "delivered twice", m.prod, m.seq, op->cap);
		atomic_fetch_add(&p->count, 1);
		atomic_fetch_add(&op->received, 1);
		if (one_in(&r, 16))
			ss_yield();
		if (p->kind == K_FIBER && one_in(&r, 64))
			ss_sleep_ns(rbelow(&r, 2 * MS + 1));
	}
	if (p->kind != K_THREAD)
		ran(p->s);
	return v;
}

static void part_start(struct driver *d, struct part *p,
                       void *(*fn)(void *), const char *what)
{
	if (p->kind == K_THREAD) {
		p->s = NULL;
		if (pthread_create(&p->th, NULL, fn, p) != 0)
			fail("pthread_create of a %s thread failed", what);
		return;
	}
	p->s = slot_new(d, what, (p->kind == K_FIBER ? F_FIBER : 0) |
	                                 (p->victim ? F_CANCEL : 0), EXP_MAY);
	if (!p->s)
		fail("the round's arena is full (%u slots)", ARENA_SLOTS);
	p->h = p->kind == K_FIBER ? ss_go(fn, p) : ss_spawn(fn, p);
	if (!p->h)
		fail("spawning a %s failed", what);
	spawned();
	atomic_store(&p->s->expect, EXP_RUN);
}

static void part_cancel(struct part *p)
{
	if (!p->victim || p->kind == K_THREAD)
		return;
	p->cancel_rc = ss_cancel(p->h);
	if (p->cancel_rc == 0) {
		atomic_store(&p->s->expect, EXP_NOT_RUN);
		atomic_fetch_add(&g_cancelled, 1);
	} else if (p->cancel_rc != EBUSY) {
		fail("ss_cancel of a channel %s returned %s",
		     kind_name(p->kind), ename(p->cancel_rc));
	}
}

static void part_join(struct part *p)
{
	void *r = NULL;
	int rc;

	if (p->kind == K_THREAD) {
		if (pthread_join(p->th, NULL) != 0)
			fail("pthread_join failed");
		return;
	}
	rc = ss_join(p->h, &r);
	if (p->victim && p->cancel_rc == 0) {
		if (rc != ECANCELED)
			fail("ss_join of a cancelled channel %s returned %s",
			     kind_name(p->kind), ename(rc));
		if (atomic_load(&p->count) != 0)
			fail("a cancelled channel %s moved messages",
			     kind_name(p->kind));
		return;
	}
	if (rc != 0 || r != slot_value(p->s))
		fail("ss_join of a channel %s returned %s, %p", kind_name(p->kind),
		     ename(rc), r);
}

static void chan_coord(struct driver *d, void *arg)
{
	struct chan_op *op = arg;
	struct rng *r = &d->rng;
	unsigned sent = 0;
	struct msg m;

	for (unsigned i = 0; i < op->nc; i++)
		part_start(d, &op->cons[i], consumer, "consumer");
	for (unsigned i = 0; i < op->np; i++)
		part_start(d, &op->prod[i], producer, "producer");
	if (one_in(r, 3)) {
		/* Cancel the victims mid-stream. */
		if (one_in(r, 2))
			ss_sleep_ns(rbelow(r, MS));
		else
			ss_yield();
		for (unsigned i = 0; i < op->nc; i++)
			part_cancel(&op->cons[i]);
		for (unsigned i = 0; i < op->np; i++)
			part_cancel(&op->prod[i]);
	} else {
		for (unsigned i = 0; i < op->nc; i++)
			op->cons[i].victim = 0;
		for (unsigned i = 0; i < op->np; i++)
			op->prod[i].victim = 0;
	}
	for (unsigned i = 0; i < op->np; i++)
		part_join(&op->prod[i]);
	EXPECT_RC(ss_chan_close(op->c), 0);
	for (unsigned i = 0; i < op->nc; i++)
		part_join(&op->cons[i]);
	EXPECT_RC(ss_chan_close(op->c), EPIPE);
	EXPECT_RC(ss_chan_try_recv(op->c, &m), EPIPE);
	EXPECT_RC(ss_chan_send(op->c, &m), EPIPE);

	for (unsigned p = 0; p < op->np; p++) {
		unsigned n = atomic_load(&op->prod[p].count);

		if (!op->prod[p].victim && n != op->m)
			fail("producer %u (%s) sent %u of %u messages", p,
			     kind_name(op->prod[p].kind), n, op->m);
		for (unsigned q = 0; q < op->m; q++) {
			unsigned got = atomic_load(&op->delivered[p * op->m + q]);

			if (got != (q < n))
				fail("channel (capacity %u, %u producers, %u "
				     "consumers): producer %u's message %u of %u "
				     "(it sent %u) was delivered %u times",
				     op->cap, op->np, op->nc, p, q, op->m, n, got);
		}
		sent += n;
	}
	if (atomic_load(&op->received) != sent)
		fail("channel: %u messages sent, %u received", sent,
		     atomic_load(&op->received));
	atomic_fetch_add(&g_messages, sent);
}

static void op_channel(struct driver *d, void *unused)
{
	static const unsigned caps[3] = { 0, 1, 16 };
	struct chan_op *op = calloc(1, sizeof *op);
	struct rng *r = &d->rng;
	bool plain_used = false, thread_used = false;

	if (!op)
		fail("out of memory");
	op->cap = caps[rbelow(r, 3)];
	op->np = 1 + rbelow(r, MAXP);
	op->nc = 1 + rbelow(r, MAXC);
	op->m = 1 + rbelow(r, scaled(200));
	op->tag = rnext(r);
	op->c = ss_chan_new(op->cap, sizeof(struct msg));
	op->delivered = calloc(op->np * op->m, sizeof *op->delivered);
	if (!op->c || !op->delivered)
		fail("ss_chan_new / calloc failed");
	for (unsigned i = 0; i < op->np + op->nc; i++) {
		struct part *p = i < op->np ? &op->prod[i] : &op->cons[i - op->np];
		unsigned k = rbelow(r, 10);

		p->op = op;
		p->id = i < op->np ? i : i - op->np;
		p->kind = K_FIBER;
		if (k == 0 && !plain_used) {
			p->kind = K_TASK;
			plain_used = true;
		} else if (k == 1 && !thread_used) {
			p->kind = K_THREAD;
			thread_used = true;
		}
		p->try_ops = one_in(r, 3) ? 1 + rbelow(r, 3) : 0;
		/* Consumer 0 always stays, so that producers can finish. */
		p->victim = !(i == op->np) && one_in(r, 3);
	}
	run_in(d, pick_where(d), chan_coord, op);
	ss_chan_free(op->c);
	free(op->delivered);
	free(op);
	(void)unused;
}

/* ------------------------------------------------------ op: oneshot */

struct req {
	uint64_t val;
	ss_oneshot *o;
};

struct os_op {
	ss_chan *reqs;
	unsigned ns, nc, r;
	uint64_t tag;
	struct part srv[2];
	struct part cli[6];
	atomic_uint served;
	atomic_uint replies;
};

static void *os_server(void *arg)
{
	struct part *p = arg;
	struct os_op *op = p->op;
	void *v = slot_value(p->s);
	struct req q;
	int rc;

	while ((rc = ss_chan_recv(op->reqs, &q)) == 0) {
		atomic_fetch_add(&op->served, 1);
		if (q.val % 5 == 0) {
			EXPECT_RC(ss_oneshot_close(q.o), 0);
		} else {
			uint64_t reply = q.val * 3 + 1;

			/* q.o is the client's from here on. */
			EXPECT_RC(ss_oneshot_send(q.o, &reply), 0);
		}
	}
	if (rc != EPIPE)
		fail("ss_chan_recv in a one-shot server returned %s", ename(rc));
	if (p->kind != K_THREAD)
		ran(p->s);
	return v;
}

static void *os_client(void *arg)
{
	struct part *p = arg;
	struct os_op *op = p->op;
	void *v = slot_value(p->s);

	for (unsigned i = 0; i < op->r; i++) {
		struct req q = { mix64(op->tag ^ (p->id << 16) ^ i), NULL };
		uint64_t reply = 0;
		int rc;

		q.o = ss_oneshot_new(sizeof reply);
		if (!q.o)
			fail("ss_oneshot_new failed");
		EXPECT_RC(ss_chan_send(op->reqs, &q), 0);
		rc = ss_oneshot_recv(q.o, &reply);
		if (q.val % 5 == 0) {
			if (rc != EPIPE)
				fail("ss_oneshot_recv of a one-shot closed "
				     "without a value returned %s", ename(rc));
			EXPECT_RC(ss_oneshot_recv(q.o, &reply), EPIPE);
			EXPECT_RC(ss_oneshot_send(q.o, &reply), EPIPE);
		} else {
			if (rc != 0 || reply != q.val * 3 + 1)
				fail("ss_oneshot_recv returned %s, reply %" PRIu64
				     " for request %" PRIu64, ename(rc), reply,
				     q.val);
			EXPECT_RC(ss_oneshot_recv(q.o, &reply), EBUSY);
			EXPECT_RC(ss_oneshot_send(q.o, &reply), EBUSY);
		}
		ss_oneshot_free(q.o);
		atomic_fetch_add(&op->replies, 1);
	}
	if (p->kind != K_THREAD)
		ran(p->s);
	return v;
}

static void os_coord(struct driver *d, void *arg)
{
	struct os_op *op = arg;

	for (unsigned i = 0; i < op->ns; i++)
		part_start(d, &op->srv[i], os_server, "one-shot server");
	for (unsigned i = 0; i < op->nc; i++)
		part_start(d, &op->cli[i], os_client, "one-shot client");
	for (unsigned i = 0; i < op->nc; i++)
		part_join(&op->cli[i]);
	EXPECT_RC(ss_chan_close(op->reqs), 0);
	for (unsigned i = 0; i < op->ns; i++)
		part_join(&op->srv[i]);
	if (atomic_load(&op->served) != op->nc * op->r ||
	    atomic_load(&op->replies) != op->nc * op->r)
		fail("one-shot: %u requests, %u served, %u replies",
		     op->nc * op->r, atomic_load(&op->served),
		     atomic_load(&op->replies));
	atomic_fetch_add(&g_messages, op->nc * op->r);
}

static void op_oneshot(struct driver *d, void *unused)
{
	static const unsigned caps[3] = { 0, 1, 16 };
	struct os_op *op = calloc(1, sizeof *op);
	struct rng *r = &d->rng;
	bool plain_used = false;

	if (!op)
		fail("out of memory");
	op->ns = 1 + rbelow(r, 2);
	op->nc = 1 + rbelow(r, 6);
	op->r = 1 + rbelow(r, scaled(20));
	op->tag = rnext(r);
	op->reqs = ss_chan_new(caps[rbelow(r, 3)], sizeof(struct req));
	if (!op->reqs)
		fail("ss_chan_new failed");
	for (unsigned i = 0; i < op->ns + op->nc; i++) {
		struct part *p = i < op->ns ? &op->srv[i] : &op->cli[i - op->ns];

		p->op = op;
		p->id = i;
		p->kind = K_FIBER;
		if (one_in(r, 8) && !plain_used) {
			p->kind = K_TASK;
			plain_used = true;
		}
	}
	run_in(d, pick_where(d), os_coord, op);
	ss_chan_free(op->reqs);
	free(op);
	(void)unused;
}

/* ------------------------------------------------------ op: group */

#define GROUP_MAX_SLOTS 256

struct grp_op {
	struct driver *d;
	ss_group *g;
	int policy;
	int errors;       /* tasks may return errors */
	int per_task;     /* per-task policies */
	int cancellable;  /* the group may be cancelled */
	int cancel_at;    /* ss_group_cancel after spawning (0 no) */
	atomic_uint n;    /* group slots, listed in idx[] */
	unsigned idx[GROUP_MAX_SLOTS];
};

static int grp_cb(ss_group *g, int err, void *ctx)
{
	struct grp_op *op = ctx;

	if (g != op->g)
		fail("a group's error callback got another group");
	return err % 2 == 0 ? SS_GROUP_PROPAGATE : SS_GROUP_IGNORE;
}

static int grp_task(void *arg);

/* Spawn one task into op's group; 0 if it was not spawned (the group is
 * cancelled, or the arena or list is full). */
static int grp_spawn(struct grp_op *op, struct rng *r, unsigned depth)
{
	unsigned how = rbelow(r, 3); /* 0 spawn, 1 spawn_policy, 2 go */
	int pol = SS_GROUP_INHERIT, rc;
	unsigned k;
	struct slot *s;

	k = atomic_fetch_add(&op->n, 1);
	if (k >= GROUP_MAX_SLOTS)
		return 0;
	s = slot_new(op->d, "group", how == 2 ? F_FIBER : 0,
	             op->cancellable ? EXP_MAY : EXP_RUN);
	if (!s) {
		op->idx[k] = UINT32_MAX;
		return 0;
	}
	s->ctx = op;
	s->depth = depth;
	if (how == 1 && op->per_task)
		pol = (int)rbelow(r, 4); /* INHERIT, IGNORE, PROPAGATE, CUSTOM */
	s->policy = pol == SS_GROUP_INHERIT ? op->policy : pol;
	op->idx[k] = s->idx;
	if (how == 2)
		rc = ss_group_go(op->g, grp_task, s);
	else if (how == 1)
		rc = ss_group_spawn_policy(op->g, grp_task, s, pol,
		                           pol == SS_GROUP_CUSTOM ? grp_cb : NULL,
		                           op);
	else
		rc = ss_group_spawn(op->g, grp_task, s);
	if (rc == 0) {
		spawned();
		return 1;
	}
	if (rc == ECANCELED && op->cancellable &&
	    ss_group_cancelled(op->g)) {
		atomic_store(&s->expect, EXP_FREE);
		return 0;
	}
	fail("ss_group_%s into a %s group returned %s",
	     how == 2 ? "go" : how == 1 ? "spawn_policy" : "spawn",
	     op->cancellable ? "cancellable" : "never cancelled", ename(rc));
}

static int sub_task(void *arg)
{
	struct slot *s = arg;
	struct rng r = { s->tag };
	int err = 0;

	spin(rbelow(&r, 3000));
	if ((s->flags & F_FIBER) && one_in(&r, 2))
		ss_yield();
	if (s->policy == SS_GROUP_IGNORE && one_in(&r, 3))
		err = 2000 + (int)s->idx;
	ran(s);
	return err;
}

/* A nested group inside a group task: IGNORE (errors dropped) or
 * PROPAGATE without errors; its tasks all run and its wait returns 0. */
static void sub_group(struct driver *d, struct rng *r)
{
	ss_group *sg = ss_group_new();
	int pol = one_in(r, 2) ? SS_GROUP_IGNORE : SS_GROUP_PROPAGATE;
	unsigned n = 1 + rbelow(r, 4);

	if (!sg)
		fail("ss_group_new failed");
	EXPECT_RC(ss_group_set_policy(sg, pol, NULL, NULL), 0);
	for (unsigned i = 0; i < n; i++) {
		bool fiber = one_in(r, 2);
		struct slot *s = slot_new(d, "nested group", fiber ? F_FIBER : 0,
		                          EXP_RUN);

		if (!s)
			break;
		s->policy = pol;
		EXPECT_RC(fiber ? ss_group_go(sg, sub_task, s)
		                : ss_group_spawn(sg, sub_task, s), 0);
		spawned();
	}
	EXPECT_RC(ss_group_wait(sg), 0);
	if (ss_group_cancelled(sg))
		fail("a nested group that saw no propagated error is cancelled");
	ss_group_free(sg);
}

static int grp_task(void *arg)
{
	struct slot *s = arg;
	struct grp_op *op = s->ctx;
	struct rng r = { s->tag };
	bool fiber = s->flags & F_FIBER;
	unsigned steps = rbelow(&r, 5);
	int err = 0;

	for (unsigned i = 0; i < steps; i++) {
		if (op->cancellable && ss_group_cancelled(op->g))
			break;
		switch (rbelow(&r, 4)) {
		case 0:
		case 1:
			spin(rbelow(&r, 3000));
			break;
		case 2:
			ss_yield();
			break;
		default:
			if (fiber) {
				int rc = ss_sleep_ns(rbelow(&r, 2 * MS + 1));

				if (rc != 0)
					fail("ss_sleep_ns in a group fiber "
					     "returned %s", ename(rc));
			}
			break;
		}
	}
	if (s->depth < 2 && one_in(&r, 3)) {
		unsigned n = 1 + rbelow(&r, 3);

		for (unsigned i = 0; i < n; i++)
			grp_spawn(op, &r, s->depth + 1);
	}
	if (s->depth == 0 && one_in(&r, 6))
		sub_group(s->d, &r);
	if (one_in(&r, 8)) {
		struct slot *c = slot_new(s->d, "group child", F_LEAF, EXP_RUN);

		if (c)
			join_work(spawn_work(c), c);
	}
	if (one_in(&r, 10))
		EXPECT_RC(ss_group_wait(op->g), EDEADLK);
	if (op->errors && one_in(&r, 4)) {
		int decision = s->policy;

		err = 1000 + (int)s->idx;
		if (decision == SS_GROUP_CUSTOM)
			decision = err % 2 == 0 ? SS_GROUP_PROPAGATE
			                        : SS_GROUP_IGNORE;
		atomic_store(&s->err, err);
		atomic_store(&s->propagated, decision == SS_GROUP_PROPAGATE);
	}
	ran(s);
	return err;
}

/* After a wait: check rc against what the tasks did, resolve EXP_MAY. */
static void grp_check(struct grp_op *op, int rc, unsigned from, bool cancelled)
{
	struct driver *d = op->d;
	unsigned n = atomic_load(&op->n);
	bool propagated = false, match = false, skipped = false;

	if (n > GROUP_MAX_SLOTS)
		n = GROUP_MAX_SLOTS;
	for (unsigned k = 0; k < n; k++) {
		struct slot *s;

		if (op->idx[k] == UINT32_MAX)
			continue;
		s = &d->slots[op->idx[k]];
		if (atomic_load(&s->propagated)) {
			propagated = true;
			if (atomic_load(&s->err) == rc)
				match = true;
		}
		if (k < from)
			continue;
		if (atomic_load(&s->expect) == EXP_MAY) {
			if (atomic_load(&s->runs) == 0) {
				atomic_store(&s->expect, EXP_NOT_RUN);
				atomic_fetch_add(&g_skipped, 1);
				skipped = true;
			} else {
				atomic_store(&s->expect, EXP_RUN);
			}
		}
	}
	if (rc == 0) {
		if (propagated || cancelled)
			fail("ss_group_wait returned 0 although %s",
			     cancelled ? "ss_group_cancel was called"
			               : "a task's error was to propagate");
		if (skipped)
			fail("a group that was not cancelled skipped tasks");
		if (ss_group_cancelled(op->g))
			fail("ss_group_wait returned 0 for a cancelled group");
	} else {
		if (!op->cancellable)
			fail("ss_group_wait of a group that could not be "
			     "cancelled (policy %d) returned %d", op->policy, rc);
		if (!match && !(rc == ECANCELED && cancelled))
			fail("ss_group_wait returned %d (%s), which no task "
			     "propagated%s", rc, ename(rc),
			     cancelled ? " and is not ECANCELED" : "");
		if (!ss_group_cancelled(op->g))
			fail("ss_group_wait returned %d but the group is not "
			     "cancelled", rc);
		atomic_fetch_add(&g_group_errors, 1);
	}
}

static void grp_coord(struct driver *d, void *arg)
{
	struct grp_op *op = arg;
	struct rng *r = &d->rng;
	unsigned n = 1 + rbelow(r, 12), from;
	bool cancelled = false;
	int rc, again;

	for (unsigned i = 0; i < n; i++)
		grp_spawn(op, r, 0);
	if (op->cancel_at) {
		if (one_in(r, 2))
			ss_sleep_ns(rbelow(r, MS / 2));
		EXPECT_RC(ss_group_cancel(op->g), 0);
		cancelled = true;
	}
	rc = ss_group_wait(op->g);
	grp_check(op, rc, 0, cancelled);
	if (rc != 0) {
		/* Cancelled: it stays so, and keeps its first error. */
		struct slot *s = slot_new(d, "group (refused)", 0, EXP_FREE);

		if (s) {
			s->ctx = op;
			EXPECT_RC(ss_group_spawn(op->g, grp_task, s), ECANCELED);
		}
		again = ss_group_wait(op->g);
		if (again != rc)
			fail("a second ss_group_wait returned %d, the first %d",
			     again, rc);
	} else if (one_in(r, 2)) {
		/* Reuse: another batch, without errors. */
		op->errors = 0;
		from = atomic_load(&op->n);
		n = 1 + rbelow(r, 6);
		for (unsigned i = 0; i < n; i++)
			grp_spawn(op, r, 1);
		rc = ss_group_wait(op->g);
		if (rc != 0)
			fail("ss_group_wait of a reused group returned %d", rc);
		grp_check(op, rc, from, false);
	}
}

static void op_group(struct driver *d, void *unused)
{
	struct grp_op *op = calloc(1, sizeof *op);
	struct rng *r = &d->rng;

	if (!op)
		fail("out of memory");
	op->d = d;
	op->g = ss_group_new();
	if (!op->g)
		fail("ss_group_new failed");
	op->policy = 1 + (int)rbelow(r, 3); /* IGNORE, PROPAGATE, CUSTOM */
	op->errors = one_in(r, 2);
	op->per_task = one_in(r, 3);
	op->cancel_at = one_in(r, 6);
	op->cancellable = op->cancel_at ||
	                  (op->errors &&
	                   (op->policy != SS_GROUP_IGNORE || op->per_task));
	EXPECT_RC(ss_group_set_policy(op->g, op->policy,
	                              op->policy == SS_GROUP_CUSTOM ? grp_cb
	                                                            : NULL,
	                              op), 0);
	run_in(d, pick_where(d), grp_coord, op);
	ss_group_free(op->g);
	free(op);
	(void)unused;
}

/* ------------------------------------------------------ op: blocking */

struct blk_op {
	int fds[2];
};

static void *blk_reader(void *arg)
{
	struct slot *s = arg;
	struct blk_op *op = s->ctx;
	void *v = slot_value(s);
	char b;
	ssize_t n;

	if (s->flags & F_HINT)
		ss_blocking_begin();
	do
		n = read(op->fds[0], &b, 1);
	while (n < 0 && errno == EINTR);
	if (s->flags & F_HINT)
		ss_blocking_end();
	if (n != 1)
		fail("a blocked task's pipe read returned %zd (errno %d)", n,
		     errno_now());
	ran(s);
	return v;
}

static void *blk_sleeper(void *arg)
{
	struct slot *s = arg;
	struct rng r = { s->tag };
	void *v = slot_value(s);

	if (s->flags & F_HINT)
		ss_blocking_begin();
	usleep(200 + rbelow(&r, 1800));
	if (s->flags & F_HINT)
		ss_blocking_end();
	ran(s);
	return v;
}

static void op_blocking(struct driver *d, void *unused)
{
	struct rng *r = &d->rng;
	struct blk_op op;
	unsigned nr = 1 + rbelow(r, 3), nsl = rbelow(r, 4), ns = 1 + rbelow(r, 8);
	struct slot *s[16];
	ss_task *h[16];
	unsigned n = 0, shorts;
	bool shorts_first = nr <= 2 && one_in(r, 2);

	if (pipe2(op.fds, O_CLOEXEC) != 0)
		fail("pipe2 failed (errno %d)", errno);
	for (unsigned i = 0; i < nr + nsl; i++) {
		unsigned f = F_LEAF | (one_in(r, 2) ? F_HINT : 0);

		if (i < nr && one_in(r, 4))
			f |= F_FIBER; /* a fiber that blocks, not suspends */
		s[n] = slot_new(d, i < nr ? "pipe reader" : "usleep", f, EXP_RUN);
		if (!s[n])
			fail("the round's arena is full");
		s[n]->ctx = &op;
		if (f & F_FIBER)
			h[n] = ss_go(blk_reader, s[n]);
		else
			h[n] = ss_spawn(i < nr ? blk_reader : blk_sleeper, s[n]);
		if (!h[n])
			fail("spawning a blocking task failed");
		spawned();
		n++;
	}
	shorts = n;
	for (unsigned i = 0; i < ns; i++) {
		s[n] = slot_new(d, "short", F_LEAF, EXP_RUN);
		if (!s[n])
			fail("the round's arena is full");
		h[n] = spawn_work(s[n]);
		n++;
	}
	if (shorts_first) {
		/* Blocked workers must not hold up the short tasks. */
		for (unsigned i = shorts; i < n; i++)
			join_work(h[i], s[i]);
	}
	ss_sleep_ns(rbelow(r, 2 * MS + 1));
	for (unsigned i = 0; i < nr; i++) {
		ssize_t w;

		do
			w = write(op.fds[1], "x", 1);
		while (w < 0 && errno == EINTR);
		if (w != 1)
			fail("pipe write failed (errno %d)", errno);
	}
	for (unsigned i = 0; i < (shorts_first ? shorts : n); i++)
		join_work(h[i], s[i]);
	close(op.fds[0]);
	close(op.fds[1]);
	(void)unused;
}

/* ------------------------------------------------------ op: parked */

enum { V_RECV, V_SEND, V_SLEEP, V_ONESHOT, V_KINDS };

struct victim {
	struct slot *s;
	int how;
	ss_chan *c;
	ss_oneshot *o;
	atomic_int started;
	int rc_first;
	int rc_later;
	int cancel_rc;
	ss_task *h;
};

static void *victim_fiber(void *arg)
{
	struct victim *v = arg;
	void *val = slot_value(v->s);
	int x = 13;

	atomic_store(&v->started, 1);
	switch (v->how) {
	case V_RECV:
		v->rc_first = ss_chan_recv(v->c, &x);
		break;
	case V_SEND:
		x = 666;
		v->rc_first = ss_chan_send(v->c, &x);
		break;
	case V_SLEEP:
		v->rc_first = ss_sleep_ns(30000 * MS);
		break;
	default:
		v->rc_first = ss_oneshot_recv(v->o, &x);
		break;
	}
	ss_yield();
	v->rc_later = ss_sleep_ns(1000);
	ran(v->s);
	return val;
}

struct sibling {
	struct slot *s;
	ss_chan *c;
	int got;
	int rc;
};

static void *sibling_fiber(void *arg)
{
	struct sibling *sb = arg;
	void *val = slot_value(sb->s);

	sb->rc = ss_chan_recv(sb->c, &sb->got);
	ran(sb->s);
	return val;
}

static void op_parked(struct driver *d, void *unused)
{
	static const unsigned caps[3] = { 0, 1, 16 };
	struct rng *r = &d->rng;
	unsigned n = 1 + rbelow(r, 6);
	bool wait = one_in(r, 2);
	struct victim v[6];
	struct sibling sb = { 0 };
	ss_task *sh = NULL;
	ss_chan *empty = ss_chan_new(caps[rbelow(r, 3)], sizeof(int));
	unsigned full_cap = rbelow(r, 2);
	ss_chan *full = ss_chan_new(full_cap, sizeof(int));
	int x = 777;

	if (!empty || !full)
		fail("ss_chan_new failed");
	if (full_cap)
		EXPECT_RC(ss_chan_try_send(full, &x), 0);
	if (one_in(r, 2)) {
		sb.s = slot_new(d, "sibling", F_FIBER, EXP_RUN);
		if (!sb.s)
			fail("the round's arena is full");
		sb.c = empty;
		sh = ss_go(sibling_fiber, &sb);
		if (!sh)
			fail("ss_go failed");
		spawned();
	}
	memset(v, 0, sizeof v);
	for (unsigned i = 0; i < n; i++) {
		v[i].how = (int)rbelow(r, V_KINDS);
		v[i].c = v[i].how == V_SEND ? full : empty;
		if (v[i].how == V_ONESHOT && !(v[i].o = ss_oneshot_new(sizeof(int))))
			fail("ss_oneshot_new failed");
		v[i].s = slot_new(d, "parked victim", F_FIBER | F_CANCEL, EXP_MAY);
		if (!v[i].s)
			fail("the round's arena is full");
		v[i].h = ss_go(victim_fiber, &v[i]);
		if (!v[i].h)
			fail("ss_go failed");
		spawned();
	}
	if (wait) {
		int64_t end = now_ms() + g_hang_ms;

		for (unsigned i = 0; i < n; i++)
			while (!atomic_load(&v[i].started)) {
				if (now_ms() > end)
					fail("a fiber did not start in %" PRId64
					     " ms", g_hang_ms);
				ss_sleep_ns(100000);
			}
		ss_sleep_ns(rbelow(r, MS)); /* let them park */
	} else if (one_in(r, 2)) {
		spin(rbelow(r, 20000));
	}
	for (unsigned i = 0; i < n; i++) {
		v[i].cancel_rc = ss_cancel(v[i].h);
		if (v[i].cancel_rc == 0) {
			if (wait)
				fail("ss_cancel of a started fiber returned 0");
			atomic_store(&v[i].s->expect, EXP_NOT_RUN);
			atomic_fetch_add(&g_cancelled, 1);
		} else if (v[i].cancel_rc == EBUSY) {
			atomic_store(&v[i].s->expect, EXP_RUN);
		} else {
			fail("ss_cancel of a fiber returned %s",
			     ename(v[i].cancel_rc));
		}
	}
	for (unsigned i = 0; i < n; i++) {
		void *val = NULL;
		int rc = ss_join(v[i].h, &val);

		if (v[i].cancel_rc == 0) {
			if (rc != ECANCELED)
				fail("ss_join of a fiber that ss_cancel stopped "
				     "returned %s", ename(rc));
			continue;
		}
		if (rc != 0 || val != slot_value(v[i].s))
			fail("ss_join of a cancelled fiber returned %s, %p",
			     ename(rc), val);
		if (v[i].rc_first != ECANCELED || v[i].rc_later != ECANCELED)
			fail("a fiber cancelled %s parked in %s: that wait "
			     "returned %s, a later sleep %s",
			     wait ? "while" : "before it",
			     v[i].how == V_RECV ? "recv" : v[i].how == V_SEND ? "send"
			     : v[i].how == V_SLEEP ? "sleep" : "oneshot recv",
			     ename(v[i].rc_first), ename(v[i].rc_later));
		atomic_fetch_add(&g_parked_cancels, 1);
	}
	if (sh) {
		void *val = NULL;

		/* The sibling is not disturbed: it gets the one element. */
		x = 4242;
		EXPECT_RC(ss_chan_send(empty, &x), 0);
		EXPECT_RC(ss_join(sh, &val), 0);
		if (sb.rc != 0 || sb.got != 4242)
			fail("the sibling of cancelled fibers got %s, %d",
			     ename(sb.rc), sb.got);
	}
	/* A cancelled send sent nothing. */
	if (full_cap) {
		x = 0;
		EXPECT_RC(ss_chan_try_recv(full, &x), 0);
		if (x != 777)
			fail("a bounded channel held %d, not 777", x);
	}
	EXPECT_RC(ss_chan_try_recv(full, &x), EAGAIN);
	EXPECT_RC(ss_chan_try_recv(empty, &x), EAGAIN);
	for (unsigned i = 0; i < n; i++)
		ss_oneshot_free(v[i].o);
	ss_chan_free(empty);
	ss_chan_free(full);
	(void)unused;
}

/* ------------------------------------------------------ op: burst */

static void *tiny_task(void *arg)
{
	struct slot *s = arg;
	void *v = slot_value(s);

	ran(s);
	return v;
}

/* Many tiny tasks at once: from a worker more than its ring holds (256),
 * so that the ring's compaction and the global queue's batches are used;
 * joined in spawn order or in reverse (a join runs an unstarted one in
 * place), some detached. */
static void op_burst(struct driver *d, void *unused)
{
	struct rng *r = &d->rng;
	unsigned n = 1 + rbelow(r, scaled(600));
	bool reverse = one_in(r, 2);
	unsigned detach = rbelow(r, 3) == 0 ? 1 + rbelow(r, 4) : 0;
	ss_task **h = calloc(n, sizeof *h);
	struct slot **sl = calloc(n, sizeof *sl);

	if (!h || !sl)
		fail("out of memory");
	for (unsigned i = 0; i < n; i++) {
		sl[i] = slot_new(d, "burst", F_LEAF, EXP_RUN);
		if (!sl[i]) {
			n = i;
			break;
		}
		h[i] = ss_spawn(tiny_task, sl[i]);
		if (!h[i])
			fail("ss_spawn in a burst failed (errno %d)", errno_now());
		spawned();
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = reverse ? n - 1 - k : k;

		if (detach && i % detach == 0)
			EXPECT_RC(ss_detach(h[i]), 0);
		else
			join_work(h[i], sl[i]);
	}
	free(h);
	free(sl);
	(void)unused;
}

/* ------------------------------------------------------ the drivers */

struct op_kind {
	const char *name;
	void (*fn)(struct driver *, void *);
	unsigned weight;
	int anywhere; /* may run on a worker too (in a fiber or a task) */
};

static struct op_kind ops[] = {
	{ "spawn+join", op_spawn_join, 3, 1 },
	{ "spawn+detach", op_spawn_detach, 2, 1 },
	{ "cancel", op_cancel, 3, 1 },
	{ "fibers", op_fibers, 2, 0 },
	{ "channel", op_channel, 3, 0 },
	{ "oneshot", op_oneshot, 2, 0 },
	{ "group", op_group, 3, 0 },
	{ "blocking", op_blocking, 1, 1 },
	{ "parked", op_parked, 2, 1 },
	{ "burst", op_burst, 2, 1 },
};
#define NOPS (sizeof ops / sizeof ops[0])

/* The end of a round: wait for the detached tasks, check every slot
 * exactly, reset the arena. */
static void round_end(struct driver *d)
{
	int64_t end = now_ms() + g_hang_ms;
	unsigned n, i;

	doing(d, "round check");
	for (;;) {
		n = atomic_load(&d->nslots);
		if (n > ARENA_SLOTS)
			n = ARENA_SLOTS;
		for (i = 0; i < n; i++) {
			struct slot *s = &d->slots[i];

			if (atomic_load(&s->expect) != EXP_RUN)
				continue;
			while (atomic_load_explicit(&s->runs,
			                            memory_order_acquire) == 0) {
				if (now_ms() > end)
					fail("a %s task (driver %d, round %" PRIu64
					     ", slot %u) never ran (waited %"
					     PRId64 " s)", s->what, d->id,
					     d->round, i, g_hang_ms / 1000);
				nap_us(200);
			}
		}
		/* A task may have spawned more before it finished. */
		if (atomic_load(&d->nslots) == n ||
		    (n == ARENA_SLOTS && atomic_load(&d->nslots) >= n))
			break;
	}
	for (i = 0; i < n; i++) {
		struct slot *s = &d->slots[i];
		unsigned e = atomic_load(&s->expect);
		unsigned runs = atomic_load(&s->runs);

		if (e == EXP_RUN && runs != 1)
			fail("a %s task (driver %d, round %" PRIu64
			     ", slot %u) ran %u times", s->what, d->id, d->round,
			     i, runs);
		if ((e == EXP_NOT_RUN || e == EXP_FREE) && runs != 0)
			fail("a %s task (driver %d, round %" PRIu64 ", slot %u) "
			     "ran %u times although %s", s->what, d->id,
			     d->round, i, runs,
			     e == EXP_FREE ? "it was never spawned"
			                   : "it was cancelled or skipped");
		if (e == EXP_MAY)
			fail("internal: slot %u (%s) unresolved", i, s->what);
		atomic_store(&s->runs, 0);
		atomic_store(&s->expect, EXP_FREE);
	}
	atomic_store(&d->nslots, 0);
	d->round++;
}

static void epoch_wait(struct driver *d)
{
	unsigned gen = atomic_load(&g_epoch_gen);

	if (!atomic_load(&g_epoch_req))
		return;
	doing(d, "epoch");
	atomic_store(&d->parked, 1);
	atomic_fetch_add(&g_epoch_parked, 1);
	while (atomic_load(&g_epoch_gen) == gen)
		nap_us(500);
	atomic_store(&d->parked, 0);
}

static void *driver_main(void *arg)
{
	struct driver *d = arg;
	unsigned total = 0;

	for (unsigned k = 0; k < NOPS; k++)
		total += ops[k].weight;
	if (total == 0)
		fail("--only: no operation left");
	while (!atomic_load(&g_stop)) {
		for (d->op = 0; d->op < OPS_PER_ROUND && !atomic_load(&g_stop);
		     d->op++) {
			unsigned x = rbelow(&d->rng, total), k = 0;

			while (x >= ops[k].weight)
				x -= ops[k++].weight;
			double t = now_s();

			doing(d, ops[k].name);
			if (ops[k].anywhere && one_in(&d->rng, 3))
				run_in(d, 1 + rbelow(&d->rng, 2), ops[k].fn, NULL);
			else
				ops[k].fn(d, NULL);
			d->ops[k]++;
			d->op_s[k] += now_s() - t;
		}
		round_end(d);
		epoch_wait(d);
	}
	doing(d, "done");
	atomic_store(&d->done, 1);
	return NULL;
}

/* ----------------------------------------------- sampling, watchdog */

/* A field of /proc/self/status ("Threads:", "VmRSS:", "VmHWM:"). */
static long proc_status(const char *key)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	const char *p;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, key);
	return p ? atol(p + strlen(key)) : -1;
}

static void sample(void)
{
	int t = (int)proc_status("\nThreads:");

	if (t > atomic_load(&g_proc_peak))
		atomic_store(&g_proc_peak, t);
}

/* What each driver is doing, for a failure report. */
static void print_drivers(FILE *f)
{
	int64_t now = now_ms();

	for (int i = 0; i < g_ndrivers; i++) {
		struct driver *d = &g_drivers[i];
		const char *what = atomic_load(&d->doing);

		if (!what)
			continue;
		fprintf(f, "stress:   driver %d: %s for %.3f s (round %" PRIu64
		        ", op %u)\n", i, what,
		        (now - atomic_load(&d->since_ms)) / 1000.0,
		        (uint64_t)atomic_load(&d->w_round), atomic_load(&d->w_op));
	}
}

static void watchdog(void)
{
	int64_t now = now_ms();

	for (int i = 0; i < g_ndrivers; i++) {
		struct driver *d = &g_drivers[i];
		int64_t since = atomic_load(&d->since_ms);

		if (atomic_load(&d->parked) || atomic_load(&d->done))
			continue;
		/* The ops check their own waits after g_hang_ms; this is the
		 * backstop for a wait that never returns. */
		if (now - since > g_hang_ms + 30000)
			fail("hang: driver %d has been in %s for %" PRId64
			     " s (round %" PRIu64 ", op %u)", d->id,
			     atomic_load(&d->doing), (now - since) / 1000,
			     (uint64_t)atomic_load(&d->w_round),
			     atomic_load(&d->w_op));
	}
}

/* With the drivers quiet (between rounds): the library's counters agree
 * exactly with the driver's, and nothing is left behind. */
static void check_quiet(const char *when)
{
	int64_t end = now_ms() + (g_san ? 20000 : 10000);
	struct ss_stats s;
	unsigned long sp, rn, cn;

	for (;;) {
		sample();
		sp = atomic_load(&g_spawned);
		rn = atomic_load(&g_ran);
		cn = atomic_load(&g_cancelled) + atomic_load(&g_skipped);
		ss_stats(&s);
		if (s.tasks_spawned == sp && s.tasks_completed == rn &&
		    s.tasks_cancelled == cn && s.blocked_workers == 0 &&
		    s.idle_workers == s.threads)
			break;
		if (now_ms() > end) {
			if (s.tasks_spawned != sp)
				fail("%s: ss_stats tasks_spawned=%" PRIu64
				     ", the driver spawned %lu", when,
				     s.tasks_spawned, sp);
			if (s.tasks_completed != rn)
				fail("%s: ss_stats tasks_completed=%" PRIu64
				     ", the driver counted %lu task runs "
				     "(lost or extra runs)", when,
				     s.tasks_completed, rn);
			if (s.tasks_cancelled != cn)
				fail("%s: ss_stats tasks_cancelled=%" PRIu64
				     ", the driver counted %lu (%lu cancels, "
				     "%lu group skips)", when, s.tasks_cancelled,
				     cn, atomic_load(&g_cancelled),
				     atomic_load(&g_skipped));
			if (s.blocked_workers != 0)
				fail("%s: %" PRIu64 " workers still counted as "
				     "blocked with nothing running", when,
				     s.blocked_workers);
			fail("%s: %" PRIu64 " of %" PRIu64 " workers parked 10 s "
			     "after the last task finished", when,
			     s.idle_workers, s.threads);
		}
		nap_us(1000);
	}
	if (s.tasks_spawned != s.tasks_completed + s.tasks_cancelled)
		fail("%s: tasks_spawned=%" PRIu64 " != tasks_completed=%" PRIu64
		     " + tasks_cancelled=%" PRIu64, when, s.tasks_spawned,
		     s.tasks_completed, s.tasks_cancelled);
	if (s.fiber_stacks >
	    STACK_CACHE_PER_WORKER * s.peak_threads + STACK_CACHE_GLOBAL)
		fail("%s: %" PRIu64 " fiber stacks mapped with no fiber alive "
		     "(bound: %d per worker x %" PRIu64 " + %d)", when,
		     s.fiber_stacks, STACK_CACHE_PER_WORKER, s.peak_threads,
		     STACK_CACHE_GLOBAL);
	if (g_verbose)
		printf("stress: %s ok: spawned=%" PRIu64 " completed=%" PRIu64
		       " cancelled=%" PRIu64 " threads=%" PRIu64
		       " fiber_stacks=%" PRIu64 " rss_kib=%ld\n",
		       when, s.tasks_spawned, s.tasks_completed,
		       s.tasks_cancelled, s.threads, s.fiber_stacks,
		       proc_status("\nVmRSS:"));
}

/* Poll every 10 ms until pred() holds, sampling and watching. */
static void main_wait(bool (*pred)(void))
{
	while (!pred()) {
		sample();
		watchdog();
		nap_us(10000);
	}
}

static bool all_parked(void)
{
	return atomic_load(&g_epoch_parked) == g_ndrivers;
}

static bool all_done(void)
{
	for (int i = 0; i < g_ndrivers; i++)
		if (!atomic_load(&g_drivers[i].done))
			return false;
	return true;
}

/* ------------------------------------------------------------ main */

static int sanitizer(void)
{
#if defined(__SANITIZE_THREAD__)
	return 2;
#elif defined(__SANITIZE_ADDRESS__)
	return 1;
#else
	const char *s = getenv("SS_SANITIZER");

	if (s && *s)
		return strstr(s, "thread") ? 2 : 1;
	return 0;
#endif
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: stress [--seed S] [--seconds N | --minutes N] "
	        "[--threads N] [--epoch SECONDS] [--only LIST] [--verbose]\n"
	        "  --seed S      the random mix (default: random, printed)\n"
	        "  --seconds N   run N seconds (default: the short mode, 10 s;\n"
	        "                6 s under ASan, 4 s under TSan)\n"
	        "  --minutes N   the long soak: N minutes\n"
	        "  --threads N   driver threads (default 4)\n"
	        "  --epoch N     exact accounting against ss_stats every N s\n"
	        "                (default: 2.5 s short, 15 s soak)\n"
	        "  --only LIST   only these operations (comma-separated): spawn+join,\n"
	        "                spawn+detach, cancel, fibers, channel, oneshot, group,\n"
	        "                blocking, parked, burst\n"
	        "  --verbose     print each epoch's check and per-operation counts\n");
}

static double arg_num(const char *opt, const char *v)
{
	char *end;
	double x;

	if (!v) {
		fprintf(stderr, "stress: %s needs a value\n", opt);
		exit(2);
	}
	x = strtod(v, &end);
	if (*end || x < 0) {
		fprintf(stderr, "stress: bad value for %s: %s\n", opt, v);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	bool have_seed = false;
	double t0, elapsed, next_epoch, end;
	int epochs = 0;
	struct ss_stats st;
	char when[32];

	g_san = sanitizer();
	g_div = g_san == 2 ? 4 : g_san ? 2 : 1;
	g_seconds = g_san == 2 ? 4 : g_san ? 6 : 10;
	g_epoch_s = 0;
	g_hang_ms = g_san ? 180000 : 60000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--seed")) {
			char *e;

			if (!v)
				return usage(stderr), 2;
			g_seed = strtoull(v, &e, 0);
			if (*e)
				return usage(stderr), 2;
			have_seed = true;
			i++;
		} else if (!strcmp(a, "--seconds")) {
			g_seconds = arg_num(a, v);
			i++;
		} else if (!strcmp(a, "--minutes")) {
			g_seconds = 60 * arg_num(a, v);
			if (g_epoch_s == 0)
				g_epoch_s = 15;
			i++;
		} else if (!strcmp(a, "--threads")) {
			g_ndrivers = (int)arg_num(a, v);
			if (g_ndrivers < 1 || g_ndrivers > MAX_DRIVERS) {
				fprintf(stderr, "stress: --threads 1..%d\n",
				        MAX_DRIVERS);
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--epoch")) {
			g_epoch_s = arg_num(a, v);
			i++;
		} else if (!strcmp(a, "--only")) {
			if (!v)
				return usage(stderr), 2;
			for (unsigned k = 0; k < NOPS; k++) {
				const char *p = strstr(v, ops[k].name);
				size_t l = strlen(ops[k].name);

				if (!p || (p != v && p[-1] != ',') ||
				    (p[l] != '\0' && p[l] != ','))
					ops[k].weight = 0;
			}
			i++;
		} else if (!strcmp(a, "--verbose")) {
			g_verbose = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "stress: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (g_epoch_s == 0)
		g_epoch_s = g_seconds > 60 ? 15 : 2.5;
	if (!have_seed) {
		if (getrandom(&g_seed, sizeof g_seed, 0) != sizeof g_seed)
			g_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		g_seed &= 0xffffffffffffull; /* short enough to retype */
	}
	printf("stress: seed=%" PRIu64 " drivers=%d seconds=%g%s\n", g_seed,
	       g_ndrivers, g_seconds,
	       g_san == 2 ? " (TSan)" : g_san ? " (ASan)" : "");
	fflush(stdout);

	t0 = now_s();
	end = t0 + g_seconds;
	next_epoch = t0 + g_epoch_s;
	for (int i = 0; i < g_ndrivers; i++) {
		struct driver *d = &g_drivers[i];

		d->id = i;
		d->rng.s = mix64(g_seed + 0x1000 * (uint64_t)(i + 1));
		d->slots = calloc(ARENA_SLOTS, sizeof *d->slots);
		if (!d->slots)
			fail("out of memory");
		doing(d, "start");
		if (pthread_create(&d->th, NULL, driver_main, d) != 0)
			fail("pthread_create of driver %d failed", i);
	}
	for (;;) {
		double now = now_s();

		sample();
		watchdog();
		if (now >= end)
			break;
		if (now >= next_epoch) {
			atomic_store(&g_epoch_req, 1);
			main_wait(all_parked);
			snprintf(when, sizeof when, "epoch %d (%.0f s)", ++epochs,
			         now - t0);
			check_quiet(when);
			atomic_store(&g_epoch_parked, 0);
			atomic_store(&g_epoch_req, 0);
			atomic_fetch_add(&g_epoch_gen, 1);
			next_epoch = now_s() + g_epoch_s;
			continue;
		}
		nap_us(10000);
	}
	atomic_store(&g_stop, 1);
	main_wait(all_done);
	elapsed = now_s() - t0;
	for (int i = 0; i < g_ndrivers; i++)
		pthread_join(g_drivers[i].th, NULL);
	check_quiet("the end");
	ss_stats(&st);
	if (g_verbose) {
		unsigned long per[NOPS] = { 0 };
		double secs[NOPS] = { 0 };

		for (int i = 0; i < g_ndrivers; i++)
			for (unsigned k = 0; k < NOPS; k++) {
				per[k] += g_drivers[i].ops[k];
				secs[k] += g_drivers[i].op_s[k];
			}
		printf("stress: ops (count, mean ms):");
		for (unsigned k = 0; k < NOPS; k++)
			printf(" %s=%lu,%.1f", ops[k].name, per[k],
			       per[k] ? 1000 * secs[k] / per[k] : 0.0);
		printf("\n");
	}
	printf("stress: cancels: stopped=%lu lost_race=%lu parked=%lu "
	       "group_skips=%lu group_errors=%lu; fibers=%" PRIu64
	       " suspends=%" PRIu64 " compensations=%" PRIu64
	       " fiber_stacks=%" PRIu64 " epochs=%d rss_kib=%ld"
	       " rss_peak_kib=%ld\n",
	       atomic_load(&g_cancelled), atomic_load(&g_cancel_lost),
	       atomic_load(&g_parked_cancels), atomic_load(&g_skipped),
	       atomic_load(&g_group_errors), st.fibers_spawned, st.suspends,
	       st.compensations, st.fiber_stacks, epochs,
	       proc_status("\nVmRSS:"), proc_status("\nVmHWM:"));
	printf("stress: seed=%" PRIu64 " seconds=%.1f tasks=%" PRIu64
	       " tasks_per_s=%.0f peak_threads=%" PRIu64 " proc_threads=%d"
	       " messages=%lu ok\n",
	       g_seed, elapsed, st.tasks_completed,
	       st.tasks_completed / (elapsed > 0 ? elapsed : 1),
	       st.peak_threads, atomic_load(&g_proc_peak),
	       atomic_load(&g_messages));
	fflush(stdout);
	for (int i = 0; i < g_ndrivers; i++)
		free(g_drivers[i].slots);
	return 0;
}
