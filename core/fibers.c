/*
 * fibers.c - fibers: tasks with stacks of their own that park at
 * suspension points instead of blocking their worker (smolscale.h).
 *
 * A fiber task is an ordinary task record with t->fiber set.  The first
 * time a worker runs it (ss__task_run -> ss__fiber_run) it takes a stack
 * from the worker's cache (fiber.h) and switches to it from its scheduler
 * context, the worker's own stack.  The fiber comes back to that context
 * in one of two ways:
 *   - it ended: the worker destroys its context, caches the stack and
 *     completes the task as run_claimed() does for a plain one;
 *   - it parked (ss__fiber_park): its context is saved, and the worker,
 *     on its own stack, calls the park's commit function, which makes the
 *     fiber findable (puts its waiter in a channel's queue and lets go of
 *     the channel's lock, queues it behind its worker's tasks for a
 *     yield, arms the timer).  From then on the fiber belongs to whoever
 *     wakes it: the worker never touches it again.  This is Go's gopark
 *     with its unlock function: a waker can never see a fiber that is
 *     still on its way out, so there is no "woken before parked" race.
 * A woken fiber is queued like any task (ss__fiber_ready: into the waking
 * worker's next-task slot, else the global queue); the worker that pops it
 * sees that it has started and switches into it (no claim: its state word
 * stays RUNNING, and its scheduler reference stays held, while it is
 * parked).
 *
 * Thread-locals.  A fiber may resume on another worker, so code on a
 * fiber stack reads thread-locals only through functions of other files
 * (ss__self, ss__current_task), which the compiler cannot inline here:
 * GCC treats a TLS address as constant within a function.  tls_task (the
 * current task) is set by the worker around each switch into a fiber.
 *
 * Waits (struct ss_wait, internal.h) are how every suspension point
 * parks: channels, one-shot slots, the timer.  A wait is ended once, by
 * whoever claims it (a waker, or ss_cancel); a fiber in a wait is exposed
 * to ss_cancel through f->parked, under f->plock, from its commit until it
 * runs again (see wait_commit and ss__wait).
 *
 * The timer: sleeping fibers wait in a binary heap ordered by deadline,
 * served by one hidden thread, "ss-timer", started at the first sleep.  Its
 * timer slack is 1 ms, so the kernel batches its wake-ups as tokio's 1 ms
 * wheel does: a fiber's sleep may end up to about 1 ms late.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "fiber.h"
#include "internal.h"

struct ss_fiber {
	struct ss_ctx ctx;
	struct ss_stack *stack;  /* from the first run until it ends */
	/* Written by the worker that starts it; read by later poppers (the
	 * queues order it). */
	bool started;
	bool finished;           /* its function returned (on its stack) */
	void *result;
	/* The park in progress: set by the fiber, run by its worker. */
	bool (*commit)(void *);
	void *commit_arg;
	/* ss_cancel(): set once, seq_cst (see wait_commit). */
	_Atomic bool cancel;
	/* A spinlock over `parked`: the wait the fiber is parked in, that a
	 * canceller may end.  Held by wait_commit while it publishes it, by
	 * a canceller while it uses it, by the fiber while it withdraws it
	 * (before that wait's frame goes away). */
	atomic_flag plock;
	struct ss_wait *parked;
};

/* A worker's part: its scheduler context and its stack cache.  Owner
 * only; created by the worker itself at its first fiber. */
struct ss_fw {
	struct ss_ctx sched;
	struct ss_stack_cache cache;
};

static atomic_ulong n_fibers;  /* fibers created (relaxed counter) */

/* ------------------------------------------------------------ lifecycle */

struct ss_fiber *ss__fiber_new(void)
{
	struct ss_fiber *f = calloc(1, sizeof *f);

	if (f) {
		atomic_flag_clear(&f->plock);
		atomic_fetch_add_explicit(&n_fibers, 1, memory_order_relaxed);
	}
	return f;
}

void ss__fiber_release(struct ss_fiber *f)
{
	/* A fiber that never ended (its record is finished for it after a
	 * fork, in the child): its stack goes with it. */
	if (f->stack) {
		ss__ctx_destroy(&f->ctx);
		ss__stack_free(f->stack);
	}
	free(f);
}

uint64_t ss__fibers_created(void)
{
	return atomic_load_explicit(&n_fibers, memory_order_relaxed);
}

bool ss__fiber_started(const struct ss_task *t)
{
	return t->fiber->started;
}

static struct ss_fw *fw_of(struct ss_worker *w)
{
	if (!w->fw) {
		struct ss_fw *fw = calloc(1, sizeof *fw);

		if (!fw)
			return NULL;
		ss__ctx_init_thread(&fw->sched);
		w->fw = fw;
	}
	return w->fw;
}

