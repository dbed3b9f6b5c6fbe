/*
 * monitor.c - the hidden monitor thread: preemption by hand-off, blocking
 * compensation, and the safety net for queued work.
 *
 * Each worker publishes a heartbeat (w->tick, odd while inside a task).  A
 * worker whose tick has not moved while other work waits (its own queue,
 * or the global queue with nobody free to take it) is stalled: its next
 * slot and ring go to the global queue, where idle workers take them; the
 * stuck worker finishes its task alone.  Whether it is *blocked* is read
 * from its thread CPU clock: under half a CPU over the last pass means off
 * the CPU.  A blocked worker is stalled after SMOLSCALE_STALL_MS / 2 (it
 * is doing nothing with its queue; Go hands off a P in a system call even
 * sooner), is counted as blocked, which lowers the active count and lets
 * the pool start a compensating thread (rate-limited, capped: park.c
 * ss__grow).  A computing worker is stalled after SMOLSCALE_STALL_MS and
 * only loses its queue: adding threads beyond the CPU target would slow
 * it down (tokio's objection to blocking detection).
 *
 * Marking blocked races with the worker finishing its task.  Both sides
 * use seq_cst:  worker: tick = even; exchange(blocked, 0)
 *              monitor: fetch_or(blocked, MON); re-read tick
 * If the monitor's RMW comes first, the worker's exchange clears the mark;
 * otherwise the monitor's re-read sees the new tick and withdraws its own
 * bit only (a blocking hint's bit, set since, stays).
 *
 * Period: STALL_MS / 4 (1..50 ms) while a worker is inside a task, so a
 * task is seen stalled within a quarter of its threshold; doubling up to
 * STALL_MS while none is; no timer once the pool has settled idle
 * (park.c).
 *
 * A task that keeps its worker past SMOLSCALE_STALL_REPORT_MS is counted
 * in `stalls` and, with SMOLSCALE_STALL_REPORT=1, handed to ss-diag for a
 * report (diag.c): the monitor itself never signals, symbolizes or
 * writes, so a slow log or a stuck dynamic loader cannot delay a
 * hand-off.
 */
#include <errno.h>

#include "internal.h"

void (*ss__saturated_hook)(void);

