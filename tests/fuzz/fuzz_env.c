/*
 * fuzz_env.c - libFuzzer target for the SMOLSCALE_* environment
 * variables: the core's reader (core/config.c: cfg_read and the parsers
 * ss__parse_uint, ss__parse_size, ss__parse_signal) and the shim's
 * pattern lists (shim/pthread.c: patterns() and match_any() for
 * SMOLSCALE_PTHREAD_ONLY and _SKIP).
 *
 * core/config.c is included whole, so that cfg_read() can run once per
 * input without its pthread_once (no change to config.c for fuzzing);
 * its messages go to a memory stream (stderr is redefined around it).
 * patterns() and match_any() are copied out of shim/pthread.c at build
 * time (extract.awk; pthread.c itself defines pthread_create and cannot
 * be linked in).
 *
 * The input is records, one a line; a record's first byte picks what
 * the rest is ((byte - 'a') % 15):
 *   a..k  the value of SMOLSCALE_THREADS, _MAX_THREADS, _STALL_MS,
 *         _IDLE_MS, _STEAL, _STATS, _FIBER_STACK, _STALL_REPORT,
 *         _STALL_REPORT_MS, _STATS_SIGNAL, _LOG (a later record of the
 *         same variable wins, as with setenv)
 *   l, m  SMOLSCALE_PTHREAD_ONLY, SMOLSCALE_PTHREAD_SKIP
 *   n     a start routine's name to match against both lists
 *   o     two bytes picking lo and hi, then a string for the three
 *         parsers directly
 * A value stops at a NUL byte, as the environment's do.
 *
 * Checked besides crashes, leaks and undefined behaviour: every value
 * ends inside its documented range; a uint or size variable takes its
 * value exactly when a reference parser (below, written from the
 * documented syntax) accepts it, and says so on stderr otherwise; a
 * signal is 0 or one a program may catch; SMOLSCALE_LOG is kept exactly
 * when it fits; every message line starts "smolscale: " and is short;
 * a pattern list holds non-empty, trimmed, comma-free patterns.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *fz_err;	/* stderr of the included code */

#undef stderr
#define stderr fz_err

#include "config.c"

/* patterns() never frees its copy of the variable (it lives as long as
 * the process); remember it, for the fuzzer's leak check. */
static char *fz_copy;

static char *fz_strdup(const char *s)
{
	return fz_copy = strdup(s);
}

#define strdup fz_strdup
#include "pt_patterns.inc"
#undef strdup
#undef stderr

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "fuzz_env: %s:%d: check failed: %s\n",  \
			        __FILE__, __LINE__, #c);                      \
			abort();                                              \
		}                                                             \
	} while (0)

enum {
	V_THREADS, V_MAX_THREADS, V_STALL_MS, V_IDLE_MS, V_STEAL, V_STATS,
	V_FIBER_STACK, V_STALL_REPORT, V_STALL_REPORT_MS, V_STATS_SIGNAL,
	V_LOG, V_ONLY, V_SKIP, NVARS,
	R_NAME = NVARS, R_PARSE, NRECORDS
};

static const char *const var_name[NVARS] = {
	"SMOLSCALE_THREADS", "SMOLSCALE_MAX_THREADS", "SMOLSCALE_STALL_MS",
	"SMOLSCALE_IDLE_MS", "SMOLSCALE_STEAL", "SMOLSCALE_STATS",
	"SMOLSCALE_FIBER_STACK", "SMOLSCALE_STALL_REPORT",
	"SMOLSCALE_STALL_REPORT_MS", "SMOLSCALE_STATS_SIGNAL", "SMOLSCALE_LOG",
	"SMOLSCALE_PTHREAD_ONLY", "SMOLSCALE_PTHREAD_SKIP",
};

/* ---- reference parsers, from the documented syntax only ---------------- */

static const char *ref_digits(const char *p, unsigned long *v, bool *ok)
{
	unsigned __int128 x = 0;

	*ok = *p >= '0' && *p <= '9';
	for (; *p >= '0' && *p <= '9'; p++) {
		x = x * 10 + (unsigned)(*p - '0');
		if (x > ULONG_MAX)
			*ok = false, x = (unsigned __int128)ULONG_MAX + 1;
	}
	*v = (unsigned long)x;
	return p;
}

static const char *ref_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* [blanks] digits [blanks], in [lo, hi]. */
static bool ref_uint(const char *s, unsigned long lo, unsigned long hi,
                     unsigned long *out)
{
	bool ok;
	const char *p = ref_digits(ref_blanks(s), out, &ok);

	return ok && *ref_blanks(p) == '\0' && *out >= lo && *out <= hi;
}

/* [blanks] digits [kKmM] [blanks], in [lo, hi] bytes. */
static bool ref_size(const char *s, unsigned long lo, unsigned long hi,
                     unsigned long *out)
{
	unsigned long v;
	unsigned __int128 x;
	bool ok;
	const char *p = ref_digits(ref_blanks(s), &v, &ok);

	x = v;
	if (*p == 'k' || *p == 'K')
		x <<= 10, p++;
	else if (*p == 'm' || *p == 'M')
		x <<= 20, p++;
	if (!ok || *ref_blanks(p) != '\0' || x < lo || x > hi)
		return false;
	*out = (unsigned long)x;
	return true;
}

