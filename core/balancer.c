/*
 * balancer.c - the hidden balancer thread (balance mode).
 *
 * Workers never look into each other's rings.  Instead, while some worker
 * is idle (parked or searching), this thread moves half of every long ring
 * (at most 64 tasks) to the global queue and wakes one parked worker; the
 * woken worker's chained wake-up (worker.c) brings in more as needed.  A
 * ring counts as long at two tasks, or at one when its owner has been in
 * the same task since the last pass.
 *
 * Period: 1 ms after a pass that moved work, doubling to 10 ms while
 * nothing moves; no timer at all once the pool has settled idle (park.c).
 */
#include "internal.h"

#define BAL_MIN_NS 1000000u
#define BAL_MAX_NS 10000000u
#define BAL_BATCH 64u

static unsigned balance_pass(struct ss_exec *e)
{
	uint32_t nslots = atomic_load_explicit(&e->nslots, memory_order_acquire);
	struct ss_task *buf[BAL_BATCH];
	unsigned moved = 0;

	if (atomic_load(&e->nidle) + atomic_load(&e->nsearching) == 0) {
		/* Nobody to give work to: if a ring is long while the pool
		 * is below its target (it grows on demand, and work spawned
		 * inside tasks stays local), start a worker for it. */
		for (uint32_t i = 0; i < nslots; i++) {
			struct ss_worker *w = e->workers[i];
			if (w && ss__ring_len(&w->ring) >= 2) {
				ss__grow();
				break;
			}
		}
		return 0;
	}
	for (uint32_t i = 0; i < nslots; i++) {
		struct ss_worker *w = e->workers[i];
		uint64_t tick;
		unsigned len, want, got;

		if (!w || atomic_load_explicit(&w->slot_state,
		                               memory_order_relaxed) != SS_SLOT_LIVE)
			continue;
		tick = atomic_load_explicit(&w->tick, memory_order_relaxed);
		len = ss__ring_len(&w->ring);
		bool stuck = (tick & 1) && tick == w->bal_tick;
		w->bal_tick = tick;
		if (len < 2 && !(len == 1 && stuck))
			continue;
		want = (len + 1) / 2;
		if (want > BAL_BATCH)
			want = BAL_BATCH;
		got = ss__ring_take(&w->ring, buf, want);
		ss__gq_push_batch(buf, got);
		moved += got;
	}
	if (moved) {
		atomic_fetch_add_explicit(&e->balancer_moves, moved,
		                          memory_order_relaxed);
		ss__notify();
	}
	return moved;
}

void *ss__balancer_main(void *arg)
{
	struct ss_exec *e = &ss__exec;
	uint64_t period = BAL_MIN_NS;

	(void)arg;
	ss__thread_set_name("ss-balancer");
	for (;;) {
		if (ss__sleeper_settled(&e->balancer)) {
			ss__sleeper_sleep_if_idle(&e->balancer);
			e->balancer.idle_since_ns = 0;
			period = BAL_MIN_NS;
			continue;
		}
		if (balance_pass(e))
			period = BAL_MIN_NS;
		else if ((period *= 2) > BAL_MAX_NS)
			period = BAL_MAX_NS;
		ss__sleeper_nap(&e->balancer, period);
	}
	return NULL;
}
