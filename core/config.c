/*
 * config.c - the SMOLSCALE_* environment variables, read once.
 *
 * Like libuv's UV_THREADPOOL_SIZE: read at the first use, clamped to sane
 * bounds, never fatal.  A value that does not parse, or is out of range,
 * prints one line naming the variable and the default used, and the
 * program goes on.  An empty value counts as unset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static struct ss_config cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

int ss__parse_uint(const char *s, unsigned long lo, unsigned long hi,
                   unsigned long *out)
{
	const char *p = s;
	char *end;
	unsigned long v;

	while (*p == ' ' || *p == '\t')
		p++;
	/* strtoul accepts a sign and wraps negatives: refuse both. */
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int ss__parse_size(const char *s, unsigned long lo, unsigned long hi,
                   unsigned long *out)
{
	const char *p = s;
	char *end;
	unsigned long v, mult = 1;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == 'k' || *end == 'K') {
		mult = 1ul << 10;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		mult = 1ul << 20;
		end++;
	}
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end != '\0' || v > hi / mult || v * mult < lo)
		return -1;
	*out = v * mult;
	return 0;
}

static unsigned long env_uint(const char *name, unsigned long lo,
                              unsigned long hi, unsigned long def,
                              const char *what)
{
	const char *s = getenv(name);
	unsigned long v;

	if (s == NULL || *s == '\0')
		return def;
	if (ss__parse_uint(s, lo, hi, &v) == 0)
		return v;
	fprintf(stderr,
	        "smolscale: %s=\"%.64s\" is not %s in %lu..%lu; using the default %lu\n",
	        name, s, what, lo, hi, def);
	return def;
}

/* A size for a message: "256K", "16M", or bytes. */
static const char *size_str(char *buf, size_t len, unsigned long v)
{
	if (v % (1ul << 20) == 0)
		snprintf(buf, len, "%luM", v >> 20);
	else if (v % (1ul << 10) == 0)
		snprintf(buf, len, "%luK", v >> 10);
	else
		snprintf(buf, len, "%lu", v);
	return buf;
}

/* Like env_uint, for a size in bytes: rounded up to whole pages. */
static size_t env_size(const char *name, unsigned long lo, unsigned long hi,
                       unsigned long def)
{
	const char *s = getenv(name);
	unsigned long v = def, page = (unsigned long)sysconf(_SC_PAGESIZE);
	char l[24], h[24], d[24];

	if (s != NULL && *s != '\0' && ss__parse_size(s, lo, hi, &v) != 0) {
		fprintf(stderr,
		        "smolscale: %s=\"%.64s\" is not a size (bytes, or with a K or M suffix) in %s..%s; using the default %s\n",
		        name, s, size_str(l, sizeof(l), lo),
		        size_str(h, sizeof(h), hi), size_str(d, sizeof(d), def));
		v = def;
	}
	return (v + page - 1) / page * page;
}

static unsigned cpus_allowed(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static void cfg_read(void)
{
	unsigned long max_def;

	cfg.cpus = cpus_allowed();
	cfg.threads = (unsigned)env_uint("SMOLSCALE_THREADS", 1, 4096,
	                                 cfg.cpus, "a worker count");
	max_def = 4ul * cfg.cpus > 256 ? 4ul * cfg.cpus : 256;
	if (max_def < cfg.threads)
		max_def = cfg.threads;
	cfg.max_threads = (unsigned)env_uint("SMOLSCALE_MAX_THREADS",
	                                     cfg.threads, 32768, max_def,
	                                     "a thread cap (at least SMOLSCALE_THREADS)");
	cfg.stall_ms = (unsigned)env_uint("SMOLSCALE_STALL_MS", 1, 60000, 10,
	                                  "a time in milliseconds");
	cfg.idle_ms = (unsigned)env_uint("SMOLSCALE_IDLE_MS", 1, 86400000, 5000,
	                                 "a time in milliseconds");
	cfg.steal = env_uint("SMOLSCALE_STEAL", 0, 1, 0, "0 or 1") != 0;
	cfg.stats = env_uint("SMOLSCALE_STATS", 0, 1, 0, "0 or 1") != 0;
	cfg.fiber_stack = env_size("SMOLSCALE_FIBER_STACK", 16ul << 10,
	                           256ul << 20, 256ul << 10);
}

const struct ss_config *ss__config(void)
{
	pthread_once(&cfg_once, cfg_read);
	return &cfg;
}
