/*
 * stats.c - ss_stats() and the SMOLSCALE_STATS=1 report at exit.
 *
 * Per-worker counters have one writer each and are summed here with
 * relaxed loads: each value is atomic, the snapshot as a whole is not.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static uint64_t rd(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static uint64_t nonneg(_Atomic int32_t *p)
{
	int32_t v = atomic_load_explicit(p, memory_order_relaxed);
	return v > 0 ? (uint64_t)v : 0;
}

int ss_stats(struct ss_stats *o)
{
	struct ss_exec *e = &ss__exec;
	uint32_t nslots;

	if (!o)
		return EINVAL;
	memset(o, 0, sizeof *o);
	if (!atomic_load_explicit(&e->started, memory_order_acquire))
		return 0;
	nslots = atomic_load_explicit(&e->nslots, memory_order_acquire);
	for (uint32_t i = 0; i < nslots; i++) {
		struct ss_worker *w = e->workers[i];
		if (!w)
			continue;
		o->tasks_spawned += rd(&w->n_spawned);
		o->tasks_completed += rd(&w->n_completed);
		o->parks += rd(&w->n_parks);
		o->wakeups += rd(&w->n_wakeups);
		o->steals += rd(&w->n_steals);
		o->suspends += rd(&w->n_suspends);
	}
	o->threads = nonneg(&e->nthreads);
	o->blocked_workers = nonneg(&e->nblocked);
	if (o->blocked_workers > o->threads)
		o->blocked_workers = o->threads;
	o->active_workers = o->threads - o->blocked_workers;
	o->idle_workers = nonneg(&e->nidle);
	o->target_workers = ss__config()->threads;
	o->tasks_spawned += rd(&e->ext_spawned);
	o->tasks_cancelled = rd(&e->cancelled);
	o->preemptions = rd(&e->preemptions);
	o->compensations = rd(&e->compensations);
	o->balancer_moves = rd(&e->balancer_moves);
	o->threads_created = rd(&e->threads_created);
	o->threads_exited = rd(&e->threads_exited);
	o->peak_threads = rd(&e->peak_threads);
	o->fibers_spawned = ss__fibers_created();
	o->fiber_stacks = ss__fiber_stacks_mapped();
	return 0;
}

void ss__stats_print(void)
{
	struct ss_stats s;

	ss_stats(&s);
	fprintf(stderr,
	        "smolscale: stats threads=%llu active_workers=%llu "
	        "blocked_workers=%llu idle_workers=%llu target_workers=%llu "
	        "tasks_spawned=%llu tasks_completed=%llu tasks_cancelled=%llu "
	        "preemptions=%llu compensations=%llu balancer_moves=%llu "
	        "steals=%llu parks=%llu wakeups=%llu threads_created=%llu "
	        "threads_exited=%llu peak_threads=%llu fibers_spawned=%llu "
	        "fiber_stacks=%llu suspends=%llu",
	        (unsigned long long)s.threads, (unsigned long long)s.active_workers,
	        (unsigned long long)s.blocked_workers,
	        (unsigned long long)s.idle_workers,
	        (unsigned long long)s.target_workers,
	        (unsigned long long)s.tasks_spawned,
	        (unsigned long long)s.tasks_completed,
	        (unsigned long long)s.tasks_cancelled,
	        (unsigned long long)s.preemptions,
	        (unsigned long long)s.compensations,
	        (unsigned long long)s.balancer_moves,
	        (unsigned long long)s.steals, (unsigned long long)s.parks,
	        (unsigned long long)s.wakeups,
	        (unsigned long long)s.threads_created,
	        (unsigned long long)s.threads_exited,
	        (unsigned long long)s.peak_threads,
	        (unsigned long long)s.fibers_spawned,
	        (unsigned long long)s.fiber_stacks,
	        (unsigned long long)s.suspends);
	if (ss__stats_extra)
		ss__stats_extra(stderr);
	fputc('\n', stderr);
}

void (*ss__stats_extra)(FILE *f);

/* SMOLSCALE_STATS=1: one line at exit (or at dlclose of the library). */
__attribute__((destructor)) static void stats_at_exit(void)
{
	if ((atomic_load_explicit(&ss__exec.started, memory_order_acquire) ||
	     ss__stats_extra) &&
	    ss__config()->stats)
		ss__stats_print();
}
