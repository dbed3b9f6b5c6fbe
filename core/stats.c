/*
 * stats.c - ss_stats() and the stats report: SMOLSCALE_STATS=1 at exit,
 * `smolscale stats PID` and SMOLSCALE_STATS_SIGNAL (served by diag.c).
 *
 * Per-worker counters have one writer each and are summed here with
 * relaxed loads: each value is atomic, the snapshot as a whole is not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
	o->stalls = rd(&e->stalls);
	return 0;
}

/* One line per live worker: what it does now, its tasks, how long it was
 * awake (running tasks or looking for one), parked, and on a CPU. */
static void worker_lines(FILE *f)
{
	struct ss_exec *e = &ss__exec;
	uint32_t nslots = atomic_load_explicit(&e->nslots, memory_order_acquire);
	uint64_t now = ss__now_ns();

	for (uint32_t i = 0; i < nslots; i++) {
		struct ss_worker *w = e->workers[i];
		struct timespec ts;
		uint64_t born, parked, since, cpu = 0;
		int64_t clk;
		const char *what;

		if (!w || atomic_load_explicit(&w->slot_state,
		                               memory_order_acquire) != SS_SLOT_LIVE)
			continue;
		born = atomic_load_explicit(&w->born_ns, memory_order_relaxed);
		parked = atomic_load_explicit(&w->parked_ns, memory_order_relaxed);
		since = atomic_load_explicit(&w->park_since_ns,
		                             memory_order_relaxed);
		if (since && since < now)
			parked += now - since;
		if (!born || born > now)
			born = now;
		if (parked > now - born)
			parked = now - born;
		clk = atomic_load_explicit(&w->cpuclock, memory_order_relaxed);
		if (clk != SS_NO_CLOCK &&
		    clock_gettime((clockid_t)clk, &ts) == 0)
			cpu = (uint64_t)ts.tv_sec * 1000000000u +
			      (uint64_t)ts.tv_nsec;
		what = atomic_load_explicit(&w->tick, memory_order_relaxed) & 1
		               ? "task"
		       : since ? "parked"
		               : "searching";
		fprintf(f,
		        "smolscale: worker %d state=%s tasks=%llu busy_ms=%llu parked_ms=%llu cpu_ms=%llu blocked=%u\n",
		        w->id, what, (unsigned long long)rd(&w->n_completed),
		        (unsigned long long)((now - born - parked) / 1000000u),
		        (unsigned long long)(parked / 1000000u),
		        (unsigned long long)(cpu / 1000000u),
		        atomic_load_explicit(&w->blocked, memory_order_relaxed) != 0);
	}
}

char *ss__stats_text(size_t *len)
{
	struct ss_stats s;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	ss_stats(&s);
	fprintf(f,
	        "smolscale: stats threads=%llu active_workers=%llu "
	        "blocked_workers=%llu idle_workers=%llu target_workers=%llu "
	        "tasks_spawned=%llu tasks_completed=%llu tasks_cancelled=%llu "
	        "preemptions=%llu compensations=%llu balancer_moves=%llu "
	        "steals=%llu parks=%llu wakeups=%llu threads_created=%llu "
	        "threads_exited=%llu peak_threads=%llu fibers_spawned=%llu "
	        "fiber_stacks=%llu suspends=%llu stalls=%llu",
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
	        (unsigned long long)s.suspends, (unsigned long long)s.stalls);
	if (ss__stats_extra)
		ss__stats_extra(f);
	fputc('\n', f);
	if (atomic_load_explicit(&ss__exec.started, memory_order_acquire)) {
		worker_lines(f);
		ss__diag_stats(f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* The report goes out in one write: to SMOLSCALE_LOG, else stderr. */
void ss__stats_print(void)
{
	size_t len;
	char *text = ss__stats_text(&len);

	if (text)
		ss__log_write(text, len);
	free(text);
}

void (*ss__stats_extra)(FILE *f);

/* SMOLSCALE_STATS=1: the report at exit (or at dlclose of the library). */
__attribute__((destructor)) static void stats_at_exit(void)
{
	if ((atomic_load_explicit(&ss__exec.started, memory_order_acquire) ||
	     ss__stats_extra) &&
	    ss__config()->stats)
		ss__stats_print();
}
