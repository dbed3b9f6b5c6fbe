/*
 * task.c - task records, handles, and spawn / join / detach / cancel.
 *
 * Records are type-stable: they live in chunks that are never freed, are
 * recycled through free lists (a small cache per worker, one global list),
 * and are found from a handle by index.  The state word and its invariant
 * are described in internal.h: every transition is one CAS on the whole
 * 64-bit word, generation included, so stale handles fail with ESRCH and
 * the last reference frees a record exactly once.
 *
 * A handle is gen << 32 | index << 1 | 1: never NULL, never a valid
 * (aligned) pointer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

_Static_assert(sizeof(void *) == 8, "handles need 64-bit pointers");

#define CHUNK_SHIFT 10u
#define CHUNK (1u << CHUNK_SHIFT)
#define MAX_CHUNKS 65536u
#define CACHE_MAX 256u
#define CACHE_REFILL 32u
/* A joiner outside the pool spins JOIN_SPIN_NS, or JOIN_SPIN_LONG_NS while
 * its joins have mostly ended within that (ss__spin_learn).  A joiner on a
 * worker waits for a task that another worker runs, usually a child in
 * fork-join code that ends within microseconds: it spins
 * JOIN_SPIN_WORKER_NS, and beyond that the monitor takes its queue. */
#define JOIN_SPIN_NS 2000u
#define JOIN_SPIN_LONG_NS 50000u
#define JOIN_SPIN_WORKER_NS 10000u

/* chunks[i] is published (release) before nrecords covers it (release);
 * readers load nrecords with acquire, then the chunk pointer. */
static _Atomic(struct ss_task *) chunks[MAX_CHUNKS];
static _Atomic uint32_t nrecords;

static __thread struct ss_task *tls_task
	__attribute__((tls_model("initial-exec")));

/* Never inlined, as ss__self(). */
__attribute__((noinline)) struct ss_task *ss__current_task(void)
{
	return tls_task;
}

void ss__task_set_current(struct ss_task *t)
{
	tls_task = t;
}

static inline uint64_t mk(uint32_t gen, uint32_t flags)
{
	return (uint64_t)gen << 32 | flags;
}

static inline struct ss_task *record(uint32_t idx)
{
	struct ss_task *c = atomic_load_explicit(&chunks[idx >> CHUNK_SHIFT],
	                                         memory_order_acquire);
	return &c[idx & (CHUNK - 1)];
}

static inline ss_task *encode(struct ss_task *t, uint32_t gen)
{
	return (ss_task *)(uintptr_t)((uint64_t)gen << 32 |
	                              (uint64_t)t->index << 1 | 1);
}

/* The record a handle names, or NULL with *err set (EINVAL for NULL or a
 * value that is no handle, ESRCH for an index never handed out). */
static struct ss_task *decode(ss_task *h, uint32_t *gen, int *err)
{
	uint64_t v = (uint64_t)(uintptr_t)h;
	uint32_t idx = (uint32_t)(v >> 1) & 0x7fffffffu;

	if (!(v & 1)) {
		*err = EINVAL;
		return NULL;
	}
	if (idx >= atomic_load_explicit(&nrecords, memory_order_acquire)) {
		*err = ESRCH;
		return NULL;
	}
	*gen = (uint32_t)(v >> 32);
	return record(idx);
}

/* ---------------------------------------------------------- allocation */

/* Under free_lock: add a chunk of records to the global free list. */
static bool grow_records_locked(struct ss_exec *e)
{
	uint32_t n = atomic_load_explicit(&nrecords, memory_order_relaxed);
	struct ss_task *c;

	if (n / CHUNK >= MAX_CHUNKS)
		return false;
	if (posix_memalign((void **)&c, SS_CACHELINE, CHUNK * sizeof *c) != 0)
		return false;
	memset(c, 0, CHUNK * sizeof *c);
	for (uint32_t i = 0; i < CHUNK; i++) {
		c[i].index = n + i;
		atomic_init(&c[i].state, mk(1, SS_FREE));
		c[i].link = i + 1 < CHUNK ? &c[i + 1] : e->free_list;
	}
	e->free_list = c;
	atomic_store_explicit(&chunks[n / CHUNK], c, memory_order_release);
	atomic_store_explicit(&nrecords, n + CHUNK, memory_order_release);
	return true;
}

