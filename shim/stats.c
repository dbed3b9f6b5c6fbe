/*
 * stats.c - the shim's part of the SMOLSCALE_STATS line: the core prints
 * its counters, then calls ss__stats_extra, which is this: each layer's
 * counters in turn.
 */
#include "internal.h"
#include "shim.h"

static void shim_stats(FILE *f)
{
	ss__pt_stats(f);
	ss__gtp_stats(f);
	ss__pools_stats(f);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void install(void)
{
	ss__stats_extra = shim_stats;
}

/* Every layer calls it when it starts; the first call installs. */
void ss__shim_stats_init(void)
{
	pthread_once(&once, install);
}
