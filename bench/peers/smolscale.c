/*
 * peers/smolscale.c - the smolscale peer (native ss_* API), built as
 * bench-smolscale and, with -DPEER_STEAL=1, as bench-smolscale-steal
 * (SMOLSCALE_STEAL=1: classic work-stealing in the same library).
 *
 * A group is an array of ss_spawn() handles joined in turn by
 * peer_wait(): ss_join() runs a task that has not started yet on the
 * joiner itself, which ss_group_wait() does not, so fork_join needs no
 * hand-off.  Detached tasks are ss_spawn() + ss_detach().  Each task
 * carries its peer_fn and argument in a small record (ss_spawn takes a
 * function returning void *), freed by the task when it starts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "smolscale.h"

#ifdef PEER_STEAL
const char *const peer_name = "smolscale-steal";
#else
const char *const peer_name = "smolscale";
#endif

#define INLINE_TASKS 2

struct call {
	peer_fn fn;
	void *arg;
};

struct peer_group {
	ss_task **t;            /* in[] or a heap array */
	int n, cap;
	ss_task *in[INLINE_TASKS];
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "bench-%s: %s: %s\n", peer_name, what, strerror(err));
	exit(1);
}

static void *run_call(void *p)
{
	struct call c = *(struct call *)p;

	free(p);
	c.fn(c.arg);
	return NULL;
}

static ss_task *spawn(peer_fn fn, void *arg)
{
	struct call *c = malloc(sizeof *c);
	ss_task *t;

	if (!c)
		fail("malloc", ENOMEM);
	c->fn = fn;
	c->arg = arg;
	if (!(t = ss_spawn(run_call, c)))
		fail("ss_spawn", errno);
	return t;
}

int peer_init(int threads)
{
	char n[16];

	if (threads > 0) {
		snprintf(n, sizeof n, "%d", threads);
		setenv("SMOLSCALE_THREADS", n, 1);
	}
#ifdef PEER_STEAL
	setenv("SMOLSCALE_STEAL", "1", 1);
#endif
	return 0;
}

void peer_run(peer_fn main, void *arg)
{
	main(arg);
}

struct peer_group *peer_group_new(void)
{
	struct peer_group *g = malloc(sizeof *g);

	if (!g)
		fail("malloc", ENOMEM);
	g->t = g->in;
	g->n = 0;
	g->cap = INLINE_TASKS;
	return g;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	if (g->n == g->cap) {
		ss_task **t = malloc(2 * g->cap * sizeof *t);

		if (!t)
			fail("malloc", ENOMEM);
		memcpy(t, g->t, g->n * sizeof *t);
		if (g->t != g->in)
			free(g->t);
		g->t = t;
		g->cap *= 2;
	}
	g->t[g->n++] = spawn(fn, arg);
}

void peer_wait(struct peer_group *g)
{
	int err;

	for (int i = 0; i < g->n; i++)
		if ((err = ss_join(g->t[i], NULL)))
			fail("ss_join", err);
	g->n = 0;
}

void peer_group_free(struct peer_group *g)
{
	if (g->t != g->in)
		free(g->t);
	free(g);
}

void peer_detach(peer_fn fn, void *arg)
{
	int err = ss_detach(spawn(fn, arg));

	if (err)
		fail("ss_detach", err);
}

void peer_fini(void)
{
}
