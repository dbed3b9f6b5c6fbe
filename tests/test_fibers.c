/*
 * test_fibers.c - fibers (ss_go, ss_group_go, ss_block_on, ss_yield,
 * ss_sleep_ns) against the contract in smolscale.h:
 *
 *   api     results and misuse codes of ss_go, detach, self-join, ss_cancel
 *           before the start (ECANCELED) and of a started fiber (EBUSY, and
 *           the operation it is parked in -- recv, send, oneshot recv, sleep
 *           -- and every later one returns ECANCELED, while ss_yield and
 *           ss_join go on working and a sibling parked on the same channel
 *           is not disturbed);
 *   many    10,000 fibers x 100 yields counted exactly, with fiber-local
 *           state intact across the yields; two fibers ping-ponging over
 *           rendezvous channels (a million suspensions); a fiber tree;
 *           25,000 fibers in batches with ss_stats().fiber_stacks bounded;
 *           a 128 KiB frame on a fiber stack;
 *   join    fiber joins fiber, task joins fiber, fiber joins task, main
 *           joins a parked fiber, a chain of fibers each joining the one
 *           before; ss_block_on from main, from threads, from a task and
 *           from a fiber, each running a nested fan-in of fibers;
 *   sleep   ss_sleep_ns sleeps at least what it was asked (CLOCK_MONOTONIC
 *           lower bound only, never an upper bound) from a fiber, a task,
 *           main and a thread; 1,000 fibers sleeping at once finish without
 *           1,000 threads; a fiber blocked in read() on a pipe does not
 *           stop more fibers than there are CPUs (default pool and one
 *           worker);
 *   group   ss_group_go: wait, IGNORE, error propagation, queued fibers of
 *           a cancelled group never run, waiting inside a fiber, EDEADLK;
 *   misc    ss_yield from main, a task, a thread and a fiber; a yielding
 *           fiber lets a fiber of its worker run (one worker); errno right
 *           after a failing call inside a fiber.
 *
 * Nothing here bounds how long anything takes: every wait is bounded by
 * WAIT_MS or by Check's timeout and fails instead of hanging.  The counts
 * above are those of a plain build; sanitizer builds use a tenth
 * (scaled()), and ThreadSanitizer, where every fiber is costly, a fortieth
 * of the fibers alive at once (fibers_scaled()).  Fibers,
 * tasks and threads never call ck_assert (only the test's main thread
 * does); they count what went wrong with EXPECT, and the test asserts that
 * the count is 0 (reporting the first failing line).
 *
 * Thread-locals: a fiber may resume on another thread, so errno and
 * pthread_self() are only looked at between two suspension points, never
 * across one (that is undefined by the contract and not tested).
 *
 * The ss_stats fields fiber_stacks (stacks currently mapped, cached ones
 * included), fibers_spawned (ss_go calls that returned a handle) and
 * suspends (times a fiber parked) are used as bounds only where the
 * contract makes them certain.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define MS 1000000ull /* nanoseconds */
#define BAD ((void *)UINTPTR_MAX)

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif

/* Stacks a worker may keep in its cache, and room for stacks of fibers
 * that just ended (their joiner may run before the stack is given back). */
#define CACHE_PER_WORKER 16
#define STACK_SLACK 16

/* ------------------------------------------------------------ helpers */

static atomic_long bad;
static atomic_int bad_line;

/* Record a failed expectation (callable from any fiber, task or thread). */
static void note_bad(int line)
{
	int zero = 0;

	atomic_fetch_add(&bad, 1);
	atomic_compare_exchange_strong(&bad_line, &zero, line);
}

#define EXPECT(cond)                          \
	do {                                  \
		if (!(cond))                  \
			note_bad(__LINE__);   \
	} while (0)

/* In the test's main thread: nothing went wrong elsewhere. */
#define ASSERT_NO_BAD()                                                      \
	ck_assert_msg(atomic_load(&bad) == 0,                                \
		      "%ld failed expectations in fibers/tasks/threads, first " \
		      "at line %d", atomic_load(&bad), atomic_load(&bad_line))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Poll (1 ms naps, no CPU spinning) until *flag is nonzero. */
static int wait_flag(atomic_int *flag)
{
	int64_t end = now_ms() + WAIT_MS;

	while (!atomic_load(flag)) {
		if (now_ms() > end)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

/* Give a fiber that announced it is about to park time to do so.  The
 * tests are correct whether or not it did; this only makes the path where
 * it is really parked the likely one. */
static void let_it_park(void)
{
	sleep_ms(20);
}

/* For tests whose cost is the number of fibers alive at once: under
 * ThreadSanitizer each fiber is expensive (milliseconds, more with many
 * alive), so these use n / 40 there, and n / 10 under other sanitizers. */
static size_t fibers_scaled(size_t n)
{
#if defined(TSAN_BUILD)
	return n / 40;
#else
	return scaled(n);
#endif
}

static struct ss_stats stats(void)
{
	struct ss_stats st;

	ck_assert_int_eq(ss_stats(&st), 0);
	return st;
}

/* A bound on fiber_stacks with `alive` fibers holding one. */
/* Mapped stacks: the fibers alive, each worker's cache, and the
 * process-wide cache behind them (core/fiber.h, SS_STACK_GLOBAL_MAX). */
#define GLOBAL_CACHE 1024

static uint64_t stacks_bound(const struct ss_stats *st, uint64_t alive)
{
	return st->peak_threads * CACHE_PER_WORKER + GLOBAL_CACHE + alive +
	       STACK_SLACK;
}

/* A resource bound on worker threads when nothing blocks a worker: the
 * default pool (one per CPU) with ample room. */
static uint64_t threads_bound(void)
{
	return 2 * (uint64_t)online_cpus() + 4;
}

static void *plus_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

/* Suspends in several ways, then returns arg + 1. */
static void *sleepy_plus_one(void *arg)
{
	ss_yield();
	EXPECT(ss_sleep_ns(5 * MS) == 0);
	ss_yield();
	return (void *)((uintptr_t)arg + 1);
}

/* Receives one int from the channel arg; returns it, or -rc on error. */
static void *recv_one(void *arg)
{
	int v = 0, rc = ss_chan_recv(arg, &v);

	return (void *)(intptr_t)(rc ? -rc : v);
}

/* Joins the task handle arg; returns its result + 100, or -rc. */
static void *join_arg(void *arg)
{
	void *r = NULL;
	int rc = ss_join(arg, &r);

	return rc ? (void *)(intptr_t)-rc : (void *)((uintptr_t)r + 100);
}

/* ---------------------------------------------------------------- api */

static atomic_int finished;

static void *mark_finished(void *arg)
{
	atomic_store(&finished, 1);
	return arg;
}

START_TEST(go_join_returns_value)
{
	ss_task *t = ss_go(plus_one, (void *)41);
	struct ss_stats st;
	void *r = NULL;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 42);
	/* The handle is consumed. */
	r = (void *)7;
	ck_assert_int_eq(ss_join(t, &r), ESRCH);
	ck_assert_ptr_eq(r, (void *)7);
	ck_assert_int_eq(ss_detach(t), ESRCH);
	ck_assert_int_eq(ss_cancel(t), ESRCH);
	/* A NULL result pointer; a fiber that suspends before it returns. */
	ck_assert_int_eq(ss_join(ss_go(plus_one, NULL), NULL), 0);
	ck_assert_int_eq(ss_join(ss_go(sleepy_plus_one, (void *)9), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 10);
	/* A fiber that ran cannot be cancelled: EBUSY, and it is joined. */
	t = ss_go(mark_finished, (void *)3);
	ck_assert(wait_flag(&finished));
	ck_assert_int_eq(ss_cancel(t), EBUSY);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)3);
	st = stats();
	ck_assert_uint_eq(st.fibers_spawned, 4);
	ASSERT_NO_BAD();
}
END_TEST

