/*
 * park.c - futexes, parking and waking workers, growing the pool, and the
 * timer-less sleep of the balancer and the monitor.
 *
 * The spawner/parker handshake (no lost wake-ups):
 *   spawner: push to the global queue (q_len += n, seq_cst);
 *            read nsearching (seq_cst); if 0, wake a parked worker
 *   parker:  join the idle list (nidle++, seq_cst); nsearching-- (seq_cst);
 *            read q_len (seq_cst); if nonzero, leave the list and search
 * In the single total order of these seq_cst operations, either the
 * spawner sees the parker still searching (and the parker's re-read then
 * sees the push), or the spawner sees no searcher and finds the parker on
 * the idle list.  A woken worker is counted as searching by its waker
 * (nsearching++ before nidle--), so one spawn burst wakes one worker; the
 * last searcher that finds work wakes the next (worker.c), as in tokio.
 *
 * The balancer and the monitor sleep without a timer once every worker has
 * been parked, and the global queue empty, at each of their looks for
 * SS_SETTLE_NS (ss__sleeper_settled).  Each change that
 * ends such idleness (a worker leaves the idle list, a worker starts) is
 * followed by ss__wake_supervisors(); a sleeper sets `sleeping` (seq_cst)
 * before it tests ss__pool_idle(), the same Dekker shape as above.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

int ss__futex_wait(_Atomic uint32_t *addr, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ns) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tp = &ts;
	}
	if (syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0) == -1 &&
	    errno == ETIMEDOUT)
		return ETIMEDOUT;
	return 0;
}

void ss__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---------------------------------------------------------- supervisors */

bool ss__pool_idle(void)
{
	struct ss_exec *e = &ss__exec;

	return atomic_load(&e->q_len) == 0 &&
	       atomic_load(&e->nidle) == atomic_load(&e->nthreads);
}

void ss__sleeper_wake(struct ss_sleeper *s)
{
	if (atomic_load(&s->sleeping) && atomic_exchange(&s->sleeping, 0)) {
		atomic_fetch_add_explicit(&s->word, 1, memory_order_release);
		ss__futex_wake(&s->word, 1);
	}
}

void ss__wake_supervisors(void)
{
	ss__sleeper_wake(&ss__exec.monitor);
	ss__sleeper_wake(&ss__exec.balancer);
}

bool ss__sleeper_settled(struct ss_sleeper *s)
{
	uint64_t now;

	if (!ss__pool_idle()) {
		s->idle_since_ns = 0;
		return false;
	}
	now = ss__now_ns();
	if (!s->idle_since_ns)
		s->idle_since_ns = now;
	return now - s->idle_since_ns >= SS_SETTLE_NS;
}

void ss__sleeper_sleep_if_idle(struct ss_sleeper *s)
{
	atomic_store(&s->sleeping, 1);
	if (!ss__pool_idle()) {
		atomic_store(&s->sleeping, 0);
		return;
	}
	/* Re-read the word on every round: a waker from an earlier sleep may
	 * bump it late, and a stale value would make the wait return at once
	 * forever. */
	for (;;) {
		uint32_t seq = atomic_load_explicit(&s->word, memory_order_acquire);
		if (!atomic_load(&s->sleeping))
			break;
		ss__futex_wait(&s->word, seq, 0);
	}
}

void ss__sleeper_nap(struct ss_sleeper *s, uint64_t ns)
{
	uint32_t seq = atomic_load_explicit(&s->word, memory_order_acquire);

	ss__futex_wait(&s->word, seq, ns);
}

/* ---------------------------------------------------------- waking */

/* Take the most recently parked worker off the idle list, count it as
 * searching, and wake it.  Returns false if none was parked. */
static bool wake_one(void)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *w;

	if (atomic_load(&e->nidle) == 0)
		return false;
	pthread_mutex_lock(&e->idle_lock);
	w = e->idle_list;
	if (w) {
		e->idle_list = w->idle_next;
		w->on_idle_list = false;
		atomic_fetch_add(&e->nsearching, 1);
		atomic_fetch_sub(&e->nidle, 1);
	}
	pthread_mutex_unlock(&e->idle_lock);
	if (!w)
		return false;
	/* When the work came, for w's spin score: its own clock after the
	 * wake-up would add the wake-up latency, which no spin pays. */
	w->woken_at = ss__now_ns();
	atomic_store_explicit(&w->park_word, 0, memory_order_release);
	ss__futex_wake(&w->park_word, 1);
	ss__wake_supervisors();
	return true;
}

