/*
 * smolscale - run a program under the preload library, or compare it
 * with and without (smolscale(1)).
 *
 *   smolscale run [--pthread] [--no-gthreadpool] [--threads N] [--] CMD ARGS...
 *   smolscale ab [-n RUNS] [--warmup K] [--plot FILE] [--no-count]
 *                [--pthread] [--no-gthreadpool] [--threads N] [--] CMD ARGS...
 *   smolscale stats [--timeout MS] PID
 *
 * run puts libsmolscale-preload.so in front of LD_PRELOAD and execs CMD.
 * ab runs CMD alternately without and with the library, each run a fork
 * and an execvp reaped by wait4() (whose rusage covers the waited-for
 * process tree), its stdout in a temporary file that is compared byte by
 * byte with the first run's.  Threads created are counted in one extra
 * run per side under ptrace (event stops only), never in a timed run.
 *
 * stats asks a running process for its stats through the region its
 * pool maps (core/statreg.h) and prints them.
 *
 * The program is single-threaded, so a child may call setenv() between
 * fork() and execvp().
 */
#include "config.h"

#include <dirent.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "statreg.h"

#ifndef SS_PRELOAD_LIBDIR
#define SS_PRELOAD_LIBDIR "/usr/local/lib"
#endif
#ifndef SS_GNUPLOT
#define SS_GNUPLOT ""
#endif

#define LIBNAME "libsmolscale-preload.so"
/* Exit status when smolscale itself fails (as env(1), nice(1), timeout(1)). */
#define EXIT_SELF 125

static const char usage_text[] =
"Usage: smolscale run [--pthread] [--no-gthreadpool] [--threads N] [--]\n"
"                     COMMAND [ARG...]\n"
"       smolscale ab [-n RUNS] [--warmup K] [--plot FILE.svg|FILE.png]\n"
"                    [--no-count] [--pthread] [--no-gthreadpool] [--threads N]\n"
"                    [--] COMMAND [ARG...]\n"
"       smolscale stats [--timeout MS] PID\n"
"       smolscale --help | --version\n"
"\n"
"Run COMMAND under smolscale's preload library (" LIBNAME "),\n"
"or compare it without and with the library.\n"
"\n"
"Commands:\n"
"  run            exec COMMAND with the library in front of LD_PRELOAD;\n"
"                 exit with COMMAND's status\n"
"  ab             run COMMAND alternately without and with the library and\n"
"                 print the median and min-max of wall, user, system and\n"
"                 CPU time, peak RSS, context switches, and the threads\n"
"                 created, with the with/without ratio; check that every\n"
"                 run exits the same way and writes the same stdout\n"
"  stats PID      print the live stats of process PID, which runs smolscale\n"
"                 (the preload library or libsmolscale) and has started\n"
"                 its pool; --timeout MS bounds the wait (default 2000)\n"
"\n"
"Options:\n"
"  --pthread      reroute pthread_create to the pool (SMOLSCALE_PTHREAD=1)\n"
"  --no-gthreadpool  leave GLib's GThreadPool to GLib\n"
"                 (SMOLSCALE_GTHREADPOOL=0; rerouted by default)\n"
"  --threads N    workers to keep (SMOLSCALE_THREADS=N), 1-4096\n"
"  -n, --runs N   ab: timed runs per side, 1-1000 (default 5)\n"
"  --warmup K     ab: untimed runs per side first, 0-100 (default 1)\n"
"  --plot FILE    ab: also draw the comparison into FILE (.svg or .png)\n"
"                 with gnuplot\n"
"  --no-count     ab: skip the extra run per side that counts threads\n"
"  -h, --help     print this help;  --version  print the version\n"
"\n"
"ab runs the sides in turn (without, with, without, ...), stdin from\n"
"/dev/null, stdout captured to a temporary file and compared byte by byte\n"
"with the first run's; stderr passes through.  Threads (and processes)\n"
"created are the clone (fork) calls of the whole process tree, counted\n"
"under ptrace in one extra, untimed run per side, so that tracing never\n"
"distorts the timed runs.\n"
"\n"
"The library is $SMOLSCALE_PRELOAD if set, else .libs/" LIBNAME "\n"
"next to this program (a build tree), else " SS_PRELOAD_LIBDIR "/" LIBNAME ".\n"
"\n"
"Exit status: run: COMMAND's; ab: 0 when every run exited 0 with the same\n"
"stdout, 1 otherwise; stats: 0, or 1 when the process has no stats to\n"
"give; 2 usage error; 125 smolscale failed; 126 COMMAND cannot be\n"
"executed; 127 COMMAND not found.  See smolscale(1).\n";

/* One timed run. */
struct run {
	double wall, user, sys;		/* seconds */
	long maxrss;			/* KiB, the largest process of the tree */
	long nvcsw, nivcsw;
	int status;			/* wait status */
	bool same;			/* stdout equal to the first run's */
	off_t size, diff_at;
};

