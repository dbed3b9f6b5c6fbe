/*
 * chan.c - channels and one-shot reply slots (smolscale.h), for fibers,
 * plain tasks and ordinary threads in any mix.
 *
 * A channel is a ring buffer of `cap` elements and two FIFO queues of
 * waiters (struct ss_wait, on each waiter's own stack): senders waiting
 * for room (or, at capacity 0, for a receiver) and receivers waiting for
 * an element.  Everything is under the channel's spinlock, which a waiting
 * fiber holds across its park until its commit lets it go (fibers.c), so
 * queueing a waiter and sleeping are one step to everyone else.
 *
 * Hand-off: an operation that finds a waiter on the other side serves it
 * directly: a send copies into a waiting receiver's element, a receive
 * takes a waiting sender's element (straight, at capacity 0, or into the
 * buffer's tail behind the one it took).  The served waiter is claimed
 * (ss__wait_claim) under the lock, and woken after the lock is let go: a
 * claimed waiter stays parked until its waker wakes it, so its element and
 * its ss_wait stay valid until then.  A waiter that a canceller claimed
 * first (ss_cancel of a fiber) is skipped and unlinked; the cancelled fiber
 * unlinks itself if it is still queued.
 *
 * Invariants, under the lock: a receiver waits only while the buffer is
 * empty, a sender only while it is full (or at capacity 0 with no
 * receiver); every linked waiter has `linked` set; the buffer never holds
 * more than cap elements.
 *
 * Freeing: `users` counts the calls inside the channel, waiters included.
 * ss_chan_free closes it and marks it; the last call out frees it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ELEM_MAX (64u * 1024u)

struct wq {
	struct ss_wait *head, *tail;
};

struct ss_chan {
	_Atomic uint32_t lock;
	size_t cap, esz;
	size_t head, len;          /* ring of cap elements in buf */
	unsigned char *buf;
	bool closed;
	bool freeing;
	unsigned users;
	struct wq sendq, recvq;
};

/* ------------------------------------------------------------ waiters */

static void wq_push(struct wq *q, struct ss_wait *w)
{
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	w->linked = true;
}

static void wq_unlink(struct wq *q, struct ss_wait *w)
{
	if (!w->linked)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->next = w->prev = NULL;
	w->linked = false;
}

/* The oldest waiter that can still be served, claimed; NULL if none.
 * Waiters claimed by a canceller are dropped on the way. */
static struct ss_wait *wq_take(struct wq *q)
{
	struct ss_wait *w;

	while ((w = q->head)) {
		wq_unlink(q, w);
		if (ss__wait_claim(w))
			return w;
	}
	return NULL;
}

/* Wake every waiter of q with r (close); returns the list to wake after
 * the lock, linked by ->next. */
static struct ss_wait *wq_take_all(struct wq *q, struct ss_wait *list)
{
	struct ss_wait *w;

	while ((w = wq_take(q))) {
		w->next = list;
		list = w;
	}
	return list;
}

static void wake_list(struct ss_wait *list, int r)
{
	while (list) {
		struct ss_wait *next = list->next;

		ss__wait_wake(list, r);
		list = next;
	}
}

/* ------------------------------------------------------------ channel */

static unsigned char *slot(ss_chan *c, size_t i)
{
	return c->buf + ((c->head + i) % c->cap) * c->esz;
}

ss_chan *ss_chan_new(size_t capacity, size_t elem_size)
{
	ss_chan *c;

	if (elem_size == 0 || elem_size > ELEM_MAX ||
	    (capacity && capacity > SIZE_MAX / elem_size)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c || (capacity && !(c->buf = malloc(capacity * elem_size)))) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->cap = capacity;
	c->esz = elem_size;
	return c;
}

static void enter(ss_chan *c)
{
	ss__spin_lock(&c->lock);
	c->users++;
}

/* Let go of the lock, as a user leaves; frees c if it was the last user
 * of a freed channel. */
static void leave(ss_chan *c)
{
	bool gone = --c->users == 0 && c->freeing;

	ss__spin_unlock(&c->lock);
	if (gone) {
		free(c->buf);
		free(c);
	}
}

