/*
 * test_fork.c - fork() with a live pool: the child starts afresh, so
 * ss_spawn + ss_join work there and return the right result, and tasks that
 * were queued in the parent never run in the child (a counter in MAP_SHARED
 * memory would show it); in the parent they all run, once.  The same from a
 * child forked inside a task while tasks wait behind it.  The child reports
 * through its exit status.
 *
 * Each test forks only once every hidden thread runs its own code (has
 * named itself): GCC 12's sanitizer runtimes take no allocator lock around
 * fork(), so a thread still starting up at the fork could leave such a lock
 * held in the child and hang it there, through no fault of the library.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smolscale.h"
#include "util.h"

#define WAIT_MS 30000
#define QUEUED 100
#define CHILD_TASKS 10
#define LINGER_MS 100
#define SETTLE_MS 5000

static pid_t parent;
static atomic_long *runs_elsewhere; /* shared with the children */
static atomic_long parent_runs;
static atomic_int started, go;

static void *queued(void *arg)
{
	atomic_fetch_add(getpid() == parent ? &parent_runs : runs_elsewhere, 1);
	return arg;
}

static void *hold(void *arg)
{
	atomic_store(&started, 1);
	spin_until(&go, WAIT_MS);
	return arg;
}

static void *triple(void *arg)
{
	return (void *)((uintptr_t)arg * 3);
}

/* Runs in the child: 0 if the pool works and no task of the parent ran. */
static int child_checks(void)
{
	ss_task *t[CHILD_TASKS];
	uintptr_t i;
	void *r;

	for (i = 0; i < CHILD_TASKS; i++)
		if (!(t[i] = ss_spawn(triple, (void *)i)))
			return 2;
	for (i = 0; i < CHILD_TASKS; i++)
		if (ss_join(t[i], &r) || (uintptr_t)r != i * 3)
			return 3;
	sleep_ms(LINGER_MS);
	return atomic_load(runs_elsewhere) ? 4 : 0;
}