static _Noreturn void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static _Noreturn void usage_error(char *msg);

static _Noreturn void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("smolscale: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* A usage error: MSG (ss_args_parse's, freed here), exit status 2. */
static _Noreturn void usage_error(char *msg)
{
	fputs("smolscale: ", stderr);
	fputs(msg, stderr);
	free(msg);
	fputs(" (try 'smolscale --help')\n", stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die(EXIT_SELF, "out of memory");
	return p;
}

/* PATH made absolute when it names a readable regular file, else NULL. */
static char *usable(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, R_OK) != 0)
		return NULL;
	return realpath(path, NULL);
}

/* The preload library's absolute path, or exit naming what was tried. */
static char *find_library(void)
{
	const char *env = getenv("SMOLSCALE_PRELOAD");
	static const char installed[] = SS_PRELOAD_LIBDIR "/" LIBNAME;
	char exe[PATH_MAX], *lib = NULL, *built = NULL;
	ssize_t n;

	if (env && *env) {
		lib = usable(env);
		if (!lib)
			die(EXIT_SELF, "preload library '%s' (from SMOLSCALE_PRELOAD) is not a readable file", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n > 0) {
			char *slash;

			exe[n] = '\0';
			slash = strrchr(exe, '/');
			if (slash) {
				slash[1] = '\0';
				built = xmalloc(strlen(exe) + sizeof ".libs/" LIBNAME);
				strcpy(stpcpy(built, exe), ".libs/" LIBNAME);
				lib = usable(built);
			}
		}
		if (!lib)
			lib = usable(installed);
		if (!lib)
			die(EXIT_SELF, "%s not found (tried %s%s%s); set SMOLSCALE_PRELOAD to its path",
			    LIBNAME, built ? built : "", built ? " and " : "", installed);
		free(built);
	}
	/* ld.so splits LD_PRELOAD at spaces and colons. */
	if (strpbrk(lib, ": \t\n"))
		die(EXIT_SELF, "the preload library's path '%s' has a space or colon, which LD_PRELOAD cannot hold", lib);
	return lib;
}

/* The environment of the side with the library; 0, or -1 (errno set). */
static int with_env(const struct opts *o, const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;
	int r;

	if (old && *old) {
		v = malloc(strlen(lib) + strlen(old) + 2);
		if (!v)
			return -1;
		strcpy(stpcpy(stpcpy(v, lib), ":"), old);
		r = setenv("LD_PRELOAD", v, 1);
		free(v);
	} else {
		r = setenv("LD_PRELOAD", lib, 1);
	}
	if (r == 0 && o->pthread)
		r = setenv("SMOLSCALE_PTHREAD", "1", 1);
	if (r == 0 && o->no_gthreadpool)
		r = setenv("SMOLSCALE_GTHREADPOOL", "0", 1);
	if (r == 0 && o->threads) {
		char n[24];

		snprintf(n, sizeof n, "%ld", o->threads);
		r = setenv("SMOLSCALE_THREADS", n, 1);
	}
	return r;
}

/*
 * The environment of the side without: the caller's, less the library
 * itself where it is in LD_PRELOAD already (under smolscale run, say).
 */
static int without_env(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char *copy, *kept, *tok, *save;
	bool dropped = false;
	int r = 0;

	if (!old || !*old)
		return 0;
	copy = strdup(old);
	kept = malloc(strlen(old) + 1);
	if (!copy || !kept) {
		free(copy);
		free(kept);
		return -1;
	}
	kept[0] = '\0';
	for (tok = strtok_r(copy, ": \t\n", &save); tok; tok = strtok_r(NULL, ": \t\n", &save)) {
		char *real = realpath(tok, NULL);
		bool ours = real && strcmp(real, lib) == 0;

		free(real);
		if (ours) {
			dropped = true;
			continue;
		}
		if (kept[0])
			strcat(kept, ":");
		strcat(kept, tok);
	}
	if (dropped)
		r = kept[0] ? setenv("LD_PRELOAD", kept, 1) : unsetenv("LD_PRELOAD");
	free(copy);
	free(kept);
	return r;
}

static int cmd_run(const struct opts *o)
{
	char *lib = find_library();
	int e;

	if (with_env(o, lib) != 0)
		die(EXIT_SELF, "cannot set the environment: %s", strerror(errno));
	execvp(o->cmd[0], o->cmd);
	e = errno;
	free(lib);
	die(e == ENOENT ? 127 : 126, "cannot run '%s': %s", o->cmd[0], strerror(e));
}

/* ---- ab ---------------------------------------------------------------- */

enum { WITHOUT, WITH };
static const char *const side_name[] = { "without", "with" };

