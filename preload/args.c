/*
 * args.c - the smolscale command's arguments (args.h): the subcommand,
 * run's and ab's options up to the command, stats' options and PID.
 *
 * Nothing here prints or exits: a usage error comes back as a message,
 * which smolscale.c prints as "smolscale: MESSAGE (try 'smolscale
 * --help')" with exit status 2.  The arguments are untrusted (a fuzzer
 * drives this file): only argv[0..argc-1] are read, each up to its NUL.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"

/* *err = the message; returns SS_ARGS_USAGE. */
static int usage(char **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage(char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	return SS_ARGS_USAGE;
}

/* A decimal number from lo to hi, digits only; -1 when it is not one. */
static long parse_number(const char *s, long lo, long hi)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > hi)
			return -1;
	}
	return v < lo ? -1 : v;
}

/*
 * Whether argv[*i] is option NAME ("--name V", "--name=V"; "-n V", "-nV"
 * for a short one): 1 with its value in *v and *i advanced past it; 0
 * when argv[*i] is another option; SS_ARGS_USAGE when the value is
 * missing.
 */
static int option_value(int argc, char **argv, int *i, const char *name,
			const char **v, char **err)
{
	const char *a = argv[*i];
	size_t len = strlen(name);
	bool is_long = name[1] == '-';

	if (strncmp(a, name, len) != 0)
		return 0;
	if (a[len] == '\0') {
		if (*i + 1 >= argc)
			return usage(err, "option '%s' needs a value", name);
		*i += 2;
		*v = argv[*i - 1];
		return 1;
	}
	if (is_long && a[len] != '=')
		return 0;
	*i += 1;
	*v = a + len + is_long;
	return 1;
}

/* The number V for option NAME into *n: 0, or SS_ARGS_USAGE. */
static int number_value(const char *v, const char *name, long lo, long hi,
			long *n, char **err)
{
	long r = parse_number(v, lo, hi);

	if (r < 0)
		return usage(err, "bad value '%s' for %s: want a whole number from %ld to %ld",
			     v, name, lo, hi);
	*n = r;
	return 0;
}

/* The options of run or ab from argv[i] on, up to the command. */
static int parse(int argc, char **argv, int i, struct opts *o, char **err)
{
	const char *sub = o->ab ? "ab" : "run";
	const char *v;
	int r;

	while (i < argc) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return SS_ARGS_HELP;
		if (strcmp(a, "--pthread") == 0) {
			o->pthread = true;
			i++;
		} else if (strcmp(a, "--no-gthreadpool") == 0) {
			o->no_gthreadpool = true;
			i++;
		} else if ((r = option_value(argc, argv, &i, "--threads", &v, err))) {
			if (r < 0 || number_value(v, "--threads", 1, 4096, &o->threads, err))
				return SS_ARGS_USAGE;
		} else if (o->ab && strcmp(a, "--no-count") == 0) {
			o->count = false;
			i++;
		} else if (o->ab && ((r = option_value(argc, argv, &i, "-n", &v, err)) ||
				     (r = option_value(argc, argv, &i, "--runs", &v, err)))) {
			if (r < 0 || number_value(v, "-n/--runs", 1, 1000, &o->runs, err))
				return SS_ARGS_USAGE;
		} else if (o->ab && (r = option_value(argc, argv, &i, "--warmup", &v, err))) {
			if (r < 0 || number_value(v, "--warmup", 0, 100, &o->warmup, err))
				return SS_ARGS_USAGE;
		} else if (o->ab && (r = option_value(argc, argv, &i, "--plot", &v, err))) {
			const char *dot;

			if (r < 0)
				return SS_ARGS_USAGE;
			dot = strrchr(v, '.');
			if (!dot || dot == v || dot[-1] == '/' ||
			    (strcasecmp(dot, ".svg") != 0 && strcasecmp(dot, ".png") != 0))
				return usage(err, "bad value '%s' for --plot: want a file name ending in .svg or .png", v);
			o->plot = v;
		} else {
			return usage(err, "unknown option '%s' for '%s'", a, sub);
		}
	}
	if (i >= argc)
		return usage(err, "%s: no command given", sub);
	o->cmd = argv + i;
	return o->ab ? SS_ARGS_AB : SS_ARGS_RUN;
}

/* stats' options and PID, from argv[2] on. */
static int parse_stats(int argc, char **argv, struct opts *o, char **err)
{
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if (number_value(argv[++i], "--timeout", 1, 600000, &o->timeout_ms, err))
				return SS_ARGS_USAGE;
		} else if (strncmp(argv[i], "--timeout=", 10) == 0) {
			if (number_value(argv[i] + 10, "--timeout", 1, 600000, &o->timeout_ms, err))
				return SS_ARGS_USAGE;
		} else if (strcmp(argv[i], "-h") == 0 ||
		           strcmp(argv[i], "--help") == 0) {
			return SS_ARGS_HELP;
		} else if (argv[i][0] == '-' || o->pid) {
			return usage(err, "stats: unexpected argument '%s'", argv[i]);
		} else if (number_value(argv[i], "PID", 1, 4194304, &o->pid, err)) {
			return SS_ARGS_USAGE;
		}
	}
	if (!o->pid)
		return usage(err, "stats: no PID given");
	return SS_ARGS_STATS;
}

int ss_args_parse(int argc, char **argv, struct opts *o, char **err)
{
	const char *sub;

	*o = (struct opts){ .runs = 5, .warmup = 1, .count = true, .timeout_ms = 2000 };
	*err = NULL;
	if (argc < 2 || !argv[1])
		return usage(err, "no command given");
	sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0)
		return SS_ARGS_HELP;
	if (strcmp(sub, "--version") == 0)
		return SS_ARGS_VERSION;
	if (strcmp(sub, "run") == 0)
		return parse(argc, argv, 2, o, err);
	if (strcmp(sub, "ab") == 0) {
		o->ab = true;
		return parse(argc, argv, 2, o, err);
	}
	if (strcmp(sub, "stats") == 0)
		return parse_stats(argc, argv, o, err);
	if (sub[0] == '-')
		return usage(err, "unknown option '%s': options go after 'run', 'ab' or 'stats'", sub);
	return usage(err, "unknown command '%s': want 'run', 'ab' or 'stats'", sub);
}