static bool grow(bool untokened);

static void notify(bool untokened)
{
	struct ss_exec *e = &ss__exec;

	if (atomic_load(&e->nsearching) > 0)
		return;
	if (!wake_one())
		grow(untokened);
}

void ss__notify(void)
{
	notify(false);
}

void ss__notify_untokened(void)
{
	notify(true);
}

bool ss__pool_saturated(void)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	int32_t n = atomic_load_explicit(&e->nthreads, memory_order_relaxed);

	return n >= (int32_t)c->max_threads &&
	       n - atomic_load_explicit(&e->nblocked, memory_order_relaxed) <
	               (int32_t)c->threads;
}

/* Under e->lock: may one more thread start beyond the active target?  A
 * token bucket: a burst of max(4, CPUs), then 10 threads a second; a
 * thread above the target that exits gives its token back, so the bucket
 * bounds how fast extra threads pile up, not how often a program may
 * block. */
static double burst_tokens(void)
{
	const struct ss_config *c = ss__config();

	return c->cpus > 4 ? c->cpus : 4;
}

void ss__refund_token_locked(void)
{
	struct ss_exec *e = &ss__exec;

	if (e->tokens_at_ns && (e->tokens += 1.0) > burst_tokens())
		e->tokens = burst_tokens();
}

static bool take_token_locked(struct ss_exec *e, uint64_t now)
{
	double burst = burst_tokens();

	if (e->tokens_at_ns == 0)
		e->tokens = burst;
	else if (now > e->tokens_at_ns)
		e->tokens += (double)(now - e->tokens_at_ns) * 10.0 / 1e9;
	if (e->tokens > burst)
		e->tokens = burst;
	if (now > e->tokens_at_ns)
		e->tokens_at_ns = now;
	if (e->tokens < 1.0)
		return false;
	e->tokens -= 1.0;
	return true;
}

static bool grow(bool untokened)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	uint64_t now;
	int32_t n, active;
	bool ok = false;

	if (!atomic_load_explicit(&e->started, memory_order_acquire))
		return false;
	pthread_mutex_lock(&e->lock);
	/* Read under the lock, so that the times take_token_locked() sees
	 * never go backwards: a time read before the lock by a thread that
	 * then waited for it is older than e->tokens_at_ns, and the
	 * unsigned difference wrapped to a full bucket (TSan on a busy
	 * machine: 21 threads above the target where the bucket allowed
	 * 11). */
	now = ss__now_ns();
	n = atomic_load(&e->nthreads);
	active = n - atomic_load(&e->nblocked);
	if (now >= e->backoff_until_ns && active < (int32_t)c->threads &&
	    n < (int32_t)c->max_threads &&
	    (n < (int32_t)c->threads || untokened || take_token_locked(e, now))) {
		ok = ss__start_worker_locked(true) == 0;
		if (ok && n >= (int32_t)c->threads)
			atomic_fetch_add_explicit(&e->compensations, 1,
			                          memory_order_relaxed);
	}
	pthread_mutex_unlock(&e->lock);
	return ok;
}

bool ss__grow(void)
{
	return grow(false);
}

bool ss__grow_untokened(void)
{
	return grow(true);
}

/* ---------------------------------------------------------- parking */

/* Under idle_lock: take w off the idle list if it is still on it.  False
 * if a waker already took it off (its wake is on the way and counts w as
 * searching). */
static bool unlist_locked(struct ss_exec *e, struct ss_worker *w)
{
	struct ss_worker **pp = &e->idle_list;

	if (!w->on_idle_list)
		return false;
	while (*pp != w)
		pp = &(*pp)->idle_next;
	*pp = w->idle_next;
	w->on_idle_list = false;
	atomic_fetch_sub(&e->nidle, 1);
	return true;
}

static bool unlist_self(struct ss_exec *e, struct ss_worker *w)
{
	bool was;

	pthread_mutex_lock(&e->idle_lock);
	was = unlist_locked(e, w);
	pthread_mutex_unlock(&e->idle_lock);
	return was;
}

/* After an idle timeout: leave the pool if more than one worker is live.
 * Takes exec.lock before idle_lock (the one lock order). */
