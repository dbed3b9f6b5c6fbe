/*
 * thpool.h - a small pthread pool with the API of Pithikos/C-Thread-Pool
 * (https://github.com/Pithikos/C-Thread-Pool, thpool.h as of its
 * "void (*function_p)(void *)" API): the pool under test of tests/pools/,
 * written for these tests, not a copy of that library.  thpool.c says
 * where its behaviour follows upstream's and where it does not.
 */
#ifndef SS_TEST_THPOOL_H
#define SS_TEST_THPOOL_H

typedef struct thpool_ *threadpool;

/* A pool of num_threads threads ("thpool-N"); NULL on error.  A negative
 * count is taken as 0, as upstream does. */
threadpool thpool_init(int num_threads);

/* Queue function_p(arg_p) at the back of the FIFO queue: 0, or -1 when
 * there is no memory for the job. */
int thpool_add_work(threadpool, void (*function_p)(void *), void *arg_p);

/* Block until the queue is empty and no thread runs a job. */
void thpool_wait(threadpool);

/* Stop the threads after the jobs they are running, drop the jobs still
 * queued (they never run), free the pool.  NULL is ignored. */
void thpool_destroy(threadpool);

#endif