static int count_ret(void *arg)
{
	return (int)(intptr_t)arg;
}

START_TEST(null_arguments)
{
	ss_group *g = ss_group_new();
	struct ss_stats st;

	ck_assert_ptr_nonnull(g);
	errno = 0;
	ck_assert_ptr_null(ss_go(NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_block_on(NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ss_group_go(NULL, count_ret, NULL), EINVAL);
	ck_assert_int_eq(ss_group_go(g, NULL, NULL), EINVAL);
	ck_assert_int_eq(ss_group_wait(g), 0);
	ss_group_free(g);
	ck_assert_int_eq(ss_sleep_ns(0), 0);
	ss_yield();
	st = stats();
	ck_assert_uint_eq(st.fibers_spawned, 0);
}
END_TEST

/* The fiber joins its own handle, published by main. */
static _Atomic(ss_task *) self_handle;
static atomic_int self_rc = -1;

static void *join_self(void *arg)
{
	int64_t end = now_ms() + WAIT_MS;
	ss_task *me;

	while (!(me = atomic_load(&self_handle)) && now_ms() < end)
		ss_yield();
	atomic_store(&self_rc, me ? ss_join(me, NULL) : -2);
	return arg;
}

START_TEST(self_join_is_edeadlk)
{
	ss_task *t = ss_go(join_self, (void *)5);
	int64_t end = now_ms() + WAIT_MS;
	void *r = NULL;

	ck_assert_ptr_nonnull(t);
	atomic_store(&self_handle, t);
	/* Join only once the fiber is done with it, so it is not "being
	 * joined" by us at the time it tries. */
	while (atomic_load(&self_rc) == -1 && now_ms() < end)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&self_rc), EDEADLK);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_ptr_eq(r, (void *)5);
}
END_TEST

static atomic_long done_count;

static void *recv_then_count(void *arg)
{
	int v = 0;

	EXPECT(ss_chan_recv(arg, &v) == 0);
	EXPECT(v == 99);
	ss_yield();
	EXPECT(ss_sleep_ns(MS) == 0);
	atomic_fetch_add(&done_count, 1);
	return NULL;
}

static void *count_done(void *arg)
{
	atomic_fetch_add(&done_count, 1);
	return arg;
}

static int detached_code(int rc)
{
	return rc == EINVAL || rc == ESRCH;
}

START_TEST(detach_fiber)
{
	ss_chan *c = ss_chan_new(0, sizeof(int));
	long n = (long)scaled(10000), i;
	ss_task *t;
	int v = 99;

	ck_assert_ptr_nonnull(c);
	/* Detached while it is (most likely) parked in recv. */
	t = ss_go(recv_then_count, c);
	ck_assert_ptr_nonnull(t);
	let_it_park();
	ck_assert_int_eq(ss_detach(t), 0);
	ck_assert_msg(detached_code(ss_join(t, NULL)), "join of a detached fiber");
	ck_assert_msg(detached_code(ss_cancel(t)), "cancel of a detached fiber");
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert(wait_count(&done_count, 1, WAIT_MS));
	/* Detached right after the spawn, racing the fiber's end. */
	for (i = 0; i < n; i++) {
		t = ss_go(count_done, NULL);
		ck_assert_ptr_nonnull(t);
		ck_assert_int_eq(ss_detach(t), 0);
	}
	ck_assert_msg(wait_count(&done_count, 1 + n, WAIT_MS), "%ld of %ld detached fibers ran",
		      atomic_load(&done_count), 1 + n);
	ss_chan_free(c);
	ASSERT_NO_BAD();
}
END_TEST

static atomic_int started, go;
static atomic_long ran;

/* Holds its worker, spinning (not blocked), until `go`. */
static void *hold(void *arg)
{
	atomic_store(&started, 1);
	spin_until(&go, WAIT_MS);
	return arg;
}

static void *mark(void *arg)
{
	atomic_fetch_add(&ran, 1);
	return arg;
}

/* As test_cancel: one worker at most, held by a spinning task, so that
 * fibers spawned from main stay queued.  The cap matters: a spinner kept
 * off its CPU (a busy machine, valgrind) looks blocked to the monitor,
 * which would add a worker to run the queue. */
