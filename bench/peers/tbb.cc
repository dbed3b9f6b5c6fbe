/*
 * tbb.cc - the oneTBB peer of the benchmarks (see peer.h): Intel's
 * Threading Building Blocks (oneTBB 2021, Debian's libtbb), with one
 * tbb::task_group per group, as a C++ user writes fork-join with TBB.
 *
 * All work runs in one task_arena of `threads` slots, the thread that runs
 * main included (TBB's default: one per CPU this process may use), and a
 * global_control caps TBB's worker threads to match when a count is given.
 * peer_wait() is task_group::wait(), which runs other tasks while it
 * waits, so joins inside tasks do not deadlock.  Detached tasks are
 * enqueued into the arena, TBB's own fire-and-forget call.
 */
#include "../peer.h"

#include <cstdio>
#include <exception>
#include <new>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

extern "C" const char *const peer_name = "tbb";

struct peer_group {
	tbb::task_group tasks;
};

static tbb::global_control *limit;
static tbb::task_arena *arena;

int peer_init(int threads)
{
	try {
		if (threads > 0) {
			limit = new tbb::global_control(
				tbb::global_control::max_allowed_parallelism,
				threads);
			arena = new tbb::task_arena(threads);
		} else {
			arena = new tbb::task_arena();
		}
		arena->initialize();
	} catch (const std::exception &e) {
		std::fprintf(stderr, "tbb: peer_init: %s\n", e.what());
		return -1;
	}
	return 0;
}

void peer_run(peer_fn main, void *arg)
{
	arena->execute([=] { main(arg); });
}

struct peer_group *peer_group_new(void)
{
	return new peer_group;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	g->tasks.run([=] { fn(arg); });
}

void peer_wait(struct peer_group *g)
{
	g->tasks.wait();
}

void peer_group_free(struct peer_group *g)
{
	delete g;
}

void peer_detach(peer_fn fn, void *arg)
{
	arena->enqueue([=] { fn(arg); });
}

void peer_fini(void)
{
	arena->terminate();
	delete arena;
	arena = nullptr;
	delete limit;
	limit = nullptr;
}
