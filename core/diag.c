/*
 * diag.c - seeing inside: stall reports, the live stats region and the
 * stats signal, all served by one hidden thread, ss-diag.
 *
 * Stall reports (SMOLSCALE_STALL_REPORT=1).  The monitor counts a task
 * that keeps its worker past SMOLSCALE_STALL_REPORT_MS and queues it here
 * (ss__diag_stall); it never signals, symbolizes or writes itself.
 * ss-diag then
 *   1. checks that the same task still runs (the heartbeat tick),
 *   2. reads /proc/self/task/TID/syscall (what it is blocked in, if
 *      anything: no signal needed),
 *   3. captures the worker's stack: it arms the one capture slot and
 *      sends SIGURG to that thread (tgkill).  The handler, on the worker,
 *      walks its own stack from the signal's context with libunwind's
 *      local unwinder (signal-safe, libunwind doc/libunwind.tex) into the
 *      slot, notes the task's entry function, and marks the slot done,
 *   4. symbolizes the frames with dladdr, or the file's own symbol table
 *      (elfsym.c) where dladdr finds no dynamic symbol, and prints one
 *      report of the frames that are the program's (the scheduler's own
 *      frames below the task are cut), deduplicated by stack and rate-
 *      limited, to SMOLSCALE_LOG or standard error.
 * SIGURG, as Go's preemption uses it: its default action is to ignore it,
 * and programs rarely handle it.  If the program handles it, stacks are
 * not captured (one line says so).  A signal interrupts a system call:
 * SA_RESTART restarts read() and the like, but sleeps and poll() return
 * EINTR, as under any profiler; that is why reports are opt-in and each
 * long task is captured once.
 *
 * libunwind is loaded privately (dlopen RTLD_LOCAL) by ss-diag, never
 * linked: its unversioned _Unwind_* would otherwise take over C++
 * exception handling in hosts that do not link libgcc_s themselves
 * (RESEARCH.md 4.10: 25-30x slower throws).
 *
 * The capture slot's protocol (one slot; `state` orders the fields):
 *   IDLE -> ARMED   ss-diag fills tid, worker and tick, stores ARMED
 *                   (release), then signals
 *   ARMED -> BUSY   the handler, on the thread whose tid matches, by CAS
 *                   (acq_rel): only one handler ever fills the slot
 *   BUSY -> DONE    the handler, after filling frames (release)
 *   DONE -> IDLE    ss-diag, after reading them (acquire)
 *   ARMED -> IDLE   ss-diag on time-out, by CAS: a handler that comes late
 *                   finds the slot not armed and does nothing
 * A slot left BUSY by a handler that never finished (it cannot happen
 * short of a stuck unwinder) only means later reports come without
 * stacks.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "elfsym.h"
#include "got.h"
#include "internal.h"
#include "statreg.h"

#if defined(SS_VALGRIND)
/* Client requests: no-ops unless the program runs under valgrind. */
#include <valgrind/valgrind.h>
#endif

#define SS_FRAMES 48
#define CAPTURE_SIG SIGURG
#define CAPTURE_WAIT_NS 200000000u /* 200 ms for a handler to run */

/* ------------------------------------------------------------ the log */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static dev_t log_dev;
static ino_t log_ino;

/* The path log_fd was opened from; under log_lock, as log_fd. */
static char log_opened[sizeof ((struct ss_config *)0)->log_path];

/* Under log_lock: opens PATH as the log, out of the low numbers; -1 with
 * errno if it cannot be opened. */
static int log_open_locked(const char *path)
{
	struct stat st;
	int fd, hi;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
	          0600);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	/* Out of the low numbers, which daemons close and reopen. */
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	log_fd = fd;
	log_dev = st.st_dev;
	log_ino = st.st_ino;
	snprintf(log_opened, sizeof log_opened, "%s", path);
	return fd;
}

/* Under log_lock: the log's descriptor.  The file is opened at load if
 * SMOLSCALE_LOG is set then (diag_early: before a setuid() or chroot()
 * can take it away), else at the first write, and checked before each
 * write: a program that closes every descriptor (or reuses the number)
 * must not get our reports in its own file. */
static int log_fd_locked(void)
{
	const char *path = ss__config()->log_path;
	struct stat st;

	if (!*path)
		return STDERR_FILENO;
	if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_dev == log_dev &&
	    st.st_ino == log_ino && !strcmp(path, log_opened))
		return log_fd;
	if (log_open_locked(path) < 0) {
		if (log_fd != -2)
			dprintf(STDERR_FILENO,
			        "smolscale: SMOLSCALE_LOG=\"%.200s\" cannot be opened (%s); writing to standard error\n",
			        path, strerror(errno));
		log_fd = -2; /* say it once */
		return STDERR_FILENO;
	}
	return log_fd;
}

void ss__log_write(const char *buf, size_t len)
{
	int fd;

	pthread_mutex_lock(&log_lock);
	fd = log_fd_locked();
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&log_lock);
}

/* ------------------------------------------------------------ futexes */

/* Not FUTEX_PRIVATE: the region's words are shared with a reader in
 * another process.  On private memory these work as well. */
static void futex_wait_shared(_Atomic uint32_t *addr, uint32_t val,
                              uint64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;

	if (timeout_ns) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tp = &ts;
	}
	syscall(SYS_futex, addr, FUTEX_WAIT, val, tp, NULL, 0);
}

