/*
 * hosts.c - plain pthread programs that are hard on a thread library, for
 * tests/hostile/run.sh (issue 8).  tests/shim/hostile.c already covers
 * exit() from a thread blocked in join, exec, sigwait, an SA_RESTART
 * signal storm, closing the descriptors above 2 between two uses of
 * threads, and daemon(); these go further.
 *
 *   hosts CASE [ARGS]
 *
 * exit() and friends from a (rerouted) thread:
 *   exitinline    A creates B and joins it (under the preload B may run
 *                 inline on A's stack); B calls exit(7) while threads
 *                 block and spin; atexit runs
 *   exitatexit    a thread calls exit(4); the atexit handler creates and
 *                 joins threads itself; an on_exit handler sees status 4
 *   exitbuffered  stdout fully buffered; 8 threads print 320 lines in
 *                 turns, the last calls exit(6): every line once
 *   quickexit     a thread calls quick_exit(11): at_quick_exit runs and
 *                 flushes, atexit does not
 *   underexit     a thread calls _exit(12): buffered output is lost, as
 *                 natively, and nothing else runs
 *   exitcondwait  main and 4 threads wait on a condition variable that is
 *                 never signalled; a fifth thread calls exit(8)
 *
 * signals:
 *   signals       SIGUSR1 (kill and pthread_kill), SIGALRM every 500 us
 *                 (setitimer) and SIGCHLD (100 children), all without
 *                 SA_RESTART, while threads block in read(), nanosleep,
 *                 sem_wait, poll and condition variables and 200 threads
 *                 come and go; the program retries on EINTR as real
 *                 programs do
 *
 * descriptors:
 *   closefds-start  every descriptor >= 3 closed before any thread; then
 *                 threads, while main checks 2000 times that open()
 *                 returns the lowest free descriptor
 *   closefds-all  descriptors 0-2 closed too, then reopened as files of
 *                 the program: 0 /dev/null, 1 out.txt, 2 data.txt (the
 *                 program's own data, written with dprintf(2, ...)); the
 *                 same threads and check; all output is in those files
 *   closefds-after  threads first (the pool, its stats region and log
 *                 exist), then "ready1" (holding its pid) and a wait for
 *                 "go1"; every descriptor >= 3 closed, data.txt opened and
 *                 dup2()ed onto every number that was open before and onto
 *                 100; "ready2", a wait for "go2"; threads again; run.sh
 *                 runs `smolscale stats PID` at each pause
 *   closefds-pipe threads (that stall a few ms each), then every
 *                 descriptor >= 3 closed and two pipes made (the lowest
 *                 numbers), one empty and one holding 10 bytes; threads
 *                 again; both pipes must hold what the program put there
 *   forkstats     the pool running, a child made by _Fork() (no fork
 *                 handlers) and then one made by fork() each write their
 *                 pid to "ready1" / "ready2" and wait for "go1" / "go2":
 *                 run.sh asks `smolscale stats` about each child
 *
 * RLIMIT_NPROC (run as an unprivileged user: root is exempt):
 *   nproc-some K  limit = the user's tasks + K; 8 threads created (each
 *                 waits at a gate until all were tried); natively K are
 *                 created and 8 - K fail with EAGAIN.  The created ones
 *                 run; a line starting with "~" says how many were
 *                 created (run.sh reports it, does not compare it)
 *   nproc-meet K  the same, but every created thread waits until all the
 *                 created threads have arrived (a barrier of the size
 *                 pthread_create allowed)
 *   nproc-zero    limit = the user's tasks: every pthread_create fails
 *
 * set*id (run as root):
 *   setuid-main   threads running, blocked and spinning; main calls
 *                 setgroups, setgid(65534), setuid(65534); every thread,
 *                 old and new, then sees uid and gid 65534
 *   setuid-thread the same calls made from a thread
 *
 * Deterministic stdout; the exit status run.sh expects is in run.sh.
 */
#define HX_PROG "hosts"
#include "common.h"
#include "forever.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

static void atexit_report(void)
{
	printf("atexit: ran\n");
}

void *hh_compute(void *arg);
void *hh_compute(void *arg)
{
	uintptr_t n = (uintptr_t)arg;

	return (void *)(uintptr_t)(hx_compute(n, 20000 + (unsigned)(n % 1000)) & 0xffffff);
}

/* ------------------------------------------------------------------ */
/* exit() from a thread                                                */

void *hh_exit_b(void *arg);
void *hh_exit_b(void *arg)
{
	printf("exitinline: B calling exit(7)\n");
	exit(7);
}

void *hh_exit_a(void *arg);
void *hh_exit_a(void *arg)
{
	pthread_t b;

	MUST(pthread_create(&b, NULL, hh_exit_b, NULL));
	pthread_join(b, NULL);
	printf("exitinline: A's join returned\n");
	return NULL;
}

static int case_exitinline(void)
{
	pthread_t a;

	atexit(atexit_report);
	hx_start_forever_threads(2, 1);
	printf("exitinline: 3 threads running\n");
	MUST(pthread_create(&a, NULL, hh_exit_a, NULL));
	pthread_join(a, NULL);
	printf("exitinline: main's join returned\n");
	return 1;
}

