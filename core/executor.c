/*
 * executor.c - the one executor of the process: lazy start and fork.
 *
 * Nothing runs before the first call that needs the pool (ss_spawn,
 * ss_group_spawn): it reads the configuration, then starts the monitor,
 * the balancer (balance mode only) and one worker.  More workers start on
 * demand (park.c ss__notify).
 *
 * fork(): the prepare handler takes every core lock so the child copies
 * consistent structures; in the child, none of the hidden threads exist:
 * the executor is reset to "not started", every record that was queued or
 * running is finished as CANCELLED (nothing the parent queued runs in the
 * child, and a join in the child returns ECANCELED instead of hanging), and
 * the next spawn starts threads afresh.  If a task forked, its worker
 * thread is the child's only thread: it finishes that task, then ends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ss_exec ss__exec = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.idle_lock = PTHREAD_MUTEX_INITIALIZER,
	.q_lock = PTHREAD_MUTEX_INITIALIZER,
	.q_tail = &ss__exec.q_stub,
	.q_head = &ss__exec.q_stub,
	.free_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* Under exec.lock: which supervisors run in this process. */
static bool balancer_running, monitor_running;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	struct ss_exec *e = &ss__exec;

	/* Let no group task be half counted in the child (group.c). */
	atomic_fetch_add(&e->forking, 1);
	while (atomic_load(&e->group_busy))
		ss__cpu_relax();
	pthread_mutex_lock(&e->lock);
	pthread_mutex_lock(&e->idle_lock);
	pthread_mutex_lock(&e->q_lock);
	pthread_mutex_lock(&e->free_lock);
}

static void fork_parent(void)
{
	struct ss_exec *e = &ss__exec;

	pthread_mutex_unlock(&e->free_lock);
	pthread_mutex_unlock(&e->q_lock);
	pthread_mutex_unlock(&e->idle_lock);
	pthread_mutex_unlock(&e->lock);
	atomic_fetch_sub(&e->forking, 1);
}

static void fork_child(void)
{
	struct ss_exec *e = &ss__exec;
	struct ss_worker *self = ss__self();
	uint32_t nslots = atomic_load_explicit(&e->nslots, memory_order_relaxed);

	e->fork_gen++;
	for (uint32_t i = 0; i < nslots; i++) {
		struct ss_worker *w = e->workers[i];
		uint64_t tail;

		if (!w)
			continue;
		tail = atomic_load_explicit(&w->ring.tail, memory_order_relaxed);
		atomic_store_explicit(&w->ring.head, tail, memory_order_relaxed);
		atomic_store_explicit(&w->next, NULL, memory_order_relaxed);
		atomic_store_explicit(&w->blocked, 0, memory_order_relaxed);
		atomic_store_explicit(&w->park_word, 0, memory_order_relaxed);
		/* A worker that was inside a task left an odd heartbeat; the
		 * slot's next owner must start even, and the supervisors'
		 * private views of the slot start afresh. */
		atomic_store_explicit(&w->tick,
		                      (atomic_load_explicit(&w->tick,
		                                            memory_order_relaxed) +
		                       1) & ~(uint64_t)1,
		                      memory_order_relaxed);
		w->mon_tick = w->bal_tick = 0;
		w->mon_since_ns = w->mon_cpu_at_ns = 0;
		atomic_store_explicit(&w->slot_state,
		                      w == self ? SS_SLOT_ORPHAN : SS_SLOT_FREE,
		                      memory_order_relaxed);
		w->on_idle_list = false;
		w->cache = NULL;
		w->ncache = 0;
		/* The other workers' fiber stacks are the parent's. */
		if (w != self)
			ss__fiber_worker_exit(w);
	}
	ss__worker_forget_self();
	e->idle_list = NULL;
	ss__gq_reset();
	atomic_store(&e->nthreads, 0);
	atomic_store(&e->nblocked, 0);
	atomic_store(&e->nidle, 0);
	atomic_store(&e->nsearching, 0);
	atomic_store(&e->balancer.sleeping, 0);
	atomic_store(&e->monitor.sleeping, 0);
	atomic_store(&e->started, 0);
	atomic_store(&e->forking, 0);
	atomic_store(&e->group_busy, 0);
	e->tokens_at_ns = 0;
	e->backoff_ns = 0;
	e->backoff_until_ns = 0;
	balancer_running = monitor_running = false;
	ss__tasks_after_fork(ss__current_task());
	ss__fibers_after_fork();
	ss__diag_after_fork();

	pthread_mutex_init(&e->free_lock, NULL);
	pthread_mutex_init(&e->q_lock, NULL);
	pthread_mutex_init(&e->idle_lock, NULL);
	pthread_mutex_init(&e->lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static int start_slow(void)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	int rc = 0;

	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&e->lock);
	if (atomic_load_explicit(&e->started, memory_order_relaxed))
		goto out;
	if (!e->workers &&
	    !(e->workers = calloc(c->max_threads, sizeof *e->workers))) {
		rc = EAGAIN;
		goto out;
	}
	if (!monitor_running &&
	    (rc = ss__thread_start("ss-monitor", ss__monitor_main, NULL)) != 0)
		goto out;
	monitor_running = true;
	if (!c->steal && !balancer_running &&
	    (rc = ss__thread_start("ss-balancer", ss__balancer_main, NULL)) != 0)
		goto out;
	balancer_running = !c->steal;
	if (atomic_load(&e->nthreads) == 0 &&
	    (rc = ss__start_worker_locked(false)) != 0)
		goto out;
	ss__diag_start_locked();
	atomic_store_explicit(&e->started, 1, memory_order_release);
out:
	pthread_mutex_unlock(&e->lock);
	return rc ? EAGAIN : 0;
}

int ss__start(void)
{
	if (likely(atomic_load_explicit(&ss__exec.started, memory_order_acquire)))
		return 0;
	return start_slow();
}
