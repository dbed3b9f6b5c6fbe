/*
 * worker.c - the worker loop, starting and retiring workers, and the
 * blocking hints.
 *
 * A worker looks for work in this order: its next slot, its ring (the
 * global queue first every 61st task, so spawns from other threads are not
 * starved), the global queue, and in steal mode the other rings.  Without
 * work it searches for a while (SS_SPIN_NS or SS_SPIN_LONG_NS, below), then
 * parks (park.c).  Workers never
 * touch another worker's ring in balance mode: the balancer moves work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* How long a worker without work looks before it parks.  A park and a
 * wake-up cost the worker and the waker about 5-15 µs of CPU (more in a
 * VM) and the task the wake-up latency; a spin costs its own length.  So
 * a worker spins long (SS_SPIN_LONG_NS) only while work has mostly come
 * back within that long of the start of its searches, and otherwise
 * looks briefly (SS_SPIN_NS) and parks: work that arrives at a steady
 * pace slower than the spin (a paced pipeline) never pays for a spin that
 * cannot succeed (ss__spin_learn, internal.h; the score is owner-only). */
#define SS_SPIN_NS 2000u
#define SS_SPIN_LONG_NS 20000u
#define SS_GLOBAL_EVERY 61u
#define SS_STEAL_MAX (SS_RING_CAP / 2)

static __thread struct ss_worker *tls_worker
	__attribute__((tls_model("initial-exec")));

/* Never inlined: code on a fiber stack reads it after a switch that may
 * have moved it to another thread (fibers.c). */
__attribute__((noinline)) struct ss_worker *ss__self(void)
{
	return tls_worker;
}

void ss__worker_forget_self(void)
{
	tls_worker = NULL;
}

/* ---------------------------------------------------------- start, stop */

/* Under exec.lock: a worker could not be started (EAGAIN, ENOMEM):
 * back off, doubling from 10 ms to 1 s; queued work waits in the global
 * queue for the monitor's retry. */
static void backoff_locked(struct ss_exec *e)
{
	e->backoff_ns = e->backoff_ns ? e->backoff_ns * 2 : 10000000u;
	if (e->backoff_ns > 1000000000u)
		e->backoff_ns = 1000000000u;
	e->backoff_until_ns = ss__now_ns() + e->backoff_ns;
}

int ss__start_worker_locked(bool searching)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	uint32_t nslots = atomic_load_explicit(&e->nslots, memory_order_relaxed);
	struct ss_worker *w = NULL;
	unsigned i;
	int32_t n;
	char name[16];
	int rc;

	for (i = 0; i < c->max_threads; i++) {
		w = e->workers[i];
		if (!w || atomic_load_explicit(&w->slot_state,
		                               memory_order_relaxed) == SS_SLOT_FREE)
			break;
	}
	if (i == c->max_threads)
		return EAGAIN;
	if (!w) {
		if (posix_memalign((void **)&w, SS_CACHELINE, sizeof *w) != 0) {
			backoff_locked(e);
			return ENOMEM;
		}
		memset(w, 0, sizeof *w);
		w->id = (int)i;
		w->rng = 0x9e3779b9u * (i + 1);
		e->workers[i] = w;
		if (i >= nslots)
			atomic_store_explicit(&e->nslots, i + 1,
			                      memory_order_release);
	}
	w->start_searching = searching;
	w->retire_after = false;
	w->fork_gen = e->fork_gen;
	w->blocking_depth = 0;
	atomic_store_explicit(&w->park_word, 0, memory_order_relaxed);
	atomic_store_explicit(&w->cpuclock, SS_NO_CLOCK, memory_order_relaxed);
	atomic_store_explicit(&w->slot_state, SS_SLOT_LIVE, memory_order_release);
	n = atomic_fetch_add(&e->nthreads, 1) + 1;
	if (searching)
		atomic_fetch_add(&e->nsearching, 1);

	snprintf(name, sizeof name, "ss-worker-%u", i);
	rc = ss__thread_start(name, ss__worker_main, w);
	if (rc != 0) {
		/* EAGAIN (or ENOMEM): back off, doubling from 10 ms to 1 s;
		 * queued work waits in the global queue for the monitor. */
		if (searching)
			atomic_fetch_sub(&e->nsearching, 1);
		atomic_fetch_sub(&e->nthreads, 1);
		atomic_store_explicit(&w->slot_state, SS_SLOT_FREE,
		                      memory_order_release);
		backoff_locked(e);
		return rc;
	}
	e->backoff_ns = 0;
	atomic_fetch_add_explicit(&e->threads_created, 1, memory_order_relaxed);
	if ((uint64_t)n > atomic_load_explicit(&e->peak_threads,
	                                        memory_order_relaxed))
		atomic_store_explicit(&e->peak_threads, (uint64_t)n,
		                      memory_order_relaxed);
	ss__wake_supervisors();
	return 0;
}