static bool unlock_commit(void *arg)
{
	ss__spin_unlock(&((ss_chan *)arg)->lock);
	return true;
}

/* Wait in q (the caller holds the lock, counted as a user); returns with
 * the lock held again. */
static int wait_in(ss_chan *c, struct wq *q, void *elem)
{
	struct ss_wait wt;
	int r;

	ss__wait_init(&wt);
	wt.elem = elem;
	wq_push(q, &wt);
	r = ss__wait(&wt, unlock_commit, c);
	ss__spin_lock(&c->lock);
	if (r == ECANCELED)
		wq_unlink(q, &wt);
	return r;
}

static int send(ss_chan *c, const void *elem, bool block)
{
	struct ss_wait *rx;
	int r = 0;

	if (!c || !elem)
		return EINVAL;
	if (block && ss__fiber_cancelled())
		return ECANCELED;
	enter(c);
	if (c->closed) {
		r = EPIPE;
	} else if ((rx = wq_take(&c->recvq))) {
		memcpy(rx->elem, elem, c->esz);
		leave(c);
		ss__wait_wake(rx, 0);
		return 0;
	} else if (c->len < c->cap) {
		memcpy(slot(c, c->len), elem, c->esz);
		c->len++;
	} else if (!block) {
		r = EAGAIN;
	} else {
		/* The element stays ours until a receiver takes it. */
		r = wait_in(c, &c->sendq, (void *)elem);
	}
	leave(c);
	return r;
}

static int recv(ss_chan *c, void *elem, bool block)
{
	struct ss_wait *tx;
	int r = 0;

	if (!c || !elem)
		return EINVAL;
	if (block && ss__fiber_cancelled())
		return ECANCELED;
	enter(c);
	if (c->len) {
		memcpy(elem, slot(c, 0), c->esz);
		c->head = (c->head + 1) % c->cap;
		c->len--;
		/* Room now: the oldest waiting sender's element follows. */
		if ((tx = wq_take(&c->sendq))) {
			memcpy(slot(c, c->len), tx->elem, c->esz);
			c->len++;
			leave(c);
			ss__wait_wake(tx, 0);
			return 0;
		}
	} else if ((tx = wq_take(&c->sendq))) {
		memcpy(elem, tx->elem, c->esz);
		leave(c);
		ss__wait_wake(tx, 0);
		return 0;
	} else if (c->closed) {
		r = EPIPE;
	} else if (!block) {
		r = EAGAIN;
	} else {
		r = wait_in(c, &c->recvq, elem);
	}
	leave(c);
	return r;
}

int ss_chan_send(ss_chan *c, const void *elem)
{
	return send(c, elem, true);
}

int ss_chan_try_send(ss_chan *c, const void *elem)
{
	return send(c, elem, false);
}

int ss_chan_recv(ss_chan *c, void *elem)
{
	return recv(c, elem, true);
}

int ss_chan_try_recv(ss_chan *c, void *elem)
{
	return recv(c, elem, false);
}

/* Under the lock: close, and take every waiter (a receiver waits only on
 * an empty buffer, so all of them get EPIPE, as do the senders). */
static struct ss_wait *close_locked(ss_chan *c)
{
	c->closed = true;
	return wq_take_all(&c->sendq, wq_take_all(&c->recvq, NULL));
}

int ss_chan_close(ss_chan *c)
{
	struct ss_wait *list;

	if (!c)
		return EINVAL;
	enter(c);
	if (c->closed) {
		leave(c);
		return EPIPE;
	}
	list = close_locked(c);
	leave(c);
	wake_list(list, EPIPE);
	return 0;
}

void ss_chan_free(ss_chan *c)
{
	struct ss_wait *list = NULL;

	if (!c)
		return;
	enter(c);
	if (!c->closed)
		list = close_locked(c);
	c->freeing = true;
	/* Wake before letting go: a woken waiter still counts as a user,
	 * so c outlives it; leave() frees c once the last one is out. */
	wake_list(list, EPIPE);
	leave(c);
}