struct ab {
	const struct opts *o;
	char *lib;
	int devnull;
	int ref, scratch;	/* stdout of the first run; of the others */
	bool have_ref;
	bool progress;
};

static double seconds(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An unlinked temporary file in $TMPDIR, read-write. */
static int temp_file(void)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	path = xmalloc(strlen(dir) + sizeof "/smolscale-XXXXXX");
	strcpy(stpcpy(path, dir), "/smolscale-XXXXXX");
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		die(EXIT_SELF, "cannot create a temporary file in %s: %s", dir, strerror(errno));
	unlink(path);
	free(path);
	return fd;
}

/* In a child: the side's environment, stdin from /dev/null, stdout to OUT. */
static void child_setup(const struct ab *ab, int side, int out)
{
	int r = side == WITH ? with_env(ab->o, ab->lib) : without_env(ab->lib);

	if (r != 0 || dup2(ab->devnull, 0) < 0 || dup2(out, 1) < 0) {
		fprintf(stderr, "smolscale: cannot prepare the command: %s\n", strerror(errno));
		_exit(EXIT_SELF);
	}
}

/* Exit naming why CMD could not be executed, with execvp's errno E. */
static _Noreturn void exec_failed(const struct ab *ab, int e)
{
	die(e == ENOENT ? 127 : 126, "cannot run '%s': %s", ab->o->cmd[0], strerror(e));
}

static off_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_size : 0;
}

/* N bytes at OFF of the file at FD into BUF, or exit. */
static void read_at(int fd, char *buf, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t got = pread(fd, buf, n, off);

		if (got <= 0) {
			if (got < 0 && errno == EINTR)
				continue;
			die(EXIT_SELF, "cannot read a captured stdout back: %s",
			    got < 0 ? strerror(errno) : "it shrank");
		}
		buf += got;
		n -= got;
		off += got;
	}
}

/* First offset where the files at fds A and B differ; -1 when equal. */
static off_t compare(int a, int b)
{
	static char ba[65536], bb[65536];
	off_t sa = file_size(a), sb = file_size(b), n = sa < sb ? sa : sb, off;

	for (off = 0; off < n; off += sizeof ba) {
		size_t chunk = n - off < (off_t)sizeof ba ? (size_t)(n - off) : sizeof ba;
		size_t i;

		read_at(a, ba, chunk, off);
		read_at(b, bb, chunk, off);
		if (memcmp(ba, bb, chunk) == 0)
			continue;
		for (i = 0; ba[i] == bb[i]; i++)
			;
		return off + i;
	}
	return sa == sb ? -1 : n;
}

/* One timed run of the command on SIDE into R. */
static void timed_run(struct ab *ab, int side, struct run *r)
{
	int out = ab->have_ref ? ab->scratch : ab->ref;
	int ep[2], st, e;
	struct rusage ru;
	double t0;
	pid_t pid;

	if (ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0)
		die(EXIT_SELF, "cannot reset a temporary file: %s", strerror(errno));
	if (pipe2(ep, O_CLOEXEC) != 0)
		die(EXIT_SELF, "pipe: %s", strerror(errno));
	fflush(NULL);
	t0 = now();
	pid = fork();
	if (pid < 0)
		die(EXIT_SELF, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_setup(ab, side, out);
		execvp(ab->o->cmd[0], ab->o->cmd);
		e = errno;
		if (write(ep[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	while (wait4(pid, &st, 0, &ru) < 0)
		if (errno != EINTR)
			die(EXIT_SELF, "wait4: %s", strerror(errno));
	r->wall = now() - t0;
	close(ep[1]);
	if (read(ep[0], &e, sizeof e) == (ssize_t)sizeof e)
		exec_failed(ab, e);
	close(ep[0]);

	r->user = seconds(ru.ru_utime);
	r->sys = seconds(ru.ru_stime);
	r->maxrss = ru.ru_maxrss;
	r->nvcsw = ru.ru_nvcsw;
	r->nivcsw = ru.ru_nivcsw;
	r->status = st;
	r->size = file_size(out);
	if (!ab->have_ref) {
		ab->have_ref = true;
		r->same = true;
		r->diff_at = -1;
	} else {
		r->diff_at = compare(ab->ref, out);
		r->same = r->diff_at < 0;
	}
}

/* The tracees of a counting run, to detach those left when it ends. */
struct tracees {
	pid_t *pid;
	size_t n, cap;
};

static void tracee_add(struct tracees *t, pid_t p)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->pid[i] == p)
			return;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		pid_t *np = realloc(t->pid, cap * sizeof *np);

		if (!np)
			die(EXIT_SELF, "out of memory");
		t->pid = np;
		t->cap = cap;
	}
	t->pid[t->n++] = p;
}

static void tracee_remove(struct tracees *t, pid_t p)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->pid[i] == p) {
			t->pid[i] = t->pid[--t->n];
			return;
		}
}