struct ss_task *ss__task_alloc(void)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *w = ss__self();
	struct ss_task *t;

	if (w && w->cache) {
		t = w->cache;
		w->cache = t->link;
		w->ncache--;
		return t;
	}
	pthread_mutex_lock(&e->free_lock);
	if (!e->free_list && !grow_records_locked(e)) {
		pthread_mutex_unlock(&e->free_lock);
		return NULL;
	}
	t = e->free_list;
	e->free_list = t->link;
	/* A worker takes a few more so its next spawns skip the lock. */
	while (w && w->ncache < CACHE_REFILL && e->free_list) {
		struct ss_task *x = e->free_list;
		e->free_list = x->link;
		x->link = w->cache;
		w->cache = x;
		w->ncache++;
	}
	pthread_mutex_unlock(&e->free_lock);
	return t;
}

void ss__task_free(struct ss_task *t)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *w = ss__self();

	if (t->fiber) {
		ss__fiber_release(t->fiber);
		t->fiber = NULL;
	}

	if (w) {
		t->link = w->cache;
		w->cache = t;
		if (++w->ncache <= CACHE_MAX)
			return;
		/* Give half back so records freed here can serve others. */
		struct ss_task *first = w->cache, *last = first;
		for (unsigned i = 1; i < CACHE_MAX / 2; i++)
			last = last->link;
		w->cache = last->link;
		w->ncache -= CACHE_MAX / 2;
		pthread_mutex_lock(&e->free_lock);
		last->link = e->free_list;
		e->free_list = first;
		pthread_mutex_unlock(&e->free_lock);
		return;
	}
	pthread_mutex_lock(&e->free_lock);
	t->link = e->free_list;
	e->free_list = t;
	pthread_mutex_unlock(&e->free_lock);
}

void ss__task_cache_release(struct ss_worker *w)
{
	struct ss_exec *e = &ss__exec;
	struct ss_task *last = w->cache;

	if (!last)
		return;
	while (last->link)
		last = last->link;
	pthread_mutex_lock(&e->free_lock);
	last->link = e->free_list;
	e->free_list = w->cache;
	pthread_mutex_unlock(&e->free_lock);
	w->cache = NULL;
	w->ncache = 0;
}

/* ---------------------------------------------------------- transitions */

/* Flags left after dropping `drop`; the whole new word, freeing form when
 * no reference is left and the phase is final. */
static inline uint64_t after_drop(uint64_t s, uint32_t drop, bool *last)
{
	uint32_t f = SS_FLAGS(s) & ~drop;

	*last = !(f & (SS_HANDLE | SS_SCHED)) && SS_PH(f) >= SS_PH_DONE;
	return *last ? mk(SS_GEN(s) + 1, SS_FREE) : mk(SS_GEN(s), f);
}

/* Drop references (and set `set`) on a record whose state is s (reloaded
 * on failure). */
static void drop_refs(struct ss_task *t, uint64_t s, uint32_t drop,
                      uint32_t set)
{
	bool last;

	while (!atomic_compare_exchange_weak_explicit(
		&t->state, &s, after_drop(s | set, drop, &last),
		memory_order_acq_rel, memory_order_acquire))
		;
	if (last)
		ss__task_free(t);
}

static void wake_joiner(struct ss_task *t)
{
	/* done_word: 0 running, 2 the joiner sleeps on it, 3 a joining
	 * fiber parked for it (t->join_fiber), 1 done.  The joiner frees the
	 * record only after it reads 1, so the exchange is safe; the wake
	 * may then reach a reused record, which is only a spurious wake-up
	 * (records are never unmapped).  No system call while the joiner is
	 * still spinning.  A parked fiber cannot read 1 before it is made
	 * ready, so join_fiber is still this join's. */
	uint32_t old = atomic_exchange_explicit(&t->done_word, 1,
	                                        memory_order_acq_rel);

	if (old == 2)
		ss__futex_wake(&t->done_word, 1);
	else if (old == 3)
		ss__fiber_ready(t->join_fiber);
}

/* t ran to completion with result r: publish it, drop `drop`. */
static void complete(struct ss_task *t, void *r, uint32_t drop, bool may_wake)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
	bool last;

	/* Dropping the handle here means a joiner ran it inline. */
	uint32_t set = SS_PH_DONE | (drop & SS_HANDLE ? SS_JOINED : 0);

	t->result = r;
	for (;;) {
		uint64_t n = after_drop(mk(SS_GEN(s), (SS_FLAGS(s) & ~SS_PHASE) | set),
		                        drop, &last);
		if (atomic_compare_exchange_weak_explicit(&t->state, &s, n,
		                                          memory_order_acq_rel,
		                                          memory_order_relaxed))
			break;
	}
	if (may_wake && (SS_FLAGS(s) & SS_JOINING))
		wake_joiner(t);
	if (last)
		ss__task_free(t);
}