/* ------------------------------------------------------------ one-shot */

/* A one-shot slot: everything but esz under `lock` (a spinlock, as the
 * channel's, since a waiting fiber holds it across its park). */
struct ss_oneshot {
	_Atomic uint32_t lock;
	size_t esz;
	bool has_value;      /* sent, not yet received */
	bool sent, received, closed, freeing;
	unsigned users;      /* calls inside it: the last one out frees */
	struct ss_wait *waiter;  /* the receiver waiting, if any */
	unsigned char value[];
};

ss_oneshot *ss_oneshot_new(size_t elem_size)
{
	ss_oneshot *o;

	if (elem_size == 0 || elem_size > ELEM_MAX) {
		errno = EINVAL;
		return NULL;
	}
	o = calloc(1, sizeof *o + elem_size);
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	o->esz = elem_size;
	return o;
}

static void o_enter(ss_oneshot *o)
{
	ss__spin_lock(&o->lock);
	o->users++;
}

static void o_leave(ss_oneshot *o)
{
	bool gone = --o->users == 0 && o->freeing;

	ss__spin_unlock(&o->lock);
	if (gone)
		free(o);
}

int ss_oneshot_send(ss_oneshot *o, const void *elem)
{
	struct ss_wait *rx = NULL;

	if (!o || !elem)
		return EINVAL;
	o_enter(o);
	if (o->sent) {
		o_leave(o);
		return EBUSY;
	}
	if (o->closed) {
		o_leave(o);
		return EPIPE;
	}
	o->sent = true;
	if (o->waiter && ss__wait_claim(o->waiter)) {
		rx = o->waiter;
		o->waiter = NULL;
		memcpy(rx->elem, elem, o->esz);
		o->received = true;
	} else {
		memcpy(o->value, elem, o->esz);
		o->has_value = true;
	}
	o_leave(o);
	if (rx)
		ss__wait_wake(rx, 0);
	return 0;
}

static bool o_unlock_commit(void *arg)
{
	ss__spin_unlock(&((ss_oneshot *)arg)->lock);
	return true;
}

int ss_oneshot_recv(ss_oneshot *o, void *elem)
{
	struct ss_wait wt;
	int r = 0;

	if (!o || !elem)
		return EINVAL;
	if (ss__fiber_cancelled())
		return ECANCELED;
	o_enter(o);
	if (o->received || o->waiter) {
		r = EBUSY;
	} else if (o->has_value) {
		memcpy(elem, o->value, o->esz);
		o->has_value = false;
		o->received = true;
	} else if (o->closed) {
		r = EPIPE;
	} else {
		ss__wait_init(&wt);
		wt.elem = elem;
		o->waiter = &wt;
		r = ss__wait(&wt, o_unlock_commit, o);
		ss__spin_lock(&o->lock);
		if (o->waiter == &wt)
			o->waiter = NULL;
	}
	o_leave(o);
	return r;
}

/* Under the lock: close o and take its waiting receiver, if any (to be
 * woken with EPIPE). */
static struct ss_wait *o_close_locked(ss_oneshot *o)
{
	struct ss_wait *rx = NULL;

	o->closed = true;
	if (o->waiter && ss__wait_claim(o->waiter))
		rx = o->waiter;
	o->waiter = NULL;
	return rx;
}

int ss_oneshot_close(ss_oneshot *o)
{
	struct ss_wait *rx;

	if (!o)
		return EINVAL;
	o_enter(o);
	rx = o_close_locked(o);
	o_leave(o);
	if (rx)
		ss__wait_wake(rx, EPIPE);
	return 0;
}

void ss_oneshot_free(ss_oneshot *o)
{
	struct ss_wait *rx;

	if (!o)
		return;
	o_enter(o);
	rx = o_close_locked(o);
	o->freeing = true;
	/* Wake before letting go: the woken receiver still counts as a
	 * user, so o outlives it (as ss_chan_free). */
	if (rx)
		ss__wait_wake(rx, EPIPE);
	o_leave(o);
}