static void atexit_threads(void)
{
	pthread_t t[4];
	uintptr_t sum = 0;
	void *v;

	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&t[i], NULL, hh_compute, (void *)(uintptr_t)(i + 1)));
	for (int i = 0; i < 4; i++) {
		MUST(pthread_join(t[i], &v));
		sum += (uintptr_t)v;
	}
	printf("atexit: 4 threads made and joined, sum %lx\n", (unsigned long)sum);
}

static void on_exit_report(int status, void *arg)
{
	printf("on_exit: status %d, arg %s\n", status, (const char *)arg);
}

void *hh_exit4(void *arg);
void *hh_exit4(void *arg)
{
	printf("exitatexit: thread calling exit(4)\n");
	exit(4);
}

static int case_exitatexit(void)
{
	pthread_t t;

	on_exit(on_exit_report, "registered first");
	atexit(atexit_threads);
	hx_start_forever_threads(2, 1);
	MUST(pthread_create(&t, NULL, hh_exit4, NULL));
	pthread_join(t, NULL);
	printf("exitatexit: join returned\n");
	return 1;
}

static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static long turn;

#define BUF_THREADS 8
#define BUF_LINES 40

void *hh_printer(void *arg);
void *hh_printer(void *arg)
{
	long me = (long)(intptr_t)arg;

	for (int l = 0; l < BUF_LINES; l++) {
		pthread_mutex_lock(&turn_lock);
		while (turn % BUF_THREADS != me)
			pthread_cond_wait(&turn_cond, &turn_lock);
		printf("exitbuffered: line %3ld from thread %ld: %016llx\n", turn, me,
		       (unsigned long long)hx_mix((uint64_t)turn));
		turn++;
		pthread_cond_broadcast(&turn_cond);
		if (turn == BUF_THREADS * BUF_LINES) {
			/* The lock stays held: the others wait for ever. */
			exit(6);
		}
		pthread_mutex_unlock(&turn_lock);
	}
	return NULL;
}

static int case_exitbuffered(void)
{
	static char buf[1 << 16];
	pthread_t t[BUF_THREADS];

	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	atexit(atexit_report);
	hx_start_forever_threads(1, 1);
	for (long i = 0; i < BUF_THREADS; i++)
		MUST(pthread_create(&t[i], NULL, hh_printer, (void *)(intptr_t)i));
	for (int i = 0; i < BUF_THREADS; i++)
		pthread_join(t[i], NULL);
	printf("exitbuffered: all joined\n");
	return 1;
}

static void at_quick_exit_report(void)
{
	printf("at_quick_exit: ran\n");
	fflush(stdout);
}

void *hh_quick(void *arg);
void *hh_quick(void *arg)
{
	printf("quickexit: thread calling quick_exit(11)\n");
	quick_exit(11);
}

static int case_quickexit(void)
{
	pthread_t t;

	atexit(atexit_report);
	at_quick_exit(at_quick_exit_report);
	hx_start_forever_threads(2, 1);
	MUST(pthread_create(&t, NULL, hh_quick, NULL));
	pthread_join(t, NULL);
	return 1;
}

void *hh_underexit(void *arg);
void *hh_underexit(void *arg)
{
	static const char msg[] = "underexit: written with write(2)\n";

	printf("underexit: buffered, lost at _exit\n");
	hx_write_full(1, msg, sizeof msg - 1);
	_exit(12);
}

static int case_underexit(void)
{
	static char buf[1 << 12];
	pthread_t t;

	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	atexit(atexit_report);
	printf("underexit: start\n");
	fflush(stdout);
	hx_start_forever_threads(2, 1);
	MUST(pthread_create(&t, NULL, hh_underexit, NULL));
	pthread_join(t, NULL);
	return 1;
}

static pthread_mutex_t never_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cond = PTHREAD_COND_INITIALIZER;
static atomic_int in_wait;

void *hh_cond_forever(void *arg);
void *hh_cond_forever(void *arg)
{
	pthread_mutex_lock(&never_lock);
	atomic_fetch_add(&in_wait, 1);
	for (;;)
		pthread_cond_wait(&never_cond, &never_lock);
}

void *hh_exit8(void *arg);
void *hh_exit8(void *arg)
{
	while (atomic_load(&in_wait) < 5)
		hx_sleep_us(1000);
	hx_sleep_us(20000);
	printf("exitcondwait: thread calling exit(8)\n");
	exit(8);
}

static int case_exitcondwait(void)
{
	pthread_t t;

	atexit(atexit_report);
	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&t, NULL, hh_cond_forever, NULL));
	MUST(pthread_create(&t, NULL, hh_exit8, NULL));
	printf("exitcondwait: main waits\n");
	hh_cond_forever(NULL);
	return 1;
}

/* ------------------------------------------------------------------ */
/* signals at a high rate while threads block                          */

static atomic_long n_usr1, n_alrm, n_chld;
static atomic_int sig_stop;

static void on_usr1(int sig)
{
	atomic_fetch_add(&n_usr1, 1);
}

static void on_alrm(int sig)
{
	atomic_fetch_add(&n_alrm, 1);
}

static void on_chld(int sig)
{
	atomic_fetch_add(&n_chld, 1);
}