/*
 * One untimed run of the command on SIDE under ptrace: the threads
 * (PTRACE_EVENT_CLONE) and processes (fork, vfork) that its whole tree
 * creates.  Only event stops, no syscall stops.  Returns false with
 * errno set when ptrace is not allowed here.
 */
static bool count_run(const struct ab *ab, int side, long *threads, long *procs)
{
	struct tracees t = { 0 };
	bool main_done = false;
	int st, e;
	pid_t pid, w;

	*threads = *procs = 0;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(EXIT_SELF, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_setup(ab, side, ab->devnull);
		raise(SIGSTOP);		/* until the parent has seized us */
		execvp(ab->o->cmd[0], ab->o->cmd);
		_exit(127);
	}
	while (waitpid(pid, &st, WUNTRACED) < 0)
		if (errno != EINTR)
			die(EXIT_SELF, "waitpid: %s", strerror(errno));
	if (!WIFSTOPPED(st)) {
		errno = ECHILD;
		return false;
	}
	if (ptrace(PTRACE_SEIZE, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
				  PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
				  PTRACE_O_EXITKILL)) != 0) {
		e = errno;
		kill(pid, SIGKILL);
		kill(pid, SIGCONT);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		errno = e;
		return false;
	}
	tracee_add(&t, pid);
	kill(pid, SIGCONT);
	while (t.n > 0) {
		int ev, sig = 0;

		w = waitpid(-1, &st, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;		/* ECHILD: none left */
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			tracee_remove(&t, w);
			if (w == pid) {
				/*
				 * What outlives the command is not counted:
				 * stop it and let it go.  A pid that is gone
				 * (a thread that exec'd away) is dropped.
				 */
				size_t i = 0;

				main_done = true;
				while (i < t.n)
					if (ptrace(PTRACE_INTERRUPT, t.pid[i], NULL, NULL) != 0)
						t.pid[i] = t.pid[--t.n];
					else
						i++;
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		ev = (unsigned)st >> 16;
		if (ev == PTRACE_EVENT_CLONE)
			++*threads;
		else if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK)
			++*procs;
		else if (ev == 0)
			sig = WSTOPSIG(st);	/* a signal to deliver */
		if (main_done) {
			ptrace(PTRACE_DETACH, w, NULL, (void *)(long)sig);
			tracee_remove(&t, w);
		} else {
			/* New tracees appear here first (their initial stop). */
			tracee_add(&t, w);
			ptrace(PTRACE_CONT, w, NULL, (void *)(long)sig);
		}
	}
	free(t.pid);
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct summary {
	double med, min, max;
};

static struct summary summarize(double *v, long n)
{
	struct summary s;

	qsort(v, n, sizeof *v, cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

enum kind { SECONDS, MIB, COUNT };

static const struct metric {
	const char *name;
	enum kind kind;
} metrics[] = {
	{ "wall s", SECONDS },
	{ "user s", SECONDS },
	{ "sys s", SECONDS },
	{ "cpu s (user+sys)", SECONDS },
	{ "peak RSS MiB", MIB },
	{ "voluntary ctx sw", COUNT },
	{ "involuntary ctx sw", COUNT },
	{ "threads created", COUNT },
	{ "processes created", COUNT },
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])
#define NTIMED 7	/* metrics from the timed runs; the rest are counted */

static double metric_value(const struct run *r, size_t m)
{
	switch (m) {
	case 0: return r->wall;
	case 1: return r->user;
	case 2: return r->sys;
	case 3: return r->user + r->sys;
	case 4: return r->maxrss / 1024.0;
	case 5: return r->nvcsw;
	default: return r->nivcsw;
	}
}

static void format_value(char *buf, size_t len, double v, enum kind k)
{
	switch (k) {
	case SECONDS:
		snprintf(buf, len, "%.3f", v);
		break;
	case MIB:
		snprintf(buf, len, "%.1f", v);
		break;
	case COUNT:
		snprintf(buf, len, v == (long)v ? "%.0f" : "%.1f", v);
		break;
	}
}

/* How a run ended, in words. */
static void describe_status(char *buf, size_t len, int st)
{
	const char *abbrev;

	if (WIFEXITED(st)) {
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	} else if (WIFSIGNALED(st)) {
		abbrev = sigabbrev_np(WTERMSIG(st));
		if (abbrev)
			snprintf(buf, len, "killed by SIG%s%s", abbrev,
				 WCOREDUMP(st) ? " (core dumped)" : "");
		else
			snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	} else {
		snprintf(buf, len, "wait status %#x", st);
	}
}

/* "exit status 0 (6 runs), killed by SIGSEGV (1 run)" for one side. */
static void describe_side(char *buf, size_t len, const struct run *r, long n)
{
	size_t used = 0;
	long i, j;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		char what[64];
		long count = 0;
		bool seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = r[j].status == r[i].status;
		if (seen)
			continue;
		for (j = i; j < n; j++)
			count += r[j].status == r[i].status;
		describe_status(what, sizeof what, r[i].status);
		if (used < len)
			used += snprintf(buf + used, len - used, "%s%s (%ld run%s)",
					 used ? ", " : "", what, count, count == 1 ? "" : "s");
	}
}

/*
 * The command line, an argument quoted where a shell would need it; when
 * it does not fit in LEN, the arguments that do and "... (N more)".
 */
static void describe_command(char *buf, size_t len, char **cmd)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789-_./=:,+@%";
	size_t used = 0, room = len - 24;	/* for " ... (N more)" */
	long left = 0;
	char **a;

	for (a = cmd; *a; a++)
		left++;
	buf[0] = '\0';
	for (a = cmd; *a; a++, left--) {
		bool quote = !**a || (*a)[strspn(*a, plain)] != '\0';
		size_t need = strlen(*a) + 1 + 2 * quote;
		const char *c;

		for (c = *a; quote && *c; c++)
			need += 3 * (*c == '\'');	/* ' becomes '\'' */
		if (used + need > room)
			break;
		if (used)
			buf[used++] = ' ';
		if (quote)
			buf[used++] = '\'';
		for (c = *a; *c; c++) {
			if (*c == '\'')
				used = stpcpy(buf + used, "'\\''") - buf;
			else
				buf[used++] = *c;
		}
		if (quote)
			buf[used++] = '\'';
		buf[used] = '\0';
	}
	if (left > 0)
		snprintf(buf + used, len - used, "%s... (%ld more)", used ? " " : "", left);
}

