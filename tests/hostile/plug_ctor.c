/*
 * plug_ctor.c - libhplug_ctor.so, a plugin that owns a libthpool pool for
 * its whole life, as many libraries do: its constructor (run inside
 * dlopen, under the loader's lock) creates the pool and queues n0 items;
 * plugin_run(n) queues n more and waits; its destructor (run inside
 * dlclose) creates a thread of its own and joins it, queues 64 more items,
 * waits, destroys the pool, and prints a line with the checksum of the
 * destructor's work.  Work functions and thread routine live in the
 * plugin.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>

#include "../pools/thpool.h"
#include "plug.h"

#define CTOR_ITEMS 64

static threadpool pool;
static uint64_t values[PLUG_MAX_ITEMS];

static void item(void *arg)
{
	long i = (long)(intptr_t)arg;

	values[i] = plug_value((uint64_t)i);
}

__attribute__((constructor)) static void plug_ctor(void)
{
	pool = thpool_init(4);
	if (!pool)
		return;
	for (int i = 0; i < CTOR_ITEMS; i++)
		thpool_add_work(pool, item, (void *)(intptr_t)i);
}

uint64_t plugin_run(int n)
{
	if (!pool || n <= 0 || CTOR_ITEMS + n > PLUG_MAX_ITEMS - CTOR_ITEMS)
		return 0;
	for (int i = 0; i < n; i++)
		thpool_add_work(pool, item, (void *)(intptr_t)(CTOR_ITEMS + i));
	thpool_wait(pool);
	return plug_sum(values, CTOR_ITEMS + n);
}

static void *dtor_thread(void *arg)
{
	return (void *)(uintptr_t)(plug_value(12345) & 0xffff);
}

__attribute__((destructor)) static void plug_dtor(void)
{
	pthread_t t;
	void *v = NULL;
	int rc;

	if (!pool)
		return;
	rc = pthread_create(&t, NULL, dtor_thread, NULL);
	if (rc == 0)
		pthread_join(t, &v);
	for (int i = 0; i < CTOR_ITEMS; i++)
		thpool_add_work(pool, item, (void *)(intptr_t)(PLUG_MAX_ITEMS - CTOR_ITEMS + i));
	thpool_wait(pool);
	thpool_destroy(pool);
	pool = NULL;
	printf("plug_ctor: destructor: thread %s %lx, items %016llx\n",
	       rc == 0 ? "joined" : "failed", (unsigned long)(uintptr_t)v,
	       (unsigned long long)plug_sum(values + PLUG_MAX_ITEMS - CTOR_ITEMS, CTOR_ITEMS));
	fflush(stdout);
}
