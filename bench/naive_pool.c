/*
 * naive_pool.c - a fixed thread pool with one locked FIFO queue (see
 * naive_pool.h).
 *
 * Invariant: every field of struct np_pool is read and written under
 * p->lock.  A worker sleeps on p->nonempty while the queue is empty and
 * the pool is not stopping; np_submit() signals one sleeper per task.  A
 * task's done flag is written under the task's own lock, and np_wait()
 * frees the task only after it saw done set under that lock, so the worker
 * has finished touching it.  A detached task is never seen by anyone but
 * the worker that runs it, which frees it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "naive_pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct np_task {
	struct np_task *next;   /* queue link, under the pool's lock */
	void (*fn)(void *);
	void *arg;
	int detached;           /* set before queueing, then read-only */
	int done;               /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t finished;
};

struct np_pool {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct np_task *head, *tail;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static int cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return 1;
}

/* Take the oldest task, or NULL once the pool stops with an empty queue. */
static struct np_task *take(struct np_pool *p)
{
	struct np_task *t;

	pthread_mutex_lock(&p->lock);
	while (!p->head && !p->stopping)
		pthread_cond_wait(&p->nonempty, &p->lock);
	t = p->head;
	if (t) {
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	return t;
}

static void finish(struct np_task *t)
{
	if (t->detached) {
		free(t);
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->done = 1;
	pthread_cond_signal(&t->finished);
	pthread_mutex_unlock(&t->lock);
}

static void *worker(void *arg)
{
	struct np_pool *p = arg;
	struct np_task *t;

	while ((t = take(p))) {
		t->fn(t->arg);
		finish(t);
	}
	return NULL;
}

/* Stop and join the first n threads of p. */
static void stop(struct np_pool *p, int n)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
}

struct np_pool *np_pool_new(int nthreads)
{
	struct np_pool *p = calloc(1, sizeof *p);
	int err;

	if (!p)
		return NULL;
	p->nthreads = nthreads > 0 ? nthreads : cpus();
	p->threads = calloc(p->nthreads, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->nonempty, NULL);
	for (int i = 0; i < p->nthreads; i++) {
		err = pthread_create(&p->threads[i], NULL, worker, p);
		if (err) {
			stop(p, i);
			free(p->threads);
			free(p);
			errno = err;
			return NULL;
		}
	}
	return p;
}

int np_pool_threads(const struct np_pool *p)
{
	return p->nthreads;
}

/* Append a new task to p's queue; detached ones get no lock or condvar. */
static struct np_task *queue(struct np_pool *p, void (*fn)(void *), void *arg,
                             int detached)
{
	struct np_task *t = malloc(sizeof *t);

	if (!t)
		return NULL;
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	t->detached = detached;
	t->done = 0;
	if (!detached) {
		pthread_mutex_init(&t->lock, NULL);
		pthread_cond_init(&t->finished, NULL);
	}

	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	pthread_cond_signal(&p->nonempty);
	pthread_mutex_unlock(&p->lock);
	return t;
}

struct np_task *np_submit(struct np_pool *p, void (*fn)(void *), void *arg)
{
	return queue(p, fn, arg, 0);
}

int np_detach(struct np_pool *p, void (*fn)(void *), void *arg)
{
	return queue(p, fn, arg, 1) ? 0 : -1;
}

void np_wait(struct np_task *t)
{
	pthread_mutex_lock(&t->lock);
	while (!t->done)
		pthread_cond_wait(&t->finished, &t->lock);
	pthread_mutex_unlock(&t->lock);
	pthread_cond_destroy(&t->finished);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void np_pool_free(struct np_pool *p)
{
	if (!p)
		return;
	stop(p, p->nthreads);
	pthread_cond_destroy(&p->nonempty);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