void ss__fiber_worker_exit(struct ss_worker *w)
{
	if (w->fw) {
		ss__stack_cache_drain(&w->fw->cache);
		free(w->fw);
		w->fw = NULL;
	}
}

/* ------------------------------------------------------------ running */

static void fiber_entry(void *arg)
{
	struct ss_task *t = arg;
	struct ss_fiber *f = t->fiber;

	f->result = t->fn(t->arg);
	f->finished = true;
	/* The worker it ends on, which may not be the one it started on. */
	ss__ctx_exit(&f->ctx, &ss__self()->fw->sched);
}

void ss__fiber_run(struct ss_worker *w, struct ss_task *t)
{
	struct ss_fiber *f = t->fiber;
	struct ss_fw *fw = fw_of(w);

	if (!f->started) {
		f->stack = fw ? ss__stack_get(&fw->cache) : NULL;
		if (!f->stack) {
			/* No memory for a stack: run it as a plain task.
			 * Its suspension points then block (ss__fiber_self
			 * says it is no fiber); nothing is lost. */
			ss__task_set_current(t);
			void *r = t->fn(t->arg);
			ss__task_set_current(NULL);
			ss__task_finish(w, t, r);
			return;
		}
		ss__ctx_make(&f->ctx, f->stack->lo, f->stack->size, fiber_entry, t);
		f->started = true;
	} else if (!fw) {
		/* No scheduler context on this worker (out of memory), so a
		 * started fiber cannot be resumed here: back to the global
		 * queue, as a yield would, for this worker or another to
		 * resume once memory allows.  Nothing is lost. */
		ss__gq_push(t);
		return;
	}
	for (;;) {
		bool (*commit)(void *);

		ss__task_set_current(t);
		ss__ctx_switch(&fw->sched, &f->ctx);
		ss__task_set_current(NULL);
		if (f->finished) {
			ss__ctx_destroy(&f->ctx);
			ss__stack_put(&fw->cache, f->stack);
			f->stack = NULL;
			ss__task_finish(w, t, f->result);
			return;
		}
		atomic_fetch_add_explicit(&w->n_suspends, 1, memory_order_relaxed);
		commit = f->commit;
		f->commit = NULL;
		/* After a commit that parks, f is the waker's: hands off. */
		if (!commit || commit(f->commit_arg))
			return;
	}
}

struct ss_task *ss__fiber_self(void)
{
	struct ss_task *t = ss__current_task();

	return t && t->fiber && t->fiber->stack ? t : NULL;
}

void ss__fiber_park(bool (*commit)(void *), void *arg)
{
	struct ss_task *t = ss__current_task();
	struct ss_fiber *f = t->fiber;

	f->commit = commit;
	f->commit_arg = arg;
	ss__ctx_switch(&f->ctx, &ss__self()->fw->sched);
}

void ss__fiber_ready(struct ss_task *t)
{
	struct ss_worker *w = ss__self();

	if (w && !atomic_load_explicit(&w->blocked, memory_order_relaxed)) {
		/* Right after the waker's task; what waited there before
		 * goes to the back of the ring.  The exchange publishes t's
		 * fields (acq_rel, as find_local's). */
		struct ss_task *old = atomic_exchange_explicit(&w->next, t,
		                                               memory_order_acq_rel);

		if (old && !ss__ring_push(&w->ring, old)) {
			ss__gq_push(old);
			ss__notify();
		}
		return;
	}
	ss__gq_push(t);
	ss__notify();
}

/* Behind the tasks already queued on this worker (a yield). */
static void ready_back(struct ss_task *t)
{
	struct ss_worker *w = ss__self();

	if (w && ss__ring_push(&w->ring, t))
		return;
	ss__gq_push(t);
	ss__notify();
}

static bool yield_commit(void *arg)
{
	ready_back(arg);
	return true;
}

void ss_yield(void)
{
	struct ss_task *me = ss__fiber_self();

	if (me)
		ss__fiber_park(yield_commit, me);
	else
		sched_yield();
}

/* ------------------------------------------------------------ waits */

static void plock(struct ss_fiber *f)
{
	while (atomic_flag_test_and_set_explicit(&f->plock, memory_order_acquire))
		ss__cpu_relax();
}

static void punlock(struct ss_fiber *f)
{
	atomic_flag_clear_explicit(&f->plock, memory_order_release);
}

void ss__wait_init(struct ss_wait *wt)
{
	memset(wt, 0, sizeof *wt);
}

bool ss__wait_claim(struct ss_wait *wt)
{
	uint32_t w = SS_WAIT_WAITING;

	return atomic_compare_exchange_strong_explicit(&wt->state, &w,
	                                               SS_WAIT_CLAIMED,
	                                               memory_order_acq_rel,
	                                               memory_order_relaxed);
}