START_TEST(cancel_before_start)
{
	ss_task *h, *f, *d;
	struct ss_stats st;
	void *r = NULL;

	setenv("SMOLSCALE_THREADS", "1", 1);
	setenv("SMOLSCALE_MAX_THREADS", "1", 1); /* no compensation */
	h = ss_spawn(hold, NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert(spin_until(&started, WAIT_MS));
	f = ss_go(mark, (void *)5);
	d = ss_go(mark, (void *)6);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(ss_cancel(f), 0);
	ck_assert_int_eq(ss_cancel(f), 0);
	ck_assert_int_eq(ss_cancel(d), 0);
	ck_assert_int_eq(ss_detach(d), 0);
	ck_assert_int_eq(ss_join(f, &r), ECANCELED);
	ck_assert_int_eq(ss_join(f, NULL), ESRCH);
	atomic_store(&go, 1);
	ck_assert_int_eq(ss_join(h, NULL), 0);
	/* The pool still runs fibers, and the cancelled ones never ran. */
	ck_assert_int_eq(ss_join(ss_go(mark, NULL), NULL), 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	st = stats();
	ck_assert_uint_eq(st.tasks_cancelled, 2);
}
END_TEST

/* What a cancelled fiber saw at each of its calls. */
struct victim {
	ss_chan *c;
	ss_oneshot *o;
	atomic_int started, go;
	int rc_first, rc_sleep, rc_recv, rc_send, rc_join;
	void *child;
};

/* After the cancel: every later channel operation or sleep that would
 * wait returns ECANCELED; ss_yield returns; ss_join is no cancellation
 * point, even for a child that has to be waited for. */
static void *after_cancel(struct victim *p)
{
	ss_chan *empty = ss_chan_new(0, sizeof(int));
	ss_task *child;
	int v = 1;

	p->rc_sleep = ss_sleep_ns(10000 * MS);
	p->rc_recv = empty ? ss_chan_recv(empty, &v) : -1;
	p->rc_send = empty ? ss_chan_send(empty, &v) : -1;
	ss_chan_free(empty);
	ss_yield();
	child = ss_go(sleepy_plus_one, (void *)1);
	p->rc_join = child ? ss_join(child, &p->child) : -1;
	return (void *)0xC0DE;
}

static void *victim_recv(void *arg)
{
	struct victim *p = arg;
	int v = 0;

	atomic_store(&p->started, 1);
	p->rc_first = ss_chan_recv(p->c, &v);
	return after_cancel(p);
}

static void check_after_cancel(struct victim *p)
{
	ck_assert_int_eq(p->rc_sleep, ECANCELED);
	ck_assert_int_eq(p->rc_recv, ECANCELED);
	ck_assert_int_eq(p->rc_send, ECANCELED);
	ck_assert_int_eq(p->rc_join, 0);
	ck_assert_uint_eq((uintptr_t)p->child, 2);
}

START_TEST(cancel_parked_in_recv)
{
	struct victim p = { 0 };
	ss_task *f, *sib;
	void *r = NULL;
	int v = 77;

	p.c = ss_chan_new(0, sizeof(int));
	ck_assert_ptr_nonnull(p.c);
	sib = ss_go(recv_one, p.c);
	f = ss_go(victim_recv, &p);
	ck_assert_ptr_nonnull(sib);
	ck_assert_ptr_nonnull(f);
	ck_assert(wait_flag(&p.started));
	let_it_park();
	ck_assert_int_eq(ss_cancel(f), EBUSY);
	ck_assert_int_eq(ss_cancel(f), EBUSY);
	ck_assert_int_eq(ss_join(f, &r), 0);
	ck_assert_ptr_eq(r, (void *)0xC0DE);
	ck_assert_int_eq(p.rc_first, ECANCELED);
	check_after_cancel(&p);
	/* The sibling parked on the same channel was not cancelled, and
	 * the cancelled receiver is no longer among the waiters. */
	ck_assert_int_eq(ss_chan_send(p.c, &v), 0);
	ck_assert_int_eq(ss_join(sib, &r), 0);
	ck_assert_int_eq((intptr_t)r, 77);
	ck_assert_int_eq(ss_chan_try_recv(p.c, &v), EAGAIN);
	ss_chan_free(p.c);
	ASSERT_NO_BAD();
}
END_TEST

static void *victim_send(void *arg)
{
	struct victim *p = arg;
	int v = 2;

	atomic_store(&p->started, 1);
	p->rc_first = ss_chan_send(p->c, &v);
	return after_cancel(p);
}

/* A fiber parked in send on a full bounded channel, then on a rendezvous:
 * ECANCELED, and its element was not sent. */
START_TEST(cancel_parked_in_send)
{
	size_t cap;
	void *r;
	int v;

	for (cap = 0; cap <= 1; cap++) {
		struct victim p = { 0 };
		ss_task *f;

		p.c = ss_chan_new(cap, sizeof(int));
		ck_assert_ptr_nonnull(p.c);
		v = 1;
		if (cap)
			ck_assert_int_eq(ss_chan_try_send(p.c, &v), 0);
		f = ss_go(victim_send, &p);
		ck_assert_ptr_nonnull(f);
		ck_assert(wait_flag(&p.started));
		let_it_park();
		ck_assert_int_eq(ss_cancel(f), EBUSY);
		r = NULL;
		ck_assert_int_eq(ss_join(f, &r), 0);
		ck_assert_ptr_eq(r, (void *)0xC0DE);
		ck_assert_int_eq(p.rc_first, ECANCELED);
		check_after_cancel(&p);
		if (cap) {
			v = 0;
			ck_assert_int_eq(ss_chan_try_recv(p.c, &v), 0);
			ck_assert_int_eq(v, 1);
		}
		ck_assert_int_eq(ss_chan_try_recv(p.c, &v), EAGAIN);
		ss_chan_free(p.c);
	}
	ASSERT_NO_BAD();
}
END_TEST

static void *victim_sleep(void *arg)
{
	struct victim *p = arg;

	atomic_store(&p->started, 1);
	p->rc_first = ss_sleep_ns(600000 * MS);
	return after_cancel(p);
}

START_TEST(cancel_parked_in_sleep)
{
	struct victim p = { 0 };
	ss_task *f = ss_go(victim_sleep, &p);
	void *r = NULL;

	ck_assert_ptr_nonnull(f);
	ck_assert(wait_flag(&p.started));
	let_it_park();
	ck_assert_int_eq(ss_cancel(f), EBUSY);
	ck_assert_int_eq(ss_join(f, &r), 0);
	ck_assert_ptr_eq(r, (void *)0xC0DE);
	ck_assert_int_eq(p.rc_first, ECANCELED);
	check_after_cancel(&p);
	ASSERT_NO_BAD();
}
END_TEST

static void *victim_oneshot(void *arg)
{
	struct victim *p = arg;
	int v = 0;

	atomic_store(&p->started, 1);
	p->rc_first = ss_oneshot_recv(p->o, &v);
	return after_cancel(p);
}

/* ss_oneshot_recv counts as a channel operation. */
START_TEST(cancel_parked_in_oneshot_recv)
{
	struct victim p = { 0 };
	ss_task *f;
	void *r = NULL;

	p.o = ss_oneshot_new(sizeof(int));
	ck_assert_ptr_nonnull(p.o);
	f = ss_go(victim_oneshot, &p);
	ck_assert_ptr_nonnull(f);
	ck_assert(wait_flag(&p.started));
	let_it_park();
	ck_assert_int_eq(ss_cancel(f), EBUSY);
	ck_assert_int_eq(ss_join(f, &r), 0);
	ck_assert_ptr_eq(r, (void *)0xC0DE);
	ck_assert_int_eq(p.rc_first, ECANCELED);
	check_after_cancel(&p);
	ss_oneshot_free(p.o);
	ASSERT_NO_BAD();
}
END_TEST

static void *victim_running(void *arg)
{
	struct victim *p = arg;

	atomic_store(&p->started, 1);
	p->rc_first = spin_until(&p->go, WAIT_MS) ? 0 : -1;
	return after_cancel(p);
}

/* Cancelled while it runs (not parked): its next waits return ECANCELED. */
START_TEST(cancel_running_fiber)
{
	struct victim p = { 0 };
	ss_task *f = ss_go(victim_running, &p);
	void *r = NULL;

	ck_assert_ptr_nonnull(f);
	ck_assert(wait_flag(&p.started));
	ck_assert_int_eq(ss_cancel(f), EBUSY);
	atomic_store(&p.go, 1);
	ck_assert_int_eq(ss_join(f, &r), 0);
	ck_assert_ptr_eq(r, (void *)0xC0DE);
	ck_assert_int_eq(p.rc_first, 0);
	check_after_cancel(&p);
	ASSERT_NO_BAD();
}
END_TEST

/* --------------------------------------------------------------- many */

#define FIBERS 10000
#define YIELDS 100

static atomic_long yields;

static uint64_t mix(uint64_t h, uint64_t k)
{
	return h * 6364136223846793005ull + 1442695040888963407ull + k;
}

/* Yields YIELDS times, keeping state in locals and in an array on its own
 * stack; returns a hash of it all. */
static void *yielder(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	volatile unsigned char pad[512];
	uint64_t h = i, k;
	size_t j;

	for (j = 0; j < sizeof pad; j++)
		pad[j] = (unsigned char)(i + j);
	for (k = 0; k < YIELDS; k++) {
		h = mix(h, k);
		ss_yield();
		atomic_fetch_add_explicit(&yields, 1, memory_order_relaxed);
	}
	for (j = 0; j < sizeof pad; j++)
		if (pad[j] != (unsigned char)(i + j))
			return BAD;
	return (void *)(uintptr_t)h;
}

static uint64_t yielder_hash(uintptr_t i)
{
	uint64_t h = i, k;

	for (k = 0; k < YIELDS; k++)
		h = mix(h, k);
	return h;
}

START_TEST(many_fibers_yield)
{
	size_t n = fibers_scaled(FIBERS), i, wrong = 0;
	ss_task **t = calloc(n, sizeof *t);
	struct ss_stats st;
	void *r;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < n; i++)
		ck_assert_ptr_nonnull(t[i] = ss_go(yielder, (void *)i));
	for (i = 0; i < n; i++) {
		r = NULL;
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		wrong += (uintptr_t)r != (uintptr_t)yielder_hash(i);
	}
	ck_assert_msg(wrong == 0, "%zu fibers lost their state across yields", wrong);
	ck_assert_int_eq(atomic_load(&yields), (long)(n * YIELDS));
	st = stats();
	ck_assert_uint_eq(st.fibers_spawned, n);
	ck_assert_uint_le(st.fiber_stacks, stacks_bound(&st, 0));
	free(t);
}
END_TEST

#define ROUND_TRIPS 500000

struct pingpong {
	ss_chan *req, *rep;
	long rounds, done, served, bad;
};

/* Sends i, expects 2i + 1 back; closes both channels at the end (so that
 * the ponger never hangs, whatever happened). */
static void *pinger(void *arg)
{
	struct pingpong *p = arg;
	long i, v;

	for (i = 0; i < p->rounds; i++) {
		if (ss_chan_send(p->req, &i) || ss_chan_recv(p->rep, &v) || v != 2 * i + 1) {
			p->bad++;
			break;
		}
	}
	p->done = i;
	ss_chan_close(p->req);
	ss_chan_close(p->rep);
	return NULL;
}

static void *ponger(void *arg)
{
	struct pingpong *p = arg;
	long v, r;

	while (ss_chan_recv(p->req, &v) == 0) {
		r = 2 * v + 1;
		if (ss_chan_send(p->rep, &r))
			break;
		p->served++;
	}
	return NULL;
}

/*
 * Two fibers, two rendezvous channels.  Each round trip needs one of the
 * two to wait (the reply cannot exist before the request was taken), and
 * a waiting fiber parks: at least `rounds` suspensions, about twice that
 * in practice (a million for 500,000 round trips).
 */
START_TEST(ping_pong_suspends)
{
	struct pingpong p = { 0 };
	ss_task *a, *b;
	struct ss_stats st;

	p.rounds = (long)scaled(ROUND_TRIPS);
	p.req = ss_chan_new(0, sizeof(long));
	p.rep = ss_chan_new(0, sizeof(long));
	ck_assert_ptr_nonnull(p.req);
	ck_assert_ptr_nonnull(p.rep);
	b = ss_go(ponger, &p);
	a = ss_go(pinger, &p);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(ss_join(a, NULL), 0);
	ck_assert_int_eq(ss_join(b, NULL), 0);
	ck_assert_int_eq(p.bad, 0);
	ck_assert_int_eq(p.done, p.rounds);
	ck_assert_int_eq(p.served, p.rounds);
	st = stats();
	ck_assert_uint_ge(st.suspends, (uint64_t)p.rounds);
	ck_assert_uint_eq(st.fibers_spawned, 2);
	ss_chan_free(p.req);
	ss_chan_free(p.rep);
}
END_TEST

/* fib(n) with a fiber per call: each spawns two fibers and joins them. */
static void *fib_fiber(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	void *x = BAD, *y = BAD;
	ss_task *a, *b;

	if (n < 2) {
		ss_yield();
		return arg;
	}
	a = ss_go(fib_fiber, (void *)(n - 1));
	b = ss_go(fib_fiber, (void *)(n - 2));
	if (!a || !b || ss_join(a, &x) || ss_join(b, &y) || x == BAD || y == BAD)
		return BAD;
	return (void *)((uintptr_t)x + (uintptr_t)y);
}

START_TEST(fiber_tree)
{
	uintptr_t n = sanitized() ? 12 : 16;
	uint64_t fib[18] = { 0, 1 }, calls;
	struct ss_stats st;
	void *r = NULL;
	size_t i;

	for (i = 2; i < 18; i++)
		fib[i] = fib[i - 1] + fib[i - 2];
	ck_assert_int_eq(ss_join(ss_go(fib_fiber, (void *)n), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, fib[n]);
	/* calls(n) = calls(n-1) + calls(n-2) + 1 = 2 fib(n+1) - 1 fibers. */
	calls = 2 * fib[n + 1] - 1;
	st = stats();
	ck_assert_uint_eq(st.fibers_spawned, calls);
	ck_assert_uint_le(st.peak_threads, threads_bound());
}
END_TEST

#define STACK_FIBERS 25000
#define STACK_BATCH 250

static atomic_long parked;

static void *park_for_value(void *arg)
{
	long v = -1;

	atomic_fetch_add(&parked, 1);
	if (ss_chan_recv(arg, &v))
		return BAD;
	return (void *)v;
}

/*
 * 25,000 fibers, 250 alive at a time, each parked in recv until main feeds
 * its batch.  With a batch parked, every one of its fibers holds a stack
 * (fiber_stacks >= batch), and no more than the workers' caches, the batch
 * and some slack are mapped; once every fiber ended, the caches and the
 * slack only.  25,000 leaked 256 KiB stacks would be 6 GiB.
 */
START_TEST(stack_cache_bounded)
{
	size_t total = fibers_scaled(STACK_FIBERS), batch = STACK_BATCH, done, i;
	ss_task *t[STACK_BATCH];
	struct ss_stats st;
	long v, sum, want;
	void *r;

	for (done = 0; done < total; done += batch) {
		ss_chan *c = ss_chan_new(batch, sizeof(long));

		ck_assert_ptr_nonnull(c);
		atomic_store(&parked, 0);
		for (i = 0; i < batch; i++)
			ck_assert_ptr_nonnull(t[i] = ss_go(park_for_value, c));
		ck_assert(wait_count(&parked, (long)batch, WAIT_MS));
		st = stats();
		ck_assert_uint_ge(st.fiber_stacks, batch);
		ck_assert_msg(st.fiber_stacks <= stacks_bound(&st, batch),
			      "%llu stacks mapped with %zu fibers alive and %llu workers at most",
			      (unsigned long long)st.fiber_stacks, batch,
			      (unsigned long long)st.peak_threads);
		sum = want = 0;
		for (i = 0; i < batch; i++) {
			v = (long)(done + i);
			want += v;
			ck_assert_int_eq(ss_chan_send(c, &v), 0);
		}
		for (i = 0; i < batch; i++) {
			r = BAD;
			ck_assert_int_eq(ss_join(t[i], &r), 0);
			ck_assert_ptr_ne(r, BAD);
			sum += (long)r;
		}
		ck_assert_int_eq(sum, want);
		st = stats();
		ck_assert_msg(st.fiber_stacks <= stacks_bound(&st, 0),
			      "%llu stacks mapped with no fiber alive and %llu workers at most",
			      (unsigned long long)st.fiber_stacks,
			      (unsigned long long)st.peak_threads);
		ss_chan_free(c);
	}
	st = stats();
	ck_assert_uint_eq(st.fibers_spawned, done);
}
END_TEST

/* Half the default stack (256 KiB) in one frame, touched in full. */
#define BIG_FRAME (128 * 1024)

static void *big_frame(void *arg)
{
	volatile unsigned char buf[BIG_FRAME];
	unsigned long sum = 0;
	size_t i;

	for (i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 7);
	ss_yield();
	for (i = 0; i < sizeof buf; i++)
		sum += buf[i] == (unsigned char)(i * 7);
	return (void *)(uintptr_t)(sum == sizeof buf ? (uintptr_t)arg : 0);
}

START_TEST(big_frame_on_fiber_stack)
{
	void *r = NULL;

	ck_assert_int_eq(ss_join(ss_go(big_frame, (void *)1), &r), 0);
	ck_assert_ptr_eq(r, (void *)1);
}
END_TEST

/* --------------------------------------------------------------- join */

/* A fiber spawns a fiber that suspends, and joins it. */
static void *go_and_join(void *arg)
{
	ss_task *t = ss_go(sleepy_plus_one, arg);

	return t ? join_arg(t) : BAD;
}

START_TEST(fiber_joins_fiber)
{
	ss_chan *c = ss_chan_new(0, sizeof(int));
	ss_task *inner, *outer;
	void *r = NULL;
	int v = 5;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ss_join(ss_go(go_and_join, (void *)1), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 102);
	/* The outer fiber waits for an inner one parked in recv. */
	inner = ss_go(recv_one, c);
	outer = ss_go(join_arg, inner);
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_nonnull(outer);
	let_it_park();
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_join(outer, &r), 0);
	ck_assert_int_eq((intptr_t)r, 105);
	/* Main joins a parked fiber directly. */
	inner = ss_go(recv_one, c);
	ck_assert_ptr_nonnull(inner);
	let_it_park();
	v = 6;
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_join(inner, &r), 0);
	ck_assert_int_eq((intptr_t)r, 6);
	ss_chan_free(c);
	ASSERT_NO_BAD();
}
END_TEST