static uint64_t thread_cpu_ns(struct ss_worker *w)
{
	struct timespec ts;

	int64_t clk = atomic_load_explicit(&w->cpuclock, memory_order_relaxed);

	if (clk == SS_NO_CLOCK || clock_gettime((clockid_t)clk, &ts) != 0)
		return UINT64_MAX;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Is w off the CPU?  Compares its CPU time with the wall time since the
 * last sample, then starts a new sample window. */
static bool off_cpu(struct ss_worker *w, uint64_t now)
{
	uint64_t cpu = thread_cpu_ns(w);
	bool off = false;

	if (cpu == UINT64_MAX)
		return false;
	if (w->mon_cpu_at_ns && now > w->mon_cpu_at_ns)
		off = (cpu - w->mon_cpu_ns) * 2 < now - w->mon_cpu_at_ns;
	w->mon_cpu_ns = cpu;
	w->mon_cpu_at_ns = now;
	return off;
}

static void mark_blocked_if_same(struct ss_worker *w, uint64_t tick)
{
	ss__block_mark(w, SS_BLOCKED_MON);
	if (atomic_load(&w->tick) != tick)
		ss__block_unmark(w, SS_BLOCKED_MON);
}

/* One look at every worker; returns whether any was inside a task. */
static bool monitor_pass(struct ss_exec *e, uint64_t stall_ns)
{
	const struct ss_config *c = ss__config();
	uint64_t report_ns = (uint64_t)c->stall_report_ms * 1000000u;
	bool report = c->stall_report;
	uint32_t nslots = atomic_load_explicit(&e->nslots, memory_order_acquire);
	uint64_t now = ss__now_ns();
	bool starving = ss__gq_len() > 0 && atomic_load(&e->nidle) == 0 &&
	                atomic_load(&e->nsearching) == 0;
	bool busy = false;

	for (uint32_t i = 0; i < nslots; i++) {
		struct ss_worker *w = e->workers[i];
		uint64_t tick, age;
		bool waits, off;

		if (!w || atomic_load_explicit(&w->slot_state,
		                               memory_order_relaxed) != SS_SLOT_LIVE)
			continue;
		tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
		busy |= tick & 1;
		if (!(tick & 1) || tick != w->mon_tick) {
			w->mon_tick = tick;
			w->mon_since_ns = now;
			w->mon_cpu_at_ns = 0;
			continue;
		}
		/* Same task since the last pass.  Keep a CPU window open on
		 * it: each pass closes one and opens the next. */
		off = off_cpu(w, now);
		age = now - w->mon_since_ns;
		/* A long task is counted (and reported, when asked) once,
		 * whether or not work waits behind it. */
		if (age >= report_ns && w->mon_reported != tick) {
			w->mon_reported = tick;
			atomic_fetch_add_explicit(&e->stalls, 1,
			                          memory_order_relaxed);
			if (report)
				ss__diag_stall(w, tick, w->mon_since_ns);
		}
		if (age < stall_ns / 2 || (!off && age < stall_ns))
			continue;
		waits = starving || ss__ring_len(&w->ring) ||
		        atomic_load_explicit(&w->next, memory_order_relaxed);
		if (!waits)
			continue;
		/* A rerouted thread (thread_like) had a thread of its own
		 * natively: stalled, blocked or computing, it gets a worker
		 * beside it without a token, since the work queued behind it
		 * may be the threads it waits for (a barrier, or a flag it
		 * spins on). */
		bool thread_like = atomic_load_explicit(&w->thread_like,
		                                        memory_order_relaxed);
		if ((off || thread_like) &&
		    !atomic_load_explicit(&w->blocked, memory_order_relaxed))
			mark_blocked_if_same(w, tick);
		void (*notify)(void) = thread_like ? ss__notify_untokened : ss__notify;
		if (ss__worker_handoff(w)) {
			atomic_fetch_add_explicit(&e->preemptions, 1,
			                          memory_order_relaxed);
			notify();
		} else if (starving) {
			notify();
		}
	}
	/* A pool at MAX_THREADS whose workers block cannot compensate: a
	 * layer above may run its queued work elsewhere. */
	if (ss__saturated_hook && ss__gq_len() > 0 && ss__pool_saturated())
		ss__saturated_hook();
	/* Safety net: queued work and nobody looking for it (after a failed
	 * thread creation, once its back-off has passed). */
	if (ss__gq_len() > 0 && atomic_load(&e->nsearching) == 0)
		ss__notify();
	return busy;
}

void *ss__monitor_main(void *arg)
{
	struct ss_exec *e = &ss__exec;
	const struct ss_config *c = ss__config();
	uint64_t stall_ns = (uint64_t)c->stall_ms * 1000000u;
	uint64_t base = stall_ns / 4, period;

	(void)arg;
	if (base < 1000000u)
		base = 1000000u;
	if (base > 50000000u)
		base = 50000000u;
	period = base;
	ss__thread_set_name("ss-monitor");
	for (;;) {
		if (ss__sleeper_settled(&e->monitor)) {
			ss__sleeper_sleep_if_idle(&e->monitor);
			e->monitor.idle_since_ns = 0;
			period = base;
			continue;
		}
		/* A look that finds no worker inside a task doubles the next
		 * nap, up to the stall threshold: under partial load workers
		 * are mostly parked, and a task that starts blocking is still
		 * seen within about 1.5 thresholds. */
		if (monitor_pass(e, stall_ns))
			period = base;
		else if ((period *= 2) > stall_ns)
			period = stall_ns > base ? stall_ns : base;
		ss__sleeper_nap(&e->monitor, period);
	}
	return NULL;
}