/* Draw the table into FILE with gnuplot; false (said why) when it fails. */
static bool plot(const struct ab *ab, const char *file, const char *title,
		 struct summary sum[][2], const bool *have)
{
	static const char *const colour[] = { "#8899aa", "#ee7733" };
	const char *gnuplot = SS_GNUPLOT;
	char script[] = "/tmp/smolscale-plot-XXXXXX";
	const char *tmpdir = getenv("TMPDIR");
	char *path = NULL;
	int fd, ep[2], st, e;
	bool png;
	size_t m, s;
	FILE *f;
	pid_t pid;

	if (!*gnuplot || access(gnuplot, X_OK) != 0)
		gnuplot = "gnuplot";
	if (tmpdir && *tmpdir) {
		path = xmalloc(strlen(tmpdir) + sizeof "/smolscale-plot-XXXXXX");
		strcpy(stpcpy(path, tmpdir), "/smolscale-plot-XXXXXX");
	}
	fd = mkostemp(path ? path : script, O_CLOEXEC);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "smolscale: cannot write the plot's script: %s\n", strerror(errno));
		free(path);
		return false;
	}
	png = strcasecmp(strrchr(file, '.'), ".png") == 0;
	if (png)
		fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		      "  set terminal pngcairo size 1200,900 font 'sans,10' noenhanced\n"
		      "} else {\n"
		      "  set terminal png size 1200,900 noenhanced\n"
		      "}\n", f);
	else
		fputs("set terminal svg size 1200,900 dynamic font 'sans,11' noenhanced\n", f);
	/* The file name and the title come as arguments: no quoting here. */
	fputs("set output ARG1\n"
	      "set multiplot layout 3,3 title ARG2\n"
	      "set style fill solid 0.85 border -1\n"
	      "set boxwidth 0.6\n"
	      "set xrange [-0.6:1.6]\n"
	      "set grid ytics\n"
	      "set format y '%g'\n"
	      "unset key\n", f);
	for (m = 0; m < NMETRICS; m++) {
		fprintf(f, "$d%zu << EOD\n", m);
		for (s = 0; s < 2; s++)
			fprintf(f, "%zu %s %.9g %.9g %.9g %s\n", s, side_name[s],
				have[m] ? sum[m][s].med : 0, have[m] ? sum[m][s].min : 0,
				have[m] ? sum[m][s].max : 0, colour[s] + 1);
		fprintf(f, "EOD\nset title '%s", metrics[m].name);
		if (!have[m])
			fputs(" (not counted)", f);
		else if (sum[m][WITHOUT].med > 0)
			fprintf(f, ", with/without %.2f", sum[m][WITH].med / sum[m][WITHOUT].med);
		/* An all-zero panel gets a range, not gnuplot's warning. */
		fprintf(f, "'\nset yrange [0:%s]\n",
			have[m] && (sum[m][WITHOUT].max > 0 || sum[m][WITH].max > 0) ? "*" : "1");
		fprintf(f, "plot $d%zu using 1:3:(int('0x'.strcol(6))):xtic(2) with boxes lc rgb variable, \\\n"
			"     $d%zu using 1:3:4:5 with yerrorbars lc rgb '#222222' pt 7 ps 0.4\n", m, m);
	}
	fputs("unset multiplot\n", f);
	if (fclose(f) != 0) {
		fprintf(stderr, "smolscale: cannot write the plot's script: %s\n", strerror(errno));
		unlink(path ? path : script);
		free(path);
		return false;
	}
	if (pipe2(ep, O_CLOEXEC) != 0)
		die(EXIT_SELF, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(EXIT_SELF, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(ab->devnull, 0);
		execlp(gnuplot, gnuplot, "-c", path ? path : script, file, title, (char *)NULL);
		e = errno;
		if (write(ep[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	close(ep[1]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die(EXIT_SELF, "waitpid: %s", strerror(errno));
	unlink(path ? path : script);
	free(path);
	if (read(ep[0], &e, sizeof e) == (ssize_t)sizeof e) {
		close(ep[0]);
		if (e == ENOENT)
			fprintf(stderr, "smolscale: gnuplot not found (install the Debian package gnuplot-nox); no plot written\n");
		else
			fprintf(stderr, "smolscale: cannot run %s: %s; no plot written\n", gnuplot, strerror(e));
		return false;
	}
	close(ep[0]);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char what[64];

		describe_status(what, sizeof what, st);
		fprintf(stderr, "smolscale: gnuplot failed (%s); no plot written to %s\n", what, file);
		return false;
	}
	return true;
}

static void progress(const struct ab *ab, const char *what, long k, long n)
{
	if (ab->progress)
		fprintf(stderr, "\rsmolscale ab: %s %ld of %ld\033[K", what, k, n);
}

static const char *plural(long n)
{
	return n == 1 ? "" : "s";
}

/* The table: one row per metric, median and min-max per side, the ratio. */
static void print_table(const struct opts *o, const char *lib, const char *cmdline,
			struct summary sum[][2], const bool *have)
{
	static const char row[] = "%-20s %10s  %-19s %10s  %-19s %12s\n";
	const char *old;
	size_t m;
	int s;

	printf("smolscale ab: %s\n", cmdline);
	printf("median and min-max of %ld timed run%s per side after %ld warm-up%s, alternating\n",
	       o->runs, plural(o->runs), o->warmup, plural(o->warmup));
	old = getenv("LD_PRELOAD");
	printf("with: LD_PRELOAD=%s%s%s%s", lib, old && *old ? ":" : "", old ? old : "",
	       o->pthread ? " SMOLSCALE_PTHREAD=1" : "");
	if (o->no_gthreadpool)
		printf(" SMOLSCALE_GTHREADPOOL=0");
	if (o->threads)
		printf(" SMOLSCALE_THREADS=%ld", o->threads);
	printf("\n\n");
	printf(row, "", "without", "min-max", "with", "min-max", "with/without");
	for (m = 0; m < NMETRICS; m++) {
		char cell[4][48], ratio[24] = "-";

		if (!have[m]) {
			printf(row, metrics[m].name, "-", "not counted", "-", "not counted", "-");
			continue;
		}
		for (s = WITHOUT; s <= WITH; s++) {
			char lo[20], hi[20];

			format_value(cell[2 * s], sizeof cell[0], sum[m][s].med, metrics[m].kind);
			format_value(lo, sizeof lo, sum[m][s].min, metrics[m].kind);
			format_value(hi, sizeof hi, sum[m][s].max, metrics[m].kind);
			if (m >= NTIMED)
				snprintf(cell[2 * s + 1], sizeof cell[0], "(1 counting run)");
			else
				snprintf(cell[2 * s + 1], sizeof cell[0], "%s-%s", lo, hi);
		}
		if (sum[m][WITHOUT].med > 0)
			snprintf(ratio, sizeof ratio, "%.2f", sum[m][WITH].med / sum[m][WITHOUT].med);
		printf(row, metrics[m].name, cell[0], cell[1], cell[2], cell[3], ratio);
	}
	putchar('\n');
}

/*
 * The exit and stdout lines, every run (warm-ups too) against the first;
 * true when every run exited 0 and wrote the same stdout.
 */
static bool print_verdict(struct run *const runs[2], long total)
{
	int st0 = runs[WITHOUT][0].status, s, first_side = 0;
	bool same_status = true, succeeded;
	long k, differ[2] = { 0, 0 }, first_k = -1;
	char what[64], desc[2][512];
	off_t size0 = runs[WITHOUT][0].size;

	for (k = 0; k < total; k++)
		for (s = WITHOUT; s <= WITH; s++) {
			same_status &= runs[s][k].status == st0;
			if (runs[s][k].same)
				continue;
			differ[s]++;
			if (first_k < 0) {
				first_k = k;
				first_side = s;
			}
		}
	succeeded = WIFEXITED(st0) && WEXITSTATUS(st0) == 0;
	if (same_status) {
		describe_status(what, sizeof what, st0);
		printf("exit: the same on every run of both sides: %s%s\n", what,
		       succeeded ? "" : " (the command failed)");
	} else {
		for (s = WITHOUT; s <= WITH; s++)
			describe_side(desc[s], sizeof desc[s], runs[s], total);
		printf("exit: DIFFERS: without: %s; with: %s\n", desc[WITHOUT], desc[WITH]);
	}
	if (first_k < 0) {
		printf("stdout: identical on every run of both sides (%lld byte%s, compared byte by byte)\n",
		       (long long)size0, plural(size0));
	} else {
		const struct run *r = &runs[first_side][first_k];

		printf("stdout: DIFFERS: %ld of %ld run%s without and %ld of %ld with differ from the "
		       "first run (%lld byte%s); first at byte %lld of run %ld %s (%lld byte%s)\n",
		       differ[WITHOUT], total, plural(total), differ[WITH], total,
		       (long long)size0, plural(size0), (long long)r->diff_at, first_k + 1,
		       side_name[first_side], (long long)r->size, plural(r->size));
	}
	fflush(stdout);
	if (!same_status || first_k >= 0)
		fprintf(stderr, "smolscale: ab: the runs differ (see the exit and stdout lines)\n");
	else if (!succeeded)
		fprintf(stderr, "smolscale: ab: the command failed on every run\n");
	return same_status && first_k < 0 && succeeded;
}

static int cmd_ab(const struct opts *o)
{
	struct ab ab = { .o = o };
	long total = o->warmup + o->runs, k, counted[2][2];
	struct run *runs[2];
	struct summary sum[NMETRICS][2];
	bool have[NMETRICS], count_ok = o->count, ok;
	int count_errno = 0, s;
	char cmdline[512];
	size_t m;

	ab.lib = find_library();
	ab.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (ab.devnull < 0)
		die(EXIT_SELF, "cannot open /dev/null: %s", strerror(errno));
	ab.ref = temp_file();
	ab.scratch = temp_file();
	ab.progress = isatty(2);
	runs[WITHOUT] = xmalloc(total * sizeof **runs);
	runs[WITH] = xmalloc(total * sizeof **runs);

	for (k = 0; k < total; k++)
		for (s = WITHOUT; s <= WITH; s++) {
			progress(&ab, "run", 2 * k + s + 1, 2 * total);
			timed_run(&ab, s, &runs[s][k]);
		}
	for (s = WITHOUT; s <= WITH && count_ok; s++) {
		progress(&ab, "counting run", s + 1, 2);
		count_ok = count_run(&ab, s, &counted[s][0], &counted[s][1]);
		count_errno = errno;
	}
	if (ab.progress)
		fputs("\r\033[K", stderr);

	/* The timed metrics over the timed runs, the warm-ups left out. */
	for (m = 0; m < NMETRICS; m++) {
		have[m] = m < NTIMED || count_ok;
		for (s = WITHOUT; s <= WITH && have[m]; s++) {
			double v[1000], c;

			if (m >= NTIMED) {
				c = counted[s][m - NTIMED];
				sum[m][s] = (struct summary){ c, c, c };
				continue;
			}
			for (k = 0; k < o->runs; k++)
				v[k] = metric_value(&runs[s][o->warmup + k], m);
			sum[m][s] = summarize(v, o->runs);
		}
	}
	describe_command(cmdline, sizeof cmdline, o->cmd);
	print_table(o, ab.lib, cmdline, sum, have);
	if (o->count && !count_ok)
		printf("threads: not counted (ptrace: %s)\n", strerror(count_errno));
	else if (o->count)
		printf("threads: clone calls of the whole process tree, counted under ptrace in one untimed run per side\n");
	ok = print_verdict(runs, total);
	if (o->plot && plot(&ab, o->plot, cmdline, sum, have))
		printf("plot: %s\n", o->plot);
	free(runs[WITHOUT]);
	free(runs[WITH]);
	free(ab.lib);
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------ stats */

/* PID as the process itself sees it: the last NSpid of its status (it
 * may live in a PID namespace of its own, a container), else PID. */
static long pid_inside(long pid)
{
	char path[64], line[256];
	long inside = pid;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if (!(f = fopen(path, "re")))
		return pid;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "NSpid:", 6)) {
			char *p = line + 6, *end;
			for (long v; (v = strtol(p, &end, 10)), end != p; p = end)
				inside = v;
			break;
		}
	fclose(f);
	return inside;
}

/* The descriptor of PID's stats region, opened read-write, or -1.  The
 * region must be the one PID serves (its header's pid): a child of a fork
 * that ran no fork handlers (_Fork, a raw clone) still holds its parent's
 * descriptor, and nothing in it serves that region.  *other is set to the
 * pid of such a region, or 0. */
static int open_region(long pid, long *other)
{
	char dir[64], path[320], link[256];
	long inside = pid_inside(pid);
	struct dirent *d;
	DIR *dp;
	int fd = -1;

	*other = 0;
	errno = 0;
	snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
	if (!(dp = opendir(dir)))
		die(1, "process %ld: %s: %s", pid, dir, strerror(errno));
	while (fd < 0 && (d = readdir(dp))) {
		struct ss_statreg h;
		ssize_t n;
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "/memfd:" SS_STATREG_NAME " (deleted)") != 0)
			continue;
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
			continue;
		/* A region of another layout is let through: cmd_stats says
		 * which version it is. */
		if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
		    !memcmp(h.magic, SS_STATREG_MAGIC, sizeof h.magic) &&
		    h.version == SS_STATREG_VERSION && h.pid != inside) {
			*other = h.pid;
			close(fd);
			fd = -1;
		}
	}
	closedir(dp);
	return fd;
}

