/*
 * plug_thp.c - libhplug_thp.so, a plugin (dlopened by dlhost.c) that gives
 * work whose function lives in the plugin to a pool of tests/pools'
 * libthpool.so (a DT_NEEDED of the plugin only): under SMOLSCALE_POOLS
 * with thpool.conf the interposer reroutes it.  plugin_run(n): a pool of
 * 4 threads; n items, the first n/4 of which add one more item from
 * inside themselves; thpool_wait; thpool_destroy; the checksum.  The host
 * dlclose()s the plugin (and with it libthpool.so) right after.
 */
#include <stddef.h>
#include <stdint.h>

#include "../pools/thpool.h"
#include "plug.h"

static threadpool pool;
static uint64_t values[PLUG_MAX_ITEMS];
static int count;

static void item(void *arg)
{
	long i = (long)(intptr_t)arg;

	values[i] = plug_value((uint64_t)i);
	if (i < count / 4)
		thpool_add_work(pool, item, (void *)(intptr_t)(count + i));
}

uint64_t plugin_run(int n)
{
	int total = n + n / 4;

	if (n <= 0 || total > PLUG_MAX_ITEMS)
		return 0;
	count = n;
	pool = thpool_init(4);
	if (!pool)
		return 0;
	for (int i = 0; i < n; i++)
		thpool_add_work(pool, item, (void *)(intptr_t)i);
	thpool_wait(pool);
	thpool_destroy(pool);
	pool = NULL;
	return plug_sum(values, total);
}