START_TEST(task_joins_fiber)
{
	ss_chan *c = ss_chan_new(0, sizeof(int));
	ss_task *inner, *outer;
	void *r = NULL;
	int v = 5;

	ck_assert_ptr_nonnull(c);
	/* A plain task spawns a fiber that suspends and joins it. */
	ck_assert_int_eq(ss_join(ss_spawn(go_and_join, (void *)1), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 102);
	/* A plain task joins a fiber of main's, parked in recv. */
	inner = ss_go(recv_one, c);
	outer = ss_spawn(join_arg, inner);
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_nonnull(outer);
	let_it_park();
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_join(outer, &r), 0);
	ck_assert_int_eq((intptr_t)r, 105);
	ss_chan_free(c);
	ASSERT_NO_BAD();
}
END_TEST

/* A plain task: ss_sleep_ns blocks it in clock_nanosleep. */
static void *sleepy_task(void *arg)
{
	EXPECT(ss_sleep_ns(5 * MS) == 0);
	return (void *)((uintptr_t)arg + 1);
}

static void *spawn_and_join(void *arg)
{
	ss_task *t = ss_spawn(sleepy_task, arg);

	return t ? join_arg(t) : BAD;
}

START_TEST(fiber_joins_task)
{
	ss_chan *c = ss_chan_new(0, sizeof(int));
	ss_task *inner, *outer;
	void *r = NULL;
	int v = 5;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ss_join(ss_go(spawn_and_join, (void *)1), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, 102);
	/* A fiber joins a plain task blocked in recv. */
	inner = ss_spawn(recv_one, c);
	outer = ss_go(join_arg, inner);
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_nonnull(outer);
	let_it_park();
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_join(outer, &r), 0);
	ck_assert_int_eq((intptr_t)r, 105);
	ss_chan_free(c);
	ASSERT_NO_BAD();
}
END_TEST