static void futex_wake_shared(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------ state */

/* The region: a memfd mapping, or (no memfd) this private one, which
 * still carries the wake word for the process's own requests.  Published
 * with release once filled; read acquire by the signal handler. */
static struct {
	struct ss_statreg h;
	char text[SS_STATREG_SIZE - sizeof(struct ss_statreg)];
} private_reg;
static _Atomic(struct ss_statreg *) reg;
static int reg_fd = -1;
static ino_t reg_ino;      /* reg_fd's, to close only our own */
static bool diag_running; /* under exec.lock */

/* Stats signals received, and served (ss-diag's own). */
static _Atomic uint32_t sig_req;
static uint32_t sig_served;

/* The monitor's queue of long tasks to report: a small ring under a
 * spinlock, held for a few stores (the monitor must never wait long). */
#define STALLQ 16
static _Atomic uint32_t stallq_lock;
static struct stall_req {
	struct ss_worker *w;
	uint64_t tick, since_ns;
} stallq[STALLQ];
static unsigned stallq_head, stallq_len;
static _Atomic uint64_t stalls_dropped;

/* libunwind, loaded by ss-diag before the first capture. */
typedef int (*unw_init2_fn)(unw_cursor_t *, unw_context_t *, int);
typedef int (*unw_step_fn)(unw_cursor_t *);
typedef int (*unw_get_reg_fn)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
typedef int (*unw_init_fn)(unw_cursor_t *, unw_context_t *);
static struct {
	unw_init2_fn init2;
	unw_init_fn init;
	unw_step_fn step;
	unw_get_reg_fn get_reg;
} unw;

enum { CAP_IDLE, CAP_ARMED, CAP_BUSY, CAP_DONE };
static struct {
	_Atomic uint32_t state;
	_Atomic int32_t tid;
	_Atomic(struct ss_worker *) w;
	_Atomic uint64_t tick;
	/* Filled by the handler between BUSY and DONE. */
	int n;
	bool finished;   /* the task had ended when the signal came */
	bool fiber;
	void *entry;
	void *pc[SS_FRAMES];
} cap;
static bool capture_ok; /* ss-diag's: our handler is installed */
/* A ThreadSanitizer runtime is in the process (this library built with
 * it, or a host that is): set before the handler is installed. */
static bool walk_from_here;

/* Stall sites, for dedup and for the stats' top sites. */
#define NSITES 64
struct site {
	uint64_t hash;      /* of the stack (and entry) */
	uint64_t prekey;    /* of the entry and system call: known unsignalled */
	uint64_t count, max_ms, total_ms;
	char entry[300];
	char where[240];
};
static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static struct site sites[NSITES];
static unsigned nsites;
static _Atomic uint64_t reports_printed, reports_suppressed;

/* ------------------------------------------------------------ handlers */

static int walk(unw_cursor_t *c, void **pc, int max)
{
	unw_word_t ip;
	int n = 0;

	do {
		if (unw.get_reg(c, UNW_REG_IP, &ip) < 0 || ip == 0)
			break;
		pc[n++] = (void *)ip;
	} while (n < max && unw.step(c) > 0);
	return n;
}

/* ThreadSanitizer runs a handler later than the signal came (at the
 * thread's next interceptor), with the context of then: walk the stack as
 * it is now, from here.  (Not unw_backtrace: its cache is a thread-local
 * of a dlopen()ed library, whose first use on a thread allocates.)  The
 * context must stay live during the walk: one frame for both. */
static __attribute__((noinline)) int walk_from_this_frame(void **pc, int max)
{
	unw_context_t here;
	unw_cursor_t c;

	if (getcontext((ucontext_t *)&here) != 0 || unw.init(&c, &here) < 0)
		return 0;
	return walk(&c, pc, max);
}

static int unwind_here(void *ucv, void **pc, int max)
{
	unw_cursor_t c;

	if (!unw.init2)
		return 0;
	if (walk_from_here)
		return walk_from_this_frame(pc, max);
	if (unw.init2(&c, (unw_context_t *)ucv, UNW_INIT_SIGNAL_FRAME) < 0)
		return 0;
	return walk(&c, pc, max);
}

static void on_capture(int sig, siginfo_t *si, void *ucv)
{
	int saved = errno;
	uint32_t armed = CAP_ARMED;

	(void)sig;
	/* Ours: sent by tgkill from this process to this thread. */
	if (si->si_code != SI_TKILL || si->si_pid != getpid() ||
	    atomic_load_explicit(&cap.state, memory_order_acquire) != CAP_ARMED ||
	    atomic_load_explicit(&cap.tid, memory_order_relaxed) != gettid() ||
	    !atomic_compare_exchange_strong_explicit(&cap.state, &armed,
	                                             CAP_BUSY,
	                                             memory_order_acq_rel,
	                                             memory_order_acquire)) {
		errno = saved;
		return; /* not ours: SIGURG's default is to ignore it */
	}
	struct ss_worker *w = atomic_load_explicit(&cap.w, memory_order_relaxed);
	/* This thread is the worker: its own tick and task are stable. */
	cap.finished = atomic_load_explicit(&w->tick, memory_order_relaxed) !=
	               atomic_load_explicit(&cap.tick, memory_order_relaxed);
	cap.n = 0;
	cap.entry = NULL;
	cap.fiber = false;
	if (!cap.finished) {
		cap.entry = atomic_load_explicit(&w->entry, memory_order_relaxed);
		cap.fiber = atomic_load_explicit(&w->cur_fiber,
		                                 memory_order_relaxed);
		cap.n = unwind_here(ucv, cap.pc, SS_FRAMES);
	}
	atomic_store_explicit(&cap.state, CAP_DONE, memory_order_release);
	ss__futex_wake(&cap.state, 1);
	errno = saved;
}

static void kick(void)
{
	struct ss_statreg *r = atomic_load_explicit(&reg, memory_order_acquire);

	if (r) {
		atomic_fetch_add_explicit(&r->wake, 1, memory_order_release);
		futex_wake_shared(&r->wake);
	}
}

static void on_stats_signal(int sig)
{
	int saved = errno;

	(void)sig;
	atomic_fetch_add_explicit(&sig_req, 1, memory_order_relaxed);
	kick();
	errno = saved;
}

void ss__diag_unblock(void)
{
	sigset_t s;

	if (!ss__config()->stall_report)
		return;
	sigemptyset(&s);
	sigaddset(&s, CAPTURE_SIG);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

/* Install h (or sa) for sig unless the program has a disposition of its
 * own: a handler, or SIG_IGN (an ignored signal stays ignored across
 * exec, a handler does not: nohup'd programs rely on it).  Returns
 * whether ours is (now) installed. */
static bool install(int sig, void (*h)(int),
                    void (*sa)(int, siginfo_t *, void *), int flags)
{
	struct sigaction old, act;

	if (sigaction(sig, NULL, &old) != 0)
		return false;
	if (old.sa_flags & SA_SIGINFO ? old.sa_sigaction == sa
	                              : (h && old.sa_handler == h))
		return true;
	if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
		return false;
	memset(&act, 0, sizeof act);
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_RESTART | flags;
	if (sa) {
		act.sa_flags |= SA_SIGINFO;
		act.sa_sigaction = sa;
	} else {
		act.sa_handler = h;
	}
	return sigaction(sig, &act, NULL) == 0;
}

/* The capture handler runs on this (SA_ONSTACK): a fiber's stack may
 * have a few KiB left, and the unwinder needs about that. */
#define ALTSTACK_SIZE (64u * 1024u)

void ss__diag_worker_start(struct ss_worker *w)
{
	stack_t cur, st;

	if (!ss__config()->stall_report)
		return;
	/* A stack of the thread's own (a sanitizer's, say) is kept. */
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		goto unblock;
	if (!w->altstack) {
		void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (p == MAP_FAILED)
			goto unblock;
#if defined(SS_VALGRIND)
		/* So that memcheck takes the handler's move onto this stack
		 * from a fiber's for a change of stack.  The id is not kept:
		 * the stack is never unmapped (the slot keeps it for its next
		 * threads), so it is never deregistered. */
		(void)VALGRIND_STACK_REGISTER(p, (char *)p + ALTSTACK_SIZE);
#endif
		w->altstack = p;
	}
	st.ss_sp = w->altstack;
	st.ss_size = ALTSTACK_SIZE;
	st.ss_flags = 0;
	sigaltstack(&st, NULL);
unblock:
	ss__diag_unblock();
}

/* ------------------------------------------------------------ the region */

static struct ss_statreg *region_map(void)
{
	struct ss_statreg *r = MAP_FAILED;
	struct rlimit rl;
	struct stat st;
	int fd, hi;

	fd = memfd_create(SS_STATREG_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	/* Sealed at its size: a reader (any process of the user) cannot
	 * shrink it under us, which would fault our next store (SIGBUS). */
	if (fd >= 0 && ftruncate(fd, SS_STATREG_SIZE) == 0 &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
		r = mmap(NULL, SS_STATREG_SIZE, PROT_READ | PROT_WRITE,
		         MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		if (fd >= 0)
			close(fd);
		r = &private_reg.h;
		fd = -1;
	} else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 256) {
		/* Out of the way of a program that expects its next open()
		 * to return the lowest numbers, but not far: the kernel's
		 * table grows to the highest descriptor, and every fork()
		 * copies it (a descriptor at 65472 made each fork copy half
		 * a megabyte). */
		hi = fcntl(fd, F_DUPFD_CLOEXEC,
		           (int)((rl.rlim_cur > 1024 ? 1024 : rl.rlim_cur) - 64));
		if (hi >= 0) {
			close(fd);
			fd = hi;
		}
	}
	memset(r, 0, sizeof *r);
	memcpy(r->magic, SS_STATREG_MAGIC, sizeof r->magic);
	r->version = SS_STATREG_VERSION;
	r->size = SS_STATREG_SIZE;
	r->pid = getpid();
	reg_fd = fd;
	if (fd >= 0 && fstat(fd, &st) == 0)
		reg_ino = st.st_ino;
	return r;
}

static void region_publish(struct ss_statreg *r, const char *text, size_t len)
{
	/* Our constant, not r->size: the region is writable by readers. */
	size_t cap_len = SS_STATREG_SIZE - sizeof *r;
	uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);

	if (len > cap_len)
		len = cap_len;
	/* Odd before any byte of text changes: the acquire half of the
	 * exchange keeps the copy below after it (a fence would do, but
	 * ThreadSanitizer does not model fences). */
	atomic_exchange_explicit(&r->seq, s + 1, memory_order_acq_rel);
	memcpy(r->text, text, len);
	atomic_store_explicit(&r->len, (uint32_t)len, memory_order_relaxed);
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

/* ------------------------------------------------------------ symbols */

/* ss-diag's cache of symbol tables read from files (elfsym.c). */
#define NELF 16
static struct {
	char path[256];
	struct ss_elf *elf; /* NULL: the file has none we can read */
} elfs[NELF];
static unsigned nelfs;

static struct ss_elf *elf_for(const char *path)
{
	for (unsigned i = 0; i < nelfs; i++)
		if (strcmp(elfs[i].path, path) == 0)
			return elfs[i].elf;
	if (strlen(path) >= sizeof elfs[0].path)
		return NULL;
	unsigned i = nelfs < NELF ? nelfs++ : NELF - 1;
	if (elfs[i].elf)
		ss__elf_close(elfs[i].elf);
	strcpy(elfs[i].path, path);
	elfs[i].elf = ss__elf_open(path);
	return elfs[i].elf;
}

struct frame {
	char name[128];   /* "fn+0x1c", or "??" */
	char where[128];  /* "libfoo.so+0x1234" (link-time address) */
	bool ours;        /* in the object this code is in */
};

static const void *self_base(void)
{
	static Dl_info self;

	if (!self.dli_fbase)
		dladdr((void *)self_base, &self);
	return self.dli_fbase;
}

/* caller: a return address (look up the call, one byte before it). */
static void symbolize(void *pc, bool caller, struct frame *f)
{
	uintptr_t q = (uintptr_t)pc - (caller ? 1 : 0);
	struct link_map *lm = NULL;
	const char *mod, *path;
	Dl_info di;

	f->ours = false;
	if (!dladdr1((void *)q, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm) {
		snprintf(f->name, sizeof f->name, "??");
		snprintf(f->where, sizeof f->where, "%p", pc);
		return;
	}
	f->ours = di.dli_fbase == self_base();
	path = lm->l_name && lm->l_name[0] ? lm->l_name : "/proc/self/exe";
	mod = lm->l_name && lm->l_name[0] ? lm->l_name
	                                  : program_invocation_name;
	if (strrchr(mod, '/'))
		mod = strrchr(mod, '/') + 1;
	snprintf(f->where, sizeof f->where, "%s+0x%lx", mod,
	         (unsigned long)((uintptr_t)pc - lm->l_addr));
	if (di.dli_sname && di.dli_saddr) {
		snprintf(f->name, sizeof f->name, "%s+0x%lx", di.dli_sname,
		         (unsigned long)(q + (caller ? 1 : 0) -
		                         (uintptr_t)di.dli_saddr));
		return;
	}
	char sym[96];
	uintptr_t off;
	struct ss_elf *e = elf_for(path);
	if (e && ss__elf_symbolize(e, q - lm->l_addr, sym, sizeof sym, &off) == 0)
		snprintf(f->name, sizeof f->name, "%s+0x%lx", sym,
		         (unsigned long)(off + (caller ? 1 : 0)));
	else
		snprintf(f->name, sizeof f->name, "??");
}

/* "name+0x10" -> "name" for the summary of a site. */
static void bare(char *dst, size_t len, const char *name)
{
	size_t n = strcspn(name, "+");

	if (n >= len)
		n = len - 1;
	memcpy(dst, name, n);
	dst[n] = '\0';
}

/* ------------------------------------------------------------ reports */

/* What the thread is doing in the kernel, read without a signal. */
static void syscall_of(int tid, char *out, size_t len)
{
	static const struct {
		long nr;
		const char *name;
	} names[] = {
		{ SYS_read, "read" }, { SYS_write, "write" },
		{ SYS_pread64, "pread64" }, { SYS_pwrite64, "pwrite64" },
		{ SYS_readv, "readv" }, { SYS_writev, "writev" },
		{ SYS_recvfrom, "recvfrom" }, { SYS_recvmsg, "recvmsg" },
		{ SYS_sendto, "sendto" }, { SYS_sendmsg, "sendmsg" },
		{ SYS_ppoll, "ppoll" }, { SYS_pselect6, "pselect6" },
		{ SYS_epoll_pwait, "epoll_pwait" },
		{ SYS_clock_nanosleep, "clock_nanosleep" },
		{ SYS_futex, "futex" }, { SYS_waitid, "waitid" },
		{ SYS_wait4, "wait4" }, { SYS_accept4, "accept4" },
		{ SYS_connect, "connect" }, { SYS_openat, "openat" },
		{ SYS_fsync, "fsync" }, { SYS_fdatasync, "fdatasync" },
		{ SYS_flock, "flock" }, { SYS_fcntl, "fcntl" },
		{ SYS_rt_sigtimedwait, "rt_sigtimedwait" },
		{ SYS_semtimedop, "semtimedop" },
		{ SYS_io_getevents, "io_getevents" },
#ifdef SYS_poll
		{ SYS_poll, "poll" }, { SYS_select, "select" },
		{ SYS_epoll_wait, "epoll_wait" }, { SYS_nanosleep, "nanosleep" },
		{ SYS_accept, "accept" }, { SYS_pause, "pause" },
#endif
	};
	char path[64], buf[64];
	long nr;
	int fd;
	ssize_t n;

	snprintf(out, len, "unknown");
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strncmp(buf, "running", 7) == 0) {
		snprintf(out, len, "on a CPU");
		return;
	}
	if (sscanf(buf, "%ld", &nr) != 1)
		return;
	if (nr < 0) {
		snprintf(out, len, "blocked outside a system call");
		return;
	}
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].nr == nr) {
			snprintf(out, len, "in the system call %s", names[i].name);
			return;
		}
	snprintf(out, len, "in system call %ld", nr);
}

/* Arm the slot for w, signal it, wait for the handler.  Returns the
 * number of frames (cap.pc), or -1 with *why set. */
static int capture(struct ss_worker *w, int tid, uint64_t tick,
                   const char **why)
{
	struct sigaction cur;
	uint32_t st = atomic_load_explicit(&cap.state, memory_order_acquire);
	uint64_t deadline;

	if (!capture_ok) {
		*why = unw.init2 ? "the program handles SIGURG itself"
		                 : "libunwind.so.8 could not be loaded";
		return -1;
	}
	/* A program may take SIGURG over after we installed ours. */
	if (sigaction(CAPTURE_SIG, NULL, &cur) != 0 ||
	    !(cur.sa_flags & SA_SIGINFO) || cur.sa_sigaction != on_capture) {
		capture_ok = false;
		*why = "the program handles SIGURG itself";
		return -1;
	}
	if (st == CAP_DONE) /* a late handler from before */
		atomic_store_explicit(&cap.state, CAP_IDLE, memory_order_relaxed);
	else if (st != CAP_IDLE) {
		*why = "an earlier capture never finished";
		return -1;
	}
	atomic_store_explicit(&cap.tid, tid, memory_order_relaxed);
	atomic_store_explicit(&cap.w, w, memory_order_relaxed);
	atomic_store_explicit(&cap.tick, tick, memory_order_relaxed);
	atomic_store_explicit(&cap.state, CAP_ARMED, memory_order_release);
	if (syscall(SYS_tgkill, getpid(), tid, CAPTURE_SIG) != 0) {
		atomic_store_explicit(&cap.state, CAP_IDLE, memory_order_relaxed);
		*why = "the worker could not be signalled";
		return -1;
	}
	deadline = ss__now_ns() + CAPTURE_WAIT_NS;
	for (;;) {
		uint64_t now = ss__now_ns();
		st = atomic_load_explicit(&cap.state, memory_order_acquire);
		if (st == CAP_DONE)
			break;
		if (now >= deadline) {
			uint32_t armed = CAP_ARMED;
			if (atomic_compare_exchange_strong(&cap.state, &armed,
			                                   CAP_IDLE)) {
				*why = "the worker did not take the signal (it blocks SIGURG?)";
				return -1;
			}
			if (armed == CAP_DONE)
				break;
			*why = "the worker's stack walk did not finish";
			return -1;
		}
		ss__futex_wait(&cap.state, st, deadline - now);
	}
	int n = cap.finished ? -1 : cap.n;
	if (cap.finished)
		*why = "the task ended first";
	return n;
}

static uint64_t hash_frames(void *const *pc, int n, const void *entry)
{
	uint64_t h = 1469598103934665603ull ^ (uintptr_t)entry;

	for (int i = 0; i < n; i++) {
		h ^= (uintptr_t)pc[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t strhash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static void site_add(struct site *st, uint64_t ms)
{
	st->count++;
	st->total_ms += ms;
	if (ms > st->max_ms)
		st->max_ms = ms;
}

/* A stall whose entry function and system call match a site already
 * reported: count it there, without a signal.  Returns whether it did. */
static bool site_count_known(uint64_t prekey, uint64_t ms)
{
	bool found = false;

	pthread_mutex_lock(&site_lock);
	for (unsigned i = 0; i < nsites && !found; i++)
		if (sites[i].prekey == prekey) {
			site_add(&sites[i], ms);
			found = true;
		}
	pthread_mutex_unlock(&site_lock);
	return found;
}

/* Count a stall at its site (by stack); returns whether the site is new. */
static bool site_count(uint64_t hash, uint64_t prekey, uint64_t ms,
                       const char *entry, const char *where)
{
	bool fresh = false;
	unsigned i;

	pthread_mutex_lock(&site_lock);
	for (i = 0; i < nsites && sites[i].hash != hash; i++)
		;
	if (i == nsites) {
		fresh = true;
		if (nsites < NSITES) {
			nsites++;
		} else { /* replace the least seen */
			unsigned m = 0;
			for (unsigned j = 1; j < NSITES; j++)
				if (sites[j].count < sites[m].count)
					m = j;
			i = m;
		}
		memset(&sites[i], 0, sizeof sites[i]);
		sites[i].hash = hash;
		sites[i].prekey = prekey;
		snprintf(sites[i].entry, sizeof sites[i].entry, "%s", entry);
		snprintf(sites[i].where, sizeof sites[i].where, "%s", where);
	}
	site_add(&sites[i], ms);
	pthread_mutex_unlock(&site_lock);
	return fresh;
}

/* Token bucket: 10 captures (signals) and reports at once, then one per
 * 6 s; taken before the signal is sent. */
static bool report_allowed(void)
{
	static double tokens = 10;
	static uint64_t at;
	uint64_t now = ss__now_ns();

	if (at)
		tokens += (double)(now - at) / 6e9;
	if (tokens > 10)
		tokens = 10;
	at = now;
	if (tokens < 1)
		return false;
	tokens -= 1;
	return true;
}

static void report_stall(const struct stall_req *q)
{
	struct ss_worker *w = q->w;
	int tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
	const char *why = NULL;
	char state[64], entry[300], where[240], *buf;
	struct frame fr, ef;
	size_t len = 0, cap_len = 16384;
	uint64_t ms, prekey;
	int n, first = 0, last;

	/* Still that task?  A slot reused by another thread has another
	 * tick: the heartbeat only grows. */
	if (atomic_load_explicit(&w->tick, memory_order_relaxed) != q->tick ||
	    atomic_load_explicit(&w->slot_state, memory_order_relaxed) !=
	            SS_SLOT_LIVE || tid <= 0)
		return;
	syscall_of(tid, state, sizeof state);
	ms = (ss__now_ns() - q->since_ns) / 1000000u;
	/* Before any signal: the same function stalled in the same way as
	 * one reported before is counted there, and signals are rate
	 * limited, since each may interrupt a system call (EINTR). */
	prekey = strhash(state) ^
	         ((uintptr_t)atomic_load_explicit(&w->entry,
	                                          memory_order_relaxed) *
	          0x9e3779b97f4a7c15ull);
	if (site_count_known(prekey, ms) || !report_allowed()) {
		atomic_fetch_add_explicit(&reports_suppressed, 1,
		                          memory_order_relaxed);
		return;
	}
	n = capture(w, tid, q->tick, &why);
	if (n < 0 && why && strcmp(why, "the task ended first") == 0)
		return;

	/* The program's frames: the scheduler's own, below the task (the
	 * worker loop, a fiber's start, the shim's trampoline), are cut; so
	 * are any above it (the signal's, under ThreadSanitizer). */
	last = n;
	if (n > 0) {
		symbolize(cap.pc[0], false, &fr);
		while (first < n - 1 && fr.ours)
			symbolize(cap.pc[++first], true, &fr);
		for (last = first + 1; last < n; last++) {
			symbolize(cap.pc[last], true, &fr);
			if (fr.ours)
				break;
		}
	}
	if (n > 0 && cap.entry) {
		symbolize(cap.entry, false, &ef);
		char b[128];
		bare(b, sizeof b, ef.name);
		snprintf(entry, sizeof entry, "%s (%s)", b, ef.where);
	} else {
		snprintf(entry, sizeof entry, "unknown");
	}
	where[0] = '\0';
	for (int i = first; i < last && i < first + 4 && n > 0; i++) {
		char b[128];
		symbolize(cap.pc[i], i > 0, &fr);
		bare(b, sizeof b, fr.name);
		snprintf(where + strlen(where), sizeof where - strlen(where),
		         "%s%s", i > first ? " < " : "", b);
	}
	if (!where[0])
		snprintf(where, sizeof where, "%s", state);
	/* Without a stack, all that is known is the system call. */
	uint64_t h = n > 0 ? hash_frames(cap.pc + first, last - first,
	                                 cap.entry)
	                   : hash_frames(NULL, 0, NULL) ^ strhash(state);
	if (!site_count(h, prekey, ms, entry, where)) {
		atomic_fetch_add_explicit(&reports_suppressed, 1,
		                          memory_order_relaxed);
		return; /* the same stack was reported before */
	}
	if (!(buf = malloc(cap_len)))
		return;
	len += (size_t)snprintf(buf + len, cap_len - len,
	                        "smolscale: stall: worker %d (thread %d) has run one %s for %llu ms, %s; entry %s\n",
	                        w->id, tid, n > 0 && cap.fiber ? "fiber" : "task",
	                        (unsigned long long)ms, state, entry);
	if (n < 0)
		len += (size_t)snprintf(buf + len, cap_len - len,
		                        "smolscale: stall:   (no stack: %s)\n", why);
	for (int i = first; i < last && len < cap_len - 512; i++) {
		symbolize(cap.pc[i], i > 0, &fr);
		len += (size_t)snprintf(buf + len, cap_len - len,
		                        "smolscale: stall:   #%d %s (%s)\n",
		                        i - first, fr.name, fr.where);
	}
	if (n > 0)
		atomic_store_explicit(&cap.state, CAP_IDLE, memory_order_relaxed);
	ss__log_write(buf, len);
	free(buf);
	atomic_fetch_add_explicit(&reports_printed, 1, memory_order_relaxed);
}

void ss__diag_stall(struct ss_worker *w, uint64_t tick, uint64_t since_ns)
{
	bool queued = false;

	ss__spin_lock(&stallq_lock);
	if (stallq_len < STALLQ) {
		stallq[(stallq_head + stallq_len++) % STALLQ] =
			(struct stall_req){ w, tick, since_ns };
		queued = true;
	}
	ss__spin_unlock(&stallq_lock);
	if (queued)
		kick();
	else
		atomic_fetch_add_explicit(&stalls_dropped, 1,
		                          memory_order_relaxed);
}

void ss__diag_stats(FILE *f)
{
	struct site top[5];
	unsigned n = 0, all;

	pthread_mutex_lock(&site_lock);
	all = nsites;
	for (unsigned i = 0; i < nsites; i++) {
		unsigned j;
		if (n < 5)
			j = n++;
		else if (sites[i].count <= top[4].count)
			continue;
		else
			j = 4;
		top[j] = sites[i];
		for (; j > 0 && top[j].count > top[j - 1].count; j--) {
			struct site t = top[j];
			top[j] = top[j - 1];
			top[j - 1] = t;
		}
	}
	pthread_mutex_unlock(&site_lock);
	fprintf(f, "smolscale: stall-reports printed=%llu suppressed=%llu dropped=%llu sites=%u\n",
	        (unsigned long long)atomic_load(&reports_printed),
	        (unsigned long long)atomic_load(&reports_suppressed),
	        (unsigned long long)atomic_load(&stalls_dropped), all);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "smolscale: stall-site %u count=%llu max_ms=%llu total_ms=%llu entry=%s at %s\n",
		        i + 1, (unsigned long long)top[i].count,
		        (unsigned long long)top[i].max_ms,
		        (unsigned long long)top[i].total_ms, top[i].entry,
		        top[i].where);
}

/* ------------------------------------------------------------ ss-diag */

#define XSTR(x) STR(x)
#define STR(x) #x

/* libunwind's memory probe.
 *
 * Debian's libunwind 1.6 (x86-64, built with CONSERVATIVE_CHECKS) checks
 * that each new page it reads during a step is readable by write()ing a
 * byte of it to a pipe of its own (src/x86_64/Ginit.c, write_validate).
 * It makes that pipe with pipe2() when it initializes, on the two lowest
 * free descriptors, and keeps them.  A program that counts on open()
 * returning the lowest free number then gets another one; a program that
 * closes every descriptor and reuses the numbers has libunwind read from
 * and write to its files, or block for ever in read() on its empty pipe
 * inside our handler: a worker that never comes back (tests/hostile,
 * closefds-*-stall).
 *
 * So the copy of libunwind that we load gets two of its GOT slots
 * redirected before its first use:
 *   pipe2()   makes no pipe: both ends stay -1.  libunwind's read() of
 *             descriptor -1 then fails with EBADF, which it takes as "open
 *             the pipe again": this pipe2() again, and no descriptor.
 *   syscall(SYS_write, -1, addr, 1), the probe itself, becomes
 *             process_vm_readv() of that byte from our own process: it
 *             fails (EFAULT) where write() would, since both copy from the
 *             address with the page's protection, and it needs no
 *             descriptor.  Any other syscall() passes through.
 * Where process_vm_readv() is refused (a seccomp filter), only pipe2() is
 * redirected, to one that moves both ends of the pipe to high numbers.
 * Where libunwind has no such slots (another version or architecture),
 * nothing is changed. */
/* Written once, by ss-diag, before the slots that lead to its readers
 * are stored (release): a thread that calls through a redirected slot
 * sees it set.  Plain: never written again. */
static bool probe_by_vm_readv;

static bool readable_byte(const void *addr)
{
	char byte;
	struct iovec local = { &byte, 1 }, remote = { (void *)addr, 1 };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
}

static int unw_pipe2(int fds[2], int flags)
{
	if (probe_by_vm_readv) {
		fds[0] = fds[1] = -1;
		return 0;
	}
	if (pipe2(fds, flags) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		int hi = fcntl(fds[i], F_DUPFD_CLOEXEC, 900);
		if (hi >= 0) {
			close(fds[i]);
			fds[i] = hi;
		}
	}
	return 0;
}

static long unw_syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	/* As glibc's syscall() does: six argument registers, whether the
	 * caller passed them or not. */
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* libunwind passes the descriptor and the length as int: the
	 * registers' upper halves are not defined. */
	if (nr == SYS_write && (int)a[0] == -1 && (int)a[2] == 1 &&
	    probe_by_vm_readv) {
		if (readable_byte((const void *)a[1]))
			return 1;
		errno = EFAULT;
		return -1;
	}
	return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* redirect_in's dl_iterate_phdr context. */
struct unw_redirect {
	uintptr_t base;
	const char *name;
	void **pipe2_slot, **syscall_slot;
};

static void find_unw_slot(void *arg, const char *name, void **slot)
{
	struct unw_redirect *r = arg;

	if (!strcmp(name, "pipe2"))
		r->pipe2_slot = slot;
	else if (!strcmp(name, "syscall"))
		r->syscall_slot = slot;
}

/* In libunwind's object (under the loader's list lock, so it cannot be
 * unloaded meanwhile), the two slots found and then written. */
static int redirect_in(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct unw_redirect *r = arg;
	int here = 0;

	(void)size;
	if (info->dlpi_addr != r->base || !info->dlpi_name ||
	    strcmp(info->dlpi_name, r->name))
		return 0;
	ss__got_each(info, find_unw_slot, r);
	if (!r->pipe2_slot)
		return 1;
	probe_by_vm_readv = r->syscall_slot && readable_byte(&here);
	if (probe_by_vm_readv)
		ss__got_write(info, r->syscall_slot, (void *)unw_syscall);
	ss__got_write(info, r->pipe2_slot, (void *)unw_pipe2);
	return 1;
}

static void redirect_unw_probe(void *h)
{
	struct link_map *lm;
	struct unw_redirect r = { 0 };

	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm->l_name)
		return;
	r.base = lm->l_addr;
	r.name = lm->l_name;
	dl_iterate_phdr(redirect_in, &r);
}

static void load_libunwind(void)
{
	/* RTLD_NOW: no lazy binding inside the handler (the resolver's frame
	 * on the signal stack, and its locks). */
	void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_STALL_REPORT=1: libunwind.so.8 cannot be loaded (%s); stall reports come without stacks\n",
		        dlerror());
		return;
	}
	unw.init2 = (unw_init2_fn)dlsym(h, XSTR(unw_init_local2));
	unw.init = (unw_init_fn)dlsym(h, XSTR(unw_init_local));
	unw.step = (unw_step_fn)dlsym(h, XSTR(unw_step));
	unw.get_reg = (unw_get_reg_fn)dlsym(h, XSTR(unw_get_reg));
	if (!unw.init2 || !unw.init || !unw.step ||
	    !unw.get_reg) {
		unw.init2 = NULL;
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_STALL_REPORT=1: libunwind.so.8 lacks unw_init_local2; stall reports come without stacks\n");
		return;
	}
	redirect_unw_probe(h);
	/* The first walk initializes libunwind (tdep_init, its caches,
	 * under locks with signals blocked): here, not first in a handler. */
	unw_context_t uc;
	unw_cursor_t c;
	/* glibc's getcontext fills the ucontext_t that is libunwind's
	 * unw_context_t on x86-64 and aarch64. */
	if (getcontext((ucontext_t *)&uc) == 0 && unw.init(&c, &uc) == 0)
		while (unw.step(&c) > 0)
			;
#if defined(__SANITIZE_THREAD__)
	walk_from_here = true;
#else
	walk_from_here = dlsym(RTLD_DEFAULT, "__tsan_init") != NULL;
#endif
	if (install(CAPTURE_SIG, NULL, on_capture, SA_ONSTACK))
		capture_ok = true;
	else
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_STALL_REPORT=1: the program handles SIGURG itself; stall reports come without stacks\n");
}

