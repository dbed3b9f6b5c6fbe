/*
 * stats.c - the shim's part of the SMOLSCALE_STATS line: the core prints
 * its counters, then calls ss__stats_extra, which is this: each layer's
 * counters in turn.  Likewise the entry hook of stall reports: each
 * layer names the user's function behind its own tasks.
 */
#include "internal.h"
#include "shim.h"

static void shim_stats(FILE *f)
{
	ss__pt_stats(f);
	ss__gtp_stats(f);
	ss__pools_stats(f);
}

static void *shim_entry(void *(*fn)(void *), void *arg)
{
	void *e = ss__pt_entry(fn, arg);

	if (!e)
		e = ss__gtp_entry(fn, arg);
	return e ? e : ss__pools_entry(fn, arg);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void install(void)
{
	ss__stats_extra = shim_stats;
	ss__entry_hook = shim_entry;
}

/* Every layer calls it when it starts; the first call installs. */
void ss__shim_stats_init(void)
{
	pthread_once(&once, install);
}
