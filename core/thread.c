/*
 * thread.c - the one way the core creates its hidden threads.
 *
 * Every hidden thread starts detached, with all signals blocked (signals
 * meant for the program go to the program's own threads), through
 * ss__real_pthread_create, so that a preload layer interposing
 * pthread_create can point the core at the real function.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

ss_pthread_create_fn ss__real_pthread_create = pthread_create;
size_t ss__worker_stack;

int ss__thread_start(const char *name, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int rc;

	(void)name; /* each thread names itself: see ss__thread_set_name */
	rc = pthread_attr_init(&attr);
	if (rc != 0)
		return rc;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (ss__worker_stack)
		pthread_attr_setstacksize(&attr, ss__worker_stack);
	sigfillset(&all);
	/* The new thread inherits the creator's mask: block all around it. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = ss__real_pthread_create(&th, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc;
}

void ss__thread_set_name(const char *name)
{
	char buf[16];

	strncpy(buf, name, sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	pthread_setname_np(pthread_self(), buf);
}
