/*
 * hostile.c - hosts that are hard on a thread library: exit() while
 * threads run, exec over running threads, dedicated signal threads,
 * signal storms, daemons that close every descriptor, main ending with
 * pthread_exit().
 *
 *   hostile CASE
 *
 *   exitmain    main calls exit(3) while threads block and spin; atexit runs
 *   exitthread  a thread calls exit(5) while main waits in pthread_join
 *   execmain    main execs /bin/echo while threads block and spin
 *   execthread  a thread execs /bin/echo while main waits in pthread_join
 *   sigwait     signals blocked before any thread starts, one sigwait()
 *               thread takes SIGUSR1 x5 then SIGTERM (default action: kill)
 *   sigstorm    SIGALRM every millisecond (SA_RESTART) while threads
 *               ping-pong over pipes and condition variables
 *   closefds    use threads, close every descriptor above 2, use threads
 *   daemon      use threads, then daemon(): the daemon closes its
 *               descriptors, uses threads and reports through the one
 *               pipe that it kept
 *   mainexit    main ends with pthread_exit() while a thread still works;
 *               the process must end when that thread does (status 0)
 *
 * Deterministic output; the expected exit status is in run.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* fail, MUST and EINTR-proof waits; threads that never finish. */
#include "../hostile/common.h"
#include "../hostile/forever.h"

static void atexit_report(void)
{
	printf("atexit: ran\n");
}

static int case_exitmain(void)
{
	atexit(atexit_report);
	hx_start_forever_threads(4, 2);
	printf("exitmain: 6 threads running, calling exit(3)\n");
	exit(3);
}

void *h_exit_from_thread(void *arg);
void *h_exit_from_thread(void *arg)
{
	printf("exitthread: thread calling exit(5)\n");
	exit(5);
}

static int case_exitthread(void)
{
	pthread_t t;

	atexit(atexit_report);
	hx_start_forever_threads(3, 1);
	MUST(pthread_create(&t, NULL, h_exit_from_thread, NULL));
	pthread_join(t, NULL);
	printf("exitthread: join returned\n");
	return 1;
}

static int case_execmain(void)
{
	hx_start_forever_threads(4, 2);
	printf("execmain: 6 threads running, exec\n");
	fflush(stdout);
	execl("/bin/echo", "echo", "execmain: replaced by echo", (char *)NULL);
	hx_fail(HX_PROG, "execl", errno);
	return 1;
}

void *h_exec_from_thread(void *arg);
void *h_exec_from_thread(void *arg)
{
	printf("execthread: thread calling exec\n");
	fflush(stdout);
	execl("/bin/echo", "echo", "execthread: replaced by echo", (char *)NULL);
	hx_fail(HX_PROG, "execl", errno);
	return NULL;
}

static int case_execthread(void)
{
	pthread_t t;

	hx_start_forever_threads(3, 1);
	MUST(pthread_create(&t, NULL, h_exec_from_thread, NULL));
	pthread_join(t, NULL);
	printf("execthread: join returned\n");
	return 1;
}

/* ------------------------------------------------------------------ */
/* a dedicated signal thread                                           */

static sem_t sig_ack;

void *h_sigwaiter(void *arg);
void *h_sigwaiter(void *arg)
{
	sigset_t *set = arg;
	int sig, usr1 = 0;

	for (;;) {
		int rc = sigwait(set, &sig);

		if (rc != 0)
			hx_fail(HX_PROG, "sigwait", rc);
		if (sig == SIGUSR1) {
			usr1++;
			MUST(sem_post(&sig_ack));
		} else if (sig == SIGTERM) {
			break;
		}
	}
	return (void *)(intptr_t)usr1;
}

void *h_compute(void *arg);
void *h_compute(void *arg)
{
	long n = (long)(intptr_t)arg;
	unsigned long x = 1;

	for (long i = 0; i < n; i++)
		x = x * 6364136223846793005ul + 1442695040888963407ul;
	return (void *)(uintptr_t)(x & 0xffff);
}

static int case_sigwait(void)
{
	static sigset_t set;
	pthread_t waiter, workers[4];
	void *v;
	uintptr_t mix = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	MUST(pthread_sigmask(SIG_BLOCK, &set, NULL));
	MUST(sem_init(&sig_ack, 0, 0));
	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&workers[i], NULL, h_compute, (void *)(intptr_t)(2000000 * (i + 1))));
	MUST(pthread_create(&waiter, NULL, h_sigwaiter, &set));
	for (int i = 0; i < 5; i++) {
		kill(getpid(), SIGUSR1);
		hx_sem_wait(&sig_ack);
	}
	kill(getpid(), SIGTERM);
	MUST(pthread_join(waiter, &v));
	for (int i = 0; i < 4; i++) {
		void *w;

		MUST(pthread_join(workers[i], &w));
		mix += (uintptr_t)w;
	}
	printf("sigwait: the signal thread took %ld SIGUSR1 and SIGTERM; workers %lx\n",
	       (long)(intptr_t)v, (unsigned long)mix);
	return 0;
}

/* ------------------------------------------------------------------ */
/* signal storm                                                        */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

struct pp {
	int to[2], from[2];
	long rounds;
};

void *h_pipe_echo(void *arg);
void *h_pipe_echo(void *arg)
{
	struct pp *p = arg;
	long v;

	for (long i = 0; i < p->rounds; i++) {
		if (read(p->to[0], &v, sizeof v) != sizeof v)
			hx_fail(HX_PROG, "storm read", errno);
		v = v * 3 + 1;
		if (write(p->from[1], &v, sizeof v) != sizeof v)
			hx_fail(HX_PROG, "storm write", errno);
	}
	return NULL;
}

