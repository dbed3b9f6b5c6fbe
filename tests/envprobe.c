/*
 * envprobe.c - helper for test_env.c (built, not run as a test): spawns and
 * joins a few tasks, prints "ok" and the target_workers in effect on stdout
 * and exits 0.  Whatever the library says about its SMOLSCALE_* variables
 * goes to stderr, which test_env.c captures.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "smolscale.h"

#define TASKS 8

static void *twice(void *arg)
{
	return (void *)((uintptr_t)arg * 2);
}

int main(void)
{
	ss_task *t[TASKS];
	struct ss_stats st;
	uintptr_t i;
	void *r;

	for (i = 0; i < TASKS; i++)
		if (!(t[i] = ss_spawn(twice, (void *)i)))
			return 2;
	for (i = 0; i < TASKS; i++)
		if (ss_join(t[i], &r) || (uintptr_t)r != i * 2)
			return 3;
	if (ss_stats(&st))
		return 4;
	printf("ok\ntarget_workers=%" PRIu64 "\n", st.target_workers);
	return 0;
}
