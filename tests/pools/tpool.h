/*
 * tpool.h - a small pthread pool with the API of John Schember's "tpool",
 * from his article "Thread pool in C" (https://nachtimwald.com/2019/04/12/
 * thread-pool-in-c/, MIT licensed): the pool under test of tests/pools/,
 * written for these tests, not a copy of the article's code.  tpool.c
 * says where its behaviour follows the article's and where it does not.
 */
#ifndef SS_TEST_TPOOL_H
#define SS_TEST_TPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct tpool;
typedef struct tpool tpool_t;

typedef void (*thread_func_t)(void *arg);

/* A pool of num threads ("tpool-N"), 2 when num is 0; NULL on error. */
tpool_t *tpool_create(size_t num);

/* Drop the queued work (it never runs), stop the threads after the work
 * they are running, free the pool.  NULL is ignored. */
void tpool_destroy(tpool_t *tm);

/* Queue func(arg) at the back of the FIFO queue: true, or false when tm
 * or func is NULL or there is no memory. */
bool tpool_add_work(tpool_t *tm, thread_func_t func, void *arg);

/* Block until the queue is empty and no thread runs work (during
 * tpool_destroy: until every thread has exited). */
void tpool_wait(tpool_t *tm);

#endif
