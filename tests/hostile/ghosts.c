/*
 * ghosts.c - hostile hosts that use GLib's GThreadPool as well as
 * pthreads, for tests/hostile/run.sh (issue 8).
 *
 *   ghosts forkloop N FROM
 *       While 4 threads create and join short threads in a loop and a
 *       feeder keeps a GThreadPool (max 4) busy, fork() N times; FROM is
 *       where the forks come from: "main", a "thread" (rerouted under the
 *       preload) or a pool "item".  Each child creates 3 threads that
 *       create 2 each, joins them, and exit()s with a status computed
 *       from its index; the parent checks every status, then stops the
 *       threads and frees the pool with wait, and checks that every item
 *       pushed ran once.  The children use pthreads only: natively, GLib
 *       2.74's pools do not work in the child of a process whose pools
 *       have threads (tests/gtp/forkfree.c).
 *   ghosts exititem
 *       A GThreadPool item calls exit(9) while three items of the same
 *       pool block in read() and main waits in g_thread_pool_free(pool,
 *       FALSE, TRUE); the atexit handler runs and stdout (fully
 *       buffered) is flushed once.
 *
 * Deterministic stdout; expected exit status: forkloop 0, exititem 9.
 */
#define HX_PROG "ghosts"
#include "common.h"

#include <glib.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ */
/* forkloop                                                            */

static atomic_int stop;
static atomic_long pushed, done, ran_twice, loops;
static GThreadPool *feed_pool;
static _Atomic unsigned char *item_runs;
#define MAX_ITEMS (1 << 22)

static void feed_item(gpointer data, gpointer user_data)
{
	long i = GPOINTER_TO_SIZE(data) - 1;

	(void)hx_compute((uint64_t)i, 300);
	if (atomic_fetch_add(&item_runs[i], 1) != 0)
		atomic_fetch_add(&ran_twice, 1);
	atomic_fetch_add(&done, 1);
}

void *hg_feeder(void *arg);
void *hg_feeder(void *arg)
{
	while (!atomic_load(&stop) && atomic_load(&pushed) < MAX_ITEMS) {
		long i = atomic_load(&pushed);

		/* At most 256 waiting. */
		if (i - atomic_load(&done) > 256) {
			hx_sleep_us(100);
			continue;
		}
		atomic_store(&pushed, i + 1);
		g_thread_pool_push(feed_pool, GSIZE_TO_POINTER((gsize)i + 1), NULL);
	}
	return NULL;
}

void *hg_short(void *arg);
void *hg_short(void *arg)
{
	uintptr_t n = (uintptr_t)arg;

	return (void *)(uintptr_t)(hx_compute(n, 500) & 0xffff);
}

void *hg_looper(void *arg);
void *hg_looper(void *arg)
{
	while (!atomic_load(&stop)) {
		pthread_t t[2];

		for (int i = 0; i < 2; i++)
			MUST(pthread_create(&t[i], NULL, hg_short, (void *)(uintptr_t)i));
		for (int i = 0; i < 2; i++)
			MUST(pthread_join(t[i], NULL));
		atomic_fetch_add(&loops, 1);
	}
	return NULL;
}

/* In a child: 3 threads that create 2 threads each. */
void *hg_child_leaf(void *arg);
void *hg_child_leaf(void *arg)
{
	uintptr_t n = (uintptr_t)arg;

	return (void *)(uintptr_t)(hx_compute(n, 1000) & 0xffff);
}

void *hg_child_mid(void *arg);
void *hg_child_mid(void *arg)
{
	uintptr_t n = (uintptr_t)arg, sum = hx_compute(n, 1000) & 0xffff;
	pthread_t t[2];
	void *v;

	for (int i = 0; i < 2; i++)
		MUST(pthread_create(&t[i], NULL, hg_child_leaf, (void *)(n * 4 + (uintptr_t)i + 1)));
	for (int i = 0; i < 2; i++) {
		MUST(pthread_join(t[i], &v));
		sum += (uintptr_t)v;
	}
	return (void *)sum;
}

/* The status child k exits with, computed without threads. */
static int expected_status(int k)
{
	uintptr_t sum = 0;

	for (int m = 0; m < 3; m++) {
		uintptr_t n = (uintptr_t)(k * 3 + m);

		sum += hx_compute(n, 1000) & 0xffff;
		for (int i = 0; i < 2; i++)
			sum += hx_compute(n * 4 + (uintptr_t)i + 1, 1000) & 0xffff;
	}
	return (int)(sum % 251);
}

static void child(int k)
{
	pthread_t t[3];
	uintptr_t sum = 0;
	void *v;

	for (int m = 0; m < 3; m++)
		MUST(pthread_create(&t[m], NULL, hg_child_mid, (void *)(uintptr_t)(k * 3 + m)));
	for (int m = 0; m < 3; m++) {
		MUST(pthread_join(t[m], &v));
		sum += (uintptr_t)v;
	}
	exit((int)(sum % 251));
}