#define SIG_PAIRS 6
#define SIG_MSGS 200
#define SIG_CHILDREN 100
#define SIG_CHURN 200

struct sigpipe {
	int fd[2];
	int id;
	uint64_t sum;
};

void *hh_sig_writer(void *arg);
void *hh_sig_writer(void *arg)
{
	struct sigpipe *p = arg;
	char msg[64];

	for (int m = 0; m < SIG_MSGS; m++) {
		for (int i = 0; i < 64; i++)
			msg[i] = (char)(hx_mix((uint64_t)(p->id * 100000 + m * 64 + i)) & 0x7f);
		hx_write_full(p->fd[1], msg, sizeof msg);
		if (m % 4 == 0)
			hx_sleep_us(1000);
	}
	close(p->fd[1]);
	return NULL;
}

void *hh_sig_reader(void *arg);
void *hh_sig_reader(void *arg)
{
	struct sigpipe *p = arg;
	char msg[64];
	uint64_t sum = 0;
	long n = 0;

	while (hx_read_full(p->fd[0], msg, sizeof msg)) {
		for (int i = 0; i < 64; i++)
			sum = hx_mix(sum ^ (uint64_t)(unsigned char)msg[i]);
		n++;
	}
	p->sum = sum;
	return (void *)(intptr_t)n;
}

void *hh_sleeper(void *arg);
void *hh_sleeper(void *arg)
{
	uint64_t t0 = hx_now_ns();

	for (int i = 0; i < 40; i++)
		hx_sleep_us(2500);
	return (void *)(intptr_t)(hx_now_ns() - t0 >= 100000000u);
}

static sem_t ping, pong;

void *hh_pinger(void *arg);
void *hh_pinger(void *arg)
{
	for (int i = 0; i < 2000; i++) {
		MUST(sem_post(&ping));
		hx_sem_wait(&pong);
	}
	return NULL;
}

void *hh_ponger(void *arg);
void *hh_ponger(void *arg)
{
	for (int i = 0; i < 2000; i++) {
		hx_sem_wait(&ping);
		MUST(sem_post(&pong));
	}
	return (void *)1;
}

static int poll_fd[2];

void *hh_poller(void *arg);
void *hh_poller(void *arg)
{
	long got = 0;
	char buf[16];

	for (;;) {
		struct pollfd pfd = { poll_fd[0], POLLIN, 0 };
		int rc = poll(&pfd, 1, -1);
		ssize_t n;

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			hx_fail(HX_PROG, "poll", errno);
		n = read(poll_fd[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	return (void *)(intptr_t)got;
}

static pthread_mutex_t flag_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flag_cond = PTHREAD_COND_INITIALIZER;
static int flag;

void *hh_timedwaiter(void *arg);
void *hh_timedwaiter(void *arg)
{
	int seen;

	pthread_mutex_lock(&flag_lock);
	while (!flag) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 3000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&flag_cond, &flag_lock, &ts);
	}
	seen = flag;
	pthread_mutex_unlock(&flag_lock);
	return (void *)(intptr_t)seen;
}

/* The readers, which the sender also signals with pthread_kill while
 * they are joinable: main clears live_target under kill_lock before it
 * joins one. */
static pthread_t kill_targets[SIG_PAIRS];
static int live_target[SIG_PAIRS];
static pthread_mutex_t kill_lock = PTHREAD_MUTEX_INITIALIZER;

void *hh_sig_sender(void *arg);
void *hh_sig_sender(void *arg)
{
	for (long i = 0; !atomic_load(&sig_stop); i++) {
		if (i % 2) {
			kill(getpid(), SIGUSR1);
		} else {
			int k = (int)((i / 2) % SIG_PAIRS);

			pthread_mutex_lock(&kill_lock);
			if (live_target[k])
				pthread_kill(kill_targets[k], SIGUSR1);
			pthread_mutex_unlock(&kill_lock);
		}
		hx_sleep_us(100);
	}
	return NULL;
}

void *hh_forker(void *arg);
void *hh_forker(void *arg)
{
	for (int i = 0; i < SIG_CHILDREN; i++) {
		pid_t p = fork();

		if (p < 0)
			hx_fail(HX_PROG, "fork", errno);
		if (p == 0)
			_exit(i % 7);
		hx_sleep_us(1000);
	}
	return NULL;
}

void *hh_reaper(void *arg);
void *hh_reaper(void *arg)
{
	long status_sum = 0;

	for (int i = 0; i < SIG_CHILDREN; i++) {
		int st;
		pid_t p;

		/* ECHILD: the forker has not forked the next one yet. */
		while ((p = waitpid(-1, &st, 0)) < 0 && (errno == EINTR || errno == ECHILD))
			if (errno == ECHILD)
				hx_sleep_us(200);
		status_sum += WIFEXITED(st) ? WEXITSTATUS(st) : 1000;
	}
	return (void *)(intptr_t)status_sum;
}

void *hh_churn(void *arg);
void *hh_churn(void *arg)
{
	uintptr_t n = (uintptr_t)arg;

	hx_sleep_us(3000);
	return (void *)(uintptr_t)(hx_compute(n, 2000) & 0xffff);
}

static void install(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sa.sa_flags = 0; /* no SA_RESTART: calls return EINTR */
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(sig, &sa, NULL));
}

