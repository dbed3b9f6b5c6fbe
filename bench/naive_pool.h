/*
 * naive_pool.h - the "naive fixed pool" peer of the benchmarks: a fixed set
 * of threads that take tasks from one FIFO queue under one mutex and one
 * condition variable, the shape of the popular small C thread-pool
 * libraries (C-Thread-Pool, thpool and the like).  Each waitable task gets
 * a handle with its own done flag, mutex and condition variable so that
 * the caller can wait for that one task; a detached task is freed by the
 * worker that ran it.
 *
 * It is a yardstick, not a product: no growth, no cancellation, no error
 * policy.  A task that waits for another task just blocks its thread, so
 * a pool whose threads all wait deadlocks.  Functions return NULL or -1
 * (and set errno) when they run out of memory or threads.
 */
#ifndef NAIVE_POOL_H
#define NAIVE_POOL_H

struct np_pool;
struct np_task;

/* A pool of nthreads threads; 0 means one per CPU this process may use
 * (sched_getaffinity).  NULL and errno on failure. */
struct np_pool *np_pool_new(int nthreads);

/* The number of threads of p. */
int np_pool_threads(const struct np_pool *p);

/* Queue fn(arg); the returned handle must be given to np_wait() exactly
 * once.  NULL and ENOMEM. */
struct np_task *np_submit(struct np_pool *p, void (*fn)(void *), void *arg);

/* Queue fn(arg) with nobody waiting for it.  0, or -1 and ENOMEM. */
int np_detach(struct np_pool *p, void (*fn)(void *), void *arg);

/* Wait until t has run and free it. */
void np_wait(struct np_task *t);

/* Let the threads finish the queued tasks, stop them and free p. */
void np_pool_free(struct np_pool *p);

#endif /* NAIVE_POOL_H */
