/*
 * util.h - helpers shared by the smolscale Check tests: running a suite
 * with timeouts and sizes that fit sanitizer builds, bounded waits, /proc
 * inspection of the library's hidden threads, and running a helper program
 * with a controlled environment.
 *
 * Every test runs in Check's default fork mode, so each START_TEST gets a
 * fresh process and therefore a fresh executor, as long as main() never
 * calls an ss_* function.  A test may setenv("SMOLSCALE_...") before its
 * first ss_* call to configure its executor.
 */
#ifndef SS_TEST_UTIL_H
#define SS_TEST_UTIL_H

#include <check.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A task that returns its argument. */
void *ident(void *arg);

/* Nonzero in a sanitizer build, or when SS_SANITIZER is set (address,
 * thread, or valgrind: tests/valgrind.sh sets SS_SANITIZER=valgrind). */
int sanitized(void);

/* Nonzero under valgrind: SS_SANITIZER=valgrind, or valgrind's own
 * RUNNING_ON_VALGRIND where its header was there at build time.  Tests
 * that cannot work under it (it emulates the CPU, signals and part of the
 * kernel's interface) skip themselves with this. */
int under_valgrind(void);

/* Nonzero in a ThreadSanitizer build, whatever the environment says
 * (SS_SANITIZER=thread counts too). */
int under_tsan(void);

/* n, or n / 10 under a sanitizer. */
size_t scaled(size_t n);

/* A test case with a timeout that fits the slowest (sanitizer) build;
 * CK_DEFAULT_TIMEOUT, when set, wins. */
TCase *tcase_new(const char *name);

/* Run s in Check's fork mode (whatever CK_FORK says); returns main()'s
 * exit status. */
int run_suite(Suite *s);

/* Online CPUs (sysconf(_SC_NPROCESSORS_ONLN)). */
int online_cpus(void);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t now_ms(void);

void sleep_ms(int ms);

/* Poll (1 ms naps) until *v >= n; nonzero if reached within timeout_ms. */
int wait_count(atomic_long *v, long n, int timeout_ms);

/* Spin on the CPU until *flag is nonzero; nonzero if it was set within
 * timeout_ms.  Used to hold a worker busy without blocking it. */
int spin_until(atomic_int *flag, int timeout_ms);

/* Number of threads of this process (entries of /proc/self/task). */
int count_threads(void);

/* Threads that a sanitizer's runtime may add to a test process: up to 2
 * (unnamed) in a ThreadSanitizer build, none otherwise. */
int runtime_threads(void);

/* Nonzero while the library has started no thread: no thread is named
 * "ss-*" and there is no thread besides the main one and the runtime's. */
int no_library_threads(void);

/* Wait up to timeout_ms until every thread besides the main one (and a
 * sanitizer runtime's) is named "ss-*".  A hidden thread names itself once
 * it runs its own code, so a new one briefly bears its creator's name.
 * Nonzero if that happened in time. */
int library_threads_named(int timeout_ms);

/* One of the library's hidden threads, read from /proc/self/task/TID. */
struct hidden_thread {
	pid_t tid;
	char comm[16];
	uint64_t sigblk; /* SigBlk: blocked signals, bit n-1 for signal n */
	uint64_t ctxsw;  /* voluntary + nonvoluntary context switches */
};

/* Fill out[] with up to max threads whose name starts with "ss-"; returns
 * how many were found. */
size_t hidden_threads(struct hidden_thread *out, size_t max);

/* Wait up to timeout_ms for child pid; past that kill it.  Returns its wait
 * status, or -1 if it had to be killed. */
int wait_child(pid_t pid, int timeout_ms);

/* What a helper program did: wait status (-1: killed after a timeout) and
 * its stdout and stderr, NUL-terminated, truncated to fit. */
struct probe {
	int status;
	char out[4096];
	char err[8192];
};

/* Run helper program name, found in SS_TEST_HELPER_DIR, without arguments,
 * in this process's environment minus every SMOLSCALE_* variable plus vars
 * (a NULL-terminated list of "NAME=VALUE"). */
void run_probe(const char *name, const char *const *vars, struct probe *p);

#endif