#define CHAIN 100

static void *chain_link(void *arg)
{
	void *r = NULL;

	if (ss_join(arg, &r) || r == BAD)
		return BAD;
	return (void *)((uintptr_t)r + 1);
}

/*
 * Fiber k joins fiber k-1; fiber 0 is parked in recv.  All CHAIN fibers
 * wait at once, and waiting fibers park: the pool needs no thread per
 * joiner.
 */
START_TEST(join_chain)
{
	ss_chan *c = ss_chan_new(0, sizeof(int));
	ss_task *t;
	struct ss_stats st;
	void *r = NULL;
	int i, v = 5;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(t = ss_go(recv_one, c));
	for (i = 1; i < CHAIN; i++)
		ck_assert_ptr_nonnull(t = ss_go(chain_link, t));
	let_it_park();
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_join(t, &r), 0);
	ck_assert_int_eq((intptr_t)r, 5 + CHAIN - 1);
	st = stats();
	ck_assert_uint_le(st.peak_threads, threads_bound());
	ss_chan_free(c);
}
END_TEST

struct sender_arg {
	ss_chan *c;
	long v;
};

static void *send_value(void *arg)
{
	struct sender_arg *s = arg;

	return (void *)(intptr_t)ss_chan_send(s->c, &s->v);
}

