/*
 * peers/pthread.c - one thread per task (bench-pthread): every spawn is a
 * pthread_create() with default attributes, a group is the list of its
 * threads joined in peer_wait(), a detached task is pthread_create() +
 * pthread_detach().  No pool, so the thread count of peer_init() is
 * ignored.  When the system is out of threads (EAGAIN) the spawner sleeps
 * 100 µs and tries again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer.h"

const char *const peer_name = "pthread";

struct call {
	peer_fn fn;
	void *arg;
};

struct peer_group {
	pthread_t *t;
	int n, cap;
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

static pthread_t start(peer_fn fn, void *arg)
{
	const struct timespec pause = { 0, 100000 };
	struct call *c = malloc(sizeof *c);
	pthread_t t;
	int err;

	if (!c)
		fail("malloc", ENOMEM);
	c->fn = fn;
	c->arg = arg;
	while ((err = pthread_create(&t, NULL, run_call, c)) == EAGAIN)
		nanosleep(&pause, NULL);
	if (err)
		fail("pthread_create", err);
	return t;
}

int peer_init(int threads)
{
	return 0;
}

void peer_run(peer_fn main, void *arg)
{
	main(arg);
}

struct peer_group *peer_group_new(void)
{
	struct peer_group *g = calloc(1, sizeof *g);

	if (!g)
		fail("calloc", ENOMEM);
	return g;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	if (g->n == g->cap) {
		int cap = g->cap ? 2 * g->cap : 4;
		pthread_t *t = realloc(g->t, cap * sizeof *t);

		if (!t)
			fail("realloc", ENOMEM);
		g->t = t;
		g->cap = cap;
	}
	g->t[g->n++] = start(fn, arg);
}

void peer_wait(struct peer_group *g)
{
	int err;

	for (int i = 0; i < g->n; i++)
		if ((err = pthread_join(g->t[i], NULL)))
			fail("pthread_join", err);
	g->n = 0;
}

void peer_group_free(struct peer_group *g)
{
	free(g->t);
	free(g);
}

void peer_detach(peer_fn fn, void *arg)
{
	pthread_detach(start(fn, arg));
}

void peer_fini(void)
{
}
