/*
 * forkexec.c - fork, exec and friends from threads.
 *
 *   forkexec CASE...     exec, exit, threads, busyfork, system, popen,
 *                        spawn, vfork, atfork, all
 *
 * Each case runs inside a thread (so, under the shim, a rerouted one) and
 * prints what it saw; the parent always waits for its children, so the
 * output is deterministic.  Exit 0 when every case saw what it expected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int failures;

static void fail(const char *what, int err)
{
	fprintf(stderr, "forkexec: %s: %s\n", what, strerror(err));
	exit(2);
}

static void describe(const char *label, int status, int want_code)
{
	if (WIFEXITED(status)) {
		printf("%s: child exited %d\n", label, WEXITSTATUS(status));
		if (WEXITSTATUS(status) != want_code)
			failures++;
	} else if (WIFSIGNALED(status)) {
		printf("%s: child killed by signal %d\n", label, WTERMSIG(status));
		failures++;
	} else {
		printf("%s: child status %#x\n", label, status);
		failures++;
	}
	fflush(stdout);
}

static pid_t xfork(void)
{
	pid_t p;

	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p < 0)
		fail("fork", errno);
	return p;
}

static int xwait(pid_t p)
{
	int status;

	while (waitpid(p, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid", errno);
	return status;
}

/* a few threads that compute and are joined: used in children */
void *fx_sum(void *arg);
void *fx_sum(void *arg)
{
	long n = (long)(intptr_t)arg, s = 0;

	for (long i = 1; i <= n; i++)
		s += i;
	return (void *)(intptr_t)s;
}

static long threads_sum(int n)
{
	pthread_t t[16];
	long total = 0;
	void *v;

	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&t[i], NULL, fx_sum, (void *)(intptr_t)(1000 * (i + 1)));

		if (rc != 0)
			fail("pthread_create", rc);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], &v);
		total += (intptr_t)v;
	}
	return total;
}

void *fx_exec(void *arg);
void *fx_exec(void *arg)
{
	pid_t p = xfork();

	if (p == 0) {
		execl("/bin/echo", "echo", "exec: hello from a child of a thread", (char *)NULL);
		_exit(127);
	}
	describe("exec", xwait(p), 0);
	return NULL;
}

void *fx_exit(void *arg);
void *fx_exit(void *arg)
{
	pid_t p = xfork();

	if (p == 0)
		_exit(7);
	describe("_exit", xwait(p), 7);
	return NULL;
}

/* the child goes on using threads, and forks again from one of them */
void *fx_grandchild(void *arg);
void *fx_grandchild(void *arg)
{
	pid_t p = xfork();

	if (p == 0) {
		printf("threads: grandchild sum %ld\n", threads_sum(4));
		exit(0);
	}
	describe("threads: grandchild", xwait(p), 0);
	return NULL;
}

void *fx_threads(void *arg);
void *fx_threads(void *arg)
{
	pid_t p = xfork();

	if (p == 0) {
		pthread_t t;

		printf("threads: child sum %ld\n", threads_sum(8));
		if (pthread_create(&t, NULL, fx_grandchild, NULL) != 0)
			_exit(3);
		pthread_join(t, NULL);
		printf("threads: child sum again %ld\n", threads_sum(8));
		exit(failures ? 1 : 0);
	}
	describe("threads", xwait(p), 0);
	return NULL;
}

/* fork from main while other threads are blocked; the child must neither
 * wait for them nor hang at exit */
static sem_t busy_release;
void *fx_blocked(void *arg);
void *fx_blocked(void *arg)
{
	while (sem_wait(&busy_release) != 0)
		;
	return arg;
}

static void case_busyfork(void)
{
	pthread_t t[6];
	pid_t p;

	sem_init(&busy_release, 0, 0);
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, fx_blocked, NULL);
	p = xfork();
	if (p == 0) {
		printf("busyfork: child sum %ld\n", threads_sum(6));
		exit(0);
	}
	describe("busyfork", xwait(p), 0);
	for (int i = 0; i < 6; i++)
		sem_post(&busy_release);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	sem_destroy(&busy_release);
}