static int case_signals(void)
{
	struct itimerval it = { { 0, 500 }, { 0, 500 } };
	struct sigpipe p[SIG_PAIRS];
	pthread_t writers[SIG_PAIRS], sleepers[4], pinger, ponger, poller, tw,
		sender, forker, reaper, churn[20];
	uint64_t pipesum = 0;
	long msgs = 0, slept = 0, status_sum, polled, seen;
	uintptr_t churn_sum = 0;
	void *v;

	install(SIGUSR1, on_usr1);
	install(SIGALRM, on_alrm);
	install(SIGCHLD, on_chld);
	MUST(sem_init(&ping, 0, 0));
	MUST(sem_init(&pong, 0, 0));
	MUST(pipe(poll_fd));
	MUST(setitimer(ITIMER_REAL, &it, NULL));

	for (int i = 0; i < SIG_PAIRS; i++) {
		p[i].id = i;
		MUST(pipe(p[i].fd));
		MUST(pthread_create(&kill_targets[i], NULL, hh_sig_reader, &p[i]));
		live_target[i] = 1;
		MUST(pthread_create(&writers[i], NULL, hh_sig_writer, &p[i]));
	}
	for (int i = 0; i < 4; i++)
		MUST(pthread_create(&sleepers[i], NULL, hh_sleeper, NULL));
	MUST(pthread_create(&pinger, NULL, hh_pinger, NULL));
	MUST(pthread_create(&ponger, NULL, hh_ponger, NULL));
	MUST(pthread_create(&poller, NULL, hh_poller, NULL));
	MUST(pthread_create(&tw, NULL, hh_timedwaiter, NULL));
	MUST(pthread_create(&sender, NULL, hh_sig_sender, NULL));
	MUST(pthread_create(&reaper, NULL, hh_reaper, NULL));
	MUST(pthread_create(&forker, NULL, hh_forker, NULL));

	/* Threads that come and go, 20 at a time, while the rest block. */
	for (int b = 0; b < SIG_CHURN / 20; b++) {
		for (int i = 0; i < 20; i++)
			MUST(pthread_create(&churn[i], NULL, hh_churn,
			                    (void *)(uintptr_t)(b * 20 + i)));
		for (int i = 0; i < 20; i++) {
			MUST(pthread_join(churn[i], &v));
			churn_sum += (uintptr_t)v;
		}
		if (b % 2 == 0)
			hx_write_full(poll_fd[1], "0123456789", 10);
	}
	close(poll_fd[1]);

	for (int i = 0; i < SIG_PAIRS; i++) {
		MUST(pthread_join(writers[i], NULL));
		pthread_mutex_lock(&kill_lock);
		live_target[i] = 0;
		pthread_mutex_unlock(&kill_lock);
		MUST(pthread_join(kill_targets[i], &v));
		msgs += (intptr_t)v;
		pipesum = hx_mix(pipesum ^ p[i].sum);
	}
	for (int i = 0; i < 4; i++) {
		MUST(pthread_join(sleepers[i], &v));
		slept += (intptr_t)v;
	}
	MUST(pthread_join(pinger, NULL));
	MUST(pthread_join(ponger, &v));
	MUST(pthread_join(poller, &v));
	polled = (intptr_t)v;
	MUST(pthread_join(forker, NULL));
	MUST(pthread_join(reaper, &v));
	status_sum = (intptr_t)v;
	pthread_mutex_lock(&flag_lock);
	flag = 1;
	pthread_cond_broadcast(&flag_cond);
	pthread_mutex_unlock(&flag_lock);
	MUST(pthread_join(tw, &v));
	seen = (intptr_t)v;
	atomic_store(&sig_stop, 1);
	MUST(pthread_join(sender, NULL));
	memset(&it, 0, sizeof it);
	MUST(setitimer(ITIMER_REAL, &it, NULL));

	printf("signals: pipes %d x %ld messages, checksum %016llx\n", SIG_PAIRS,
	       msgs / SIG_PAIRS, (unsigned long long)pipesum);
	printf("signals: sleepers slept the full 100 ms: %ld of 4\n", slept);
	printf("signals: semaphore ping-pong, 2000 rounds\n");
	printf("signals: poll read %ld bytes\n", polled);
	printf("signals: timed waiter saw the flag: %ld\n", seen);
	printf("signals: %d churn threads, sum %lx\n", SIG_CHURN, (unsigned long)churn_sum);
	printf("signals: %d children reaped, status sum %ld\n", SIG_CHILDREN, status_sum);
	printf("signals: handlers ran: SIGUSR1 %s, SIGALRM %s, SIGCHLD %s\n",
	       atomic_load(&n_usr1) ? "yes" : "no", atomic_load(&n_alrm) ? "yes" : "no",
	       atomic_load(&n_chld) ? "yes" : "no");
	return 0;
}

/* ------------------------------------------------------------------ */
/* descriptors closed                                                  */

static int max_fds(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (1 << 20))
		return 1 << 20;
	return (int)rl.rlim_cur;
}

/* The loop a program without closefrom() uses. */
static void close_from(int first)
{
	int max = max_fds();

	for (int fd = first; fd < max; fd++)
		close(fd);
}