static void serve_stats(struct ss_statreg *r)
{
	uint32_t q = atomic_load_explicit(&sig_req, memory_order_relaxed);
	uint32_t want = atomic_load_explicit(&r->req, memory_order_acquire);
	uint32_t done = atomic_load_explicit(&r->done, memory_order_relaxed);
	char *text;
	size_t len;

	if (q == sig_served && want == done)
		return;
	if (!(text = ss__stats_text(&len)))
		return;
	if (q != sig_served) {
		sig_served = q;
		ss__log_write(text, len);
	}
	if (want != done) {
		region_publish(r, text, len);
		atomic_store_explicit(&r->done, want, memory_order_release);
		futex_wake_shared(&r->done);
	}
	free(text);
}

static void *diag_main(void *arg)
{
	struct ss_statreg *r = arg;
	const struct ss_config *c = ss__config();

	ss__thread_set_name("ss-diag");
	if (c->stall_report)
		load_libunwind();
	for (;;) {
		uint32_t seen = atomic_load_explicit(&r->wake,
		                                     memory_order_acquire);
		struct stall_req q;
		bool have;

		serve_stats(r);
		for (;;) {
			ss__spin_lock(&stallq_lock);
			have = stallq_len > 0;
			if (have) {
				q = stallq[stallq_head];
				stallq_head = (stallq_head + 1) % STALLQ;
				stallq_len--;
			}
			ss__spin_unlock(&stallq_lock);
			if (!have)
				break;
			report_stall(&q);
			serve_stats(r); /* a capture may take a while */
		}
		futex_wait_shared(&r->wake, seen, 0);
	}
	return NULL;
}