void *fx_system(void *arg);
void *fx_system(void *arg)
{
	int status;

	fflush(stdout);
	status = system("echo 'system: hello from sh'; exit 4");
	describe("system", status, 4);
	return NULL;
}

void *fx_popen(void *arg);
void *fx_popen(void *arg)
{
	char line[128] = "";
	FILE *f = popen("echo popen-line; printf 'second line\\n'", "r");
	int n = 0;

	if (!f)
		fail("popen", errno);
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		printf("popen: read \"%s\"\n", line);
		n++;
	}
	describe("popen", pclose(f), 0);
	if (n != 2)
		failures++;
	return NULL;
}

void *fx_spawn(void *arg);
void *fx_spawn(void *arg)
{
	char *av[] = { "echo", "spawn: hello from posix_spawn", NULL };
	pid_t p;
	int rc;

	fflush(stdout);
	rc = posix_spawn(&p, "/bin/echo", NULL, NULL, av, environ);
	if (rc != 0)
		fail("posix_spawn", rc);
	describe("spawn", xwait(p), 0);
	return NULL;
}

void *fx_vfork(void *arg);
void *fx_vfork(void *arg)
{
	pid_t p;

	fflush(stdout);
	p = vfork();
	if (p < 0)
		fail("vfork", errno);
	if (p == 0) {
		execl("/bin/echo", "echo", "vfork: hello after vfork", (char *)NULL);
		_exit(127);
	}
	describe("vfork", xwait(p), 0);
	return NULL;
}

static int atfork_prepare_runs, atfork_parent_runs, atfork_child_runs;

static void atfork_prepare(void)
{
	atfork_prepare_runs++;
}

static void atfork_parent(void)
{
	atfork_parent_runs++;
}

static void atfork_child(void)
{
	atfork_child_runs++;
}

void *fx_atfork(void *arg);
void *fx_atfork(void *arg)
{
	pid_t p;

	p = xfork();
	if (p == 0)
		_exit(10 * atfork_prepare_runs + atfork_child_runs + 50 * atfork_parent_runs);
	describe("atfork: child saw prepare x10 + child", xwait(p), 11);
	printf("atfork: parent saw prepare %d, parent %d, child %d\n", atfork_prepare_runs,
	       atfork_parent_runs, atfork_child_runs);
	if (atfork_prepare_runs != 1 || atfork_parent_runs != 1 || atfork_child_runs != 0)
		failures++;
	return NULL;
}

static void in_thread(void *(*fn)(void *))
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, fn, NULL);

	if (rc != 0)
		fail("pthread_create", rc);
	pthread_join(t, NULL);
}

static void case_exec(void)
{
	in_thread(fx_exec);
}

static void case_exit(void)
{
	in_thread(fx_exit);
}

static void case_threads(void)
{
	in_thread(fx_threads);
}

static void case_system(void)
{
	in_thread(fx_system);
}

static void case_popen(void)
{
	in_thread(fx_popen);
}

static void case_spawn(void)
{
	in_thread(fx_spawn);
}

static void case_vfork(void)
{
	in_thread(fx_vfork);
}

static void case_atfork(void)
{
	static int registered;

	if (!registered++)
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atfork_prepare_runs = atfork_parent_runs = atfork_child_runs = 0;
	in_thread(fx_atfork);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {
		{ "exec", case_exec },     { "exit", case_exit },     { "threads", case_threads },
		{ "busyfork", case_busyfork }, { "system", case_system }, { "popen", case_popen },
		{ "spawn", case_spawn },   { "vfork", case_vfork },   { "atfork", case_atfork },
	};
	const size_t n = sizeof cases / sizeof cases[0];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: forkexec all|CASE...\n");
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		int found = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[a], cases[i].name) == 0 || strcmp(argv[a], "all") == 0) {
				cases[i].fn();
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "forkexec: no case %s\n", argv[a]);
			return 2;
		}
	}
	printf("failures %d\n", failures);
	return failures ? 1 : 0;
}