/* The lowest descriptor not open (the program opens nothing else
 * meanwhile). */
static int lowest_free(void)
{
	for (int fd = 0;; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			return fd;
}

/* A round of threads that hold their worker a few milliseconds each (so
 * that stall reports, if on, signal them and read their system call),
 * while the caller opens and closes /dev/null; each open() must return
 * the lowest free descriptor.  *bad counts those that did not. */
static char first_bad[80];

static uintptr_t fd_round(int opens, int *bad)
{
	pthread_t t[16];
	uintptr_t sum = 0;
	void *v;
	int want = lowest_free();

	for (int i = 0; i < 16; i++)
		MUST(pthread_create(&t[i], NULL, hh_churn, (void *)(uintptr_t)(i * 7)));
	for (int i = 0; i < opens; i++) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd < 0)
			hx_fail(HX_PROG, "open /dev/null", errno);
		if (fd != want) {
			/* Held for a moment by another thread of the process
			 * (with stall reports on, ss-diag reads a worker's
			 * /proc/self/task/TID/syscall), or when `want` was
			 * taken: that is not a descriptor kept.  Look again
			 * once such a one is surely closed. */
			close(fd);
			hx_sleep_us(2000);
			want = lowest_free();
			fd = open("/dev/null", O_RDONLY);
			if (fd < 0)
				hx_fail(HX_PROG, "open /dev/null", errno);
		}
		if (fd != want && !(*bad)++)
			snprintf(first_bad, sizeof first_bad,
			         "; the first: open() returned %d, %d was free", fd, want);
		close(fd);
		if (i % 100 == 0)
			hx_sleep_us(500);
	}
	for (int i = 0; i < 16; i++) {
		MUST(pthread_join(t[i], &v));
		sum += (uintptr_t)v;
	}
	return sum;
}

/* A thread blocked in read() for the time being. */
void *hh_reader_eof(void *arg);
void *hh_reader_eof(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	long n = 0;

	while (hx_read_full(fd, &c, 1))
		n++;
	return (void *)(intptr_t)n;
}

static int case_closefds_start(void)
{
	int bad = 0, pfd[2];
	uintptr_t sum = 0;
	pthread_t r;
	void *v;

	fflush(stdout);
	close_from(3);
	MUST(pipe(pfd));
	MUST(pthread_create(&r, NULL, hh_reader_eof, (void *)(intptr_t)pfd[0]));
	for (int round = 0; round < 10; round++)
		sum += fd_round(200, &bad);
	hx_write_full(pfd[1], "xyz", 3);
	close(pfd[1]);
	MUST(pthread_join(r, &v));
	printf("closefds-start: 10 rounds of 16 threads, sum %lx; reader got %ld bytes\n",
	       (unsigned long)sum, (long)(intptr_t)v);
	printf("closefds-start: 2000 opens, not the lowest free descriptor: %d%s\n", bad,
	       first_bad);
	printf("closefds-start: lowest free descriptor now %d\n", lowest_free());
	return 0;
}

static int case_closefds_all(void)
{
	int bad = 0, fd0, fd1, fd2;
	uintptr_t sum = 0;

	close_from(0);
	fd0 = open("/dev/null", O_RDONLY);
	fd1 = open("out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	fd2 = open("data.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd0 != 0 || fd1 != 1 || fd2 != 2)
		_exit(3);
	/* stdout is now out.txt (full buffering: a regular file). */
	printf("closefds-all: reopened as %d %d %d\n", fd0, fd1, fd2);
	for (int round = 0; round < 10; round++) {
		uintptr_t s = fd_round(200, &bad);

		dprintf(2, "data: round %d sum %lx\n", round, (unsigned long)s);
		sum += s;
	}
	printf("closefds-all: 10 rounds of 16 threads, sum %lx\n", (unsigned long)sum);
	printf("closefds-all: 2000 opens, not the lowest free descriptor: %d%s\n", bad,
	       first_bad);
	printf("closefds-all: lowest free descriptor now %d\n", lowest_free());
	dprintf(2, "data: end\n");
	return 0;
}

static void touch(const char *path, long value)
{
	char tmp[64], buf[32];
	int fd, n;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		hx_fail(HX_PROG, "open ready file", errno);
	n = snprintf(buf, sizeof buf, "%ld\n", value);
	hx_write_full(fd, buf, (size_t)n);
	close(fd);
	if (rename(tmp, path) != 0)
		hx_fail(HX_PROG, "rename ready file", errno);
}

static void wait_for(const char *path)
{
	for (int i = 0; i < 6000; i++) {
		if (access(path, F_OK) == 0)
			return;
		hx_sleep_us(10000);
	}
	fprintf(stderr, "hosts: %s never appeared\n", path);
	_exit(3);
}

