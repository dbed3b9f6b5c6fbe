/*
 * test_env.c - the SMOLSCALE_* environment variables, through the envprobe
 * helper run with a controlled environment: a bad value (not a number, a
 * negative, out of range, too big for any integer type, trailing junk)
 * prints exactly one line on stderr naming the variable and the word
 * "default", and the program goes on (exit 0, "ok"), with the default in
 * effect; a valid value prints nothing and is used; an empty value is the
 * same as unset; SMOLSCALE_STATS=1 prints the counters at exit.
 *
 * Contracted ranges: THREADS 1..4096; MAX_THREADS 1..32768 and not below
 * the THREADS in effect; STALL_MS 1..60000; IDLE_MS 1..86400000; STEAL and
 * STATS 0 or 1.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "util.h"

#define HUGE "99999999999999999999"

struct setting {
	const char *var;   /* the variable a message must name, if any */
	const char *env[3];
};

static const struct setting bad[] = {
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=abc" } },
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=-3" } },
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=0" } },
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=4097" } },
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=" HUGE } },
	{ "SMOLSCALE_THREADS", { "SMOLSCALE_THREADS=12x" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=abc" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=-3" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=0" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=32769" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=" HUGE } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_MAX_THREADS=12x" } },
	{ "SMOLSCALE_MAX_THREADS", { "SMOLSCALE_THREADS=4", "SMOLSCALE_MAX_THREADS=2" } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=abc" } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=-3" } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=0" } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=60001" } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=" HUGE } },
	{ "SMOLSCALE_STALL_MS", { "SMOLSCALE_STALL_MS=12x" } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=abc" } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=-3" } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=0" } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=86400001" } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=" HUGE } },
	{ "SMOLSCALE_IDLE_MS", { "SMOLSCALE_IDLE_MS=12x" } },
	{ "SMOLSCALE_STEAL", { "SMOLSCALE_STEAL=abc" } },
	{ "SMOLSCALE_STEAL", { "SMOLSCALE_STEAL=-3" } },
	{ "SMOLSCALE_STEAL", { "SMOLSCALE_STEAL=2" } },
	{ "SMOLSCALE_STEAL", { "SMOLSCALE_STEAL=" HUGE } },
	{ "SMOLSCALE_STEAL", { "SMOLSCALE_STEAL=1x" } },
	{ "SMOLSCALE_STATS", { "SMOLSCALE_STATS=abc" } },
	{ "SMOLSCALE_STATS", { "SMOLSCALE_STATS=-3" } },
	{ "SMOLSCALE_STATS", { "SMOLSCALE_STATS=2" } },
	{ "SMOLSCALE_STATS", { "SMOLSCALE_STATS=" HUGE } },
	{ "SMOLSCALE_STATS", { "SMOLSCALE_STATS=1x" } },
	{ "SMOLSCALE_STALL_REPORT", { "SMOLSCALE_STALL_REPORT=2" } },
	{ "SMOLSCALE_STALL_REPORT", { "SMOLSCALE_STALL_REPORT=yes" } },
	{ "SMOLSCALE_STALL_REPORT_MS", { "SMOLSCALE_STALL_REPORT_MS=0" } },
	{ "SMOLSCALE_STALL_REPORT_MS", { "SMOLSCALE_STALL_REPORT_MS=3600001" } },
	{ "SMOLSCALE_STALL_REPORT_MS", { "SMOLSCALE_STALL_REPORT_MS=1s" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=KILL" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=SIGSEGV" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=9" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=32" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=USR3" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=RTMIN+99" } },
	{ "SMOLSCALE_STATS_SIGNAL", { "SMOLSCALE_STATS_SIGNAL=" HUGE } },
};

