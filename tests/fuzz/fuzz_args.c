/*
 * fuzz_args.c - libFuzzer target for the smolscale command's arguments
 * (preload/args.c: ss_args_parse, the parser of run, ab and stats).
 *
 * The input is argv[1..] split at NUL bytes (argv[0] is "smolscale";
 * an input without a NUL is one argument, an empty input none), each
 * argument in a heap block of its own so that AddressSanitizer sees a
 * read past its NUL.  Checked besides crashes, leaks and undefined
 * behaviour:
 *   - the result is one of the enum, the same when parsed twice;
 *   - a usage error comes with a message, anything else without;
 *   - run and ab: the command is a non-empty tail of argv, --threads in
 *     1..4096 or 0 (unset), -n in 1..1000, --warmup in 0..100, --plot
 *     an argument's tail ending in .svg or .png (either case);
 *   - stats: PID in 1..4194304, --timeout in 1..600000.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "fuzz_args: %s:%d: check failed: %s\n", \
			        __FILE__, __LINE__, #c);                      \
			abort();                                              \
		}                                                             \
	} while (0)

#define MAXARGS 4096

/* Whether p points into one of the arguments. */
static int in_args(char **argv, int argc, const char *p)
{
	for (int i = 0; i < argc; i++)
		if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
			return 1;
	return 0;
}

static void check(int argc, char **argv, int r, const struct opts *o,
                  const char *err)
{
	switch (r) {
	case SS_ARGS_USAGE:
		/* NULL only when out of memory, which a fuzzer does not see. */
		CHECK(err && err[0] != '\0');
		return;
	case SS_ARGS_HELP:
	case SS_ARGS_VERSION:
		CHECK(!err && argc >= 2);
		return;
	case SS_ARGS_RUN:
	case SS_ARGS_AB:
		CHECK(!err && argc >= 2);
		CHECK(o->ab == (r == SS_ARGS_AB));
		CHECK(o->cmd > argv + 1 && o->cmd < argv + argc && o->cmd[0]);
		CHECK(o->threads == 0 || (o->threads >= 1 && o->threads <= 4096));
		CHECK(o->runs >= 1 && o->runs <= 1000);
		CHECK(o->warmup >= 0 && o->warmup <= 100);
		if (!o->ab)
			CHECK(o->runs == 5 && o->warmup == 1 && o->count && !o->plot);
		if (o->plot) {
			size_t l = strlen(o->plot);
			CHECK(in_args(argv, argc, o->plot));
			CHECK(l > 4 && (strcasecmp(o->plot + l - 4, ".svg") == 0 ||
			                strcasecmp(o->plot + l - 4, ".png") == 0));
		}
		return;
	case SS_ARGS_STATS:
		CHECK(!err && argc >= 3);
		CHECK(o->pid >= 1 && o->pid <= 4194304);
		CHECK(o->timeout_ms >= 1 && o->timeout_ms <= 600000);
		return;
	default:
		CHECK(!"a result out of the enum");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **argv = malloc((MAXARGS + 2) * sizeof *argv);
	const uint8_t *p = data, *end = data + size;
	struct opts o, o2;
	char *err, *err2;
	int argc = 0, r, r2;

	CHECK(argv);
	argv[argc++] = strdup("smolscale");
	while (p < end && argc <= MAXARGS) {
		const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);

		argv[argc] = malloc(len + 1);
		CHECK(argv[argc]);
		memcpy(argv[argc], p, len);
		argv[argc++][len] = '\0';
		p += len + 1;
	}
	argv[argc] = NULL;

	r = ss_args_parse(argc, argv, &o, &err);
	check(argc, argv, r, &o, err);
	r2 = ss_args_parse(argc, argv, &o2, &err2);
	CHECK(r == r2);
	CHECK((err == NULL) == (err2 == NULL));
	if (err)
		CHECK(strcmp(err, err2) == 0);
	free(err);
	free(err2);

	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	return 0;
}