static int case_closefds_after(void)
{
	int bad = 0, pfd[2], data, nopen = 0, opened[257], changed = 0;
	struct stat st, want;
	uintptr_t a = 0, b = 0;
	pthread_t r;
	void *v;
	DIR *d;
	struct dirent *e;

	setvbuf(stdout, NULL, _IOLBF, 0);
	MUST(pipe(pfd));
	MUST(pthread_create(&r, NULL, hh_reader_eof, (void *)(intptr_t)pfd[0]));
	hx_write_full(pfd[1], "ab", 2);
	for (int round = 0; round < 3; round++)
		a += fd_round(100, &bad);
	printf("closefds-after: before, sum %lx\n", (unsigned long)a);
	touch("ready1", (long)getpid());
	wait_for("go1");

	/* What is open now, beyond 0-2 (the library's descriptors among
	 * them, if it is there). */
	d = opendir("/proc/self/fd");
	if (!d)
		hx_fail(HX_PROG, "opendir /proc/self/fd", errno);
	while ((e = readdir(d)) && nopen < 256) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd > 2 && fd != dirfd(d))
			opened[nopen++] = fd;
	}
	closedir(d);
	close_from(3);
	/* The reader sees end of file: its pipe's write end is gone. */
	MUST(pthread_join(r, &v));
	printf("closefds-after: the reader got %ld bytes, then end of file\n",
	       (long)(intptr_t)v);
	data = open("data.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (data != 3)
		hx_fail(HX_PROG, "open data.txt as 3", data < 0 ? errno : EBADF);
	/* The program's own file, on every number that was open before and
	 * on 100: nothing but the program may write there. */
	for (int i = 0; i < nopen; i++)
		if (opened[i] != data && dup2(data, opened[i]) < 0)
			hx_fail(HX_PROG, "dup2", errno);
	if (dup2(data, 100) < 0)
		hx_fail(HX_PROG, "dup2 100", errno);
	touch("ready2", (long)getpid());
	wait_for("go2");

	for (int round = 0; round < 5; round++) {
		uintptr_t s = fd_round(100, &bad);

		dprintf(data, "data: round %d sum %lx\n", round, (unsigned long)s);
		b += s;
	}
	printf("closefds-after: after, sum %lx\n", (unsigned long)b);
	printf("closefds-after: 800 opens, not the lowest free descriptor: %d%s\n", bad,
	       first_bad);
	dprintf(data, "data: end\n");
	/* Nobody closed or replaced the program's descriptors. */
	if (fstat(data, &want) != 0)
		hx_fail(HX_PROG, "fstat data.txt", errno);
	for (int i = 0; i <= nopen; i++)
		if (i == nopen) {
			opened[nopen++] = 100;
			break;
		} else if (opened[i] == 100) {
			break;
		}
	for (int i = 0; i < nopen; i++)
		if (fstat(opened[i], &st) != 0 || st.st_dev != want.st_dev ||
		    st.st_ino != want.st_ino) {
			char path[64], link[128] = "closed";
			ssize_t n;

			snprintf(path, sizeof path, "/proc/self/fd/%d", opened[i]);
			if ((n = readlink(path, link, sizeof link - 1)) > 0)
				link[n] = 0;
			if (!changed++)
				snprintf(first_bad, sizeof first_bad, "; the first: %d, now %s",
				         opened[i], link);
		}
	if (!changed)
		first_bad[0] = 0;
	printf("closefds-after: descriptors of the program's data.txt closed or replaced: %d%s\n",
	       changed, first_bad);
	return 0;
}

/* A daemon's pattern: threads first, then every descriptor >= 3 closed,
 * then pipes of its own, which get the lowest numbers: the first stays
 * empty (a reader would block), the second holds 10 bytes; more threads;
 * then both pipes must hold what the program put there. */
static int case_closefds_pipe(void)
{
	int bad = 0, empty[2], full[2], flags;
	uintptr_t a = 0, b = 0;
	char buf[64];
	ssize_t n0, n1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int r = 0; r < 5; r++)
		a += fd_round(1, &bad);
	close_from(3);
	MUST(pipe(empty));
	MUST(pipe(full));
	hx_write_full(full[1], "0123456789", 10);
	for (int r = 0; r < 60; r++)
		b += fd_round(1, &bad);
	for (int i = 0; i < 2; i++) {
		int fd = i ? full[0] : empty[0];

		flags = fcntl(fd, F_GETFL);
		if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
			hx_fail(HX_PROG, "fcntl O_NONBLOCK", errno);
	}
	n0 = read(empty[0], buf, sizeof buf);
	n1 = read(full[0], buf, sizeof buf);
	printf("closefds-pipe: threads %lx %lx\n", (unsigned long)a, (unsigned long)b);
	printf("closefds-pipe: the empty pipe (%d, %d): %zd bytes\n", empty[0], empty[1],
	       n0 < 0 ? (ssize_t)0 : n0);
	printf("closefds-pipe: the other (%d, %d): %zd bytes: %.*s\n", full[0], full[1], n1,
	       n1 > 0 ? (int)n1 : 0, buf);
	return 0;
}

/* The children of a process whose pool runs: one made by _Fork() (no
 * fork handlers run in it, as in a child of clone() or of a raw fork
 * system call) and one by fork(); each writes its pid to "ready1" /
 * "ready2" and waits for "go1" / "go2", so that run.sh can ask `smolscale
 * stats` about it.  Neither child runs smolscale. */
static pid_t fork_no_handlers(void)
{
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
	return _Fork();
#else
	return (pid_t)syscall(SYS_fork);
#endif
#else
	return fork();
#endif
}

