/*
 * test_chan.c - channels and oneshots against the contract in smolscale.h:
 *
 *   api      ss_chan_new / ss_oneshot_new validation (elem_size 0, over
 *            64 KiB, SIZE_MAX; 64 KiB itself is fine); NULL arguments
 *            return EINVAL and never crash or block; ss_chan_free(NULL);
 *   bounded  try_send / try_recv against a model queue (EAGAIN exactly
 *            when full / empty, FIFO across wrap-around) for capacities 1,
 *            3, 64 and 1000; FIFO with one producer (fiber, task or
 *            thread) and one consumer;
 *   rendez   capacity 0: try_send and try_recv with nobody on the other
 *            side return EAGAIN; send waits for a receiver and recv for a
 *            sender; try_recv takes from a waiting sender and try_send
 *            gives to a waiting receiver (peer a fiber, a task, a thread);
 *   close    buffered elements drain, then EPIPE; senders get EPIPE;
 *            waiting receivers and senders of every kind are woken with
 *            EPIPE; a second close is EPIPE; ss_chan_free while receivers
 *            and senders of every kind wait in it: they get EPIPE;
 *   mpmc     3 producers x 3 consumers, each side fibers, tasks or threads
 *            (all 9 pairs), capacities 0, 1 and 64: every element is
 *            delivered exactly once, intact (count, sum, a check word),
 *            and each consumer sees each producer's elements in order;
 *   fan      1,000 receiver fibers on one bounded(1) channel and 1,000
 *            sender fibers into one: each element received once;
 *   order    waiters are served in the order they came (receivers, and
 *            senders on a full and on a rendezvous channel);
 *   oneshot  send then recv; recv waits for a later send; second send and
 *            second recv EBUSY; close without a value: recv EPIPE; close
 *            after the value: recv still gets it; close and free wake a
 *            waiting receiver (every kind); sender x receiver for every
 *            pair of kinds; a request/reply server;
 *   sizes    elements of 1, 3, 17, 4096 and 65536 bytes copied exactly,
 *            nothing written past the element (channels and oneshots).
 *
 * No time bounds: every wait is bounded by WAIT_MS or Check's timeout.
 * Only the test's main thread calls ck_assert; fibers, tasks and threads
 * report through their return values and the structures they fill.
 *
 * A plain task that hands an element to a parked fiber and then blocks
 * itself may leave that fiber in its worker's next-task slot until the
 * monitor moves it (about SMOLSCALE_STALL_MS / 2): pairs of tasks and
 * fibers therefore pass fewer elements, so that the tests stay short with
 * that pace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define BAD ((void *)UINTPTR_MAX)
#define MAX_ELEM (64 * 1024)

/* ------------------------------------------------------------ helpers */

/* Who runs a piece of the test. */
enum kind { FIBER, TASK, THREAD, KINDS };

static const char *const kind_name[KINDS] = { "fiber", "plain task", "thread" };

struct runner {
	enum kind kind;
	ss_task *t;
	pthread_t th;
};

static void start(struct runner *r, enum kind k, void *(*fn)(void *), void *arg)
{
	r->kind = k;
	switch (k) {
	case FIBER:
		r->t = ss_go(fn, arg);
		ck_assert_ptr_nonnull(r->t);
		break;
	case TASK:
		r->t = ss_spawn(fn, arg);
		ck_assert_ptr_nonnull(r->t);
		break;
	default:
		ck_assert_int_eq(pthread_create(&r->th, NULL, fn, arg), 0);
		break;
	}
}

static void *finish(struct runner *r)
{
	void *res = BAD;

	if (r->kind == THREAD)
		ck_assert_int_eq(pthread_join(r->th, &res), 0);
	else
		ck_assert_int_eq(ss_join(r->t, &res), 0);
	return res;
}

