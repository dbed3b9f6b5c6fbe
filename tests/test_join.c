/*
 * test_join.c - joining from inside tasks: a recursive fib(20) where every
 * task spawns two children and joins them (with the default pool, with one
 * worker, and with SMOLSCALE_STEAL=1), and a pool of two workers where
 * every task joins a child that blocks for a while, so that at times every
 * worker is a joiner: the pool must still finish.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "smolscale.h"
#include "util.h"

#define FIB_N 20
#define FIB_20 6765
#define BAD ((void *)UINTPTR_MAX)
#define PARENTS 64
#define CHILD_SLEEP_MS 2

static void *fib(void *arg)
{
	uintptr_t n = (uintptr_t)arg;
	ss_task *a, *b;
	void *x = BAD, *y = BAD;

	if (n < 2)
		return arg;
	a = ss_spawn(fib, (void *)(n - 1));
	b = ss_spawn(fib, (void *)(n - 2));
	if (!a || !b || ss_join(a, &x) || ss_join(b, &y) || x == BAD || y == BAD)
		return BAD;
	return (void *)((uintptr_t)x + (uintptr_t)y);
}

static void check_fib(void)
{
	void *r = NULL;

	ck_assert_int_eq(ss_join(ss_spawn(fib, (void *)FIB_N), &r), 0);
	ck_assert_uint_eq((uintptr_t)r, FIB_20);
}

START_TEST(fib_default_pool)
{
	check_fib();
}
END_TEST

START_TEST(fib_one_worker)
{
	setenv("SMOLSCALE_THREADS", "1", 1);
	check_fib();
}
END_TEST

START_TEST(fib_stealing)
{
	setenv("SMOLSCALE_STEAL", "1", 1);
	check_fib();
}
END_TEST

static void *slow_child(void *arg)
{
	sleep_ms(CHILD_SLEEP_MS);
	return (void *)((uintptr_t)arg * 3);
}

static void *join_slow_child(void *arg)
{
	ss_task *c = ss_spawn(slow_child, arg);
	void *r = BAD;

	if (!c || ss_join(c, &r) || r == BAD)
		return BAD;
	return (void *)((uintptr_t)r + 1);
}

START_TEST(every_worker_joins)
{
	ss_task *t[PARENTS];
	uintptr_t i;
	void *r;

	setenv("SMOLSCALE_THREADS", "2", 1);
	for (i = 0; i < PARENTS; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(join_slow_child, (void *)i));
	for (i = 0; i < PARENTS; i++) {
		ck_assert_int_eq(ss_join(t[i], &r), 0);
		ck_assert_uint_eq((uintptr_t)r, i * 3 + 1);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("join");
	TCase *tc = tcase_new("join-in-task");

	tcase_add_test(tc, fib_default_pool);
	tcase_add_test(tc, fib_one_worker);
	tcase_add_test(tc, fib_stealing);
	tcase_add_test(tc, every_worker_joins);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