void ss__diag_start_locked(void)
{
	const struct ss_config *c = ss__config();
	struct ss_statreg *r;

	if (diag_running)
		return;
	r = atomic_load_explicit(&reg, memory_order_relaxed);
	if (!r) {
		r = region_map();
		atomic_store_explicit(&reg, r, memory_order_release);
	}
	if (ss__thread_start("ss-diag", diag_main, r) != 0)
		return; /* no reports, no live stats: the pool runs on */
	diag_running = true;
	if (c->stats_signal && !install(c->stats_signal, on_stats_signal, NULL, 0))
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_STATS_SIGNAL=%d: the program handles that signal itself; not installed\n",
		        c->stats_signal);
}

/* At load, not only when the pool starts (ss__config reads the variables
 * then, so a program may still set them; these two are read here too):
 *  - SMOLSCALE_STATS_SIGNAL is installed: a signal whose default is to
 *    end the process must not end it before the pool starts;
 *  - SMOLSCALE_LOG is opened: a program may setuid(), chroot() or drop
 *    its rights before its first report, and natively its messages
 *    still reach the stderr it was given.  A failure says nothing yet:
 *    the first write tries again and says it. */
__attribute__((constructor)) static void diag_early(void)
{
	const char *v = getenv("SMOLSCALE_STATS_SIGNAL");
	const char *log = secure_getenv("SMOLSCALE_LOG");
	int sig = v && *v ? ss__parse_signal(v) : -1;

	if (sig > 0)
		install(sig, on_stats_signal, NULL, 0);
	if (log && *log && strlen(log) < sizeof log_opened) {
		pthread_mutex_lock(&log_lock);
		if (log_fd == -1)
			log_open_locked(log);
		pthread_mutex_unlock(&log_lock);
	}
}

void ss__diag_after_fork(void)
{
	struct ss_statreg *r = atomic_load_explicit(&reg, memory_order_relaxed);
	struct stat st;

	/* The parent's region: the child gets its own at its pool's start.
	 * Unpublished before it is unmapped (a stats signal may come). */
	atomic_store_explicit(&reg, NULL, memory_order_seq_cst);
	if (r && r != &private_reg.h)
		munmap(r, SS_STATREG_SIZE);
	if (reg_fd >= 0 && fstat(reg_fd, &st) == 0 && st.st_ino == reg_ino)
		close(reg_fd);
	reg_fd = -1;
	diag_running = false;
	stallq_len = 0;
	atomic_store_explicit(&stallq_lock, 0, memory_order_relaxed);
	/* A capture the parent had armed concerns none of our threads. */
	atomic_store_explicit(&cap.state, CAP_IDLE, memory_order_relaxed);
	pthread_mutex_init(&site_lock, NULL);
	pthread_mutex_init(&log_lock, NULL);
}