void ss__wait_wake(struct ss_wait *wt, int r)
{
	struct ss_task *fiber = wt->fiber;

	wt->result = r;
	if (fiber) {
		/* The queue publishes result to whoever resumes it. */
		ss__fiber_ready(fiber);
	} else {
		atomic_store_explicit(&wt->word, 1, memory_order_release);
		/* wt may be gone now: a wake of a dead address is harmless. */
		ss__futex_wake(&wt->word, 1);
	}
}

struct wait_park {
	struct ss_wait *wt;
	struct ss_fiber *f;
	bool (*commit)(void *);
	void *arg;
};

/* On the worker, the fiber parked: expose the wait to ss_cancel, then
 * let the caller's commit make it findable by wakers.  Under plock, so
 * that a canceller cannot end the wait (and ready the fiber, which might
 * then run elsewhere and leave the frame that holds wt) before the commit
 * is done with it.  A cancel that came before: end the wait here. */
static bool wait_commit(void *arg)
{
	struct wait_park *wp = arg;
	struct ss_wait *wt = wp->wt;
	struct ss_fiber *f = wp->f;
	bool park;

	plock(f);
	f->parked = wt;
	park = wp->commit ? wp->commit(wp->arg) : true;
	if (park && atomic_load(&f->cancel) && ss__wait_claim(wt)) {
		wt->result = ECANCELED;
		park = false;
	}
	punlock(f);
	return park;
}

int ss__wait(struct ss_wait *wt, bool (*commit)(void *), void *arg)
{
	struct ss_task *me = ss__fiber_self();

	if (me) {
		struct ss_fiber *f = me->fiber;
		struct wait_park wp = { wt, f, commit, arg };

		wt->fiber = me;
		/* Spurious resumes cannot happen (a parked fiber is readied
		 * only by whoever claimed its wait), but a commit that
		 * returns false resumes it before the wait is claimed. */
		do
			ss__fiber_park(wait_commit, &wp);
		while (atomic_load_explicit(&wt->state, memory_order_acquire) !=
		       SS_WAIT_CLAIMED);
		/* Withdraw it from cancellers before its frame goes. */
		plock(f);
		f->parked = NULL;
		punlock(f);
		return wt->result;
	}
	wt->fiber = NULL;
	if (commit && !commit(arg))
		return wt->result;
	bool hint = ss__self() != NULL;
	if (hint)
		ss_blocking_begin();
	while (atomic_load_explicit(&wt->word, memory_order_acquire) == 0)
		ss__futex_wait(&wt->word, 0, 0);
	if (hint)
		ss_blocking_end();
	return wt->result;
}

void ss__fiber_cancel(struct ss_task *t)
{
	struct ss_fiber *f = t->fiber;
	struct ss_wait *wt;

	atomic_store(&f->cancel, true);
	plock(f);
	wt = f->parked;
	if (wt && ss__wait_claim(wt))
		ss__wait_wake(wt, ECANCELED);
	punlock(f);
}

bool ss__fiber_cancelled(void)
{
	struct ss_task *me = ss__fiber_self();

	return me && atomic_load_explicit(&me->fiber->cancel,
	                                  memory_order_relaxed);
}

/* ------------------------------------------------------------ timer */

struct sleeper {
	uint64_t deadline;
	struct ss_wait wt;
	size_t idx;              /* in the heap, or SIZE_MAX once out of it */
};

static struct {
	_Atomic uint32_t lock;   /* ss__spin_lock: held across a park */
	/* Bumped (release) when a sleeper becomes the earliest: the timer
	 * thread sleeps on it (futex) until the earliest deadline. */
	_Atomic uint32_t kick;
	bool started;
	struct sleeper **heap;   /* min-heap by deadline */
	size_t len, cap;
} tm;

static void heap_swap(size_t a, size_t b)
{
	struct sleeper *x = tm.heap[a];

	tm.heap[a] = tm.heap[b];
	tm.heap[b] = x;
	tm.heap[a]->idx = a;
	tm.heap[b]->idx = b;
}

static void heap_up(size_t i)
{
	while (i > 0 && tm.heap[(i - 1) / 2]->deadline > tm.heap[i]->deadline) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < tm.len && tm.heap[l]->deadline < tm.heap[m]->deadline)
			m = l;
		if (r < tm.len && tm.heap[r]->deadline < tm.heap[m]->deadline)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

/* Under tm.lock. */
static void heap_remove(size_t i)
{
	struct sleeper *s = tm.heap[i];

	tm.len--;
	if (i != tm.len) {
		tm.heap[i] = tm.heap[tm.len];
		tm.heap[i]->idx = i;
		heap_down(i);
		heap_up(i);
	}
	s->idx = SIZE_MAX;
}