static int case_forkstats(void)
{
	int bad = 0, st, ok = 0;
	uintptr_t a;
	pid_t p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	a = fd_round(10, &bad);
	for (int n = 1; n <= 2; n++) {
		p = n == 1 ? fork_no_handlers() : fork();
		if (p < 0)
			hx_fail(HX_PROG, "fork", errno);
		if (p == 0) {
			touch(n == 1 ? "ready1" : "ready2", (long)getpid());
			wait_for(n == 1 ? "go1" : "go2");
			_exit(0);
		}
		while (waitpid(p, &st, 0) < 0)
			if (errno != EINTR)
				hx_fail(HX_PROG, "waitpid", errno);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	printf("forkstats: threads %lx; children that exited 0: %d of 2\n", (unsigned long)a, ok);
	return 0;
}

/* ------------------------------------------------------------------ */
/* RLIMIT_NPROC                                                        */

/* Tasks (threads) of processes whose real user is ours: what the kernel
 * counts against RLIMIT_NPROC. */
static long user_tasks(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	uid_t me = getuid();
	long n = 0;

	if (!d)
		hx_fail(HX_PROG, "opendir /proc", errno);
	while ((e = readdir(d))) {
		char path[300], line[256];
		FILE *f;
		long uid = -1, threads = 0;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		while (fgets(line, sizeof line, f)) {
			if (strncmp(line, "Uid:", 4) == 0)
				uid = strtol(line + 4, NULL, 10);
			else if (strncmp(line, "Threads:", 8) == 0)
				threads = strtol(line + 8, NULL, 10);
		}
		fclose(f);
		if (uid == (long)me)
			n += threads;
	}
	closedir(d);
	return n;
}

#define NPROC_TRIES 8

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, created, arrived;
static int meet;

void *hh_gated(void *arg);
void *hh_gated(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	arrived++;
	pthread_cond_broadcast(&gate_cond);
	while (meet && arrived < created)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return (void *)(uintptr_t)(hx_compute(i, 50000) & 0xffff);
}

static int case_nproc(int extra, int meet_all)
{
	struct rlimit rl;
	pthread_t t[NPROC_TRIES];
	int ok[NPROC_TRIES], nfail = 0, other = 0, joined = 0;
	uintptr_t sum = 0, want = 0;
	long n;

	if (getuid() == 0) {
		fprintf(stderr, "hosts: nproc cases must not run as root (it is exempt)\n");
		return 3;
	}
	meet = meet_all;
	n = user_tasks();
	rl.rlim_cur = rl.rlim_max = (rlim_t)(n + extra);
	MUST(setrlimit(RLIMIT_NPROC, &rl));
	for (int i = 0; i < NPROC_TRIES; i++) {
		int rc = pthread_create(&t[i], NULL, hh_gated, (void *)(uintptr_t)i);

		ok[i] = rc == 0;
		if (rc == EAGAIN)
			nfail++;
		else if (rc != 0)
			other++;
	}
	pthread_mutex_lock(&gate_lock);
	for (int i = 0; i < NPROC_TRIES; i++)
		created += ok[i];
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	for (int i = 0; i < NPROC_TRIES; i++) {
		void *v;

		if (!ok[i])
			continue;
		MUST(pthread_join(t[i], &v));
		sum += (uintptr_t)v;
		want += (uintptr_t)(hx_compute((uint64_t)i, 50000) & 0xffff);
		joined++;
	}
	printf("~ nproc: limit = the user's tasks + %d: %d of %d created, %d failed with EAGAIN\n",
	       extra, created, NPROC_TRIES, nfail);
	printf("nproc: failures other than EAGAIN: %d\n", other);
	printf("nproc: at least one thread created: %s\n", created ? "yes" : "no");
	printf("nproc: every created thread ran, was joined and returned its value: %s\n",
	       joined == created && sum == want && arrived == created ? "yes" : "no");
	if (meet_all)
		printf("nproc: all created threads met\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* setuid                                                              */

#define ID_OLD 6
#define ID_NEW 4

struct ids {
	uid_t uid, euid;
	gid_t gid, egid;
};

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t id_cond = PTHREAD_COND_INITIALIZER;
static int id_phase;
static atomic_int id_ready, id_spin_stop;
static struct ids seen[ID_OLD + ID_NEW];

static void record_ids(int slot)
{
	seen[slot].uid = getuid();
	seen[slot].euid = geteuid();
	seen[slot].gid = getgid();
	seen[slot].egid = getegid();
}

/* Blocked until the ids have changed, then looks. */
void *hh_id_waiter(void *arg);
void *hh_id_waiter(void *arg)
{
	int slot = (int)(intptr_t)arg;

	pthread_mutex_lock(&id_lock);
	atomic_fetch_add(&id_ready, 1);
	while (id_phase == 0)
		pthread_cond_wait(&id_cond, &id_lock);
	pthread_mutex_unlock(&id_lock);
	record_ids(slot);
	return NULL;
}

/* Spins (on its CPU) until the ids have changed, then looks. */
void *hh_id_spinner(void *arg);
void *hh_id_spinner(void *arg)
{
	int slot = (int)(intptr_t)arg;
	uint64_t h = 0;

	atomic_fetch_add(&id_ready, 1);
	while (!atomic_load(&id_spin_stop))
		h = hx_mix(h + 1);
	record_ids(slot);
	return (void *)(uintptr_t)(h & 1);
}

/* Blocked in a system call when the ids change. */
static int id_pipe[2];

void *hh_id_reader(void *arg);
void *hh_id_reader(void *arg)
{
	int slot = (int)(intptr_t)arg;
	char c;

	atomic_fetch_add(&id_ready, 1);
	hx_read_full(id_pipe[0], &c, 1);
	record_ids(slot);
	return NULL;
}

static const char *change_ids(void)
{
	if (setgroups(0, NULL) != 0)
		return "setgroups";
	if (setgid(65534) != 0)
		return "setgid";
	if (setuid(65534) != 0)
		return "setuid";
	return NULL;
}

void *hh_id_changer(void *arg);
void *hh_id_changer(void *arg)
{
	return (void *)change_ids();
}

static int case_setuid(int from_thread)
{
	pthread_t t[ID_OLD + ID_NEW];
	const char *err;
	int good = 0;

	if (getuid() != 0) {
		fprintf(stderr, "hosts: setuid cases must run as root\n");
		return 3;
	}
	MUST(pipe(id_pipe));
	for (int i = 0; i < 2; i++)
		MUST(pthread_create(&t[i], NULL, hh_id_waiter, (void *)(intptr_t)i));
	for (int i = 2; i < 4; i++)
		MUST(pthread_create(&t[i], NULL, hh_id_spinner, (void *)(intptr_t)i));
	for (int i = 4; i < ID_OLD; i++)
		MUST(pthread_create(&t[i], NULL, hh_id_reader, (void *)(intptr_t)i));
	while (atomic_load(&id_ready) < ID_OLD)
		hx_sleep_us(1000);
	hx_sleep_us(20000); /* the readers are in read() by now */

	if (from_thread) {
		pthread_t c;
		void *v;

		MUST(pthread_create(&c, NULL, hh_id_changer, NULL));
		MUST(pthread_join(c, &v));
		err = v;
	} else {
		err = change_ids();
	}
	if (err) {
		printf("setuid: %s failed: %s\n", err, strerror(errno));
		return 1;
	}
	pthread_mutex_lock(&id_lock);
	id_phase = 1;
	pthread_cond_broadcast(&id_cond);
	pthread_mutex_unlock(&id_lock);
	atomic_store(&id_spin_stop, 1);
	hx_write_full(id_pipe[1], "xy", 2);
	for (int i = ID_OLD; i < ID_OLD + ID_NEW; i++)
		MUST(pthread_create(&t[i], NULL, hh_id_waiter, (void *)(intptr_t)i));
	for (int i = 0; i < ID_OLD + ID_NEW; i++)
		MUST(pthread_join(t[i], NULL));
	for (int i = 0; i < ID_OLD + ID_NEW; i++) {
		if (seen[i].uid == 65534 && seen[i].euid == 65534 && seen[i].gid == 65534 &&
		    seen[i].egid == 65534)
			good++;
		else
			printf("setuid: thread %d sees uid %ld euid %ld gid %ld egid %ld\n", i,
			       (long)seen[i].uid, (long)seen[i].euid, (long)seen[i].gid,
			       (long)seen[i].egid);
	}
	record_ids(0);
	printf("setuid: changed from %s; %d of %d threads see uid and gid 65534; main: %s\n",
	       from_thread ? "a thread" : "main", good, ID_OLD + ID_NEW,
	       seen[0].uid == 65534 && seen[0].gid == 65534 ? "yes" : "no");
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	int k = argc > 2 ? atoi(argv[2]) : 3;

	if (strcmp(c, "exitinline") == 0)
		return case_exitinline();
	if (strcmp(c, "exitatexit") == 0)
		return case_exitatexit();
	if (strcmp(c, "exitbuffered") == 0)
		return case_exitbuffered();
	if (strcmp(c, "quickexit") == 0)
		return case_quickexit();
	if (strcmp(c, "underexit") == 0)
		return case_underexit();
	if (strcmp(c, "exitcondwait") == 0)
		return case_exitcondwait();
	if (strcmp(c, "signals") == 0)
		return case_signals();
	if (strcmp(c, "closefds-start") == 0)
		return case_closefds_start();
	if (strcmp(c, "closefds-all") == 0)
		return case_closefds_all();
	if (strcmp(c, "closefds-after") == 0)
		return case_closefds_after();
	if (strcmp(c, "closefds-pipe") == 0)
		return case_closefds_pipe();
	if (strcmp(c, "forkstats") == 0)
		return case_forkstats();
	if (strcmp(c, "nproc-some") == 0)
		return case_nproc(k, 0);
	if (strcmp(c, "nproc-meet") == 0)
		return case_nproc(k, 1);
	if (strcmp(c, "nproc-zero") == 0)
		return case_nproc(0, 0);
	if (strcmp(c, "setuid-main") == 0)
		return case_setuid(0);
	if (strcmp(c, "setuid-thread") == 0)
		return case_setuid(1);
	fprintf(stderr, "usage: hosts CASE [ARG] (see hosts.c)\n");
	return 2;
}