static void *call(struct ss_task *t)
{
	struct ss_task *outer = tls_task;
	void *r;

	t->outer = outer;
	tls_task = t;
	r = t->fn(t->arg);
	tls_task = outer;
	t->outer = NULL;
	return r;
}

/* Run t, claimed (SCHEDULED -> RUNNING) by this worker, then complete it
 * dropping `drop`. */
/* t's function returned r on worker w: count it, then complete it
 * dropping `drop`.  Count before completing: a joiner woken by complete()
 * may read ss_stats() at once. */
static void finish(struct ss_worker *w, struct ss_task *t, void *r,
                   uint32_t drop)
{
	if (unlikely(t->fn == ss__group_run))
		ss__group_task_done(w, t, r);
	else
		atomic_fetch_add_explicit(&w->n_completed, 1,
		                          memory_order_relaxed);
	complete(t, r, drop, true);
}

void ss__task_finish(struct ss_worker *w, struct ss_task *t, void *r)
{
	finish(w, t, r, SS_SCHED);
}

static void run_claimed(struct ss_worker *w, struct ss_task *t, uint32_t drop)
{
	finish(w, t, call(t), drop);
}

bool ss__task_abandon_current(struct ss_worker *w)
{
	struct ss_task *t = tls_task;

	/* Only a task that ss__task_run claimed at the top of the worker's
	 * stack: a nested one would take its outer tasks' frames with it. */
	if (!t || t->outer || t->fn == ss__group_run)
		return false;
	tls_task = NULL;
	atomic_fetch_add_explicit(&w->n_completed, 1, memory_order_relaxed);
	complete(t, NULL, SS_SCHED, true);
	return true;
}

void ss__task_run(struct ss_worker *w, struct ss_task *t)
{
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);

	/* A parked fiber made ready again: no claim, it runs already.  The
	 * flag is in the word just loaded: a plain task's record is not
	 * looked at further. */
	if (unlikely(SS_FLAGS(s) & SS_FIBER) && ss__fiber_started(t)) {
		ss__fiber_run(w, t);
		return;
	}
	for (;;) {
		if (SS_PH(s) != SS_PH_SCHEDULED) {
			/* Cancelled, or run by a joiner: only the queue's
			 * reference is left to drop. */
			drop_refs(t, s, SS_SCHED, 0);
			return;
		}
		if (atomic_compare_exchange_weak_explicit(
			    &t->state, &s, s | SS_PH_RUNNING, memory_order_acquire,
			    memory_order_acquire))
			break;
	}
	if (unlikely(SS_FLAGS(s) & SS_FIBER))
		ss__fiber_run(w, t);
	else
		run_claimed(w, t, SS_SCHED);
}

bool ss__run_group_task_here(struct ss_worker *w, struct ss_group *g)
{
	uint64_t head = atomic_load_explicit(&w->ring.head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&w->ring.tail, memory_order_relaxed);

	/* Newest first: in fork-join code those are the waiter's children.
	 * A slot may be claimed by another consumer meanwhile; its record
	 * is type-stable, and the CAS on the whole state word (generation
	 * included) makes a stale look harmless. */
	while (tail-- > head) {
		struct ss_task *t = atomic_load_explicit(
			&w->ring.slot[tail & SS_RING_MASK], memory_order_relaxed);
		uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);

		if (SS_PH(s) != SS_PH_SCHEDULED || (SS_FLAGS(s) & SS_FREE) ||
		    atomic_load_explicit(&t->group, memory_order_relaxed) != g ||
		    (SS_FLAGS(s) & SS_FIBER)) /* it needs a stack of its own */
			continue;
		if (!atomic_compare_exchange_strong_explicit(
			    &t->state, &s, s | SS_PH_RUNNING, memory_order_acquire,
			    memory_order_relaxed))
			continue;
		/* The ring keeps its reference: the pop drops it later. */
		run_claimed(w, t, 0);
		return true;
	}
	return false;
}

/* ---------------------------------------------------------- submit */

/* Owner only: pop every record of w's ring once; drop the references of
 * those that no longer wait to run (claimed in place, cancelled), push
 * the others back.  Returns whether a slot was freed. */