static void *timer_main(void *arg)
{
	/* Batch wake-ups: the kernel may fire this thread's timeouts up to
	 * 1 ms late, so close deadlines share one wake-up. */
	prctl(PR_SET_TIMERSLACK, 1000000UL, 0, 0, 0);
	for (;;) {
		uint64_t now = ss__now_ns(), next = 0;
		uint32_t seq;

		struct ss_task *batch[64];
		unsigned n = 0;

		ss__spin_lock(&tm.lock);
		while (tm.len && tm.heap[0]->deadline <= now && n < 64) {
			struct sleeper *s = tm.heap[0];

			heap_remove(0);
			/* A cancelled one was woken by its canceller. */
			if (ss__wait_claim(&s->wt)) {
				s->wt.result = 0;
				batch[n++] = s->wt.fiber;
			}
		}
		if (tm.len)
			next = tm.heap[0]->deadline > now ?
			       tm.heap[0]->deadline - now : 1;
		seq = atomic_load_explicit(&tm.kick, memory_order_acquire);
		ss__spin_unlock(&tm.lock);
		/* One push and one wake-up for the whole batch: the worker
		 * woken runs them, and wakes another if they are many. */
		if (n) {
			ss__gq_push_batch(batch, n);
			ss__notify();
			continue;
		}
		/* 0: no sleeper, no timeout. */
		ss__futex_wait(&tm.kick, seq, next);
	}
	return arg;
}

/* Under tm.lock: the timer thread runs (the first sleep starts it). */
static int timer_start_locked(void)
{
	if (tm.started)
		return 0;
	if (ss__thread_start("ss-timer", timer_main, NULL) != 0)
		return EAGAIN;
	tm.started = true;
	return 0;
}

/* The fiber parked: arm its sleeper.  The timer thread may fire it as
 * soon as tm.lock is let go. */
static bool sleep_commit(void *arg)
{
	struct sleeper *s = arg;
	bool first;

	if (tm.len == tm.cap) {
		size_t cap = tm.cap ? tm.cap * 2 : 64;
		struct sleeper **h = realloc(tm.heap, cap * sizeof *h);

		if (!h) {
			/* Cannot wait: end it at once (it returns 0 early). */
			ss__spin_unlock(&tm.lock);
			if (ss__wait_claim(&s->wt))
				s->wt.result = 0;
			return false;
		}
		tm.heap = h;
		tm.cap = cap;
	}
	s->idx = tm.len;
	tm.heap[tm.len++] = s;
	heap_up(s->idx);
	first = s->idx == 0;
	ss__spin_unlock(&tm.lock);
	if (first) {
		atomic_fetch_add_explicit(&tm.kick, 1, memory_order_release);
		ss__futex_wake(&tm.kick, 1);
	}
	return true;
}

static int sleep_thread(uint64_t deadline)
{
	struct timespec ts = { (time_t)(deadline / 1000000000u),
	                       (long)(deadline % 1000000000u) };
	bool hint = ss__self() != NULL;

	if (hint)
		ss_blocking_begin();
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	if (hint)
		ss_blocking_end();
	return 0;
}

int ss_sleep_ns(uint64_t ns)
{
	uint64_t now = ss__now_ns();
	uint64_t deadline = ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
	struct sleeper s;
	int r;

	if (!ss__fiber_self())
		return sleep_thread(deadline);
	if (ss__fiber_cancelled())
		return ECANCELED;
	if (ns == 0) {
		ss_yield();
		return 0;
	}
	s.deadline = deadline;
	s.idx = SIZE_MAX;
	ss__wait_init(&s.wt);
	ss__spin_lock(&tm.lock);
	if (timer_start_locked() != 0) {
		ss__spin_unlock(&tm.lock);
		return sleep_thread(deadline);
	}
	r = ss__wait(&s.wt, sleep_commit, &s);
	if (r == ECANCELED) {
		ss__spin_lock(&tm.lock);
		if (s.idx != SIZE_MAX)
			heap_remove(s.idx);
		ss__spin_unlock(&tm.lock);
	}
	return r;
}

/* fork child: the timer thread is the parent's; so are its sleepers. */
void ss__fibers_after_fork(void)
{
	ss__stacks_after_fork();
	atomic_store_explicit(&tm.lock, 0, memory_order_relaxed);
	tm.started = false;
	tm.len = 0;
}

/* ------------------------------------------------------------ block_on */

void *ss_block_on(void *(*fn)(void *), void *arg)
{
	ss_task *t = ss_go(fn, arg);
	void *r = NULL;
	int err;

	if (!t)
		return NULL;
	err = ss_join(t, &r);
	if (err) {
		errno = err;
		return NULL;
	}
	return r;
}
