/*
 * peer.h - what a benchmark peer provides to the workloads (workloads.c).
 *
 * Every peer (smolscale, its SMOLSCALE_STEAL=1 mode, the naive pool, GLib's
 * GThreadPool, OpenMP tasks, oneTBB, one pthread per task) implements
 * these few calls in bench/peers/<name>.c or .cc, and is linked with the
 * workloads into its own program, bench-<name>: each peer runs in its own
 * process.
 *
 * The model is the smallest common one: fire-and-forget tasks, and groups
 * of tasks that one task (or the main function) spawns and then waits
 * for.  A group is spawned into and waited for by a single task, the one
 * that created it (OpenMP's taskwait needs that; the others don't care).
 */
#ifndef BENCH_PEER_H
#define BENCH_PEER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*peer_fn)(void *arg);
struct peer_group;

/* The peer's name as the tables show it ("smolscale", "gthreadpool", ...). */
extern const char *const peer_name;

/* Start the pool with `threads` workers (0: the peer's default, the CPUs
 * this process may use).  Returns 0, or -1 with a message on stderr. */
int peer_init(int threads);

/* Run main(arg) where the peer's tasks may be spawned and waited for:
 * inside `#pragma omp parallel` + `single` for OpenMP, a plain call for
 * the others.  Returns when main returns and (OpenMP) the region ended. */
void peer_run(peer_fn main, void *arg);

/* A new, empty group; spawn fn(arg) into it; wait until all of its tasks
 * have finished (may be called from inside a task: fixed pools can
 * deadlock there, which the driver's watchdog reports); free it. */
struct peer_group *peer_group_new(void);
void peer_spawn(struct peer_group *g, peer_fn fn, void *arg);
void peer_wait(struct peer_group *g);
void peer_group_free(struct peer_group *g);

/* Submit fn(arg) with nobody waiting for it (pipeline hops). */
void peer_detach(peer_fn fn, void *arg);

/* Stop the pool (after the idle measurement).  May be a no-op. */
void peer_fini(void);

#ifdef __cplusplus
}
#endif

#endif /* BENCH_PEER_H */