/* Poll (1 ms naps) until *flag is nonzero. */
static int wait_flag(atomic_int *flag)
{
	int64_t end = now_ms() + WAIT_MS;

	while (!atomic_load(flag)) {
		if (now_ms() > end)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

/* Give what announced it is about to wait time to wait.  Where the test
 * is correct either way this only makes the waiting path the likely one;
 * before a free it is what keeps the handle from being used after it, so
 * it is generous under a sanitizer. */
static void let_it_wait(void)
{
	sleep_ms(sanitized() ? 200 : 30);
}

/* Plain one-sided parts: the channel op, its code and value. */
struct side {
	ss_chan *c;
	ss_oneshot *o;
	long v;
	int rc;
	atomic_int started, done;
};

static void *side_recv(void *arg)
{
	struct side *s = arg;
	long v = -1;

	atomic_store(&s->started, 1);
	s->rc = ss_chan_recv(s->c, &v);
	s->v = v;
	atomic_store(&s->done, 1);
	return NULL;
}

static void *side_send(void *arg)
{
	struct side *s = arg;

	atomic_store(&s->started, 1);
	s->rc = ss_chan_send(s->c, &s->v);
	atomic_store(&s->done, 1);
	return NULL;
}

static void *side_oneshot_recv(void *arg)
{
	struct side *s = arg;
	long v = -1;

	atomic_store(&s->started, 1);
	s->rc = ss_oneshot_recv(s->o, &v);
	s->v = v;
	atomic_store(&s->done, 1);
	return NULL;
}

static void *side_oneshot_send(void *arg)
{
	struct side *s = arg;

	atomic_store(&s->started, 1);
	s->rc = ss_oneshot_send(s->o, &s->v);
	atomic_store(&s->done, 1);
	return NULL;
}

static void reset(struct side *s, ss_chan *c, ss_oneshot *o, long v)
{
	s->c = c;
	s->o = o;
	s->v = v;
	s->rc = -1;
	atomic_store(&s->started, 0);
	atomic_store(&s->done, 0);
}

/* ---------------------------------------------------------------- api */

START_TEST(new_validation)
{
	ss_chan *c;
	ss_oneshot *o;

	errno = 0;
	ck_assert_ptr_null(ss_chan_new(4, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_chan_new(0, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_chan_new(4, MAX_ELEM + 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_chan_new(0, SIZE_MAX));
	ck_assert_int_eq(errno, EINVAL);
	/* The limits themselves are fine. */
	ck_assert_ptr_nonnull(c = ss_chan_new(4, MAX_ELEM));
	ss_chan_free(c);
	ck_assert_ptr_nonnull(c = ss_chan_new(0, 1));
	ss_chan_free(c);
	/* A capacity that cannot be allocated: NULL with ENOMEM (or EINVAL),
	 * or a channel that allocates lazily; never a crash. */
	errno = 0;
	c = ss_chan_new(SIZE_MAX, 8);
	if (c)
		ss_chan_free(c);
	else
		ck_assert_msg(errno == ENOMEM || errno == EINVAL, "errno %d", errno);
	errno = 0;
	c = ss_chan_new(SIZE_MAX / 2, MAX_ELEM);
	if (c)
		ss_chan_free(c);
	else
		ck_assert_msg(errno == ENOMEM || errno == EINVAL, "errno %d", errno);

	errno = 0;
	ck_assert_ptr_null(ss_oneshot_new(0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_oneshot_new(MAX_ELEM + 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ss_oneshot_new(SIZE_MAX));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(o = ss_oneshot_new(MAX_ELEM));
	ss_oneshot_free(o);
	ck_assert_ptr_nonnull(o = ss_oneshot_new(1));
	ss_oneshot_free(o);
}
END_TEST

START_TEST(null_arguments)
{
	ss_chan *c = ss_chan_new(1, sizeof(int));
	ss_oneshot *o = ss_oneshot_new(sizeof(int));
	int v = 1;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(ss_chan_send(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_chan_recv(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_chan_try_send(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_chan_try_recv(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_chan_close(NULL), EINVAL);
	ss_chan_free(NULL);
	/* A NULL element, on an empty and then on a full channel, so that
	 * each call is tried both where it would not wait and where it would:
	 * EINVAL at once, and nothing sent or taken. */
	ck_assert_int_eq(ss_chan_send(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_try_send(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_recv(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_try_recv(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	v = 5;
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_chan_recv(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_try_recv(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_send(c, NULL), EINVAL);
	ck_assert_int_eq(ss_chan_try_send(c, NULL), EINVAL);
	v = 0;
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 5);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	ss_chan_free(c);

	ck_assert_int_eq(ss_oneshot_send(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_oneshot_recv(NULL, &v), EINVAL);
	ck_assert_int_eq(ss_oneshot_close(NULL), EINVAL);
	ss_oneshot_free(NULL);
	ck_assert_int_eq(ss_oneshot_recv(o, NULL), EINVAL);
	ck_assert_int_eq(ss_oneshot_send(o, NULL), EINVAL);
	v = 8;
	ck_assert_int_eq(ss_oneshot_send(o, &v), 0);
	ck_assert_int_eq(ss_oneshot_recv(o, NULL), EINVAL);
	v = 0;
	ck_assert_int_eq(ss_oneshot_recv(o, &v), 0);
	ck_assert_int_eq(v, 8);
	ss_oneshot_free(o);
}
END_TEST

/* ------------------------------------------------------------ bounded */

/*
 * Random try_send / try_recv on one thread against a model queue, in
 * phases that lean towards sending (until full) or receiving (until
 * empty), so that both edges and the wrap-around are hit many times.
 */
START_TEST(bounded_try_model)
{
	static const size_t caps[] = { 1, 3, 64, 1000 };
	size_t ci;

	for (ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
		size_t cap = caps[ci];
		ss_chan *c = ss_chan_new(cap, sizeof(long));
		long head = 0, tail = 0, v, full = 0, empty = 0;
		uint32_t rng = 12345;
		int step, rc, send;

		ck_assert_ptr_nonnull(c);
		for (step = 0; step < 24000; step++) {
			rng = rng * 1103515245u + 12345u;
			send = (int)((rng >> 16) % 10) < ((step / 3000) % 2 ? 3 : 7);
			if (send) {
				v = tail;
				rc = ss_chan_try_send(c, &v);
				if ((size_t)(tail - head) == cap) {
					ck_assert_msg(rc == EAGAIN, "cap %zu full: try_send %d", cap, rc);
					full++;
				} else {
					ck_assert_msg(rc == 0, "cap %zu, %ld queued: try_send %d",
						      cap, tail - head, rc);
					tail++;
				}
			} else {
				v = -1;
				rc = ss_chan_try_recv(c, &v);
				if (tail == head) {
					ck_assert_msg(rc == EAGAIN, "cap %zu empty: try_recv %d", cap, rc);
					empty++;
				} else {
					ck_assert_msg(rc == 0 && v == head,
						      "cap %zu: try_recv %d gave %ld, not %ld",
						      cap, rc, v, head);
					head++;
				}
			}
		}
		ck_assert_msg(full > 0 && empty > 0, "cap %zu: never full or never empty", cap);
		/* Blocking calls that need not wait do not. */
		while ((size_t)(tail - head) < cap) {
			v = tail++;
			ck_assert_int_eq(ss_chan_send(c, &v), 0);
		}
		ck_assert_int_eq(ss_chan_try_send(c, &v), EAGAIN);
		while (head < tail) {
			ck_assert_int_eq(ss_chan_recv(c, &v), 0);
			ck_assert_int_eq(v, head++);
		}
		ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
		ss_chan_free(c);
	}
}
END_TEST

#define SPSC 50000

struct spsc {
	ss_chan *c;
	long n;
	int rc;
};

static void *spsc_producer(void *arg)
{
	struct spsc *p = arg;
	long i;

	for (i = 0; i < p->n; i++)
		if ((p->rc = ss_chan_send(p->c, &i)))
			break;
	return NULL;
}

/* _i: capacity 1 (0..2) or 64 (3..5); producer kind _i % 3; main receives. */
START_TEST(fifo_one_producer)
{
	size_t cap = _i < 3 ? 1 : 64;
	enum kind k = (enum kind)(_i % 3);
	struct spsc p = { ss_chan_new(cap, sizeof(long)), (long)scaled(SPSC), 0 };
	struct runner r;
	long i, v;

	ck_assert_ptr_nonnull(p.c);
	start(&r, k, spsc_producer, &p);
	for (i = 0; i < p.n; i++) {
		v = -1;
		ck_assert_int_eq(ss_chan_recv(p.c, &v), 0);
		ck_assert_msg(v == i, "%s producer, capacity %zu: got %ld, not %ld",
			      kind_name[k], cap, v, i);
	}
	finish(&r);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(ss_chan_try_recv(p.c, &v), EAGAIN);
	ck_assert_int_eq(ss_chan_close(p.c), 0);
	ck_assert_int_eq(ss_chan_recv(p.c, &v), EPIPE);
	ss_chan_free(p.c);
}
END_TEST

/* --------------------------------------------------------- rendezvous */

/* try_recv / try_send until they stop saying EAGAIN (a peer came). */
static int poll_try_recv(ss_chan *c, void *elem)
{
	int64_t end = now_ms() + WAIT_MS;
	int rc;

	while ((rc = ss_chan_try_recv(c, elem)) == EAGAIN && now_ms() < end)
		sleep_ms(1);
	return rc;
}

static int poll_try_send(ss_chan *c, const void *elem)
{
	int64_t end = now_ms() + WAIT_MS;
	int rc;

	while ((rc = ss_chan_try_send(c, elem)) == EAGAIN && now_ms() < end)
		sleep_ms(1);
	return rc;
}

/* _i: the kind of the peer of main. */
START_TEST(rendezvous)
{
	enum kind k = (enum kind)_i;
	ss_chan *c = ss_chan_new(0, sizeof(long));
	struct side s = { 0 };
	struct runner r;
	long v = 1;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ss_chan_try_send(c, &v), EAGAIN);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	/* A send waits for a receiver. */
	reset(&s, c, NULL, 42);
	start(&r, k, side_send, &s);
	ck_assert(wait_flag(&s.started));
	let_it_wait();
	ck_assert_msg(!atomic_load(&s.done), "a %s's send did not wait for a receiver",
		      kind_name[k]);
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 42);
	finish(&r);
	ck_assert_int_eq(s.rc, 0);
	/* A recv waits for a sender. */
	reset(&s, c, NULL, -1);
	start(&r, k, side_recv, &s);
	ck_assert(wait_flag(&s.started));
	let_it_wait();
	ck_assert_msg(!atomic_load(&s.done), "a %s's recv did not wait for a sender",
		      kind_name[k]);
	v = 43;
	ck_assert_int_eq(ss_chan_send(c, &v), 0);
	finish(&r);
	ck_assert_int_eq(s.rc, 0);
	ck_assert_int_eq(s.v, 43);
	/* try_recv takes from a waiting sender. */
	reset(&s, c, NULL, 44);
	start(&r, k, side_send, &s);
	v = -1;
	ck_assert_int_eq(poll_try_recv(c, &v), 0);
	ck_assert_int_eq(v, 44);
	finish(&r);
	ck_assert_int_eq(s.rc, 0);
	/* try_send gives to a waiting receiver. */
	reset(&s, c, NULL, -1);
	start(&r, k, side_recv, &s);
	v = 45;
	ck_assert_int_eq(poll_try_send(c, &v), 0);
	finish(&r);
	ck_assert_int_eq(s.rc, 0);
	ck_assert_int_eq(s.v, 45);
	/* Nobody is left on either side. */
	ck_assert_int_eq(ss_chan_try_send(c, &v), EAGAIN);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	ss_chan_free(c);
}
END_TEST

/* -------------------------------------------------------------- close */

START_TEST(close_drains_then_epipe)
{
	ss_chan *c = ss_chan_new(4, sizeof(long));
	long v;

	ck_assert_ptr_nonnull(c);
	for (v = 1; v <= 3; v++)
		ck_assert_int_eq(ss_chan_send(c, &v), 0);
	ck_assert_int_eq(ss_chan_close(c), 0);
	ck_assert_int_eq(ss_chan_close(c), EPIPE);
	v = 9;
	ck_assert_int_eq(ss_chan_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_try_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(ss_chan_recv(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_recv(c, &v), EPIPE);
	ss_chan_free(c);

	/* Full when closed: try_send says EPIPE, not EAGAIN. */
	c = ss_chan_new(2, sizeof(long));
	ck_assert_ptr_nonnull(c);
	for (v = 1; v <= 2; v++)
		ck_assert_int_eq(ss_chan_try_send(c, &v), 0);
	ck_assert_int_eq(ss_chan_close(c), 0);
	ck_assert_int_eq(ss_chan_try_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(ss_chan_recv(c, &v), 0);
	ck_assert_int_eq(v, 2);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EPIPE);
	ss_chan_free(c);

	/* A closed rendezvous: nothing to drain. */
	c = ss_chan_new(0, sizeof(long));
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ss_chan_close(c), 0);
	ck_assert_int_eq(ss_chan_recv(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_try_send(c, &v), EPIPE);
	ck_assert_int_eq(ss_chan_close(c), EPIPE);
	ss_chan_free(c);
}
END_TEST

#define PER_KIND 2
#define WAITERS (PER_KIND * KINDS)

/* _i 0: rendezvous, 1: capacity 2; waiting receivers of every kind. */
START_TEST(close_wakes_receivers)
{
	ss_chan *c = ss_chan_new(_i ? 2 : 0, sizeof(long));
	struct side s[WAITERS];
	struct runner r[WAITERS];
	long v;
	int i;

	ck_assert_ptr_nonnull(c);
	memset(s, 0, sizeof s);
	for (i = 0; i < WAITERS; i++) {
		reset(&s[i], c, NULL, -1);
		start(&r[i], (enum kind)(i % KINDS), side_recv, &s[i]);
	}
	for (i = 0; i < WAITERS; i++)
		ck_assert(wait_flag(&s[i].started));
	let_it_wait();
	ck_assert_int_eq(ss_chan_close(c), 0);
	for (i = 0; i < WAITERS; i++) {
		finish(&r[i]);
		ck_assert_msg(s[i].rc == EPIPE, "a waiting %s's recv: %d after close",
			      kind_name[r[i].kind], s[i].rc);
	}
	ck_assert_int_eq(ss_chan_recv(c, &v), EPIPE);
	ss_chan_free(c);
}
END_TEST

/* _i 0: rendezvous, 1: capacity 1 (full); waiting senders of every kind
 * get EPIPE, and what was buffered before still drains. */
START_TEST(close_wakes_senders)
{
	size_t cap = (size_t)_i;
	ss_chan *c = ss_chan_new(cap, sizeof(long));
	struct side s[WAITERS];
	struct runner r[WAITERS];
	long v = -7;
	int i;

	ck_assert_ptr_nonnull(c);
	if (cap)
		ck_assert_int_eq(ss_chan_try_send(c, &v), 0);
	memset(s, 0, sizeof s);
	for (i = 0; i < WAITERS; i++) {
		reset(&s[i], c, NULL, i);
		start(&r[i], (enum kind)(i % KINDS), side_send, &s[i]);
	}
	for (i = 0; i < WAITERS; i++)
		ck_assert(wait_flag(&s[i].started));
	let_it_wait();
	ck_assert_int_eq(ss_chan_close(c), 0);
	for (i = 0; i < WAITERS; i++) {
		finish(&r[i]);
		ck_assert_msg(s[i].rc == EPIPE, "a waiting %s's send: %d after close",
			      kind_name[r[i].kind], s[i].rc);
	}
	if (cap) {
		v = 0;
		ck_assert_int_eq(ss_chan_recv(c, &v), 0);
		ck_assert_int_eq(v, -7);
	}
	ck_assert_int_eq(ss_chan_recv(c, &v), EPIPE);
	ss_chan_free(c);
}
END_TEST

/* _i 0: rendezvous, 1: capacity 1.  ss_chan_free closes: receivers (on an
 * empty channel) and senders (on a full one) of every kind get EPIPE. */
START_TEST(free_wakes_waiters)
{
	size_t cap = (size_t)_i;
	ss_chan *rc = ss_chan_new(cap, sizeof(long)), *sc = ss_chan_new(cap, sizeof(long));
	struct side s[2 * KINDS];
	struct runner r[2 * KINDS];
	long v = -7;
	int i;

	ck_assert_ptr_nonnull(rc);
	ck_assert_ptr_nonnull(sc);
	if (cap)
		ck_assert_int_eq(ss_chan_try_send(sc, &v), 0);
	memset(s, 0, sizeof s);
	for (i = 0; i < KINDS; i++) {
		reset(&s[i], rc, NULL, -1);
		start(&r[i], (enum kind)i, side_recv, &s[i]);
		reset(&s[KINDS + i], sc, NULL, i);
		start(&r[KINDS + i], (enum kind)i, side_send, &s[KINDS + i]);
	}
	for (i = 0; i < 2 * KINDS; i++)
		ck_assert(wait_flag(&s[i].started));
	let_it_wait();
	ss_chan_free(rc);
	ss_chan_free(sc);
	for (i = 0; i < 2 * KINDS; i++) {
		finish(&r[i]);
		ck_assert_msg(s[i].rc == EPIPE, "a %s waiting to %s: %d after free",
			      kind_name[r[i].kind], i < KINDS ? "receive" : "send", s[i].rc);
	}
}
END_TEST

/* --------------------------------------------------------------- mpmc */

#define PRODUCERS 3
#define CONSUMERS 3
#define MPMC 5000
#define MPMC_MIXED 100

/* An element with a check word, so that a torn copy shows. */
struct msg {
	uint64_t v, check;
};

static uint64_t check_of(uint64_t v)
{
	return (v * 0x9E3779B97F4A7C15ull) ^ 0x5DEECE66Dull;
}

static struct {
	ss_chan *c;
	long per, total;
	_Atomic unsigned char *seen;
	atomic_long received, sum, dup, torn, order, send_err, recv_err;
} m;

static void *producer(void *arg)
{
	long id = (long)(intptr_t)arg, i;
	struct msg x;

	for (i = 0; i < m.per; i++) {
		x.v = (uint64_t)(id * m.per + i);
		x.check = check_of(x.v);
		if (ss_chan_send(m.c, &x)) {
			atomic_fetch_add(&m.send_err, 1);
			break;
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	long last[PRODUCERS], p;
	struct msg x;
	int rc;

	for (p = 0; p < PRODUCERS; p++)
		last[p] = -1;
	while ((rc = ss_chan_recv(m.c, &x)) == 0) {
		if (x.check != check_of(x.v) || x.v >= (uint64_t)m.total) {
			atomic_fetch_add(&m.torn, 1);
			continue;
		}
		if (atomic_fetch_add(&m.seen[x.v], 1))
			atomic_fetch_add(&m.dup, 1);
		p = (long)x.v / m.per;
		if ((long)x.v <= last[p])
			atomic_fetch_add(&m.order, 1);
		last[p] = (long)x.v;
		atomic_fetch_add(&m.received, 1);
		atomic_fetch_add(&m.sum, (long)x.v);
	}
	if (rc != EPIPE)
		atomic_fetch_add(&m.recv_err, 1);
	return arg;
}

/*
 * _i = capacity index x 9 + producer kind x 3 + consumer kind.  Main joins
 * the producers, closes the channel, and joins the consumers, which drain
 * it until EPIPE.
 */
START_TEST(mpmc_matrix)
{
	static const size_t caps[] = { 0, 1, 64 };
	size_t cap = caps[_i / 9];
	enum kind pk = (enum kind)(_i / 3 % 3), ck = (enum kind)(_i % 3);
	int mixed = (pk == TASK && ck == FIBER) || (pk == FIBER && ck == TASK);
	struct runner prod[PRODUCERS], cons[CONSUMERS];
	long i, missing = 0;

	m.per = mixed ? MPMC_MIXED : (long)scaled(MPMC);
	m.total = PRODUCERS * m.per;
	m.c = ss_chan_new(cap, sizeof(struct msg));
	m.seen = calloc((size_t)m.total, 1);
	ck_assert_ptr_nonnull(m.c);
	ck_assert_ptr_nonnull(m.seen);
	for (i = 0; i < CONSUMERS; i++)
		start(&cons[i], ck, consumer, NULL);
	for (i = 0; i < PRODUCERS; i++)
		start(&prod[i], pk, producer, (void *)(intptr_t)i);
	for (i = 0; i < PRODUCERS; i++)
		finish(&prod[i]);
	ck_assert_int_eq(ss_chan_close(m.c), 0);
	for (i = 0; i < CONSUMERS; i++)
		finish(&cons[i]);
	for (i = 0; i < m.total; i++)
		missing += m.seen[i] == 0;
#define WHO "%s producers, %s consumers, capacity %zu: "
	ck_assert_msg(atomic_load(&m.send_err) == 0 && atomic_load(&m.recv_err) == 0,
		      WHO "%ld send errors, %ld recv errors", kind_name[pk], kind_name[ck], cap,
		      atomic_load(&m.send_err), atomic_load(&m.recv_err));
	ck_assert_msg(atomic_load(&m.torn) == 0, WHO "%ld torn elements", kind_name[pk],
		      kind_name[ck], cap, atomic_load(&m.torn));
	ck_assert_msg(missing == 0 && atomic_load(&m.dup) == 0,
		      WHO "%ld of %ld elements lost, %ld duplicated", kind_name[pk],
		      kind_name[ck], cap, missing, m.total, atomic_load(&m.dup));
	ck_assert_msg(atomic_load(&m.order) == 0, WHO "%ld elements out of order",
		      kind_name[pk], kind_name[ck], cap, atomic_load(&m.order));
#undef WHO
	ck_assert_int_eq(atomic_load(&m.received), m.total);
	ck_assert_int_eq(atomic_load(&m.sum), m.total * (m.total - 1) / 2);
	ss_chan_free(m.c);
	free((void *)m.seen);
}
END_TEST

/* ---------------------------------------------------------------- fan */

#define FAN 1000

static void *recv_long(void *arg)
{
	long v = -1;

	return ss_chan_recv(arg, &v) ? BAD : (void *)(intptr_t)v;
}

START_TEST(fan_out)
{
	ss_chan *c = ss_chan_new(1, sizeof(long));
	ss_task *t[FAN];
	unsigned char seen[FAN] = { 0 };
	void *r;
	long v;
	int i;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < FAN; i++)
		ck_assert_ptr_nonnull(t[i] = ss_go(recv_long, c));
	for (v = 0; v < FAN; v++)
		ck_assert_int_eq(ss_chan_send(c, &v), 0);
	for (i = 0; i < FAN; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		ck_assert_msg(r != BAD && (intptr_t)r >= 0 && (intptr_t)r < FAN,
			      "receiver %d got %p", i, r);
		ck_assert_msg(seen[(intptr_t)r]++ == 0, "element %ld received twice",
			      (long)(intptr_t)r);
	}
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	ss_chan_free(c);
}
END_TEST

static void *send_arg(void *arg)
{
	struct side *s = arg;

	return (void *)(intptr_t)ss_chan_send(s->c, &s->v);
}

START_TEST(fan_in)
{
	ss_chan *c = ss_chan_new(1, sizeof(long));
	static struct side s[FAN];
	ss_task *t[FAN];
	unsigned char seen[FAN] = { 0 };
	void *r;
	long v;
	int i;

	ck_assert_ptr_nonnull(c);
	for (i = 0; i < FAN; i++) {
		s[i].c = c;
		s[i].v = i;
		ck_assert_ptr_nonnull(t[i] = ss_go(send_arg, &s[i]));
	}
	for (i = 0; i < FAN; i++) {
		v = -1;
		ck_assert_int_eq(ss_chan_recv(c, &v), 0);
		ck_assert(v >= 0 && v < FAN);
		ck_assert_msg(seen[v]++ == 0, "element %ld received twice", v);
	}
	for (i = 0; i < FAN; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		ck_assert_ptr_null(r);
	}
	ck_assert_int_eq(ss_chan_try_recv(c, &v), EAGAIN);
	ss_chan_free(c);
}
END_TEST

/* -------------------------------------------------------------- order */

#define ORDERED 16

/*
 * Waiters that take a ticket just before their channel call.  On the only
 * worker, with no compensating one (SMOLSCALE_THREADS=1,
 * SMOLSCALE_MAX_THREADS=1), a fiber runs from its ticket to the point
 * where it parks (or is served) without another fiber running in
 * between, so the tickets give the order in which the waiters came.
 * The spawn order is not enough: ss_yield usually lets each waiter run
 * before the driver spawns the next, but when the monitor hands a slow
 * worker's queue to the global queue (a worker kept off its CPU past
 * SMOLSCALE_STALL_MS / 2, common under TSan on a busy machine), the
 * driver can come back first.
 */
struct ordered {
	struct side side;
	int ticket;
};

static atomic_int next_ticket;

static void *ordered_recv(void *arg)
{
	struct ordered *o = arg;

	o->ticket = atomic_fetch_add(&next_ticket, 1);
	return side_recv(&o->side);
}

static void *ordered_send(void *arg)
{
	struct ordered *o = arg;

	o->ticket = atomic_fetch_add(&next_ticket, 1);
	return side_send(&o->side);
}

/*
 * The driver, a fiber on the only worker.  A channel serves its waiters
 * first come, first served: the k-th receiver to arrive gets the k-th
 * value sent, and the k-th sender to arrive is received k-th, after what
 * was buffered before it.  Returns the number of waiters served out of
 * order, or BAD.
 */
static void *order_driver(void *arg)
{
	size_t cap = (size_t)(uintptr_t)arg, i;
	ss_chan *c = ss_chan_new(cap, sizeof(long));
	struct ordered o[ORDERED];
	ss_task *t[ORDERED];
	long by_ticket[ORDERED], got[ORDERED];
	uintptr_t wrong = 0;
	long v;

	if (!c)
		return BAD;
	memset(o, 0, sizeof o);
	/* Receivers, served by sends. */
	atomic_store(&next_ticket, 0);
	for (i = 0; i < ORDERED; i++) {
		reset(&o[i].side, c, NULL, -1);
		if (!(t[i] = ss_go(ordered_recv, &o[i])))
			return BAD;
		ss_yield();
	}
	for (i = 0; i < ORDERED; i++) {
		v = (long)i;
		if (ss_chan_send(c, &v))
			return BAD;
	}
	for (i = 0; i < ORDERED; i++) {
		if (ss_join(t[i], NULL))
			return BAD;
		wrong += o[i].side.rc != 0 || o[i].side.v != (long)o[i].ticket;
	}
	/* Senders on a full channel (or a rendezvous), served by receives
	 * after what was buffered before them. */
	for (i = 0; i < cap; i++) {
		v = -1 - (long)i;
		if (ss_chan_try_send(c, &v))
			return BAD;
	}
	atomic_store(&next_ticket, 0);
	for (i = 0; i < ORDERED; i++) {
		reset(&o[i].side, c, NULL, (long)i);
		if (!(t[i] = ss_go(ordered_send, &o[i])))
			return BAD;
		ss_yield();
	}
	for (i = 0; i < cap; i++)
		if (ss_chan_recv(c, &v) || v != -1 - (long)i)
			wrong++;
	for (i = 0; i < ORDERED; i++)
		if (ss_chan_recv(c, &got[i]))
			got[i] = -2;
	/* Joined only now: a rendezvous sender returns once received. */
	for (i = 0; i < ORDERED; i++)
		by_ticket[i] = -1;
	for (i = 0; i < ORDERED; i++) {
		if (ss_join(t[i], NULL))
			return BAD;
		wrong += o[i].side.rc != 0;
		if (o[i].ticket >= 0 && o[i].ticket < ORDERED)
			by_ticket[o[i].ticket] = (long)i;
	}
	for (i = 0; i < ORDERED; i++)
		wrong += got[i] != by_ticket[i];
	ss_chan_free(c);
	return (void *)wrong;
}

/* _i 0: rendezvous, 1: capacity 4. */
START_TEST(waiters_served_in_order)
{
	void *r;

	setenv("SMOLSCALE_THREADS", "1", 1);
	setenv("SMOLSCALE_MAX_THREADS", "1", 1); /* see struct ordered */
	r = ss_block_on(order_driver, (void *)(uintptr_t)(_i ? 4 : 0));
	ck_assert_msg(r != BAD, "the driver failed");
	ck_assert_msg(r == NULL, "%zu waiters served out of order", (size_t)(uintptr_t)r);
}
END_TEST

/* ------------------------------------------------------------ oneshot */

START_TEST(oneshot_basics)
{
	ss_oneshot *o = ss_oneshot_new(sizeof(long));
	long v = 42;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(ss_oneshot_send(o, &v), 0);
	v = 43;
	ck_assert_int_eq(ss_oneshot_send(o, &v), EBUSY);
	v = 0;
	ck_assert_int_eq(ss_oneshot_recv(o, &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(ss_oneshot_recv(o, &v), EBUSY);
	ck_assert_int_eq(ss_oneshot_close(o), 0);
	ss_oneshot_free(o);

	/* Closed without a value. */
	o = ss_oneshot_new(sizeof(long));
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(ss_oneshot_close(o), 0);
	ck_assert_int_eq(ss_oneshot_close(o), 0);
	ck_assert_int_eq(ss_oneshot_recv(o, &v), EPIPE);
	ck_assert_int_eq(ss_oneshot_send(o, &v), EPIPE);
	ss_oneshot_free(o);

	/* Closed after the value came: the receiver still gets it. */
	o = ss_oneshot_new(sizeof(long));
	ck_assert_ptr_nonnull(o);
	v = 7;
	ck_assert_int_eq(ss_oneshot_send(o, &v), 0);
	ck_assert_int_eq(ss_oneshot_close(o), 0);
	v = 0;
	ck_assert_int_eq(ss_oneshot_recv(o, &v), 0);
	ck_assert_int_eq(v, 7);
	ss_oneshot_free(o);

	/* Freed with a value nobody took. */
	o = ss_oneshot_new(sizeof(long));
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(ss_oneshot_send(o, &v), 0);
	ss_oneshot_free(o);
}
END_TEST

#define ONESHOT_ROUNDS 200

/* _i = sender kind x 3 + receiver kind.  The receiver starts first; in
 * the first round the sender comes only once it waits. */
START_TEST(oneshot_matrix)
{
	enum kind sk = (enum kind)(_i / 3), rk = (enum kind)(_i % 3);
	long rounds = (long)scaled(ONESHOT_ROUNDS), i;
	struct side rs = { 0 }, ss = { 0 };
	struct runner rr, sr;

	for (i = 0; i < rounds; i++) {
		ss_oneshot *o = ss_oneshot_new(sizeof(long));

		ck_assert_ptr_nonnull(o);
		reset(&rs, NULL, o, -1);
		reset(&ss, NULL, o, 7 * i + 1);
		start(&rr, rk, side_oneshot_recv, &rs);
		if (i == 0) {
			ck_assert(wait_flag(&rs.started));
			let_it_wait();
			ck_assert_int_eq(atomic_load(&rs.done), 0);
		}
		start(&sr, sk, side_oneshot_send, &ss);
		finish(&sr);
		finish(&rr);
		ck_assert_msg(ss.rc == 0 && rs.rc == 0 && rs.v == 7 * i + 1,
			      "%s sender, %s receiver, round %ld: send %d, recv %d, value %ld",
			      kind_name[sk], kind_name[rk], i, ss.rc, rs.rc, rs.v);
		ss_oneshot_free(o);
	}
}
END_TEST

/* _i: the waiting receiver's kind.  Close, then free, wake it with EPIPE. */
START_TEST(oneshot_close_and_free_wake)
{
	enum kind k = (enum kind)_i;
	struct side s = { 0 };
	struct runner r;
	ss_oneshot *o;
	int round;

	for (round = 0; round < 2; round++) {
		o = ss_oneshot_new(sizeof(long));
		ck_assert_ptr_nonnull(o);
		reset(&s, NULL, o, -1);
		start(&r, k, side_oneshot_recv, &s);
		ck_assert(wait_flag(&s.started));
		let_it_wait();
		if (round == 0)
			ck_assert_int_eq(ss_oneshot_close(o), 0);
		else
			ss_oneshot_free(o);
		finish(&r);
		ck_assert_msg(s.rc == EPIPE, "a waiting %s: %d after %s", kind_name[k], s.rc,
			      round ? "free" : "close");
		if (round == 0)
			ss_oneshot_free(o);
	}
}
END_TEST

#define SERVERS 2
#define CLIENTS (2 * KINDS)
#define REQUESTS 50

struct request {
	long x;
	ss_oneshot *reply;
};

/* Answers x * x until the request channel is closed. */
static void *server(void *arg)
{
	struct request q;
	long y, served = 0;

	while (ss_chan_recv(arg, &q) == 0) {
		y = q.x * q.x;
		if (ss_oneshot_send(q.reply, &y) == 0)
			served++;
	}
	return (void *)(intptr_t)served;
}

static ss_chan *requests;

/* Sends REQUESTS requests, each with a oneshot of its own, and checks the
 * replies; returns how many were wrong. */
static void *client(void *arg)
{
	long base = (long)(intptr_t)arg * REQUESTS, i, y;
	uintptr_t wrong = 0;
	struct request q;

	for (i = 0; i < REQUESTS; i++) {
		q.x = base + i;
		q.reply = ss_oneshot_new(sizeof(long));
		if (!q.reply || ss_chan_send(requests, &q)) {
			wrong++;
			ss_oneshot_free(q.reply);
			continue;
		}
		y = -1;
		if (ss_oneshot_recv(q.reply, &y) || y != q.x * q.x)
			wrong++;
		ss_oneshot_free(q.reply);
	}
	return (void *)wrong;
}

START_TEST(oneshot_request_reply)
{
	struct runner srv[SERVERS], cli[CLIENTS];
	long served = 0;
	uintptr_t wrong = 0;
	int i;

	requests = ss_chan_new(16, sizeof(struct request));
	ck_assert_ptr_nonnull(requests);
	for (i = 0; i < SERVERS; i++)
		start(&srv[i], FIBER, server, requests);
	for (i = 0; i < CLIENTS; i++)
		start(&cli[i], (enum kind)(i % KINDS), client, (void *)(intptr_t)i);
	for (i = 0; i < CLIENTS; i++)
		wrong += (uintptr_t)finish(&cli[i]);
	ck_assert_int_eq(ss_chan_close(requests), 0);
	for (i = 0; i < SERVERS; i++)
		served += (long)(intptr_t)finish(&srv[i]);
	ck_assert_msg(wrong == 0, "%zu wrong replies", (size_t)wrong);
	ck_assert_int_eq(served, CLIENTS * REQUESTS);
	ss_chan_free(requests);
}
END_TEST

/* -------------------------------------------------------------- sizes */

static const size_t odd_sizes[] = { 1, 3, 17, 4096, MAX_ELEM };
#define N_SIZES (sizeof odd_sizes / sizeof odd_sizes[0])
#define CANARY 64
#define ODD_ELEMS 200

static unsigned char pattern(size_t size, long i, size_t j)
{
	return (unsigned char)((size_t)i * 31 + j * 7 + size);
}

static void fill(unsigned char *buf, size_t size, long i)
{
	size_t j;

	for (j = 0; j < size; j++)
		buf[j] = pattern(size, i, j);
}

/* Element i, exactly, and the canary after it untouched. */
static int intact(const unsigned char *buf, size_t size, long i)
{
	size_t j;

	for (j = 0; j < size; j++)
		if (buf[j] != pattern(size, i, j))
			return 0;
	for (j = size; j < size + CANARY; j++)
		if (buf[j] != 0xA5)
			return 0;
	return 1;
}

struct odd {
	ss_chan *c;
	size_t size;
	long n;
};

static void *odd_producer(void *arg)
{
	struct odd *p = arg;
	unsigned char *buf = malloc(p->size);
	long i;

	if (!buf)
		return BAD;
	for (i = 0; i < p->n; i++) {
		fill(buf, p->size, i);
		if (ss_chan_send(p->c, buf)) {
			free(buf);
			return BAD;
		}
	}
	free(buf);
	return NULL;
}

/* _i = size index x 3 + capacity index (0, 1, 64); the producer's kind
 * varies with both, main receives into a buffer with a canary after the
 * element. */
START_TEST(odd_sizes_copied_exactly)
{
	static const size_t caps[] = { 0, 1, 64 };
	struct odd p = { NULL, odd_sizes[_i / 3], ODD_ELEMS };
	size_t cap = caps[_i % 3];
	enum kind k = (enum kind)((_i / 3 + _i % 3) % 3);
	unsigned char *buf = malloc(p.size + CANARY), *elem = malloc(p.size);
	struct runner r;
	ss_oneshot *o;
	long i;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(elem);
	p.c = ss_chan_new(cap, p.size);
	ck_assert_ptr_nonnull(p.c);
	/* The non-waiting calls. */
	if (cap) {
		fill(elem, p.size, 12345);
		ck_assert_int_eq(ss_chan_try_send(p.c, elem), 0);
		memset(buf, 0xA5, p.size + CANARY);
		ck_assert_int_eq(ss_chan_try_recv(p.c, buf), 0);
		ck_assert_msg(intact(buf, p.size, 12345), "size %zu: try_recv", p.size);
	}
	start(&r, k, odd_producer, &p);
	for (i = 0; i < p.n; i++) {
		memset(buf, 0xA5, p.size + CANARY);
		ck_assert_int_eq(ss_chan_recv(p.c, buf), 0);
		ck_assert_msg(intact(buf, p.size, i), "size %zu, capacity %zu, %s producer: element %ld",
			      p.size, cap, kind_name[k], i);
	}
	ck_assert_ptr_null(finish(&r));
	ss_chan_free(p.c);
	/* A oneshot of the same size. */
	o = ss_oneshot_new(p.size);
	ck_assert_ptr_nonnull(o);
	fill(elem, p.size, 777);
	ck_assert_int_eq(ss_oneshot_send(o, elem), 0);
	memset(buf, 0xA5, p.size + CANARY);
	ck_assert_int_eq(ss_oneshot_recv(o, buf), 0);
	ck_assert_msg(intact(buf, p.size, 777), "size %zu: oneshot", p.size);
	ss_oneshot_free(o);
	free(elem);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chan");
	TCase *api = tcase_new("api");
	TCase *bounded = tcase_new("bounded");
	TCase *rendez = tcase_new("rendezvous");
	TCase *closing = tcase_new("close");
	TCase *mpmc = tcase_new("mpmc");
	TCase *fan = tcase_new("fan");
	TCase *oneshot = tcase_new("oneshot");
	TCase *sizes = tcase_new("sizes");

	tcase_add_test(api, new_validation);
	tcase_add_test(api, null_arguments);
	tcase_add_test(bounded, bounded_try_model);
	tcase_add_loop_test(bounded, fifo_one_producer, 0, 6);
	tcase_add_loop_test(rendez, rendezvous, 0, KINDS);
	tcase_add_test(closing, close_drains_then_epipe);
	tcase_add_loop_test(closing, close_wakes_receivers, 0, 2);
	tcase_add_loop_test(closing, close_wakes_senders, 0, 2);
	tcase_add_loop_test(closing, free_wakes_waiters, 0, 2);
	tcase_add_loop_test(mpmc, mpmc_matrix, 0, 27);
	tcase_add_test(fan, fan_out);
	tcase_add_test(fan, fan_in);
	tcase_add_loop_test(fan, waiters_served_in_order, 0, 2);
	tcase_add_test(oneshot, oneshot_basics);
	tcase_add_loop_test(oneshot, oneshot_matrix, 0, 9);
	tcase_add_loop_test(oneshot, oneshot_close_and_free_wake, 0, KINDS);
	tcase_add_test(oneshot, oneshot_request_reply);
	tcase_add_loop_test(sizes, odd_sizes_copied_exactly, 0, (int)(N_SIZES * 3));
	suite_add_tcase(s, api);
	suite_add_tcase(s, bounded);
	suite_add_tcase(s, rendez);
	suite_add_tcase(s, closing);
	suite_add_tcase(s, mpmc);
	suite_add_tcase(s, fan);
	suite_add_tcase(s, oneshot);
	suite_add_tcase(s, sizes);
	return run_suite(s);
}