static bool ring_compact(struct ss_worker *w)
{
	unsigned n = ss__ring_len(&w->ring);
	bool freed = false;
	struct ss_task *x;

	while (n-- > 0 && (x = ss__ring_pop(&w->ring))) {
		uint64_t s = atomic_load_explicit(&x->state, memory_order_acquire);
		/* A parked fiber made ready is RUNNING and must stay. */
		if (SS_PH(s) != SS_PH_SCHEDULED &&
		    !((SS_FLAGS(s) & SS_FIBER) && ss__fiber_started(x))) {
			drop_refs(x, s, SS_SCHED, 0);
			freed = true;
		} else if (!ss__ring_push(&w->ring, x)) {
			ss__gq_push(x); /* cannot happen: we just took a slot */
		}
	}
	return freed;
}

void ss__task_submit(struct ss_task *t)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *w = ss__self();

	if (w && !atomic_load_explicit(&w->blocked, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&w->n_spawned, 1, memory_order_relaxed);
		if (ss__ring_push(&w->ring, t)) {
			if (ss__config()->steal) {
				/* Work-stealing: thieves are told at once. */
				atomic_thread_fence(memory_order_seq_cst);
				ss__notify();
			}
			return;
		}
		/* Ring full.  In fork-join code it fills with records that
		 * waiters already ran in place (ss__run_group_task_here):
		 * drop those first, keeping the others in order. */
		if (ring_compact(w) && ss__ring_push(&w->ring, t))
			return;
		/* Still full: move half of it, and t, to the global queue. */
		struct ss_task *batch[SS_RING_CAP / 2 + 1];
		unsigned n = ss__ring_take(&w->ring, batch, SS_RING_CAP / 2);
		batch[n++] = t;
		ss__gq_push_batch(batch, n);
	} else {
		if (w)
			atomic_fetch_add_explicit(&w->n_spawned, 1,
			                          memory_order_relaxed);
		else
			atomic_fetch_add_explicit(&e->ext_spawned, 1,
			                          memory_order_relaxed);
		ss__gq_push(t);
	}
	ss__notify();
}

/* A fresh record in state SCHEDULED with the given references. */
static struct ss_task *prepare(void *(*fn)(void *), void *arg, uint32_t refs)
{
	struct ss_task *t = ss__task_alloc();

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	t->result = NULL;
	t->outer = NULL;
	t->fiber = NULL;
	t->join_fiber = NULL;
	atomic_store_explicit(&t->group, NULL, memory_order_relaxed);
	atomic_store_explicit(&t->done_word, 0, memory_order_relaxed);
	/* Published to the worker by the queue (release/acquire). */
	atomic_store_explicit(
		&t->state,
		mk(SS_GEN(atomic_load_explicit(&t->state, memory_order_relaxed)),
		   SS_PH_SCHEDULED | SS_SCHED | refs),
		memory_order_relaxed);
	return t;
}

/* ss_spawn and ss_go: a handle for a new task, a fiber when `fiber`. */
static ss_task *spawn(void *(*fn)(void *), void *arg, bool fiber)
{
	struct ss_fiber *f = NULL;
	struct ss_task *t;

	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	if (ss__start() != 0) {
		errno = EAGAIN;
		return NULL;
	}
	if (fiber && !(f = ss__fiber_new())) {
		errno = ENOMEM;
		return NULL;
	}
	t = fiber ? ss__task_new_fiber(fn, arg, SS_HANDLE, f)
	          : prepare(fn, arg, SS_HANDLE);
	if (!t) {
		if (f)
			ss__fiber_release(f);
		errno = ENOMEM;
		return NULL;
	}
	ss_task *h = encode(t, SS_GEN(atomic_load_explicit(&t->state,
	                                                   memory_order_relaxed)));
	ss__task_submit(t);
	return h;
}

ss_task *ss_spawn(void *(*fn)(void *), void *arg)
{
	return spawn(fn, arg, false);
}

struct ss_task *ss__task_new_internal(void *(*fn)(void *), void *arg)
{
	return prepare(fn, arg, 0);
}

struct ss_task *ss__task_new_fiber(void *(*fn)(void *), void *arg,
                                   uint32_t refs, struct ss_fiber *f)
{
	struct ss_task *t = prepare(fn, arg, refs | SS_FIBER);

	if (t)
		t->fiber = f;
	return t;
}