static int32_t nonneg(int32_t v)
{
	return v > 0 ? v : 0;
}

/* After a task: leave the pool if it is above its active target, which
 * happens when a blocked worker comes back after a compensating thread
 * was started for it. */
static bool retire_if_above_target(struct ss_exec *e, struct ss_worker *w)
{
	const struct ss_config *c = ss__config();
	int32_t n = atomic_load_explicit(&e->nthreads, memory_order_relaxed);
	unsigned moved = 0;
	bool retire = false;
	/* Read once, here: after the slot is freed below, a new thread may
	 * take it and reset the field. */
	bool told = w->retire_after;

	if (!told &&
	    (n <= 1 || n - nonneg(atomic_load_explicit(&e->nblocked,
	                                               memory_order_relaxed)) <=
	                       (int32_t)c->threads))
		return false;
	pthread_mutex_lock(&e->lock);
	n = atomic_load(&e->nthreads);
	if (told ||
	    (n > 1 && n - nonneg(atomic_load(&e->nblocked)) > (int32_t)c->threads)) {
		/* A worker told to retire leaves the pool below its target:
		 * no token back, and the pool may grow again. */
		if (!told)
			ss__refund_token_locked();
		atomic_fetch_sub(&e->nthreads, 1);
		/* Before the slot can be reused: what the last task queued
		 * here and the record cache go with it. */
		moved = ss__worker_handoff(w);
		ss__task_cache_release(w);
		ss__fiber_worker_exit(w);
		atomic_store_explicit(&w->slot_state, SS_SLOT_FREE,
		                      memory_order_release);
		retire = true;
	}
	pthread_mutex_unlock(&e->lock);
	if (moved || (told && ss__gq_len() > 0))
		ss__notify();
	return retire;
}

void ss__worker_retire_after_task(void)
{
	struct ss_worker *w = tls_worker;

	if (w)
		w->retire_after = true;
}

void ss__set_thread_like(bool on)
{
	struct ss_worker *w = tls_worker;

	if (w)
		atomic_store_explicit(&w->thread_like, on, memory_order_relaxed);
}

void ss__task_progress(void)
{
	struct ss_worker *w = tls_worker;
	uint64_t tick;

	if (!w)
		return;
	tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
	if (!(tick & 1))
		return;
	/* As run_one() between two tasks: the tick first (still odd), then
	 * the monitor's mark, with the same seq_cst pairing. */
	atomic_store_explicit(&w->tick, tick + 2, memory_order_relaxed);
	ss__block_unmark(w, SS_BLOCKED_MON);
}