static const struct setting good[] = {
	{ NULL, { "SMOLSCALE_THREADS=1" } },
	{ NULL, { "SMOLSCALE_THREADS=64" } },
	{ NULL, { "SMOLSCALE_THREADS=4096", "SMOLSCALE_MAX_THREADS=32768" } },
	{ NULL, { "SMOLSCALE_THREADS=1", "SMOLSCALE_MAX_THREADS=1" } },
	{ NULL, { "SMOLSCALE_MAX_THREADS=32768" } },
	{ NULL, { "SMOLSCALE_STALL_MS=1" } },
	{ NULL, { "SMOLSCALE_STALL_MS=60000" } },
	{ NULL, { "SMOLSCALE_IDLE_MS=1" } },
	{ NULL, { "SMOLSCALE_IDLE_MS=86400000" } },
	{ NULL, { "SMOLSCALE_STEAL=0" } },
	{ NULL, { "SMOLSCALE_STEAL=1" } },
	{ NULL, { "SMOLSCALE_STATS=0" } },
	{ NULL, { "SMOLSCALE_THREADS=" } },
	{ NULL, { "SMOLSCALE_MAX_THREADS=" } },
	{ NULL, { "SMOLSCALE_STALL_MS=" } },
	{ NULL, { "SMOLSCALE_IDLE_MS=" } },
	{ NULL, { "SMOLSCALE_STEAL=" } },
	{ NULL, { "SMOLSCALE_STATS=" } },
	{ NULL, { "SMOLSCALE_STALL_REPORT=0" } },
	{ NULL, { "SMOLSCALE_STALL_REPORT=1" } },
	{ NULL, { "SMOLSCALE_STALL_REPORT_MS=1" } },
	{ NULL, { "SMOLSCALE_STALL_REPORT_MS=3600000" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=USR2" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=sigusr1" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=RTMIN+3" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=RTMAX-1" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=12" } },
	{ NULL, { "SMOLSCALE_STATS_SIGNAL=" } },
	{ NULL, { "SMOLSCALE_LOG=" } },
};

/* Run envprobe under set; check it ran its tasks and exited 0. */
static void probe(const struct setting *set, struct probe *p)
{
	run_probe("envprobe", set->env, p);
	ck_assert_msg(p->status != -1, "envprobe hung under %s", set->env[0]);
	ck_assert_msg(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0,
		      "envprobe under %s: wait status %#x, stderr: %s", set->env[0],
		      p->status, p->err);
	ck_assert_msg(strncmp(p->out, "ok\n", 3) == 0, "envprobe under %s printed '%s'",
		      set->env[0], p->out);
}

/* The target_workers envprobe reported. */
static long target(const struct probe *p)
{
	const char *s = strstr(p->out, "target_workers=");

	return s ? strtol(s + strlen("target_workers="), NULL, 10) : -1;
}

START_TEST(bad_value_warns_once)
{
	const struct setting *set = &bad[_i];
	struct probe p;
	char *nl;

	probe(set, &p);
	nl = strchr(p.err, '\n');
	ck_assert_msg(nl && nl[1] == '\0', "under %s%s%s stderr is not one line: '%s'",
		      set->env[0], set->env[1] ? " " : "", set->env[1] ? set->env[1] : "",
		      p.err);
	ck_assert_msg(strstr(p.err, set->var) && strstr(p.err, "default"),
		      "the line must name %s and the default: '%s'", set->var, p.err);
}
END_TEST

START_TEST(good_value_is_silent)
{
	const struct setting *set = &good[_i];
	struct probe p;

	probe(set, &p);
	ck_assert_msg(p.err[0] == '\0', "under %s%s%s stderr: '%s'", set->env[0],
		      set->env[1] ? " " : "", set->env[1] ? set->env[1] : "", p.err);
}
END_TEST

START_TEST(threads_value_is_used)
{
	static const struct setting unset = { NULL, { NULL } };
	static const struct setting three = { NULL, { "SMOLSCALE_THREADS=3" } };
	static const struct setting junk = { NULL, { "SMOLSCALE_THREADS=12x" } };
	static const struct setting empty = { NULL, { "SMOLSCALE_THREADS=" } };
	struct probe p;
	long dflt;

	probe(&unset, &p);
	ck_assert_str_eq(p.err, "");
	dflt = target(&p);
	ck_assert_int_ge(dflt, 1);
	probe(&three, &p);
	ck_assert_int_eq(target(&p), 3);
	probe(&junk, &p);
	ck_assert_int_eq(target(&p), dflt);
	probe(&empty, &p);
	ck_assert_int_eq(target(&p), dflt);
}
END_TEST

START_TEST(stats_at_exit)
{
	static const struct setting stats = { NULL, { "SMOLSCALE_STATS=1" } };
	struct probe p;

	probe(&stats, &p);
	ck_assert_msg(strstr(p.err, "tasks_completed"), "no counters at exit: '%s'", p.err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("env");
	TCase *tc = tcase_new("env");

	tcase_add_loop_test(tc, bad_value_warns_once, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_loop_test(tc, good_value_is_silent, 0, (int)(sizeof good / sizeof good[0]));
	tcase_add_test(tc, threads_value_is_used);
	tcase_add_test(tc, stats_at_exit);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