static int cmd_stats(const struct opts *o)
{
	long pid = o->pid, timeout_ms = o->timeout_ms, other;
	struct ss_statreg *r;
	struct stat st;
	uint32_t want;
	struct timespec t0, now;
	char *text;
	int fd;

	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		die(1, "process %ld does not exist", pid);
	if ((fd = open_region(pid, &other)) < 0 && other)
		die(1, "process %ld has no smolscale stats: it holds the stats region of process %ld, which it did not serve (a fork without fork handlers, or a descriptor passed to it)",
		    pid, other);
	if (fd < 0)
		die(1, "process %ld has no smolscale stats: it does not run smolscale, has not started its pool yet, or closed the descriptor (%s)",
		    pid, errno ? strerror(errno) : "not found");
	/* Sealed against shrinking, or a store or load of ours could fault
	 * (SIGBUS) when someone else truncates it. */
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)SS_STATREG_SIZE ||
	    !(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK))
		die(1, "process %ld: its stats region is too small or not sealed", pid);
	r = mmap(NULL, SS_STATREG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (r == MAP_FAILED)
		die(EXIT_SELF, "mmap: %s", strerror(errno));
	if (memcmp(r->magic, SS_STATREG_MAGIC, sizeof r->magic) != 0 ||
	    r->version != SS_STATREG_VERSION || r->size != SS_STATREG_SIZE)
		die(1, "process %ld: its stats region has another layout (version %u; this smolscale reads %u)",
		    pid, r->version, SS_STATREG_VERSION);
	want = atomic_fetch_add(&r->req, 1) + 1;
	atomic_fetch_add(&r->wake, 1);
	syscall(SYS_futex, &r->wake, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		uint32_t done = atomic_load(&r->done);
		long left;
		struct timespec ts;
		if ((int32_t)(done - want) >= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 +
		                     (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			die(1, "process %ld did not answer within %ld ms (stopped, or its pool's threads are gone)",
			    pid, timeout_ms);
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		syscall(SYS_futex, &r->done, FUTEX_WAIT, done, &ts, NULL, 0);
	}
	if (!(text = malloc(SS_STATREG_SIZE)))
		die(EXIT_SELF, "out of memory");
	for (int tries = 0;; tries++) {
		uint32_t s1 = atomic_load(&r->seq), len;
		len = atomic_load(&r->len);
		if (len > SS_STATREG_SIZE - sizeof *r)
			len = SS_STATREG_SIZE - sizeof *r;
		memcpy(text, (const char *)r->text, len);
		atomic_thread_fence(memory_order_acquire);
		if (!(s1 & 1) && atomic_load(&r->seq) == s1) {
			fwrite(text, 1, len, stdout);
			break;
		}
		if (tries > 1000)
			die(1, "process %ld: its stats kept changing while read", pid);
	}
	free(text);
	return fflush(stdout) == 0 ? 0 : EXIT_SELF;
}

int main(int argc, char **argv)
{
	struct opts o;
	char *err;
	int fd;

	/* Fds 0-2 open, so that no file of ours takes their place. */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);

	switch (ss_args_parse(argc, argv, &o, &err)) {
	case SS_ARGS_HELP:
		fputs(usage_text, stdout);
		return 0;
	case SS_ARGS_VERSION:
		printf("smolscale %s\n", PACKAGE_VERSION);
		return 0;
	case SS_ARGS_RUN:
		return cmd_run(&o);
	case SS_ARGS_AB:
		return cmd_ab(&o);
	case SS_ARGS_STATS:
		return cmd_stats(&o);
	}
	if (!err)
		die(EXIT_SELF, "out of memory");
	usage_error(err);
}
