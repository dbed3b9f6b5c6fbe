/*
 * plug_thr.c - libhplug_thr.so, a plugin whose own threads (start routine
 * in the plugin; rerouted under the preload with SMOLSCALE_PTHREAD=1) each
 * sleep 3 ms (long enough for a stall report when they are on) and
 * compute; plugin_run(n) creates n / 8 of them (at most 256), joins them
 * all and returns the checksum.  The host dlclose()s the plugin right after the joins.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "plug.h"

static uint64_t values[PLUG_MAX_ITEMS];

void *plug_thr_start(void *arg);
void *plug_thr_start(void *arg)
{
	long i = (long)(intptr_t)arg;
	struct timespec ts = { 0, 3000000 };

	while (nanosleep(&ts, &ts) != 0)
		;
	values[i] = plug_value((uint64_t)i);
	return NULL;
}

uint64_t plugin_run(int n)
{
	pthread_t t[256];

	n /= 8;
	if (n <= 0 || n > 256)
		return 0;
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, plug_thr_start, (void *)(intptr_t)i) != 0)
			return 0;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return plug_sum(values, n);
}