bool ss__worker_abandon(void)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *w = tls_worker;
	unsigned moved;

	if (!w || !ss__task_abandon_current(w))
		return false;
	/* What run_one() would have done after the task. */
	atomic_store_explicit(&w->tick,
	                      atomic_load_explicit(&w->tick, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	if (atomic_exchange(&w->blocked, 0))
		atomic_fetch_sub(&e->nblocked, 1);
	w->blocking_depth = 0;
	atomic_store_explicit(&w->thread_like, false, memory_order_relaxed);
	/* Leave as a retiring worker does, without a token refund: the pool
	 * is now below its target and ss__grow() may replace this thread. */
	pthread_mutex_lock(&e->lock);
	atomic_fetch_sub(&e->nthreads, 1);
	moved = ss__worker_handoff(w);
	ss__task_cache_release(w);
	ss__fiber_worker_exit(w);
	atomic_store_explicit(&w->slot_state, SS_SLOT_FREE, memory_order_release);
	pthread_mutex_unlock(&e->lock);
	atomic_fetch_add_explicit(&e->threads_exited, 1, memory_order_relaxed);
	tls_worker = NULL;
	if (moved || ss__gq_len() > 0)
		ss__notify();
	return true;
}

/* ---------------------------------------------------------- finding work */

static struct ss_task *find_local(struct ss_worker *w, uint64_t ntask)
{
	struct ss_task *t;

	if (atomic_load_explicit(&w->next, memory_order_relaxed)) {
		t = atomic_exchange_explicit(&w->next, NULL, memory_order_acq_rel);
		if (t)
			return t;
	}
	if (ntask % SS_GLOBAL_EVERY == 0 && (t = ss__gq_pop(w)))
		return t;
	if ((t = ss__ring_pop(&w->ring)))
		return t;
	return ss__gq_pop(w);
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Steal mode: take half of a random victim's ring. */
static struct ss_task *steal(struct ss_worker *w)
{
	struct ss_exec *e = &ss__exec;
	struct ss_task *buf[SS_STEAL_MAX];
	uint32_t n = atomic_load_explicit(&e->nslots, memory_order_acquire);
	uint32_t start = xorshift(&w->rng);

	for (uint32_t i = 0; i < n; i++) {
		struct ss_worker *v = e->workers[(start + i) % n];
		unsigned len, want, got;

		if (!v || v == w)
			continue;
		len = ss__ring_len(&v->ring);
		if (len == 0)
			continue;
		/* At most half the ring: buf holds SS_STEAL_MAX. */
		want = (len + 1) / 2;
		if (want > SS_STEAL_MAX)
			want = SS_STEAL_MAX;
		got = ss__ring_take(&v->ring, buf, want);
		if (got == 0)
			continue;
		for (unsigned k = 1; k < got; k++)
			if (!ss__ring_push(&w->ring, buf[k]))
				ss__gq_push(buf[k]);
		atomic_fetch_add_explicit(&w->n_steals, got, memory_order_relaxed);
		return buf[0];
	}
	return NULL;
}

void ss__search_learn(struct ss_worker *w, uint64_t now)
{
	ss__spin_learn(&w->spin_score, now - w->search_start, SS_SPIN_LONG_NS);
}

static struct ss_task *search(struct ss_worker *w, bool steal_mode,
                              uint64_t ntask)
{
	uint64_t now = w->search_start, deadline;
	struct ss_task *t;

	deadline = now + ss__spin_ns(w->spin_score, SS_SPIN_NS, SS_SPIN_LONG_NS);
	for (unsigned i = 1;; i++) {
		if ((t = find_local(w, ntask)) || (steal_mode && (t = steal(w)))) {
			if (i > 8)  /* found before the first clock read: a hit */
				now = ss__now_ns();
			ss__search_learn(w, now);
			return t;
		}
		/* The clock is read every 8th round: in a VM it costs more
		 * than a look at the queues. */
		if (i % 8 == 0 && (now = ss__now_ns()) > deadline)
			return NULL;
		ss__cpu_relax();
	}
}

/* ---------------------------------------------------------- the loop */

static void run_one(struct ss_exec *e, struct ss_worker *w, struct ss_task *t)
{
	uint64_t tick = atomic_load_explicit(&w->tick, memory_order_relaxed);

	atomic_store_explicit(&w->cur_fiber, t->fiber != NULL,
	                      memory_order_relaxed);
	atomic_store_explicit(&w->entry,
	                      t->fn == ss__group_run ? (void *)t->gfn
	                                             : (void *)t->fn,
	                      memory_order_relaxed);
	atomic_store_explicit(&w->tick, tick + 1, memory_order_relaxed);
	ss__task_run(w, t);
	atomic_store_explicit(&w->tick, tick + 2, memory_order_relaxed);
	/* seq_cst exchange, unconditionally: pairs with the monitor's mark
	 * so that a worker is never left counted as blocked (monitor.c). */
	if (atomic_exchange(&w->blocked, 0))
		atomic_fetch_sub(&e->nblocked, 1);
	w->blocking_depth = 0; /* a task that returned inside a hint */
}

void *ss__worker_main(void *arg)
{
	struct ss_worker *w = arg;
	struct ss_exec *e = &ss__exec;
	bool steal_mode = ss__config()->steal;
	bool searching = w->start_searching;
	uint64_t ntask = 1;
	unsigned futile = 0;
	char name[16];
	clockid_t clk;

	tls_worker = w;
	snprintf(name, sizeof name, "ss-worker-%d", w->id);
	ss__thread_set_name(name);
	if (pthread_getcpuclockid(pthread_self(), &clk) == 0)
		atomic_store_explicit(&w->cpuclock, clk, memory_order_relaxed);
	atomic_store_explicit(&w->tid, (int32_t)gettid(), memory_order_relaxed);
	atomic_store_explicit(&w->born_ns, ss__now_ns(), memory_order_relaxed);
	atomic_store_explicit(&w->parked_ns, 0, memory_order_relaxed);
	ss__diag_worker_start(w);

	for (;;) {
		struct ss_task *t = find_local(w, ntask);

		if (!t && steal_mode)
			t = steal(w);
		if (!t) {
			/* Spin only while searchers are few (Go and tokio cap
			 * them at half the workers): more spinners find no more
			 * work, they only take CPU from the threads that make
			 * it.  The others park at once. */
			bool spin = true;
			if (!searching) {
				int32_t s = atomic_fetch_add(&e->nsearching, 1);
				int32_t n = atomic_load_explicit(
					&e->nthreads, memory_order_relaxed);
				spin = s < (n > 3 ? n / 2 : 1);
				searching = true;
			}
			w->search_start = ss__now_ns();
			t = spin ? search(w, steal_mode, ntask) : NULL;
			if (!t) {
				futile = ss__gq_len() > 0 ? futile + 1 : 0;
				if (ss__park(w, futile))
					break; /* idle timeout: retired */
				continue;       /* woken, counted as searching */
			}
		}
		futile = 0;
		if (searching) {
			searching = false;
			/* The last searcher to find work wakes another if
			 * more is queued (tokio's chained wake-up). */
			if (atomic_fetch_sub(&e->nsearching, 1) == 1 &&
			    ss__gq_len() > 0)
				ss__notify();
		}
		run_one(e, w, t);
		ntask++;
		if (unlikely(w->fork_gen != e->fork_gen))
			return NULL; /* a task forked: this is the child's copy */
		if (retire_if_above_target(e, w))
			break;
	}
	atomic_fetch_add_explicit(&e->threads_exited, 1, memory_order_relaxed);
	tls_worker = NULL;
	return NULL;
}

/* ---------------------------------------------------------- blocking */

/*
 * The count goes up before the mark is published and down after it is
 * withdrawn, so nblocked may briefly count a worker that is not marked,
 * never the reverse: a transient undercount could make a worker retire
 * while the pool sits at its target.
 */
void ss__block_mark(struct ss_worker *w, uint32_t bit)
{
	atomic_fetch_add(&ss__exec.nblocked, 1);
	if (atomic_fetch_or(&w->blocked, bit) != 0)
		atomic_fetch_sub(&ss__exec.nblocked, 1); /* counted already */
}

void ss__block_unmark(struct ss_worker *w, uint32_t bit)
{
	if (atomic_fetch_and(&w->blocked, ~bit) == bit)
		atomic_fetch_sub(&ss__exec.nblocked, 1);
}

void ss__set_entry(void *fn)
{
	struct ss_worker *w = tls_worker;

	if (w)
		atomic_store_explicit(&w->entry, fn, memory_order_relaxed);
}

void ss_blocking_begin(void)
{
	struct ss_worker *w = tls_worker;

	if (!w || w->blocking_depth++ > 0)
		return;
	/* Go's handoff on a blocking syscall: stop counting as active, give
	 * the queue away, and let the pool wake or add a worker for it. */
	ss__block_mark(w, SS_BLOCKED_HINT);
	if (ss__worker_handoff(w) || ss__gq_len())
		ss__notify();
}

void ss_blocking_end(void)
{
	struct ss_worker *w = tls_worker;

	if (!w || w->blocking_depth == 0 || --w->blocking_depth > 0)
		return;
	ss__block_unmark(w, SS_BLOCKED_HINT);
}