/* As a fiber: spawns n fibers that each send a number on a rendezvous,
 * receives them all, joins them all; returns 1 + 2 + ... + n, or BAD. */
static void *fan_in(void *arg)
{
	long n = (long)(intptr_t)arg, i, v, sum = 0, errs = 0;
	ss_chan *c = ss_chan_new(0, sizeof(long));
	struct sender_arg *s = calloc((size_t)n, sizeof *s);
	ss_task **t = calloc((size_t)n, sizeof *t);
	void *r;

	if (!c || !s || !t)
		return BAD;
	for (i = 0; i < n; i++) {
		s[i].c = c;
		s[i].v = i + 1;
		if (!(t[i] = ss_go(send_value, &s[i])))
			errs++;
	}
	for (i = 0; i < n; i++) {
		if (!t[i])
			continue;
		if (ss_chan_recv(c, &v))
			errs++;
		else
			sum += v;
	}
	for (i = 0; i < n; i++)
		if (t[i] && (ss_join(t[i], &r) || r != NULL))
			errs++;
	ss_chan_free(c);
	free(t);
	free(s);
	return errs ? BAD : (void *)(intptr_t)sum;
}

#define FAN 100
#define FAN_SUM (FAN * (FAN + 1) / 2)

static void *block_on_fan_in(void *arg)
{
	return ss_block_on(fan_in, arg);
}

START_TEST(block_on_from_main)
{
	ck_assert_ptr_eq(ss_block_on(plus_one, (void *)41), (void *)42);
	ck_assert_ptr_null(ss_block_on(ident, NULL));
	ck_assert_int_eq((intptr_t)ss_block_on(fan_in, (void *)FAN), FAN_SUM);
	ck_assert_int_eq((intptr_t)ss_block_on(sleepy_plus_one, (void *)1), 2);
	ASSERT_NO_BAD();
}
END_TEST

#define BLOCK_ON_THREADS 4

START_TEST(block_on_elsewhere)
{
	pthread_t th[BLOCK_ON_THREADS];
	void *r;
	int i;

	/* From several ordinary threads at once. */
	for (i = 0; i < BLOCK_ON_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, block_on_fan_in,
						(void *)(intptr_t)FAN), 0);
	for (i = 0; i < BLOCK_ON_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], &r), 0);
		ck_assert_int_eq((intptr_t)r, FAN_SUM);
	}
	/* From a plain task and from a fiber. */
	ck_assert_int_eq(ss_join(ss_spawn(block_on_fan_in, (void *)(intptr_t)FAN), &r), 0);
	ck_assert_int_eq((intptr_t)r, FAN_SUM);
	ck_assert_int_eq(ss_join(ss_go(block_on_fan_in, (void *)(intptr_t)FAN), &r), 0);
	ck_assert_int_eq((intptr_t)r, FAN_SUM);
}
END_TEST

/* -------------------------------------------------------------- sleep */

static const uint64_t naps_ns[] = { 0, 1000, MS, 15 * MS };

/* Each nap lasts at least what was asked for; returns the count of naps
 * that were short or did not return 0. */
static void *nap_checks(void *arg)
{
	uintptr_t wrong = 0;
	uint64_t t0, elapsed;
	size_t i;
	int rc;

	for (i = 0; i < sizeof naps_ns / sizeof naps_ns[0]; i++) {
		t0 = now_ns();
		rc = ss_sleep_ns(naps_ns[i]);
		elapsed = now_ns() - t0;
		if (rc != 0 || elapsed < naps_ns[i])
			wrong++;
	}
	return (void *)(wrong + (uintptr_t)arg);
}

START_TEST(sleep_lower_bound)
{
	pthread_t th;
	void *r;

	ck_assert_uint_eq((uintptr_t)nap_checks(NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, nap_checks, NULL), 0);
	ck_assert_int_eq(pthread_join(th, &r), 0);
	ck_assert_msg(r == NULL, "%zu short naps in a thread", (size_t)(uintptr_t)r);
	ck_assert_int_eq(ss_join(ss_spawn(nap_checks, NULL), &r), 0);
	ck_assert_msg(r == NULL, "%zu short naps in a task", (size_t)(uintptr_t)r);
	ck_assert_int_eq(ss_join(ss_go(nap_checks, NULL), &r), 0);
	ck_assert_msg(r == NULL, "%zu short naps in a fiber", (size_t)(uintptr_t)r);
	ck_assert_ptr_null(ss_block_on(nap_checks, NULL));
}
END_TEST

#define SLEEPERS 1000
#define SLEEP_NS (10 * MS)

static atomic_long slept;

static void *sleep_10ms(void *arg)
{
	uint64_t t0 = now_ns();

	EXPECT(ss_sleep_ns(SLEEP_NS) == 0);
	EXPECT(now_ns() - t0 >= SLEEP_NS);
	atomic_fetch_add(&slept, 1);
	return arg;
}

/* A thousand fibers asleep at once (a hundred under a sanitizer) are a
 * thousand parked fibers, not a thousand blocked threads. */
START_TEST(thousand_sleepers)
{
	int n = (int)scaled(SLEEPERS), i;
	ss_task *t[SLEEPERS];
	struct ss_stats st;
	void *r;

	for (i = 0; i < n; i++)
		ck_assert_ptr_nonnull(t[i] = ss_go(sleep_10ms, (void *)(intptr_t)i));
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		ck_assert_int_eq((intptr_t)r, i);
	}
	ck_assert_int_eq(atomic_load(&slept), n);
	ASSERT_NO_BAD();
	st = stats();
	ck_assert_msg(st.peak_threads <= threads_bound(),
		      "%llu worker threads for sleeping fibers (bound %llu)",
		      (unsigned long long)st.peak_threads,
		      (unsigned long long)threads_bound());
	ck_assert_uint_ge(st.suspends, (uint64_t)n);
}
END_TEST

static int pipefd[2];
static atomic_int reader_started, reader_done;

/* Blocks its worker in read() (no hint): nothing is written until every
 * other fiber of the test finished. */
static void *pipe_reader(void *arg)
{
	char buf[8];
	ssize_t n;

	atomic_store(&reader_started, 1);
	n = read(pipefd[0], buf, sizeof buf);
	atomic_store(&reader_done, 1);
	return n == 8 && memcmp(buf, "smolpipe", 8) == 0 ? arg : BAD;
}

/* Yields, naps and sends its number on the channel arg. */
static void *busy_fiber(void *arg)
{
	struct sender_arg *s = arg;
	int i;

	for (i = 0; i < 10; i++) {
		ss_yield();
		EXPECT(ss_sleep_ns(MS) == 0);
	}
	EXPECT(ss_chan_send(s->c, &s->v) == 0);
	return NULL;
}