ss_task *ss_go(void *(*fn)(void *), void *arg)
{
	return spawn(fn, arg, true);
}

/* ---------------------------------------------------------- join etc. */

/* What a state word says to an operation through a handle of generation
 * gen: ESRCH stale, EINVAL detached or being joined, else 0. */
static int handle_check(uint64_t s, uint32_t gen)
{
	if (SS_GEN(s) != gen || (SS_FLAGS(s) & (SS_FREE | SS_JOINED)))
		return ESRCH;
	if (!(SS_FLAGS(s) & SS_HANDLE) || (SS_FLAGS(s) & SS_JOINING))
		return EINVAL;
	return 0;
}

/* The spin score of this thread's joins (ss__spin_learn), from 0. */
static __thread unsigned tls_join_score
	__attribute__((tls_model("initial-exec")));

static void wait_done(struct ss_task *t, struct ss_worker *w)
{
	uint64_t start = ss__now_ns();
	uint64_t deadline = start + (w ? JOIN_SPIN_WORKER_NS
	                               : ss__spin_ns(tls_join_score, JOIN_SPIN_NS,
	                                             JOIN_SPIN_LONG_NS));
	uint32_t zero = 0;

	for (unsigned i = 1; atomic_load_explicit(&t->done_word,
	                                          memory_order_acquire) != 1;
	     i++) {
		/* The clock every 8th round: in a VM it costs more than a
		 * look at the word. */
		if (i % 8 == 0 && ss__now_ns() > deadline)
			break;
		ss__cpu_relax();
	}
	if (atomic_load_explicit(&t->done_word, memory_order_acquire) != 1) {
		/* Announce the sleep (0 -> 2) so the completer wakes us. */
		atomic_compare_exchange_strong_explicit(&t->done_word, &zero, 2,
		                                        memory_order_acq_rel,
		                                        memory_order_acquire);
		while (atomic_load_explicit(&t->done_word, memory_order_acquire) != 1)
			ss__futex_wait(&t->done_word, 2, 0);
	}
	if (!w)
		ss__spin_learn(&tls_join_score, ss__now_ns() - start,
		               JOIN_SPIN_LONG_NS);
}

/* ss__fiber_park's commit for a joining fiber: announce it (0 -> 3)
 * unless the task is done already (1: resume at once). */
static bool join_commit(void *arg)
{
	struct ss_task *t = arg;
	uint32_t zero = 0;

	return atomic_compare_exchange_strong_explicit(&t->done_word, &zero, 3,
	                                               memory_order_acq_rel,
	                                               memory_order_acquire);
}

/* A fiber joins: it parks until the completer makes it ready. */
static void fiber_wait_done(struct ss_task *t, struct ss_task *me)
{
	t->join_fiber = me;
	while (atomic_load_explicit(&t->done_word, memory_order_acquire) != 1)
		ss__fiber_park(join_commit, t);
}

int ss_join(ss_task *h, void **result)
{
	struct ss_worker *w = ss__self();
	struct ss_task *t;
	uint32_t gen;
	uint64_t s;
	int err;

	if (!(t = decode(h, &gen, &err)))
		return err;
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	for (;;) {
		if ((err = handle_check(s, gen)))
			return err;
		if (t == tls_task)
			return EDEADLK;
		if (w && SS_PH(s) == SS_PH_SCHEDULED &&
		    !(SS_FLAGS(s) & SS_FIBER)) {
			/* Inside a task: run the unstarted task ourselves, so
			 * a pool full of joiners can never deadlock.  Not a
			 * fiber: it needs a stack of its own. */
			if (!atomic_compare_exchange_weak_explicit(
				    &t->state, &s,
				    s | SS_PH_RUNNING | SS_JOINING,
				    memory_order_acquire, memory_order_acquire))
				continue;
			void *r = call(t);
			atomic_fetch_add_explicit(&w->n_completed, 1,
			                          memory_order_relaxed);
			complete(t, r, SS_HANDLE | SS_JOINING, false);
			if (result)
				*result = r;
			return 0;
		}
		if (atomic_compare_exchange_weak_explicit(&t->state, &s,
		                                          s | SS_JOINING,
		                                          memory_order_acquire,
		                                          memory_order_acquire))
			break;
	}
	/* If it was not final when we claimed the join, the completer (or a
	 * canceller) saw JOINING and will publish done_word. */
	if (SS_PH(s) < SS_PH_DONE) {
		struct ss_task *me = ss__fiber_self();

		if (me)
			fiber_wait_done(t, me);
		else
			wait_done(t, w);
	}
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	err = SS_PH(s) == SS_PH_CANCELLED ? ECANCELED : 0;
	if (!err && result)
		*result = t->result;
	drop_refs(t, s, SS_HANDLE | SS_JOINING, SS_JOINED);
	return err;
}

