/*
 * test_stats.c - ss_stats(): EINVAL for NULL; before the first spawn every
 * counter is 0 and no thread is started; after N tasks the task and thread
 * counters add up, and target_workers is SMOLSCALE_THREADS when set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smolscale.h"
#include "util.h"

#define TASKS 1000

START_TEST(null_is_einval)
{
	ck_assert_int_eq(ss_stats(NULL), EINVAL);
	ck_assert(no_library_threads());
}
END_TEST

START_TEST(zero_before_first_spawn)
{
	struct ss_stats st, zero;

	memset(&st, 0xa5, sizeof st);
	memset(&zero, 0, sizeof zero);
	ck_assert(no_library_threads());
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_mem_eq(&st, &zero, sizeof st);
	ck_assert(no_library_threads());
}
END_TEST

START_TEST(counters_after_work)
{
	struct ss_stats st;
	uintptr_t i;
	void *r;

	setenv("SMOLSCALE_THREADS", "3", 1);
	for (i = 0; i < TASKS; i++) {
		ck_assert_int_eq(ss_join(ss_spawn(ident, (void *)i), &r), 0);
		ck_assert_ptr_eq(r, (void *)i);
	}
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_ge(st.tasks_spawned, TASKS);
	ck_assert_uint_ge(st.tasks_completed, TASKS);
	ck_assert_uint_le(st.tasks_completed, st.tasks_spawned);
	ck_assert_uint_eq(st.tasks_cancelled, 0);
	ck_assert_uint_eq(st.target_workers, 3);
	ck_assert_uint_ge(st.threads, 1);
	ck_assert_uint_ge(st.threads_created, st.threads);
	ck_assert_uint_le(st.threads_exited, st.threads_created);
	ck_assert_uint_ge(st.peak_threads, st.threads);
	ck_assert_uint_le(st.peak_threads, st.threads_created);
	ck_assert_uint_eq(st.steals, 0);
}
END_TEST

START_TEST(default_target_is_positive)
{
	struct ss_stats st;

	ck_assert_int_eq(ss_join(ss_spawn(ident, NULL), NULL), 0);
	ck_assert_int_eq(ss_stats(&st), 0);
	ck_assert_uint_ge(st.target_workers, 1);
	ck_assert_uint_ge(st.tasks_completed, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_new("stats");

	tcase_add_test(tc, null_is_einval);
	tcase_add_test(tc, zero_before_first_spawn);
	tcase_add_test(tc, counters_after_work);
	tcase_add_test(tc, default_target_is_positive);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