static bool catchable(int sig)
{
	return sig >= 1 && sig <= SIGRTMAX && sig != SIGKILL && sig != SIGSTOP &&
	       sig != SIGSEGV && sig != SIGBUS && sig != SIGILL &&
	       sig != SIGFPE && sig != SIGTRAP && sig != SIGSYS &&
	       (sig < 32 || sig >= SIGRTMIN);
}

static void check_signal(const char *s)
{
	int sig = ss__parse_signal(s);
	unsigned long n;

	CHECK(sig == -1 || catchable(sig));
	if (ref_uint(s, 1, NSIG - 1, &n))
		CHECK(sig == (catchable((int)n) ? (int)n : -1));
}

/* ---- one input --------------------------------------------------------- */

static const unsigned long bounds[8] = {
	0, 1, 2, 10, 4096, 1ul << 20, ULONG_MAX / 1024, ULONG_MAX,
};

static void direct(const char *rec, size_t len)
{
	unsigned long lo, hi, v, r;
	char *s;

	if (len < 2)
		return;
	lo = bounds[(unsigned char)rec[0] % 8];
	hi = bounds[(unsigned char)rec[1] % 8];
	s = strndup(rec + 2, len - 2);
	CHECK(s);
	v = 0xdead;
	if (ss__parse_uint(s, lo, hi, &v) == 0)
		CHECK(ref_uint(s, lo, hi, &r) && v == r);
	else
		CHECK(!ref_uint(s, lo, hi, &r) && v == 0xdead);
	if (ss__parse_size(s, lo, hi, &v) == 0)
		CHECK(ref_size(s, lo, hi, &r) && v == r);
	else
		CHECK(!ref_size(s, lo, hi, &r));
	check_signal(s);
	free(s);
}

/* Whether a message line starts with PREFIX (values, which may hold
 * such a text, never hold a newline). */
static bool said_line(const char *msgs, const char *prefix)
{
	size_t l = strlen(prefix);

	for (const char *p = msgs; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, l) == 0)
			return true;
	return false;
}

/* Whether the messages say that variable NAME is bad. */
static bool said(const char *msgs, const char *name)
{
	char key[64];

	snprintf(key, sizeof key, "smolscale: %s=\"", name);
	return said_line(msgs, key);
}

static void check_msgs(const char *msgs, size_t len)
{
	const char *p = msgs, *end = msgs + len;

	CHECK(strlen(msgs) == len);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		CHECK(nl);	/* every message ends its line */
		CHECK(strncmp(p, "smolscale: ", 11) == 0);
		CHECK(nl - p < 320);
		p = nl + 1;
	}
}

/* A uint variable: in range, and as the reference says. */
static void check_uint(int var, const char *val, unsigned long lo,
                       unsigned long hi, unsigned long def, unsigned long got,
                       const char *msgs)
{
	unsigned long r;

	CHECK(got >= lo && got <= hi);
	if (!val || !*val) {
		CHECK(got == def && !said(msgs, var_name[var]));
	} else if (ref_uint(val, lo, hi, &r)) {
		CHECK(got == r && !said(msgs, var_name[var]));
	} else {
		CHECK(got == def && said(msgs, var_name[var]));
	}
}

static void check_config(char *val[NVARS], const char *msgs)
{
	unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE), r, max_def;

	CHECK(cfg.cpus >= 1);
	check_uint(V_THREADS, val[V_THREADS], 1, 4096, cfg.cpus, cfg.threads, msgs);
	max_def = 4ul * cfg.cpus > 256 ? 4ul * cfg.cpus : 256;
	if (max_def < cfg.threads)
		max_def = cfg.threads;
	check_uint(V_MAX_THREADS, val[V_MAX_THREADS], cfg.threads, 32768, max_def,
	           cfg.max_threads, msgs);
	check_uint(V_STALL_MS, val[V_STALL_MS], 1, 60000, 10, cfg.stall_ms, msgs);
	check_uint(V_IDLE_MS, val[V_IDLE_MS], 1, 86400000, 5000, cfg.idle_ms, msgs);
	check_uint(V_STEAL, val[V_STEAL], 0, 1, 0, cfg.steal, msgs);
	check_uint(V_STATS, val[V_STATS], 0, 1, 0, cfg.stats, msgs);
	check_uint(V_STALL_REPORT, val[V_STALL_REPORT], 0, 1, 0, cfg.stall_report, msgs);
	check_uint(V_STALL_REPORT_MS, val[V_STALL_REPORT_MS], 1, 3600000, 100,
	           cfg.stall_report_ms, msgs);

	/* The stack: whole pages, the value rounded up, else the default. */
	CHECK(cfg.fiber_stack % page == 0);
	CHECK(cfg.fiber_stack >= 16ul << 10 &&
	      cfg.fiber_stack <= ((256ul << 20) + page - 1) / page * page);
	if (val[V_FIBER_STACK] && *val[V_FIBER_STACK] &&
	    ref_size(val[V_FIBER_STACK], 16ul << 10, 256ul << 20, &r)) {
		CHECK(cfg.fiber_stack == (r + page - 1) / page * page);
		CHECK(!said(msgs, var_name[V_FIBER_STACK]));
	} else {
		CHECK(cfg.fiber_stack == ((256ul << 10) + page - 1) / page * page);
		CHECK(said(msgs, var_name[V_FIBER_STACK]) ==
		      (val[V_FIBER_STACK] && *val[V_FIBER_STACK]));
	}

	CHECK(cfg.stats_signal == 0 || catchable(cfg.stats_signal));
	if (val[V_STATS_SIGNAL] && *val[V_STATS_SIGNAL]) {
		int sig = ss__parse_signal(val[V_STATS_SIGNAL]);
		CHECK(cfg.stats_signal == (sig < 0 ? 0 : sig));
		CHECK(said(msgs, var_name[V_STATS_SIGNAL]) == (sig < 0));
		check_signal(val[V_STATS_SIGNAL]);
	} else {
		CHECK(cfg.stats_signal == 0 && !said(msgs, var_name[V_STATS_SIGNAL]));
	}

	CHECK(memchr(cfg.log_path, '\0', sizeof cfg.log_path));
	if (val[V_LOG] && *val[V_LOG] && strlen(val[V_LOG]) < sizeof cfg.log_path)
		CHECK(strcmp(cfg.log_path, val[V_LOG]) == 0);
	else
		CHECK(cfg.log_path[0] == '\0');
	CHECK(said_line(msgs, "smolscale: SMOLSCALE_LOG is longer") ==
	      (val[V_LOG] && strlen(val[V_LOG]) >= sizeof cfg.log_path));
}