/* _i 0: the default pool; _i 1: SMOLSCALE_THREADS=1, so the reader blocks
 * the only worker and the others need the monitor's help. */
START_TEST(blocked_read_does_not_stop_others)
{
	int k = 4 * online_cpus() + 4, i;
	struct sender_arg *s = calloc((size_t)k, sizeof *s);
	ss_task **t = calloc((size_t)k, sizeof *t), *reader;
	ss_chan *c;
	long v, sum = 0;
	void *r = NULL;

	if (_i == 1)
		setenv("SMOLSCALE_THREADS", "1", 1);
	c = ss_chan_new((size_t)k, sizeof(long));

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pipe(pipefd), 0);
	reader = ss_go(pipe_reader, (void *)1);
	ck_assert_ptr_nonnull(reader);
	ck_assert(wait_flag(&reader_started));
	for (i = 0; i < k; i++) {
		s[i].c = c;
		s[i].v = i + 1;
		ck_assert_ptr_nonnull(t[i] = ss_go(busy_fiber, &s[i]));
	}
	for (i = 0; i < k; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	for (i = 0; i < k; i++) {
		ck_assert_int_eq(ss_chan_try_recv(c, &v), 0);
		sum += v;
	}
	ck_assert_int_eq(sum, (long)k * (k + 1) / 2);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	/* The reader is still in read(); now let it finish. */
	ck_assert_int_eq(atomic_load(&reader_done), 0);
	ck_assert_int_eq(write(pipefd[1], "smolpipe", 8), 8);
	ck_assert_int_eq(ss_join(reader, &r), 0);
	ck_assert_ptr_eq(r, (void *)1);
	ASSERT_NO_BAD();
	ss_chan_free(c);
	close(pipefd[0]);
	close(pipefd[1]);
	free(t);
	free(s);
}
END_TEST

/* -------------------------------------------------------------- group */

static atomic_long gran;

static int group_fiber(void *arg)
{
	ss_yield();
	if (ss_sleep_ns(MS))
		return 99;
	atomic_fetch_add(&gran, 1);
	return (int)(intptr_t)arg;
}

static int group_task(void *arg)
{
	atomic_fetch_add(&gran, 1);
	return (int)(intptr_t)arg;
}

START_TEST(group_go_wait)
{
	long n = (long)fibers_scaled(400), i, want;
	ss_group *g = ss_group_new();

	ck_assert_ptr_nonnull(g);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ss_group_go(g, group_fiber, NULL), 0);
	for (i = 0; i < n / 4; i++)
		ck_assert_int_eq(ss_group_spawn(g, group_task, NULL), 0);
	ck_assert_int_eq(ss_group_wait(g), 0);
	want = n + n / 4;
	ck_assert_int_eq(atomic_load(&gran), want);
	ck_assert_int_eq(ss_group_cancelled(g), 0);
	/* Reuse, then IGNORE: the fibers' errors are dropped. */
	ck_assert_int_eq(ss_group_set_policy(g, SS_GROUP_IGNORE, NULL, NULL), 0);
	for (i = 0; i < n / 2; i++)
		ck_assert_int_eq(ss_group_go(g, group_fiber, (void *)(intptr_t)(i % 3)), 0);
	ck_assert_int_eq(ss_group_wait(g), 0);
	want += n / 2;
	ck_assert_int_eq(atomic_load(&gran), want);
	ck_assert_int_eq(ss_group_cancelled(g), 0);
	/* ss_group_free waits for fibers still running. */
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(ss_group_go(g, group_fiber, NULL), 0);
	ss_group_free(g);
	ck_assert_int_eq(atomic_load(&gran), want + 10);
}
END_TEST

static atomic_int poller_started;

/* Parks in short sleeps until its group is cancelled: 0 if it saw that. */
static int poll_group(void *arg)
{
	int64_t end = now_ms() + WAIT_MS;

	atomic_store(&poller_started, 1);
	while (!ss_group_cancelled(arg) && now_ms() < end)
		ss_sleep_ns(MS);
	return ss_group_cancelled(arg) ? 0 : 1;
}

static int fail_after_poller(void *arg)
{
	int64_t end = now_ms() + WAIT_MS;

	while (!atomic_load(&poller_started) && now_ms() < end)
		ss_sleep_ns(MS);
	return (int)(intptr_t)arg;
}

START_TEST(group_go_propagates_error)
{
	ss_group *g = ss_group_new();

	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(ss_group_go(g, poll_group, g), 0);
	ck_assert_int_eq(ss_group_go(g, fail_after_poller, (void *)7), 0);
	ck_assert_int_eq(ss_group_wait(g), 7);
	ck_assert_int_ne(ss_group_cancelled(g), 0);
	ck_assert_int_eq(ss_group_go(g, group_fiber, NULL), ECANCELED);
	ck_assert_int_eq(ss_group_wait(g), 7);
	ss_group_free(g);
}
END_TEST

#define QUEUED 100

/* Spawns QUEUED fibers into the group (on this worker's queue), then
 * fails with 7 before any of them can start. */
static int go_then_fail(void *arg)
{
	int i;

	for (i = 0; i < QUEUED; i++)
		if (ss_group_go(arg, group_fiber, NULL))
			return 99;
	return 7;
}

START_TEST(group_go_cancels_queued)
{
	ss_group *g;

	setenv("SMOLSCALE_THREADS", "1", 1);
	/* No compensating worker either: one would run the queued tasks
	 * when the machine keeps the spawner off its CPU past the stall
	 * time (test_cancel). */
	setenv("SMOLSCALE_MAX_THREADS", "1", 1);
	g = ss_group_new();
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(ss_group_go(g, go_then_fail, g), 0);
	ck_assert_int_eq(ss_group_wait(g), 7);
	ck_assert_int_ne(ss_group_cancelled(g), 0);
	ck_assert_int_eq(atomic_load(&gran), 0);
	ck_assert_int_eq(ss_group_go(g, group_fiber, NULL), ECANCELED);
	ck_assert_int_eq(ss_group_wait(g), 7);
	ck_assert_int_eq(atomic_load(&gran), 0);
	ss_group_free(g);
}
END_TEST

/* A fiber that runs a group of fibers and waits for it. */
static int nested_fiber_group(void *arg)
{
	ss_group *g = ss_group_new();
	int i, rc;

	(void)arg;
	if (!g)
		return ENOMEM;
	for (i = 0; i < 50; i++)
		if ((rc = ss_group_go(g, group_fiber, NULL)))
			return rc;
	rc = ss_group_wait(g);
	ss_group_free(g);
	return rc;
}

static int wait_own_group(void *arg)
{
	return ss_group_wait(arg) == EDEADLK ? 0 : 1;
}

