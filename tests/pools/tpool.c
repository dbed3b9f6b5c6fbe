/*
 * tpool.c - the test pool with the API of John Schember's tpool (tpool.h).
 *
 * Follows the article's behaviour:
 *   - a FIFO work queue served by num threads (2 when num is 0);
 *   - tpool_add_work returns false for a NULL pool or function, else
 *     true;
 *   - tpool_wait blocks while work is queued or running, and once the pool
 *     is stopping, until every thread has exited (the article's later
 *     version: its first version did not look at the queue, so it could
 *     return while work was still queued);
 *   - tpool_destroy frees the queued work without running it, tells the
 *     threads to stop after the work they are running, and calls
 *     tpool_wait (through the PLT, as the article's library does: under
 *     the interposer that call reaches the interposer's wait) before
 *     freeing the pool.
 * Differs where it does not matter to the API: threads are named
 * "tpool-N" (the article does not name them), destroy also joins them
 * (the article detaches them), and idle-wakeups use broadcasts.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "tpool.h"

struct tpool_work {
	thread_func_t func;
	void *arg;
	struct tpool_work *next;
};

struct tpool_thread {
	struct tpool *tm;
	size_t id;
	pthread_t th;
};

struct tpool {
	struct tpool_work *work_first, *work_last;
	pthread_mutex_t work_mutex;
	pthread_cond_t work_cond;	/* threads wait here for work */
	pthread_cond_t working_cond;	/* tpool_wait waits here */
	size_t working_cnt;		/* threads running work */
	size_t thread_cnt;		/* threads alive */
	bool stop;
	size_t nthreads;
	struct tpool_thread *threads;
};

static void *tpool_worker(void *p)
{
	struct tpool_thread *self = p;
	struct tpool *tm = self->tm;
	char name[16];

	snprintf(name, sizeof name, "tpool-%zu", self->id);
	pthread_setname_np(pthread_self(), name);

	pthread_mutex_lock(&tm->work_mutex);
	for (;;) {
		while (!tm->work_first && !tm->stop)
			pthread_cond_wait(&tm->work_cond, &tm->work_mutex);
		if (tm->stop)
			break;
		struct tpool_work *w = tm->work_first;
		tm->work_first = w->next;
		if (!tm->work_first)
			tm->work_last = NULL;
		tm->working_cnt++;
		pthread_mutex_unlock(&tm->work_mutex);

		w->func(w->arg);
		free(w);

		pthread_mutex_lock(&tm->work_mutex);
		tm->working_cnt--;
		if (!tm->stop && tm->working_cnt == 0 && !tm->work_first)
			pthread_cond_broadcast(&tm->working_cond);
	}
	tm->thread_cnt--;
	pthread_cond_broadcast(&tm->working_cond);
	pthread_mutex_unlock(&tm->work_mutex);
	return NULL;
}

tpool_t *tpool_create(size_t num)
{
	struct tpool *tm;
	size_t i;

	if (num == 0)
		num = 2;
	tm = calloc(1, sizeof *tm);
	if (!tm)
		return NULL;
	tm->threads = calloc(num, sizeof *tm->threads);
	if (!tm->threads) {
		free(tm);
		return NULL;
	}
	pthread_mutex_init(&tm->work_mutex, NULL);
	pthread_cond_init(&tm->work_cond, NULL);
	pthread_cond_init(&tm->working_cond, NULL);
	pthread_mutex_lock(&tm->work_mutex);
	for (i = 0; i < num; i++) {
		tm->threads[i].tm = tm;
		tm->threads[i].id = i;
		if (pthread_create(&tm->threads[i].th, NULL, tpool_worker, &tm->threads[i]) != 0)
			break;
		tm->thread_cnt++;
	}
	tm->nthreads = i;
	pthread_mutex_unlock(&tm->work_mutex);
	if (i != num) {
		tpool_destroy(tm);
		return NULL;
	}
	return tm;
}

void tpool_destroy(tpool_t *tm)
{
	struct tpool_work *w, *next;
	size_t i;

	if (!tm)
		return;
	pthread_mutex_lock(&tm->work_mutex);
	for (w = tm->work_first; w; w = next) {
		next = w->next;
		free(w);
	}
	tm->work_first = tm->work_last = NULL;
	tm->stop = true;
	pthread_cond_broadcast(&tm->work_cond);
	pthread_mutex_unlock(&tm->work_mutex);

	tpool_wait(tm);

	for (i = 0; i < tm->nthreads; i++)
		pthread_join(tm->threads[i].th, NULL);
	pthread_mutex_destroy(&tm->work_mutex);
	pthread_cond_destroy(&tm->work_cond);
	pthread_cond_destroy(&tm->working_cond);
	free(tm->threads);
	free(tm);
}

bool tpool_add_work(tpool_t *tm, thread_func_t func, void *arg)
{
	struct tpool_work *w;

	if (!tm || !func)
		return false;
	w = malloc(sizeof *w);
	if (!w)
		return false;
	w->func = func;
	w->arg = arg;
	w->next = NULL;
	pthread_mutex_lock(&tm->work_mutex);
	if (tm->work_last)
		tm->work_last->next = w;
	else
		tm->work_first = w;
	tm->work_last = w;
	pthread_cond_broadcast(&tm->work_cond);
	pthread_mutex_unlock(&tm->work_mutex);
	return true;
}

void tpool_wait(tpool_t *tm)
{
	if (!tm)
		return;
	pthread_mutex_lock(&tm->work_mutex);
	while (tm->work_first || (!tm->stop && tm->working_cnt != 0) ||
	       (tm->stop && tm->thread_cnt != 0))
		pthread_cond_wait(&tm->working_cond, &tm->work_mutex);
	pthread_mutex_unlock(&tm->work_mutex);
}