/* patterns(VAR): NULL or a list of non-empty, trimmed, comma-free
 * patterns; with a list, *copy is its strings' block (the caller frees
 * both). */
static char **get_patterns(int var, const char *val, char **copy)
{
	char **list;
	size_t n = 0;

	fz_copy = NULL;
	list = patterns(var_name[var]);
	*copy = fz_copy;
	if (!list) {
		/* patterns() freed its copy, if it made one.  NULL only
		 * when there is no pattern: blanks and commas. */
		if (val)
			CHECK(val[strspn(val, " \t,")] == '\0');
		*copy = NULL;
		return NULL;
	}
	CHECK(val && fz_copy);
	for (; list[n]; n++) {
		const char *p = list[n];
		size_t l = strlen(p);

		CHECK(p >= fz_copy && p + l <= fz_copy + strlen(val));
		CHECK(l > 0 && !strchr(p, ','));
		CHECK(p[0] != ' ' && p[0] != '\t' && p[l - 1] != ' ' && p[l - 1] != '\t');
		/* Each is in the value as written. */
		CHECK(strstr(val, p) != NULL);
	}
	CHECK(n >= 1);
	return list;
}

static void check_match(char **list, const char *name)
{
	bool any = false, m;

	if (!list)
		return;
	m = match_any(list, name);
	for (char **p = list; *p; p++) {
		any |= fnmatch(*p, name, 0) == 0;
		if (strcmp(*p, name) == 0 && !strpbrk(name, "*?[\\"))
			CHECK(m);
	}
	CHECK(m == any);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *val[NVARS] = { 0 }, *names[8], *msgs = NULL, *only_copy, *skip_copy;
	char **only, **skip;
	size_t nnames = 0, msglen = 0;

	for (int v = 0; v < NVARS; v++)
		unsetenv(var_name[v]);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int k;

		if (len > 0) {
			k = (unsigned char)(p[0] - 'a') % NRECORDS;
			if (k < NVARS) {
				free(val[k]);
				val[k] = strndup(p + 1, len - 1);
				CHECK(val[k]);
				CHECK(setenv(var_name[k], val[k], 1) == 0);
			} else if (k == R_NAME && nnames < 8) {
				names[nnames] = strndup(p + 1, len - 1);
				CHECK(names[nnames]);
				nnames++;
			} else if (k == R_PARSE) {
				direct(p + 1, len - 1);
			}
		}
		p += len + 1;
	}

	fz_err = open_memstream(&msgs, &msglen);
	CHECK(fz_err);
	memset(&cfg, 0x5a, sizeof cfg);
	cfg_read();
	only = get_patterns(V_ONLY, val[V_ONLY], &only_copy);
	skip = get_patterns(V_SKIP, val[V_SKIP], &skip_copy);
	CHECK(fclose(fz_err) == 0);
	fz_err = NULL;
	check_msgs(msgs, msglen);
	check_config(val, msgs);

	/* "" is what a routine without a symbol is matched as. */
	check_match(only, "");
	check_match(skip, "");
	for (size_t i = 0; i < nnames; i++) {
		check_match(only, names[i]);
		check_match(skip, names[i]);
		free(names[i]);
	}

	free(only);
	free(only_copy);
	free(skip);
	free(skip_copy);
	free(msgs);
	for (int v = 0; v < NVARS; v++) {
		unsetenv(var_name[v]);
		free(val[v]);
	}
	return 0;
}
