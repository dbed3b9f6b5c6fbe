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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

static const struct {
	const char *name;
	int sig;
} sig_names[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },     { "QUIT", SIGQUIT },
	{ "ABRT", SIGABRT }, { "USR1", SIGUSR1 },   { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM },   { "TERM", SIGTERM },
	{ "CHLD", SIGCHLD }, { "CONT", SIGCONT },   { "TSTP", SIGTSTP },
	{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },   { "URG", SIGURG },
	{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },   { "VTALRM", SIGVTALRM },
	{ "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "PWR", SIGPWR },
};

static bool sig_catchable(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGILL:
	case SIGFPE: case SIGTRAP: case SIGSYS:
		return false;
	}
	/* 32 and 33 are glibc's (SIGCANCEL, SIGSETXID): below SIGRTMIN. */
	return sig > 0 && sig < NSIG && (sig < 32 || sig >= SIGRTMIN);
}

int ss__parse_signal(const char *s)
{
	unsigned long v;
	int sig = -1;

	if (!s)
		return -1;
	if (ss__parse_uint(s, 1, NSIG - 1, &v) == 0)
		return sig_catchable((int)v) ? (int)v : -1;
	while (*s == ' ' || *s == '\t')
		s++;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof sig_names / sizeof sig_names[0]; i++)
		if (strcasecmp(s, sig_names[i].name) == 0)
			sig = sig_names[i].sig;
	if (sig < 0 && strncasecmp(s, "RTMIN", 5) == 0) {
		if (s[5] == '\0')
			sig = SIGRTMIN;
		else if (s[5] == '+' && ss__parse_uint(s + 6, 0, 64, &v) == 0)
			sig = SIGRTMIN + (int)v;
	} else if (sig < 0 && strncasecmp(s, "RTMAX", 5) == 0) {
		if (s[5] == '\0')
			sig = SIGRTMAX;
		else if (s[5] == '-' && ss__parse_uint(s + 6, 0, 64, &v) == 0)
			sig = SIGRTMAX - (int)v;
	}
	return sig > 0 && sig <= SIGRTMAX && sig_catchable(sig) ? sig : -1;
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

/* SMOLSCALE_STATS_SIGNAL: none by default. */
static void cfg_signal(void)
{
	const char *s = getenv("SMOLSCALE_STATS_SIGNAL");

	cfg.stats_signal = 0;
	if (s == NULL || *s == '\0')
		return;
	cfg.stats_signal = ss__parse_signal(s);
	if (cfg.stats_signal < 0) {
		fprintf(stderr,
		        "smolscale: SMOLSCALE_STATS_SIGNAL=\"%.64s\" is not a signal a program may catch (a name like USR2 or RTMIN+1, or a number); using the default, none\n",
		        s);
		cfg.stats_signal = 0;
	}
}

/* SMOLSCALE_LOG names a file to append reports to.  secure_getenv: in a
 * set-user-ID program the variable is ignored, or anyone could make it
 * write to a file of their choosing. */
static void cfg_log(void)
{
	const char *s = secure_getenv("SMOLSCALE_LOG");

	cfg.log_path[0] = '\0';
	if (s == NULL || *s == '\0')
		return;
	if (strlen(s) >= sizeof cfg.log_path) {
		fprintf(stderr,
		        "smolscale: SMOLSCALE_LOG is longer than %zu bytes; using the default, standard error\n",
		        sizeof cfg.log_path - 1);
		return;
	}
	strcpy(cfg.log_path, s);
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
	cfg.stall_report = env_uint("SMOLSCALE_STALL_REPORT", 0, 1, 0,
	                            "0 or 1") != 0;
	cfg.stall_report_ms = (unsigned)env_uint("SMOLSCALE_STALL_REPORT_MS", 1,
	                                         3600000, 100,
	                                         "a time in milliseconds");
	cfg_signal();
	cfg_log();
}

const struct ss_config *ss__config(void)
{
	pthread_once(&cfg_once, cfg_read);
	return &cfg;
}
