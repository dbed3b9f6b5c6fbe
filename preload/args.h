/*
 * args.h - the smolscale command's arguments (args.c), parsed without
 * printing or exiting, so that a fuzzer (tests/fuzz/fuzz_args.c) can
 * drive the parser directly.  smolscale.c prints what it returns.
 */
#ifndef SS_ARGS_H
#define SS_ARGS_H

#include <stdbool.h>

/* What ss_args_parse found. */
enum ss_args_what {
	SS_ARGS_USAGE = -1,	/* a usage error: *err says what */
	SS_ARGS_HELP,		/* -h, --help, help: print the usage text */
	SS_ARGS_VERSION,	/* --version */
	SS_ARGS_RUN,
	SS_ARGS_AB,
	SS_ARGS_STATS,
};

struct opts {
	bool ab;
	bool pthread;
	bool no_gthreadpool;
	long threads;		/* 0: leave SMOLSCALE_THREADS alone */
	long runs, warmup;
	const char *plot;	/* points into argv */
	bool count;
	char **cmd;		/* run, ab: the command, a tail of argv */
	long pid, timeout_ms;	/* stats */
};

/*
 * Parse argv (argc entries, argv[argc] NULL, argv[0] the program's name)
 * into *o, defaults included.  Returns an ss_args_what.  On SS_ARGS_USAGE
 * *err is the message, without "smolscale: " and the hint after it, to
 * be freed by the caller; NULL when there was no memory for it.
 * Otherwise *err is NULL.
 */
int ss_args_parse(int argc, char **argv, struct opts *o, char **err);

#endif /* SS_ARGS_H */