struct forks {
	int n, good, bad, first_bad, first_status;
};

static void fork_loop(struct forks *f)
{
	for (int k = 0; k < f->n; k++) {
		pid_t p;
		int st;

		fflush(stdout);
		p = fork();
		if (p < 0)
			hx_fail(HX_PROG, "fork", errno);
		if (p == 0)
			child(k);
		while (waitpid(p, &st, 0) < 0)
			if (errno != EINTR)
				hx_fail(HX_PROG, "waitpid", errno);
		if (WIFEXITED(st) && WEXITSTATUS(st) == expected_status(k)) {
			f->good++;
		} else {
			if (!f->bad++) {
				f->first_bad = k;
				f->first_status = st;
			}
		}
	}
}

void *hg_fork_thread(void *arg);
void *hg_fork_thread(void *arg)
{
	fork_loop(arg);
	return NULL;
}

static void fork_item(gpointer data, gpointer user_data)
{
	fork_loop(data);
}

static int case_forkloop(int n, const char *from)
{
	pthread_t feeder, looper[4];
	struct forks f = { .n = n };
	long np;

	item_runs = calloc(MAX_ITEMS, 1);
	if (!item_runs)
		hx_fail(HX_PROG, "calloc", ENOMEM);
	feed_pool = g_thread_pool_new(feed_item, NULL, 4, FALSE, NULL);
	MUST(pthread_create(&feeder, NULL, hg_feeder, NULL));
	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&looper[i], NULL, hg_looper, NULL));
	/* Some of each running before the first fork. */
	while (atomic_load(&done) < 100 || atomic_load(&loops) < 4)
		hx_sleep_us(1000);

	if (strcmp(from, "main") == 0) {
		fork_loop(&f);
	} else if (strcmp(from, "thread") == 0) {
		pthread_t t;

		MUST(pthread_create(&t, NULL, hg_fork_thread, &f));
		MUST(pthread_join(t, NULL));
	} else if (strcmp(from, "item") == 0) {
		GThreadPool *p = g_thread_pool_new(fork_item, NULL, 1, FALSE, NULL);

		g_thread_pool_push(p, &f, NULL);
		g_thread_pool_free(p, FALSE, TRUE);
	} else {
		fprintf(stderr, "ghosts: forkloop from main, thread or item\n");
		return 2;
	}

	atomic_store(&stop, 1);
	MUST(pthread_join(feeder, NULL));
	for (int i = 0; i < 4; i++)
		MUST(pthread_join(looper[i], NULL));
	g_thread_pool_free(feed_pool, FALSE, TRUE);
	np = atomic_load(&pushed);
	printf("forkloop: %d children forked from %s, %d exited with the expected status\n",
	       n, from, f.good);
	if (f.bad)
		printf("forkloop: %d did not; the first, child %d: wait status 0x%x\n", f.bad,
		       f.first_bad, f.first_status);
	printf("forkloop: pool items pushed all ran once: %s\n",
	       atomic_load(&done) == np && atomic_load(&ran_twice) == 0 ? "yes" : "no");
	printf("forkloop: the parent's threads kept going: %s\n",
	       atomic_load(&loops) >= 4 ? "yes" : "no");
	return f.bad ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* exit() from a pool item                                             */

static int block_fd[2];
static sem_t blocked_started;

static void atexit_report(void)
{
	printf("atexit: ran\n");
}

static void exit_item(gpointer data, gpointer user_data)
{
	int which = GPOINTER_TO_INT(data);
	char c;

	if (which < 4) {
		MUST(sem_post(&blocked_started));
		for (;;)
			if (!hx_read_full(block_fd[0], &c, 1))
				pause();
	}
	for (int i = 0; i < 3; i++)
		hx_sem_wait(&blocked_started);
	printf("exititem: item %d calling exit(9)\n", which);
	exit(9);
}

static int case_exititem(void)
{
	static char buf[1 << 14];
	GThreadPool *p;

	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	atexit(atexit_report);
	MUST(pipe(block_fd));
	MUST(sem_init(&blocked_started, 0, 0));
	p = g_thread_pool_new(exit_item, NULL, 4, FALSE, NULL);
	printf("exititem: pushing 4 items\n");
	for (int i = 1; i <= 4; i++)
		g_thread_pool_push(p, GINT_TO_POINTER(i), NULL);
	g_thread_pool_free(p, FALSE, TRUE);
	printf("exititem: free returned\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "forkloop") == 0)
		return case_forkloop(argc > 2 ? atoi(argv[2]) : 200, argc > 3 ? argv[3] : "main");
	if (argc >= 2 && strcmp(argv[1], "exititem") == 0)
		return case_exititem();
	fprintf(stderr, "usage: ghosts forkloop [N [main|thread|item]] | exititem\n");
	return 2;
}
