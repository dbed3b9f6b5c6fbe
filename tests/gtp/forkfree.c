/*
 * forkfree.c - fork() while pool items create, fill and free pools with
 * wait_=TRUE, and pools in the child.  Two items of an outer pool loop:
 * new pool, four pushes, g_thread_pool_free(p, FALSE, TRUE).  The main
 * thread forks in a loop; each child runs a pool of its own (push, free
 * with wait) and exits with whether its item ran, and whether items
 * queued in the parent (in a frozen pool) stayed the parent's: not
 * queued in the child, and not run there when the pool thaws.  A layer that calls
 * into the scheduler with a pool's lock held deadlocks here at fork.
 *
 * Under the preload only: natively, GLib 2.74's pools do not work in the
 * child of a process whose pools have threads (the child's free() waits
 * for ever in g_cond_wait: the threads that would run its item, and
 * GLib's pool-spawner, exist only in the parent).
 *
 *   forkfree [SECONDS]   (default 3)
 * stdout: "forkfree ok" when every child passed and the parent's frozen
 *         items ran in the parent once it thawed them.
 * stderr: how many forks and inner frees.
 * Exit: 0, or 1 when a child's pool failed.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static gint stop;
static gint frees;

static void inner(gpointer data, gpointer user_data)
{
	g_usleep(20);
}

static void outer(gpointer data, gpointer user_data)
{
	while (!g_atomic_int_get(&stop)) {
		GThreadPool *p = g_thread_pool_new(inner, NULL, 2, FALSE, NULL);

		for (int i = 1; i <= 4; i++)
			g_thread_pool_push(p, GINT_TO_POINTER(i), NULL);
		g_thread_pool_free(p, FALSE, TRUE);
		g_atomic_int_inc(&frees);
	}
}

static void mark(gpointer data, gpointer user_data)
{
	g_atomic_int_inc((gint *)user_data);
}

/* Three items wait in it, frozen (max_threads 0), until the end. */
static GThreadPool *frozen;
static gint frozen_ran;

/* In the child: a pool of its own must work, and the parent's queued
 * items are not the child's. */
static int child(void)
{
	gint ran = 0;
	GThreadPool *p = g_thread_pool_new(mark, &ran, 1, FALSE, NULL);

	g_thread_pool_push(p, GINT_TO_POINTER(1), NULL);
	g_thread_pool_free(p, FALSE, TRUE);
	if (g_atomic_int_get(&ran) != 1)
		return 1;
	if (g_thread_pool_unprocessed(frozen) != 0)
		return 2;
	g_thread_pool_set_max_threads(frozen, 1, NULL);
	g_thread_pool_free(frozen, FALSE, TRUE);
	return g_atomic_int_get(&frozen_ran) == 0 ? 0 : 3;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 3;
	GThreadPool *q = g_thread_pool_new(outer, NULL, 2, FALSE, NULL);
	gint64 end = g_get_monotonic_time() + (gint64)secs * G_USEC_PER_SEC;
	long forks = 0, bad = 0;

	frozen = g_thread_pool_new(mark, &frozen_ran, 0, FALSE, NULL);
	for (int i = 1; i <= 3; i++)
		g_thread_pool_push(frozen, GINT_TO_POINTER(i), NULL);
	g_thread_pool_push(q, GINT_TO_POINTER(1), NULL);
	g_thread_pool_push(q, GINT_TO_POINTER(2), NULL);
	while (g_get_monotonic_time() < end) {
		int status;
		pid_t pid = fork();

		if (pid == 0)
			_exit(child());
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad++;
		forks++;
	}
	g_atomic_int_set(&stop, 1);
	g_thread_pool_free(q, FALSE, TRUE);
	g_thread_pool_set_max_threads(frozen, 1, NULL);
	g_thread_pool_free(frozen, FALSE, TRUE);
	if (g_atomic_int_get(&frozen_ran) != 3) {
		fprintf(stderr, "forkfree: the parent's frozen pool ran %d of 3\n",
		        g_atomic_int_get(&frozen_ran));
		return 1;
	}
	fprintf(stderr, "forkfree: %ld forks, %d inner frees, %ld bad children\n",
	        forks, g_atomic_int_get(&frees), bad);
	if (bad)
		return 1;
	printf("forkfree ok\n");
	return 0;
}