static bool retire_idle(struct ss_exec *e, struct ss_worker *w)
{
	bool retire = false;

	pthread_mutex_lock(&e->lock);
	if (atomic_load(&e->nthreads) > 1) {
		pthread_mutex_lock(&e->idle_lock);
		if (unlist_locked(e, w)) {
			if (atomic_fetch_sub(&e->nthreads, 1) >
			    (int32_t)ss__config()->threads)
				ss__refund_token_locked();
			/* Before the slot can be reused: the cache goes
			 * with it. */
			ss__task_cache_release(w);
			ss__fiber_worker_exit(w);
			atomic_store_explicit(&w->slot_state, SS_SLOT_FREE,
			                      memory_order_release);
			retire = true;
		}
		pthread_mutex_unlock(&e->idle_lock);
	}
	pthread_mutex_unlock(&e->lock);
	return retire;
}

/* Any ring with work (steal mode's re-check before sleeping). */
static bool rings_have_work(struct ss_exec *e)
{
	uint32_t n = atomic_load_explicit(&e->nslots, memory_order_acquire);

	for (uint32_t i = 0; i < n; i++) {
		struct ss_worker *v = e->workers[i];
		if (v && ss__ring_len(&v->ring))
			return true;
	}
	return false;
}

static void relist_searching(struct ss_exec *e)
{
	atomic_fetch_add(&e->nsearching, 1);
	ss__wake_supervisors();
}

/* A park that began at since (ns) ended: add it to w's parked time. */
static void parked_for(struct ss_worker *w, uint64_t since)
{
	uint64_t d = ss__now_ns() - since;

	atomic_store_explicit(&w->park_since_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&w->parked_ns,
	                      atomic_load_explicit(&w->parked_ns,
	                                           memory_order_relaxed) + d,
	                      memory_order_relaxed);
}

bool ss__park(struct ss_worker *w, unsigned futile)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	uint64_t backoff = 0;

	atomic_store_explicit(&w->park_word, 1, memory_order_relaxed);
	pthread_mutex_lock(&e->idle_lock);
	w->idle_next = e->idle_list;
	e->idle_list = w;
	w->on_idle_list = true;
	atomic_fetch_add(&e->nidle, 1);
	pthread_mutex_unlock(&e->idle_lock);
	atomic_fetch_sub(&e->nsearching, 1);

	if (c->steal)
		atomic_thread_fence(memory_order_seq_cst); /* pairs with submit */
	if (ss__gq_len() > 0 || (c->steal && rings_have_work(e))) {
		/* Work came in while we gave up.  But if the last search
		 * already saw queued work it could not take (a push between
		 * its exchange and its link, queue.c), look again only after
		 * a short, doubling nap: spinning would take the CPU from the
		 * very thread that must finish the push. */
		if (!futile) {
			if (unlist_self(e, w)) {
				relist_searching(e);
				return false;
			}
		} else {
			backoff = 50000u << (futile < 8 ? futile - 1 : 7);
		}
	}
	atomic_fetch_add_explicit(&w->n_parks, 1, memory_order_relaxed);
	/* A park costs a futex sleep: two clock reads for the stats' parked
	 * time are lost in it. */
	uint64_t since = ss__now_ns();
	atomic_store_explicit(&w->park_since_ns, since, memory_order_relaxed);
	while (atomic_load_explicit(&w->park_word, memory_order_acquire)) {
		uint64_t timeout = backoff ? backoff
		                   : atomic_load(&e->nthreads) > 1
		                           ? (uint64_t)c->idle_ms * 1000000u
		                           : 0;
		if (ss__futex_wait(&w->park_word, 1, timeout) != ETIMEDOUT ||
		    !atomic_load_explicit(&w->park_word, memory_order_acquire))
			continue;
		if (backoff) {
			if (unlist_self(e, w)) {
				relist_searching(e);
				parked_for(w, since);
				return false;
			}
		} else if (retire_idle(e, w)) {
			parked_for(w, since);
			return true;
		}
	}
	parked_for(w, since);
	atomic_fetch_add_explicit(&w->n_wakeups, 1, memory_order_relaxed);
	ss__search_learn(w, w->woken_at ? w->woken_at : ss__now_ns());
	w->woken_at = 0;
	return false;
}
