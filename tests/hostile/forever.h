/*
 * forever.h - threads that never finish, blocked in read() or spinning,
 * for the hostile programs (tests/hostile/hosts.c, tests/shim/hostile.c)
 * that end the process around them: exit, exec, _exit.  Header-only, for
 * one translation unit per program, after common.h.  The start routines
 * are exported (the programs link with -rdynamic) so that stall reports
 * and SMOLSCALE_PTHREAD_ONLY/SKIP patterns can name them.
 */
#ifndef SS_HOSTILE_FOREVER_H
#define SS_HOSTILE_FOREVER_H

#include <stdatomic.h>

#include "common.h"

static sem_t hx_started;
static int hx_never_fd[2];
static atomic_long hx_spin_sink;

void *hx_block_forever(void *arg);
void *hx_block_forever(void *arg)
{
	char c;

	(void)arg;
	MUST(sem_post(&hx_started));
	for (;;)
		if (read(hx_never_fd[0], &c, 1) == 0)
			pause();
}

void *hx_spin_forever(void *arg);
void *hx_spin_forever(void *arg)
{
	(void)arg;
	MUST(sem_post(&hx_started));
	for (long i = 0;; i++)
		atomic_store_explicit(&hx_spin_sink, i, memory_order_relaxed);
}

/* Starts them, and returns once each one runs. */
static inline void hx_start_forever_threads(int blocked, int spinning)
{
	pthread_t t;

	MUST(sem_init(&hx_started, 0, 0));
	MUST(pipe(hx_never_fd));
	for (int i = 0; i < blocked; i++)
		MUST(pthread_create(&t, NULL, hx_block_forever, NULL));
	for (int i = 0; i < spinning; i++)
		MUST(pthread_create(&t, NULL, hx_spin_forever, NULL));
	for (int i = 0; i < blocked + spinning; i++)
		hx_sem_wait(&hx_started);
}

#endif
