/*
 * queue.c - the per-worker ring and the global injection queue.
 *
 * The ring's invariant is stated with struct ss_ring in internal.h.  Memory
 * orders: the producer publishes a slot with a release store of tail; a
 * consumer loads tail with acquire (the owner reads its own tail relaxed),
 * reads slots relaxed, and claims them with an acq_rel CAS of head, which
 * the producer's acquire load of head pairs with before it rewrites them.
 *
 * The global queue (below) counts its records in q_len so that workers
 * and spawners can test it without the lock.  q_len is updated seq_cst:
 * it is one side of the spawner/parker handshake (see park.c).
 */
#include "internal.h"

bool ss__ring_push(struct ss_ring *r, struct ss_task *t)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	if (tail - head >= SS_RING_CAP)
		return false;
	atomic_store_explicit(&r->slot[tail & SS_RING_MASK], t,
	                      memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

struct ss_task *ss__ring_pop(struct ss_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	for (;;) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		struct ss_task *t;

		if (head == tail)
			return NULL;
		t = atomic_load_explicit(&r->slot[head & SS_RING_MASK],
		                         memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&r->head, &head, head + 1,
		                                          memory_order_acq_rel,
		                                          memory_order_acquire))
			return t;
	}
}

unsigned ss__ring_take(struct ss_ring *r, struct ss_task **out, unsigned max)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

	for (;;) {
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		uint64_t n = tail - head;

		if (n == 0 || n > SS_RING_CAP) {
			/* n > CAP: head moved past the tail we read; reread. */
			if (n == 0)
				return 0;
			head = atomic_load_explicit(&r->head, memory_order_acquire);
			continue;
		}
		if (n > max)
			n = max;
		for (uint64_t i = 0; i < n; i++)
			out[i] = atomic_load_explicit(
				&r->slot[(head + i) & SS_RING_MASK],
				memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&r->head, &head, head + n,
		                                          memory_order_acq_rel,
		                                          memory_order_acquire))
			return (unsigned)n;
	}
}

unsigned ss__ring_len(struct ss_ring *r)
{
	/* head first: tail only grows, so the difference is never negative.
	 * It can exceed the capacity, though: between the two loads,
	 * consumers may take n and the owner push up to n more.  A length
	 * is never more than SS_RING_CAP: callers size buffers by it. */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t n = tail - head;

	return (unsigned)(n > SS_RING_CAP ? SS_RING_CAP : n);
}

/*
 * The global queue is Vyukov's intrusive MPSC queue: producers push with
 * one exchange of q_tail and never wait; consumers pop under q_lock (so
 * there is one consumer at a time) from q_head.  A stub record keeps the
 * list non-empty.  Invariant: following qnext from q_head reaches q_tail,
 * except for a push in progress whose qnext store is still to come; a
 * consumer that meets it stops and reports what it has, and q_len (raised
 * before the link, so it never undercounts) keeps workers looking.
 */
void ss__gq_push(struct ss_task *t)
{
	ss__gq_push_batch(&t, 1);
}

void ss__gq_push_batch(struct ss_task **v, unsigned n)
{
	struct ss_exec *e = &ss__exec;
	struct ss_task *prev;

	if (n == 0)
		return;
	for (unsigned i = 0; i + 1 < n; i++)
		atomic_store_explicit(&v[i]->qnext, v[i + 1], memory_order_relaxed);
	atomic_store_explicit(&v[n - 1]->qnext, NULL, memory_order_relaxed);
	/* seq_cst: the spawner side of the handshake in park.c. */
	atomic_fetch_add_explicit(&e->q_len, n, memory_order_seq_cst);
	prev = atomic_exchange_explicit(&e->q_tail, v[n - 1], memory_order_acq_rel);
	atomic_store_explicit(&prev->qnext, v[0], memory_order_release);
}

uint64_t ss__gq_len(void)
{
	return atomic_load_explicit(&ss__exec.q_len, memory_order_seq_cst);
}

/* Under q_lock: the oldest record, or NULL if empty or the next one is
 * still being linked. */
static struct ss_task *mpsc_pop(struct ss_exec *e)
{
	struct ss_task *head = e->q_head, *stub = &e->q_stub;
	struct ss_task *next = atomic_load_explicit(&head->qnext,
	                                            memory_order_acquire);

	if (head == stub) {
		if (!next)
			return NULL;
		e->q_head = head = next;
		next = atomic_load_explicit(&head->qnext, memory_order_acquire);
	}
	if (next) {
		e->q_head = next;
		return head;
	}
	if (head != atomic_load_explicit(&e->q_tail, memory_order_acquire))
		return NULL; /* a push is between its exchange and its link */
	/* head is the last record: put the stub behind it to take it. */
	atomic_store_explicit(&stub->qnext, NULL, memory_order_relaxed);
	struct ss_task *prev = atomic_exchange_explicit(&e->q_tail, stub,
	                                                memory_order_acq_rel);
	atomic_store_explicit(&prev->qnext, stub, memory_order_release);
	next = atomic_load_explicit(&head->qnext, memory_order_acquire);
	if (!next)
		return NULL;
	e->q_head = next;
	return head;
}

void ss__gq_reset(void)
{
	struct ss_exec *e = &ss__exec;

	atomic_store_explicit(&e->q_stub.qnext, NULL, memory_order_relaxed);
	atomic_store_explicit(&e->q_tail, &e->q_stub, memory_order_relaxed);
	e->q_head = &e->q_stub;
	atomic_store_explicit(&e->q_len, 0, memory_order_relaxed);
}

struct ss_task *ss__gq_pop(struct ss_worker *w)
{
	struct ss_exec *e = &ss__exec;
	struct ss_task *batch[SS_RING_CAP / 2];
	unsigned n = 0, share, room;
	uint64_t len;
	int32_t workers;

	if (ss__gq_len() == 0)
		return NULL;
	/* Take one, plus a fair share of the rest (Go's globrunqget), at most
	 * half a ring and what fits in ours. */
	workers = atomic_load_explicit(&e->nthreads, memory_order_relaxed);
	room = SS_RING_CAP - ss__ring_len(&w->ring) + 1;
	len = ss__gq_len();
	share = (unsigned)(len / (uint64_t)(workers > 0 ? workers : 1)) + 1;
	if (share > SS_RING_CAP / 2)
		share = SS_RING_CAP / 2;
	if (share > room)
		share = room;
	/* Workers never sleep on this lock: if another worker is popping, we
	 * come back from the search loop (a sleeping waiter costs two system
	 * calls, far more than the pop it waits for). */
	if (pthread_mutex_trylock(&e->q_lock) != 0)
		return NULL;
	while (n < share && (batch[n] = mpsc_pop(e)))
		n++;
	if (n)
		atomic_fetch_sub_explicit(&e->q_len, n, memory_order_seq_cst);
	pthread_mutex_unlock(&e->q_lock);
	for (unsigned i = 1; i < n; i++)
		if (!ss__ring_push(&w->ring, batch[i]))
			ss__gq_push(batch[i]); /* cannot happen: room was reserved */
	return n ? batch[0] : NULL;
}

unsigned ss__worker_handoff(struct ss_worker *w)
{
	struct ss_task *batch[SS_RING_CAP + 1];
	unsigned n = 0;
	struct ss_task *t;

	t = atomic_exchange_explicit(&w->next, NULL, memory_order_acq_rel);
	if (t)
		batch[n++] = t;
	n += ss__ring_take(&w->ring, batch + n, SS_RING_CAP);
	ss__gq_push_batch(batch, n);
	return n;
}