int ss_detach(ss_task *h)
{
	struct ss_task *t;
	uint32_t gen;
	uint64_t s;
	bool last;
	int err;

	if (!(t = decode(h, &gen, &err)))
		return err;
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	do {
		if ((err = handle_check(s, gen)))
			return err;
	} while (!atomic_compare_exchange_weak_explicit(
		&t->state, &s, after_drop(s, SS_HANDLE, &last),
		memory_order_acq_rel, memory_order_acquire));
	if (last)
		ss__task_free(t);
	return 0;
}

int ss_cancel(ss_task *h)
{
	struct ss_task *t;
	uint32_t gen;
	uint64_t s;
	int err;

	if (!(t = decode(h, &gen, &err)))
		return err;
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	do {
		/* A canceller may race a joiner: JOINING is no error here. */
		if ((err = handle_check(s & ~(uint64_t)SS_JOINING, gen)))
			return err;
		if (SS_PH(s) == SS_PH_CANCELLED)
			return 0;
		if (SS_PH(s) != SS_PH_SCHEDULED) {
			/* A fiber that runs: ask it to stop (smolscale.h). */
			if (SS_PH(s) == SS_PH_RUNNING && (SS_FLAGS(s) & SS_FIBER))
				ss__fiber_cancel(t);
			return EBUSY;
		}
	} while (!atomic_compare_exchange_weak_explicit(
		&t->state, &s, s | SS_PH_CANCELLED, memory_order_acq_rel,
		memory_order_acquire));
	atomic_fetch_add_explicit(&ss__exec.cancelled, 1, memory_order_relaxed);
	if (SS_FLAGS(s) & SS_JOINING)
		wake_joiner(t);
	return 0;
}

/* ---------------------------------------------------------- fork */

void ss__tasks_after_fork(struct ss_task *keep)
{
	struct ss_exec *e = &ss__exec;
	uint32_t n = atomic_load_explicit(&nrecords, memory_order_relaxed);

	/* Single-threaded here (the child of fork): plain rebuild.
	 *
	 * The tasks on the forking thread's stack (keep, and the tasks it
	 * runs inside of through inline joins) go on running here: mark them
	 * KEEP so the walk leaves them alone.  The outermost one was popped
	 * by the worker, whose SCHED reference completes it; the inner ones
	 * were claimed by joins, and their SCHED stood for a queue entry
	 * that no longer exists. */
	for (struct ss_task *t = keep; t; t = t->outer) {
		uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
		uint32_t drop = t->outer ? SS_SCHED : 0;
		atomic_store_explicit(&t->state, (s & ~(uint64_t)drop) | SS_KEEP,
		                      memory_order_relaxed);
	}
	e->free_list = NULL;
	for (uint32_t i = n; i-- > 0;) {
		struct ss_task *t = record(i);
		uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
		uint32_t f = SS_FLAGS(s);

		if (f & SS_KEEP) {
			atomic_store_explicit(&t->state, s & ~(uint64_t)SS_KEEP,
			                      memory_order_relaxed);
			continue;
		}
		if (!(f & SS_FREE) && SS_PH(f) < SS_PH_DONE) {
			/* Queued or running in the parent: it never finishes
			 * here.  Joins see ECANCELED; its group stops
			 * waiting for it. */
			ss__group_task_dropped(t);
			f = (f & ~(SS_PHASE | SS_SCHED | SS_JOINING)) |
			    SS_PH_CANCELLED;
			atomic_store_explicit(&t->done_word, 1,
			                      memory_order_relaxed);
		} else if (!(f & SS_FREE)) {
			f &= ~SS_SCHED; /* a queued reference that is gone */
		}
		if (!(f & SS_FREE) && !(f & SS_HANDLE)) {
			s = mk(SS_GEN(s) + 1, SS_FREE);
			f = SS_FREE;
		} else {
			s = mk(SS_GEN(s), f);
		}
		atomic_store_explicit(&t->state, s, memory_order_relaxed);
		if (f & SS_FREE) {
			t->link = e->free_list;
			e->free_list = t;
		}
	}
}
