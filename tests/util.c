/*
 * util.c - helpers shared by the smolscale Check tests (see util.h).
 */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 60
#define SANITIZER_TIMEOUT_S 240
#define PROBE_TIMEOUT_MS 30000

extern char **environ;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#else
#define SANITIZER_BUILD 0
#endif

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#define RUNTIME_THREADS 2
#else
#define TSAN_BUILD 0
#define RUNTIME_THREADS 0
#endif

/* RUNNING_ON_VALGRIND where the header exists (it is no build
 * dependency): it also sees a valgrind run that did not come from
 * tests/valgrind.sh. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SS_VALGRIND 1
#endif
#endif

#define MAX_HIDDEN 256

/* Any SS_SANITIZER value counts, valgrind included: memcheck is slower
 * than either sanitizer, so it needs their smaller sizes and longer
 * timeouts as much. */
int sanitized(void)
{
	const char *s = getenv("SS_SANITIZER");

	return SANITIZER_BUILD || (s && *s) || under_valgrind();
}

int under_tsan(void)
{
	const char *s = getenv("SS_SANITIZER");

	return TSAN_BUILD || (s && strcmp(s, "thread") == 0);
}

int under_valgrind(void)
{
	const char *s = getenv("SS_SANITIZER");

	if (s && strcmp(s, "valgrind") == 0)
		return 1;
#if defined(SS_VALGRIND)
	return RUNNING_ON_VALGRIND != 0;
#else
	return 0;
#endif
}

size_t scaled(size_t n)
{
	return sanitized() ? n / 10 : n;
}

TCase *tcase_new(const char *name)
{
	TCase *tc = tcase_create(name);

	if (!getenv("CK_DEFAULT_TIMEOUT"))
		tcase_set_timeout(tc, sanitized() ? SANITIZER_TIMEOUT_S : TIMEOUT_S);
	return tc;
}

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	/* Each test needs a process, and so an executor, of its own:
	 * CK_FORK=no would break the tests, not help debug them. */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int wait_count(atomic_long *v, long n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (atomic_load(v) < n) {
		if (now_ms() > end)
			return 0;
		sleep_ms(1);
	}
	return 1;
}

int spin_until(atomic_int *flag, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	unsigned n = 0;

	while (!atomic_load_explicit(flag, memory_order_acquire)) {
		if (++n % 4096 == 0 && now_ms() > end)
			return 0;
	}
	return 1;
}

int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int runtime_threads(void)
{
	return RUNTIME_THREADS;
}

/* Read /proc/self/task/TID/NAME into buf; 0 on success. */
static int read_task_file(pid_t tid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t len;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%d/%s", (int)tid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return -1;
	buf[len] = '\0';
	return 0;
}

/* The value after "key:" in a /proc status text, in base; 0 if absent. */
static uint64_t status_field(const char *status, const char *key, int base)
{
	const char *p = strstr(status, key);

	return p ? strtoull(p + strlen(key), NULL, base) : 0;
}

/* Fill h from /proc/self/task/TID; 0 on success (the thread may be gone). */
static int read_hidden(pid_t tid, struct hidden_thread *h)
{
	char status[4096];

	h->tid = tid;
	if (read_task_file(tid, "comm", h->comm, sizeof h->comm))
		return -1;
	h->comm[strcspn(h->comm, "\n")] = '\0';
	if (read_task_file(tid, "status", status, sizeof status))
		return -1;
	h->sigblk = status_field(status, "\nSigBlk:", 16);
	h->ctxsw = status_field(status, "\nvoluntary_ctxt_switches:", 10) +
		   status_field(status, "\nnonvoluntary_ctxt_switches:", 10);
	return 0;
}

size_t hidden_threads(struct hidden_thread *out, size_t max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while (n < max && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (read_hidden(atoi(e->d_name), &out[n]) == 0 &&
		    strncmp(out[n].comm, "ss-", 3) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int no_library_threads(void)
{
	struct hidden_thread h[MAX_HIDDEN];

	return hidden_threads(h, MAX_HIDDEN) == 0 &&
	       count_threads() <= 1 + RUNTIME_THREADS;
}

int library_threads_named(int timeout_ms)
{
	struct hidden_thread h[MAX_HIDDEN];
	int64_t end = now_ms() + timeout_ms;

	while (count_threads() > (int)hidden_threads(h, MAX_HIDDEN) + 1 + RUNTIME_THREADS) {
		if (now_ms() > end)
			return 0;
		sleep_ms(5);
	}
	return 1;
}

int wait_child(pid_t pid, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < end)
		sleep_ms(2);
	if (r == pid)
		return status;
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* environ minus SMOLSCALE_* plus vars, as a new NULL-terminated array. */
static char **probe_env(const char *const *vars)
{
	size_t n = 0, k = 0, i;
	char **env;

	while (environ[n])
		n++;
	for (i = 0; vars[i]; i++)
		n++;
	env = calloc(n + 1, sizeof *env);
	for (i = 0; environ[i]; i++)
		if (strncmp(environ[i], "SMOLSCALE_", 10) != 0)
			env[k++] = environ[i];
	for (i = 0; vars[i]; i++)
		env[k++] = (char *)vars[i];
	return env;
}

/* Append what fd has to buf (of size, used *len); 0 once it is at EOF. */
static int drain(int fd, char *buf, size_t size, size_t *len)
{
	char tmp[1024];
	ssize_t r = read(fd, tmp, sizeof tmp);
	size_t take;

	if (r < 0 && errno == EINTR)
		return 1;
	if (r <= 0)
		return 0;
	take = (size_t)r < size - 1 - *len ? (size_t)r : size - 1 - *len;
	memcpy(buf + *len, tmp, take);
	*len += take;
	buf[*len] = '\0';
	return 1;
}

void run_probe(const char *name, const char *const *vars, struct probe *p)
{
	const char *dir = getenv("SS_TEST_HELPER_DIR");
	char path[4096], **env = probe_env(vars);
	int out[2], err[2];
	size_t out_len = 0, err_len = 0;
	int64_t end = now_ms() + PROBE_TIMEOUT_MS;
	pid_t pid;

	snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
	memset(p, 0, sizeof *p);
	p->status = -1;
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		char *argv[] = { path, NULL };

		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execve(path, argv, env);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	free(env);
	struct pollfd fds[2] = { { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
	while ((fds[0].fd >= 0 || fds[1].fd >= 0) && now_ms() < end) {
		if (poll(fds, 2, 100) <= 0)
			continue;
		if (fds[0].revents && !drain(out[0], p->out, sizeof p->out, &out_len))
			fds[0].fd = -1;
		if (fds[1].revents && !drain(err[0], p->err, sizeof p->err, &err_len))
			fds[1].fd = -1;
	}
	close(out[0]);
	close(err[0]);
	p->status = wait_child(pid, (int)(end - now_ms() > 0 ? end - now_ms() : 1));
}

void *ident(void *arg)
{
	return arg;
}