static void setup(void)
{
	parent = getpid();
	runs_elsewhere = mmap(NULL, sizeof *runs_elsewhere, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(runs_elsewhere, MAP_FAILED);
}

static void check_child(int status)
{
	ck_assert_msg(status != -1, "child hung (killed after %d ms)", WAIT_MS);
	ck_assert_msg(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == 0,
		      "child failed: %d (2: spawn, 3: join or result, 4: a parent task ran)",
		      WEXITSTATUS(status));
	ck_assert_int_eq(atomic_load(runs_elsewhere), 0);
}

START_TEST(fork_with_busy_pool)
{
	ss_task *h, *t[QUEUED];
	pid_t pid;
	int i, status;

	setup();
	setenv("SMOLSCALE_THREADS", "1", 1);
	h = ss_spawn(hold, NULL);
	ck_assert(spin_until(&started, WAIT_MS));
	for (i = 0; i < QUEUED; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(queued, NULL));
	ck_assert(library_threads_named(SETTLE_MS));
	pid = fork();
	if (pid == 0)
		_exit(child_checks());
	ck_assert_int_gt(pid, 0);
	status = wait_child(pid, WAIT_MS);
	atomic_store(&go, 1);
	ck_assert_int_eq(ss_join(h, NULL), 0);
	for (i = 0; i < QUEUED; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	check_child(status);
	ck_assert_int_eq(atomic_load(&parent_runs), QUEUED);
}
END_TEST

/* Forks once the test has queued its tasks behind this one. */
static void *fork_in_task(void *arg)
{
	pid_t pid;

	spin_until(&go, WAIT_MS);
	pid = fork();
	if (pid == 0)
		_exit(child_checks());
	return (void *)(intptr_t)(pid < 0 ? -1 : wait_child(pid, WAIT_MS));
}

START_TEST(fork_inside_task)
{
	ss_task *t[QUEUED], *f;
	void *status = NULL;
	int i;

	setup();
	setenv("SMOLSCALE_THREADS", "1", 1);
	f = ss_spawn(fork_in_task, NULL);
	for (i = 0; i < QUEUED; i++)
		ck_assert_ptr_nonnull(t[i] = ss_spawn(queued, NULL));
	ck_assert(library_threads_named(SETTLE_MS));
	atomic_store(&go, 1);
	ck_assert_int_eq(ss_join(f, &status), 0);
	for (i = 0; i < QUEUED; i++)
		ck_assert_int_eq(ss_join(t[i], NULL), 0);
	check_child((int)(intptr_t)status);
	ck_assert_int_eq(atomic_load(&parent_runs), QUEUED);
}
END_TEST

/* A task that a join runs inline, inside another task, forks.  In the
 * child both go on, the outer one finishes on the forking thread, and a
 * checker task started there must find sound records (a regression: the
 * outer task's record was freed while it ran, and again when it ended,
 * so two new tasks could share it). */
static void *fork_inner(void *arg)
{
	return (void *)(intptr_t)fork();
}

static void *checker(void *arg)
{
	sleep_ms(LINGER_MS); /* the outer task has finished by now */
	for (int round = 0; round < 20; round++) {
		int rc = child_checks();
		if (rc)
			_exit(rc);
	}
	_exit(0);
}

static atomic_int outer_status = -2; /* the child's wait status, parent side */

/* Detached, so that in the child nothing but this thread holds its record. */
static void *fork_outer(void *arg)
{
	ss_task *b = ss_spawn(fork_inner, NULL);
	void *pid = NULL;

	if (ss_join(b, &pid) != 0) {
		atomic_store(&outer_status, -3);
		return NULL;
	}
	if ((intptr_t)pid == 0) {
		ss_detach(ss_spawn(checker, NULL));
		return NULL;
	}
	atomic_store(&outer_status,
	             wait_child((pid_t)(intptr_t)pid, WAIT_MS));
	return NULL;
}

START_TEST(fork_inside_inline_join)
{
	int64_t end;

	setup();
	ck_assert_int_eq(ss_join(ss_spawn(triple, NULL), NULL), 0);
	ck_assert(library_threads_named(SETTLE_MS));
	ck_assert_int_eq(ss_detach(ss_spawn(fork_outer, NULL)), 0);
	end = now_ms() + 2 * WAIT_MS;
	while (atomic_load(&outer_status) == -2 && now_ms() < end)
		sleep_ms(1);
	ck_assert_int_ne(atomic_load(&outer_status), -3);
	check_child(atomic_load(&outer_status));
}
END_TEST

/* Forks while group tasks finish: in every child the group must come to
 * exactly zero pending tasks (a regression: a task half uncounted at the
 * fork was uncounted again in the child, and ss_group_wait hung). */
static ss_group *fed;
static atomic_int stop_feeding;

static int short_member(void *arg)
{
	return 0;
}

static void *feeder(void *arg)
{
	while (!atomic_load(&stop_feeding)) {
		for (int i = 0; i < 64; i++)
			ss_group_spawn(fed, short_member, NULL);
		usleep(50);
	}
	return NULL;
}

START_TEST(fork_while_group_tasks_finish)
{
	int forks = (int)scaled(500);
	ss_task *f;

	setup();
	ck_assert_ptr_nonnull(fed = ss_group_new());
	ck_assert_ptr_nonnull(f = ss_spawn(feeder, NULL));
	sleep_ms(50);
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(ss_group_wait(fed) == 0 ? 0 : 3);
		ck_assert_int_gt(pid, 0);
		/* The limit of every other child, not a shorter one: a child
		 * that is well is waited for only until it exits, and under
		 * valgrind each one ends with a leak check of the whole heap
		 * (seconds on a busy machine), which check_child would take
		 * for a hang. */
		check_child(wait_child(pid, WAIT_MS));
	}
	atomic_store(&stop_feeding, 1);
	ck_assert_int_eq(ss_join(f, NULL), 0);
	ck_assert_int_eq(ss_group_wait(fed), 0);
	ss_group_free(fed);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fork");
	TCase *tc = tcase_new("fork");

	/* 500 forks of a process with a running pool: their time is the
	 * kernel's (page tables, descriptor tables), which a loaded 2-CPU
	 * machine stretches to tens of seconds; allow for it. */
	if (!getenv("CK_DEFAULT_TIMEOUT"))
		tcase_set_timeout(tc, 240);

	tcase_add_test(tc, fork_with_busy_pool);
	tcase_add_test(tc, fork_inside_task);
	tcase_add_test(tc, fork_inside_inline_join);
	tcase_add_test(tc, fork_while_group_tasks_finish);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
