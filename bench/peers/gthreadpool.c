/*
 * gthreadpool.c - the GLib GThreadPool peer of the benchmarks (see peer.h):
 * GLib's own thread pool, g_thread_pool_new() / g_thread_pool_push(), as a
 * GLib or GTK program would use it.  Every task is one pushed item.
 *
 * Compiled twice: with PEER_EXCLUSIVE=0 the pool is a shared one
 * (exclusive=FALSE: it borrows GLib's process-wide unused threads and
 * starts them on demand, up to max_threads), peer "gthreadpool"; with
 * PEER_EXCLUSIVE=1 it owns max_threads threads started at once, peer
 * "gthreadpool-excl".  max_threads is the requested thread count, or the
 * CPUs this process may use (g_get_num_processors()).
 *
 * GThreadPool has no notion of a group, so a group is a counter of
 * unfinished items under a GMutex with a GCond, decremented as each item
 * finishes.  peer_wait() blocks its thread: inside a pool thread that is
 * how fork_join deadlocks a fixed pool, as the workloads expect.
 */
#include "../peer.h"

#include <glib.h>
#include <stdio.h>

#ifndef PEER_EXCLUSIVE
#error "compile with -DPEER_EXCLUSIVE=0 or -DPEER_EXCLUSIVE=1"
#endif

#if PEER_EXCLUSIVE
const char *const peer_name = "gthreadpool-excl";
#else
const char *const peer_name = "gthreadpool";
#endif

/* Invariant: pending counts the pushed, unfinished items of the group and
 * is read and written under lock only, so that peer_wait() can free the
 * group as soon as it sees zero: the last item has released lock by then. */
struct peer_group {
	GMutex lock;
	GCond done;
	unsigned pending;
};

/* One pushed task; group is NULL for a detached one. */
struct item {
	peer_fn fn;
	void *arg;
	struct peer_group *group;
};

static GThreadPool *pool;

static void run_item(gpointer data, gpointer user_data)
{
	struct item *it = data;
	struct peer_group *g = it->group;

	(void)user_data;
	it->fn(it->arg);
	g_free(it);
	if (g) {
		g_mutex_lock(&g->lock);
		if (--g->pending == 0)
			g_cond_signal(&g->done);
		g_mutex_unlock(&g->lock);
	}
}

int peer_init(int threads)
{
	GError *err = NULL;
	int n = threads > 0 ? threads : (int)g_get_num_processors();

	pool = g_thread_pool_new(run_item, NULL, n, PEER_EXCLUSIVE, &err);
	if (!pool) {
		fprintf(stderr, "%s: g_thread_pool_new: %s\n", peer_name,
			err->message);
		g_error_free(err);
		return -1;
	}
	return 0;
}

void peer_run(peer_fn main, void *arg)
{
	main(arg);
}

/* Push an item.  When a thread cannot be started, GLib still queues the
 * item for the threads it has, so the error needs no handling here. */
static void push(peer_fn fn, void *arg, struct peer_group *g)
{
	struct item *it = g_new(struct item, 1);

	it->fn = fn;
	it->arg = arg;
	it->group = g;
	g_thread_pool_push(pool, it, NULL);
}

struct peer_group *peer_group_new(void)
{
	struct peer_group *g = g_new(struct peer_group, 1);

	g_mutex_init(&g->lock);
	g_cond_init(&g->done);
	g->pending = 0;
	return g;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	g_mutex_lock(&g->lock);
	g->pending++;
	g_mutex_unlock(&g->lock);
	push(fn, arg, g);
}

void peer_wait(struct peer_group *g)
{
	g_mutex_lock(&g->lock);
	while (g->pending)
		g_cond_wait(&g->done, &g->lock);
	g_mutex_unlock(&g->lock);
}

void peer_group_free(struct peer_group *g)
{
	g_cond_clear(&g->done);
	g_mutex_clear(&g->lock);
	g_free(g);
}

void peer_detach(peer_fn fn, void *arg)
{
	push(fn, arg, NULL);
}

/* Run what is still queued, then stop and join the pool's threads. */
void peer_fini(void)
{
	g_thread_pool_free(pool, FALSE, TRUE);
	pool = NULL;
}
