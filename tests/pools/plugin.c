/*
 * plugin.c - libplugin.so, a library that uses the tpool pool (John
 * Schember's tpool API) from libtpool.so (a DT_NEEDED dependency of
 * libplugin.so, not of the program), loaded with dlopen by user_dl.c after
 * the program has started: the interposer must reroute the calls of a
 * library it did not see at start-up.  Also built with -Wl,-z,now and with
 * -fno-plt (libplugin_now.so, libplugin_noplt.so).
 *
 *   int plugin_run(int n, unsigned long *checksum);
 *       one pool of 4 threads, 3 cycles of the work of work.h with n flat
 *       items, tpool_wait and the checks after each cycle, tpool_destroy;
 *       stores the checksum, returns the number of failed checks (said on
 *       stderr).
 *   void plugin_counts(unsigned long out[4]);
 *       items run by the last plugin_run, and of them those on
 *       smolscale's workers, on the pool's threads ("tpool-N") and
 *       elsewhere (per call, so that the counts do not depend on whether
 *       a dlclose really unloaded the library).
 */
#include <stdio.h>

#include "tpool.h"

#define WORK_POOL_PREFIX "tpool"

int plugin_run(int n, unsigned long *checksum);
void plugin_counts(unsigned long out[4]);

static tpool_t *pool;

static int work_submit(void (*fn)(void *), void *arg)
{
	/* tpool_add_work returns true on success: the interposer's "= 1". */
	return tpool_add_work(pool, fn, arg) == true;
}

static void work_wait(void)
{
	tpool_wait(pool);
}

#include "work.h"

static unsigned long items_run;

int plugin_run(int n, unsigned long *checksum)
{
	int fails = 0;

	if (n < 0 || !work_init((unsigned)n)) {
		fprintf(stderr, "plugin: bad count or out of memory\n");
		return 1;
	}
	pool = tpool_create(4);
	if (!pool) {
		fprintf(stderr, "plugin: tpool_create(4) failed\n");
		return 1;
	}
	*checksum = 0;
	items_run = 0;
	work.cycle = 0;
	atomic_store(&work.on_worker, 0);
	atomic_store(&work.on_pool, 0);
	atomic_store(&work.elsewhere, 0);
	for (int c = 0; c < 3; c++)
		fails += work_cycle("plugin", checksum);
	tpool_destroy(pool);
	pool = NULL;
	items_run = work_items() * 3;
	work_free();
	return fails;
}

void plugin_counts(unsigned long out[4])
{
	out[0] = items_run;
	out[1] = atomic_load(&work.on_worker);
	out[2] = atomic_load(&work.on_pool);
	out[3] = atomic_load(&work.elsewhere);
}
