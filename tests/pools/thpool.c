/*
 * thpool.c - the test pool with Pithikos/C-Thread-Pool's API (thpool.h).
 *
 * Follows upstream's behaviour (thpool.c of that project):
 *   - a FIFO job queue served by num_threads threads, named "thpool-N" as
 *     upstream's default THPOOL_THREAD_NAME gives them;
 *   - thpool_init waits until every thread has started;
 *   - thpool_add_work returns 0, or -1 when malloc fails;
 *   - thpool_wait blocks until the queue is empty and no thread is working
 *     (upstream: a condition variable, threads_all_idle);
 *   - thpool_destroy does not wait for queued work: each thread finishes
 *     the job it is running and exits, and the jobs still queued are freed
 *     without running (upstream's jobqueue_destroy).
 * Differs where it does not matter to the API: the stop flag is per pool
 * (upstream's threads_keepalive is one static flag for all pools),
 * destroy joins its threads (upstream detaches them and polls a count),
 * and there is no thpool_pause/thpool_resume.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "thpool.h"

struct job {
	struct job *next;
	void (*fn)(void *);
	void *arg;
};

struct thread {
	struct thpool_ *pool;
	int id;
	pthread_t th;
};

struct thpool_ {
	pthread_mutex_t lock;
	pthread_cond_t has_jobs;	/* threads wait here for work */
	pthread_cond_t all_idle;	/* thpool_wait waits here */
	pthread_cond_t started;		/* thpool_init waits here */
	struct job *front, *rear;
	int working;			/* threads running a job */
	int alive;			/* threads started */
	int keepalive;
	int nthreads;
	struct thread *threads;
};

static void *thread_do(void *p)
{
	struct thread *self = p;
	struct thpool_ *pool = self->pool;
	char name[16];

	snprintf(name, sizeof name, "thpool-%d", self->id);
	pthread_setname_np(pthread_self(), name);

	pthread_mutex_lock(&pool->lock);
	pool->alive++;
	pthread_cond_broadcast(&pool->started);
	for (;;) {
		while (pool->keepalive && !pool->front)
			pthread_cond_wait(&pool->has_jobs, &pool->lock);
		if (!pool->keepalive)
			break;
		struct job *j = pool->front;
		pool->front = j->next;
		if (!pool->front)
			pool->rear = NULL;
		pool->working++;
		pthread_mutex_unlock(&pool->lock);

		j->fn(j->arg);
		free(j);

		pthread_mutex_lock(&pool->lock);
		pool->working--;
		if (!pool->working && !pool->front)
			pthread_cond_broadcast(&pool->all_idle);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

threadpool thpool_init(int num_threads)
{
	struct thpool_ *pool;
	int n;

	if (num_threads < 0)
		num_threads = 0;
	pool = calloc(1, sizeof *pool);
	if (!pool)
		return NULL;
	pool->threads = calloc((size_t)num_threads + 1, sizeof *pool->threads);
	if (!pool->threads) {
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->has_jobs, NULL);
	pthread_cond_init(&pool->all_idle, NULL);
	pthread_cond_init(&pool->started, NULL);
	pool->keepalive = 1;
	for (n = 0; n < num_threads; n++) {
		pool->threads[n].pool = pool;
		pool->threads[n].id = n;
		if (pthread_create(&pool->threads[n].th, NULL, thread_do, &pool->threads[n]) != 0)
			break;
	}
	pool->nthreads = n;
	pthread_mutex_lock(&pool->lock);
	while (pool->alive != pool->nthreads)
		pthread_cond_wait(&pool->started, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	if (n != num_threads) {
		thpool_destroy(pool);
		return NULL;
	}
	return pool;
}
int thpool_add_work(threadpool pool, void (*function_p)(void *), void *arg_p)
{
	struct job *j = malloc(sizeof *j);

	if (!j) {
		fprintf(stderr, "thpool_add_work(): Could not allocate memory for new job\n");
		return -1;
	}
	j->next = NULL;
	j->fn = function_p;
	j->arg = arg_p;
	pthread_mutex_lock(&pool->lock);
	if (pool->rear)
		pool->rear->next = j;
	else
		pool->front = j;
	pool->rear = j;
	pthread_cond_signal(&pool->has_jobs);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

void thpool_wait(threadpool pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->front || pool->working)
		pthread_cond_wait(&pool->all_idle, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void thpool_destroy(threadpool pool)
{
	struct job *j, *next;
	int n;

	if (!pool)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->keepalive = 0;
	pthread_cond_broadcast(&pool->has_jobs);
	pthread_mutex_unlock(&pool->lock);
	for (n = 0; n < pool->nthreads; n++)
		pthread_join(pool->threads[n].th, NULL);
	/* Queued jobs are dropped, as upstream's jobqueue_destroy does. */
	for (j = pool->front; j; j = next) {
		next = j->next;
		free(j);
	}
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->has_jobs);
	pthread_cond_destroy(&pool->all_idle);
	pthread_cond_destroy(&pool->started);
	free(pool->threads);
	free(pool);
}