void *h_pipe_driver(void *arg);
void *h_pipe_driver(void *arg)
{
	struct pp *p = arg;
	long v = 1, acc = 0;

	for (long i = 0; i < p->rounds; i++) {
		if (write(p->to[1], &v, sizeof v) != sizeof v)
			hx_fail(HX_PROG, "storm write", errno);
		if (read(p->from[0], &v, sizeof v) != sizeof v)
			hx_fail(HX_PROG, "storm read", errno);
		v %= 1000003;
		acc += v;
	}
	return (void *)(intptr_t)acc;
}

static pthread_mutex_t sm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sc = PTHREAD_COND_INITIALIZER;
static long sturn;

void *h_cond_player(void *arg);
void *h_cond_player(void *arg)
{
	long me = (long)(intptr_t)arg;

	for (int r = 0; r < 5000; r++) {
		pthread_mutex_lock(&sm);
		while (sturn % 3 != me)
			pthread_cond_wait(&sc, &sm);
		sturn++;
		pthread_cond_broadcast(&sc);
		pthread_mutex_unlock(&sm);
	}
	return NULL;
}

static int case_sigstorm(void)
{
	struct sigaction sa;
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	struct pp p[3];
	pthread_t t[9];
	long total = 0;
	void *v;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(SIGALRM, &sa, NULL));
	MUST(setitimer(ITIMER_REAL, &it, NULL));
	for (int i = 0; i < 3; i++) {
		MUST(pipe(p[i].to));
		MUST(pipe(p[i].from));
		p[i].rounds = 4000;
		MUST(pthread_create(&t[2 * i], NULL, h_pipe_echo, &p[i]));
		MUST(pthread_create(&t[2 * i + 1], NULL, h_pipe_driver, &p[i]));
	}
	for (long i = 0; i < 3; i++)
		MUST(pthread_create(&t[6 + i], NULL, h_cond_player, (void *)i));
	for (int i = 0; i < 9; i++) {
		MUST(pthread_join(t[i], &v));
		if (i < 6 && i % 2 == 1)
			total += (intptr_t)v;
	}
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
	printf("sigstorm: pipes %ld, condvar turns %ld, alarms arrived: %s\n", total, sturn,
	       alarms > 0 ? "yes" : "no");
	return 0;
}

/* ------------------------------------------------------------------ */
/* descriptors closed behind the library's back                        */

static long sum_in_threads(int n)
{
	pthread_t t[8];
	long total = 0;
	void *v;

	for (int i = 0; i < n; i++)
		MUST(pthread_create(&t[i], NULL, h_compute, (void *)(intptr_t)(100000 * (i + 1))));
	for (int i = 0; i < n; i++) {
		MUST(pthread_join(t[i], &v));
		total += (intptr_t)v;
	}
	return total;
}

static void close_all_but(int keep)
{
	struct rlimit rl;
	int max = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < 65536)
		max = (int)rl.rlim_cur;
	for (int fd = 3; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

static int case_closefds(void)
{
	long a = sum_in_threads(8), b;

	close_all_but(-1);
	b = sum_in_threads(8);
	printf("closefds: before %ld, after %ld\n", a, b);
	return a == b ? 0 : 1;
}

static int case_daemon(void)
{
	int pfd[2];
	long a = sum_in_threads(4);
	pid_t p;
	char buf[256];
	ssize_t n;
	size_t got = 0;

	MUST(pipe(pfd));
	fflush(stdout);
	p = fork();
	if (p < 0)
		hx_fail(HX_PROG, "fork", errno);
	if (p == 0) {
		FILE *out;

		close(pfd[0]);
		if (daemon(0, 1) != 0)   /* forks again, setsid, chdir("/") */
			_exit(1);
		close_all_but(pfd[1]);
		out = fdopen(pfd[1], "w");
		if (!out)
			_exit(1);
		fprintf(out, "daemon: session leader %s, threads %ld\n",
			getsid(0) == getpid() ? "yes" : "no", sum_in_threads(8));
		fclose(out);
		exit(0);
	}
	close(pfd[1]);
	waitpid(p, NULL, 0);    /* the daemon's parent exits at once */
	while ((n = read(pfd[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	printf("daemon: parent threads %ld\n%s", a, buf);
	return got > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */

void *h_outlive_main(void *arg);
void *h_outlive_main(void *arg)
{
	hx_sleep_us(100 * 1000);
	printf("mainexit: the thread finished after main\n");
	return NULL;
}

static int case_mainexit(void)
{
	pthread_t t;

	printf("mainexit: main calls pthread_exit\n");
	MUST(pthread_create(&t, NULL, h_outlive_main, NULL));
	pthread_exit(NULL);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(void);
	} cases[] = {
		{ "exitmain", case_exitmain },   { "exitthread", case_exitthread },
		{ "execmain", case_execmain },   { "execthread", case_execthread },
		{ "sigwait", case_sigwait },     { "sigstorm", case_sigstorm },
		{ "closefds", case_closefds },   { "daemon", case_daemon },
		{ "mainexit", case_mainexit },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: hostile CASE\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (strcmp(argv[1], cases[i].name) == 0)
			return cases[i].fn();
	fprintf(stderr, "hostile: no case %s\n", argv[1]);
	return 2;
}