START_TEST(group_wait_in_fiber)
{
	ss_group *g = ss_group_new();

	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(ss_group_go(g, nested_fiber_group, NULL), 0);
	ck_assert_int_eq(ss_group_go(g, nested_fiber_group, NULL), 0);
	ck_assert_int_eq(ss_group_go(g, wait_own_group, g), 0);
	ck_assert_int_eq(ss_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&gran), 100);
	ss_group_free(g);
}
END_TEST

/* --------------------------------------------------------------- misc */

static void *yield_once(void *arg)
{
	ss_yield();
	return arg;
}

START_TEST(yield_anywhere)
{
	pthread_t th;
	void *r = NULL;

	ss_yield();
	ck_assert_int_eq(pthread_create(&th, NULL, yield_once, (void *)1), 0);
	ck_assert_int_eq(pthread_join(th, &r), 0);
	ck_assert_ptr_eq(r, (void *)1);
	ck_assert_int_eq(ss_join(ss_spawn(yield_once, (void *)2), &r), 0);
	ck_assert_ptr_eq(r, (void *)2);
	ck_assert_int_eq(ss_join(ss_go(yield_once, (void *)3), &r), 0);
	ck_assert_ptr_eq(r, (void *)3);
}
END_TEST

static atomic_int flag;

static void *set_flag(void *arg)
{
	atomic_store(&flag, 1);
	return arg;
}

/* Spawns a fiber onto its own worker's queue and yields until it ran:
 * with one worker, only ss_yield lets it run. */
static void *yield_until_flag(void *arg)
{
	int64_t end = now_ms() + WAIT_MS;
	ss_task *t = ss_go(set_flag, NULL);

	if (!t)
		return BAD;
	while (!atomic_load(&flag) && now_ms() < end)
		ss_yield();
	if (ss_join(t, NULL))
		return BAD;
	return atomic_load(&flag) ? arg : BAD;
}

START_TEST(yield_lets_others_run)
{
	void *r = NULL;

	setenv("SMOLSCALE_THREADS", "1", 1);
	ck_assert_int_eq(ss_join(ss_go(yield_until_flag, (void *)1), &r), 0);
	ck_assert_ptr_eq(r, (void *)1);
	atomic_store(&flag, 0);
	ck_assert_ptr_eq(ss_block_on(yield_until_flag, (void *)2), (void *)2);
}
END_TEST

#define ERRNO_FIBERS 200

/* errno right after a failing call, and right after it was set, in a
 * function that does not suspend, as smolscale.h asks: glibc's
 * __errno_location() is const, so in the suspending function itself GCC
 * may keep &errno of the thread the fiber left. */
static __attribute__((noinline)) uintptr_t errno_stretch(int mine)
{
	uintptr_t wrong = 0;

	errno = 0;
	if (close(-1) != -1 || errno != EBADF)
		wrong++;
	errno = mine;
	if (errno != mine)
		wrong++;
	return wrong;
}

static void *errno_fiber(void *arg)
{
	int mine = 1000 + (int)(intptr_t)arg, i;
	uintptr_t wrong = 0;

	for (i = 0; i < 50; i++) {
		wrong += errno_stretch(mine);
		ss_yield(); /* errno is not looked at across this */
		if (i % 10 == 0)
			EXPECT(ss_sleep_ns(100000) == 0);
	}
	return (void *)wrong;
}

static atomic_int errno_go;

/* An ordinary thread's errno is its own while fibers churn elsewhere. */
static void *errno_thread(void *arg)
{
	uintptr_t wrong = 0;

	errno = 4242;
	while (!atomic_load(&errno_go))
		if (errno != 4242)
			wrong++;
	return (void *)(wrong + (uintptr_t)arg);
}

START_TEST(errno_between_suspensions)
{
	ss_task *t[ERRNO_FIBERS];
	uintptr_t wrong = 0;
	pthread_t th;
	void *r;
	int i;

	ck_assert_int_eq(pthread_create(&th, NULL, errno_thread, NULL), 0);
	for (i = 0; i < ERRNO_FIBERS; i++)
		ck_assert_ptr_nonnull(t[i] = ss_go(errno_fiber, (void *)(intptr_t)i));
	for (i = 0; i < ERRNO_FIBERS; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		wrong += (uintptr_t)r;
	}
	atomic_store(&errno_go, 1);
	ck_assert_int_eq(pthread_join(th, &r), 0);
	ck_assert_msg(r == NULL, "a thread's errno changed under it");
	ck_assert_msg(wrong == 0, "%zu wrong errno values in fibers", (size_t)wrong);
	ASSERT_NO_BAD();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fibers");
	TCase *api = tcase_new("api");
	TCase *many = tcase_new("many");
	TCase *join = tcase_new("join");
	TCase *sleeping = tcase_new("sleep");
	TCase *group = tcase_new("group");
	TCase *misc = tcase_new("misc");

	tcase_add_test(api, go_join_returns_value);
	tcase_add_test(api, null_arguments);
	tcase_add_test(api, self_join_is_edeadlk);
	tcase_add_test(api, detach_fiber);
	tcase_add_test(api, cancel_before_start);
	tcase_add_test(api, cancel_parked_in_recv);
	tcase_add_test(api, cancel_parked_in_send);
	tcase_add_test(api, cancel_parked_in_sleep);
	tcase_add_test(api, cancel_parked_in_oneshot_recv);
	tcase_add_test(api, cancel_running_fiber);
	tcase_add_test(many, many_fibers_yield);
	tcase_add_test(many, ping_pong_suspends);
	tcase_add_test(many, fiber_tree);
	tcase_add_test(many, stack_cache_bounded);
	tcase_add_test(many, big_frame_on_fiber_stack);
	tcase_add_test(join, fiber_joins_fiber);
	tcase_add_test(join, task_joins_fiber);
	tcase_add_test(join, fiber_joins_task);
	tcase_add_test(join, join_chain);
	tcase_add_test(join, block_on_from_main);
	tcase_add_test(join, block_on_elsewhere);
	tcase_add_test(sleeping, sleep_lower_bound);
	tcase_add_test(sleeping, thousand_sleepers);
	tcase_add_loop_test(sleeping, blocked_read_does_not_stop_others, 0, 2);
	tcase_add_test(group, group_go_wait);
	tcase_add_test(group, group_go_propagates_error);
	tcase_add_test(group, group_go_cancels_queued);
	tcase_add_test(group, group_wait_in_fiber);
	tcase_add_test(misc, yield_anywhere);
	tcase_add_test(misc, yield_lets_others_run);
	tcase_add_test(misc, errno_between_suspensions);
	suite_add_tcase(s, api);
	suite_add_tcase(s, many);
	suite_add_tcase(s, join);
	suite_add_tcase(s, sleeping);
	suite_add_tcase(s, group);
	suite_add_tcase(s, misc);
	return run_suite(s);
}
