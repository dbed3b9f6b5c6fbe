/*
 * peers/naive.c - the naive fixed pool peer (bench-naive): one mutex and
 * one condition variable around one FIFO queue (naive_pool.c).  A group
 * is an array of task handles waited for in turn; a wait from inside a
 * task blocks its thread, so fork_join deadlocks once every thread waits,
 * which the driver's watchdog reports.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive_pool.h"
#include "peer.h"

const char *const peer_name = "naive";

struct peer_group {
	struct np_task **t;
	int n, cap;
};

static struct np_pool *pool;

static void fail(const char *what)
{
	fprintf(stderr, "bench-%s: %s: %s\n", peer_name, what, strerror(errno));
	exit(1);
}

int peer_init(int threads)
{
	if (!(pool = np_pool_new(threads))) {
		fprintf(stderr, "bench-%s: np_pool_new: %s\n", peer_name, strerror(errno));
		return -1;
	}
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
		fail("calloc");
	return g;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	if (g->n == g->cap) {
		int cap = g->cap ? 2 * g->cap : 4;
		struct np_task **t = realloc(g->t, cap * sizeof *t);

		if (!t)
			fail("realloc");
		g->t = t;
		g->cap = cap;
	}
	if (!(g->t[g->n++] = np_submit(pool, fn, arg)))
		fail("np_submit");
}

void peer_wait(struct peer_group *g)
{
	for (int i = 0; i < g->n; i++)
		np_wait(g->t[i]);
	g->n = 0;
}

void peer_group_free(struct peer_group *g)
{
	free(g->t);
	free(g);
}

void peer_detach(peer_fn fn, void *arg)
{
	if (np_detach(pool, fn, arg))
		fail("np_detach");
}

void peer_fini(void)
{
	np_pool_free(pool);
}
