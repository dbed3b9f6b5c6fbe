/*
 * peers/smolscale.c - the smolscale peer (native ss_* API), built as
 * bench-smolscale and, with -DPEER_STEAL=1, as bench-smolscale-steal
 * (SMOLSCALE_STEAL=1: classic work-stealing in the same library).
 *
 * A group is an array of ss_spawn() handles joined in turn by
 * peer_wait(): ss_join() runs a task that has not started yet on the
 * joiner itself, which ss_group_wait() does not, so fork_join needs no
 * hand-off.  Detached tasks are ss_spawn() + ss_detach().  ss_spawn takes
 * a function returning void *, so each task runs a small call record: a
 * group keeps its own, a detached task frees its record when it starts.
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
#define BLOCK 256

struct call {
	peer_fn fn;
	void *arg;
};

/* A group's tasks: a handle and the call it runs, in storage that never
 * moves while the tasks run (two inline entries, then blocks of 256), and
 * that the group frees itself: no allocation per task, and none freed on
 * another thread. */
struct entry {
	ss_task *t;
	struct call c;
};

struct peer_group {
	int n;                  /* entries in use */
	int nblocks;
	struct entry **blocks;  /* each BLOCK entries, kept for reuse */
	struct entry in[INLINE_TASKS];
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "bench-%s: %s: %s\n", peer_name, what, strerror(err));
	exit(1);
}

static void *run_call(void *p)
{
	struct call *c = p;

	c->fn(c->arg);
	return NULL;
}

/* A detached task owns its call record. */
static void *run_call_free(void *p)
{
	struct call c = *(struct call *)p;

	free(p);
	c.fn(c.arg);
	return NULL;
}

static struct entry *entry(struct peer_group *g, int i)
{
	if (i < INLINE_TASKS)
		return &g->in[i];
	i -= INLINE_TASKS;
	return &g->blocks[i / BLOCK][i % BLOCK];
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

/* main runs on the calling thread, outside the pool, as a program's main
 * thread would.  BENCH_MAIN_IN_TASK=1 runs it as a task instead (as the
 * OpenMP peer runs it inside its parallel region): its spawns then go to
 * its worker's ring and its joins run unstarted tasks inline.  For
 * diagnosis, not the table: a main that sleeps (the pipelines' feeder)
 * would hold a worker. */
void peer_run(peer_fn main, void *arg)
{
	const char *in_task = getenv("BENCH_MAIN_IN_TASK");

	if (in_task && strcmp(in_task, "1") == 0) {
		struct call c = { main, arg };
		ss_task *t = ss_spawn(run_call, &c);
		int err;

		if (!t)
			fail("ss_spawn", errno);
		if ((err = ss_join(t, NULL)))
			fail("ss_join", err);
		return;
	}
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
	struct entry *e;

	if (g->n >= INLINE_TASKS && (g->n - INLINE_TASKS) % BLOCK == 0 &&
	    (g->n - INLINE_TASKS) / BLOCK == g->nblocks) {
		struct entry **b = realloc(g->blocks,
		                           (g->nblocks + 1) * sizeof *b);
		if (!b || !(b[g->nblocks] = malloc(BLOCK * sizeof **b)))
			fail("malloc", ENOMEM);
		g->blocks = b;
		g->nblocks++;
	}
	e = entry(g, g->n++);
	e->c.fn = fn;
	e->c.arg = arg;
	if (!(e->t = ss_spawn(run_call, &e->c)))
		fail("ss_spawn", errno);
}

void peer_wait(struct peer_group *g)
{
	int err;

	for (int i = 0; i < g->n; i++)
		if ((err = ss_join(entry(g, i)->t, NULL)))
			fail("ss_join", err);
	g->n = 0;
}

void peer_group_free(struct peer_group *g)
{
	for (int i = 0; i < g->nblocks; i++)
		free(g->blocks[i]);
	free(g->blocks);
	free(g);
}

void peer_detach(peer_fn fn, void *arg)
{
	struct call *c = malloc(sizeof *c);
	ss_task *t;
	int err;

	if (!c)
		fail("malloc", ENOMEM);
	c->fn = fn;
	c->arg = arg;
	if (!(t = ss_spawn(run_call_free, c)))
		fail("ss_spawn", errno);
	if ((err = ss_detach(t)))
		fail("ss_detach", err);
}

void peer_fini(void)
{
}
