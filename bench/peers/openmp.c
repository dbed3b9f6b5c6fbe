/*
 * openmp.c - the OpenMP tasks peer of the benchmarks (see peer.h): explicit
 * `#pragma omp task` and `taskwait` inside one `parallel` + `single`
 * region, the way a C user parallelises with OpenMP.  Built twice from this
 * file: with gcc -fopenmp it measures GCC's libgomp (peer "gomp"), with
 * clang -fopenmp=libomp LLVM's libomp (peer "omp").  PEER_NAME overrides
 * the name.
 *
 * The team is omp_set_num_threads(threads) threads, the thread running
 * main included; by default both runtimes take one per CPU this process
 * may use.  The wait policy stays at each runtime's default, as users get
 * it.  libgomp, with OMP_WAIT_POLICY and GOMP_SPINCOUNT unset, spins
 * 300,000 times (100 when there are more threads than CPUs) before it
 * sleeps on a futex; libomp, with KMP_BLOCKTIME unset, spins 200 ms before
 * it sleeps.  Idle workers spin that long after a region too, which the
 * idle workload sees.
 *
 * A group carries no state: it is always spawned into and waited for by
 * the one task that created it, and taskwait waits for all children of
 * the current task.  That is exact while the task has one group open and
 * no detached children; otherwise the wait also covers those (blocking's
 * tiny-task wait includes its sleepers).  taskwait depend() would be exact
 * but adds dependence tracking to every task, which users of plain
 * fork-join tasks do not pay.
 *
 * Tasks are tied (OpenMP's default; libgomp treats untied as tied anyway),
 * detached ones too, so that both runtimes run the same program.
 */
#include "../peer.h"

#include <omp.h>

#ifndef PEER_NAME
#ifdef __clang__
#define PEER_NAME "omp"
#else
#define PEER_NAME "gomp"
#endif
#endif

const char *const peer_name = PEER_NAME;

struct peer_group {
	char unused;
};

static struct peer_group the_group;

int peer_init(int threads)
{
	if (threads > 0)
		omp_set_num_threads(threads);
	return 0;
}

void peer_run(peer_fn main, void *arg)
{
#pragma omp parallel
#pragma omp single
	main(arg);
}

struct peer_group *peer_group_new(void)
{
	return &the_group;
}

void peer_spawn(struct peer_group *g, peer_fn fn, void *arg)
{
	(void)g;
#pragma omp task firstprivate(fn, arg)
	fn(arg);
}

void peer_wait(struct peer_group *g)
{
	(void)g;
#pragma omp taskwait
}

void peer_group_free(struct peer_group *g)
{
	(void)g;
}

/* The region's closing barrier waits for detached tasks: peer_run()
 * returns only after they finished. */
void peer_detach(peer_fn fn, void *arg)
{
#pragma omp task firstprivate(fn, arg)
	fn(arg);
}

void peer_fini(void)
{
}
