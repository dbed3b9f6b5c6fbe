/*
 * fault.c - fault injection into the core (issue 8): a workload that
 * touches every allocation and thread-creation site of the core, linked
 * with the core's calls wrapped (tests/fault/local.mk: -Wl,--wrap=malloc
 * and the rest), so that one chosen call fails.
 *
 * The wrappers count every call per function and per call site (the
 * return address, as an offset into this executable) and, as FI_MODE
 * says:
 *   count    fail nothing (run.sh learns the calls and sites);
 *   nth      fail the FI_N-th call of FI_FN;
 *   site     fail the FI_N-th call of FI_FN made from FI_SITE (hex offset);
 *   persist  fail every call of FI_FN from the FI_N-th on for FI_PERSIST_MS
 *            milliseconds after the first failure (thread creation: the
 *            pool must retry with back-off and lose nothing).
 * A failed allocation returns NULL / ENOMEM (posix_memalign: ENOMEM;
 * mmap: MAP_FAILED; mprotect, memfd_create: -1; dlopen: NULL with dlerror
 * set by a real failing dlopen), a failed pthread_create EAGAIN.
 *
 * Every API call's result is checked against smolscale.h: success, or
 * the documented code for a failed allocation or thread (ENOMEM, EAGAIN,
 * NULL), and only once a failure was injected.  Every task, plain, fiber,
 * group, nested, detached or cancelled, has a slot that counts its runs:
 * at the end each one that was spawned ran exactly once (or was cancelled
 * and never ran), and none ran that was not spawned.
 *
 * Report lines (FI_REPORT, appended; else standard error):
 *   calls FN K             calls of FN in this run
 *   site FN OFF K          K calls of FN from offset OFF of the executable
 *   inject FN OFF CALL SITECALL THREAD   a failure was injected (first only)
 *   frame exe+0xOFF | frame LIB+0xOFF    its backtrace (run.sh symbolizes)
 *   injected FN COUNT      failures injected in all
 *   lost ID PHASE / doubled ID PHASE N / ghost ID PHASE N
 *   lost-message chan sent=S received=R
 *   contract PHASE TEXT
 *   note TEXT, time PHASE MS   what the workload saw, for a reader
 * Exit status: 0 all good, 3 a task lost or run twice (or one that should
 * not have run), 4 a contract violation, 2 bad usage.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "smolscale.h"

/* ================================================================ wrappers */

enum {
	F_MALLOC,
	F_CALLOC,
	F_REALLOC,
	F_POSIX_MEMALIGN,
	F_ALIGNED_ALLOC,
	F_MMAP,
	F_MPROTECT,
	F_MEMFD_CREATE,
	F_OPEN_MEMSTREAM,
	F_DLOPEN,
	F_PTHREAD_CREATE,
	NFN
};

static const char *const fn_names[NFN] = {
	"malloc",         "calloc",        "realloc",  "posix_memalign",
	"aligned_alloc",  "mmap",          "mprotect", "memfd_create",
	"open_memstream", "dlopen",        "pthread_create",
};

enum { M_COUNT, M_NTH, M_SITE, M_PERSIST };

static struct {
	int mode;
	int fn;             /* -1: none */
	unsigned long n;
	uintptr_t site;     /* offset into the executable */
	uint64_t persist_ns;
	int report_fd;
} cfg = { M_COUNT, -1, 0, 0, 0, 2 };

#define NSITES 128
struct site {
	_Atomic uintptr_t off; /* 0: free */
	atomic_ulong n;
};
static struct site sites[NFN][NSITES];
static atomic_ulong calls[NFN];
static atomic_ulong injected;        /* failures injected */
static atomic_uint_fast64_t persist_t0; /* first failure, ns (persist) */

extern char __executable_start[];

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__real_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
int __real_mprotect(void *a, size_t n, int prot);
int __real_memfd_create(const char *name, unsigned int flags);
FILE *__real_open_memstream(char **p, size_t *n);
void *__real_dlopen(const char *f, int flags);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A line to the report, in one write, without allocating. */
__attribute__((format(printf, 1, 2))) static void rep(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	if (write(cfg.report_fd, buf, (size_t)n) < 0)
		return;
}

static uintptr_t offset_of(const void *pc)
{
	return (uintptr_t)pc - (uintptr_t)__executable_start;
}

/* The calls so far of fn from site off, this one included. */
static unsigned long site_hit(int fn, uintptr_t off)
{
	for (unsigned i = 0; i < NSITES; i++) {
		struct site *s = &sites[fn][(off / 16 + i) % NSITES];
		uintptr_t cur = atomic_load(&s->off);

		if (cur == 0) {
			uintptr_t zero = 0;
			if (atomic_compare_exchange_strong(&s->off, &zero, off))
				cur = off;
			else
				cur = zero;
		}
		if (cur == off)
			return atomic_fetch_add(&s->n, 1) + 1;
	}
	return 0;
}

/* The backtrace of an injected failure, from the wrapper's caller (ra)
 * on. */
static __attribute__((noinline)) void write_backtrace(const void *ra)
{
	void *pcs[32];
	int n = backtrace(pcs, 32), i = 0;

	while (i < n && pcs[i] != ra)
		i++;
	if (i == n)
		i = 0;
	for (; i < n; i++) {
		Dl_info di;
		if (dladdr(pcs[i], &di) && di.dli_fbase == (void *)__executable_start)
			rep("frame exe+0x%lx", (unsigned long)offset_of(pcs[i]));
		else if (dladdr(pcs[i], &di) && di.dli_fname)
			rep("frame %s+0x%lx", di.dli_fname,
			    (unsigned long)((uintptr_t)pcs[i] -
			                    (uintptr_t)di.dli_fbase));
		else
			rep("frame ?%p", pcs[i]);
	}
}

/* The site of a call: its return address, but for pthread_create (whose
 * only caller is ss__thread_start) the return address in the caller of
 * ss__thread_start, which says which thread it was: a worker, the monitor,
 * the balancer, the timer or ss-diag. */
static __attribute__((noinline)) uintptr_t site_of(int fn, const void *ra)
{
	void *pcs[8];
	int n;

	if (fn != F_PTHREAD_CREATE)
		return offset_of(ra);
	n = backtrace(pcs, 8);
	for (int i = 0; i + 1 < n; i++)
		if (pcs[i] == ra)
			return offset_of(pcs[i + 1]);
	return offset_of(ra);
}

static __attribute__((noinline)) bool should_fail(int fn, const void *ra)
{
	uintptr_t off = site_of(fn, ra);
	unsigned long k = atomic_fetch_add(&calls[fn], 1) + 1;
	unsigned long sk = site_hit(fn, off);
	bool fail = false;

	if (fn != cfg.fn)
		return false;
	switch (cfg.mode) {
	case M_NTH:
		fail = k == cfg.n;
		break;
	case M_SITE:
		fail = off == cfg.site && sk == cfg.n;
		break;
	case M_PERSIST:
		if (k >= cfg.n) {
			uint64_t now = now_ns(), zero = 0;
			atomic_compare_exchange_strong(&persist_t0, &zero, now);
			fail = now - atomic_load(&persist_t0) < cfg.persist_ns;
		}
		break;
	default:
		break;
	}
	if (fail && atomic_fetch_add(&injected, 1) == 0) {
		char name[16] = "?";
		pthread_getname_np(pthread_self(), name, sizeof name);
		rep("inject %s 0x%lx %lu %lu %s", fn_names[fn],
		    (unsigned long)off, k, sk, name);
		write_backtrace(ra);
	}
	return fail;
}

#define RA __builtin_return_address(0)

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
	if (should_fail(F_MALLOC, RA)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n);
void *__wrap_calloc(size_t k, size_t n)
{
	if (should_fail(F_CALLOC, RA)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n)
{
	if (should_fail(F_REALLOC, RA)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	if (should_fail(F_POSIX_MEMALIGN, RA))
		return ENOMEM;
	return __real_posix_memalign(p, a, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n)
{
	if (should_fail(F_ALIGNED_ALLOC, RA)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_aligned_alloc(a, n);
}

void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
	if (should_fail(F_MMAP, RA)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(a, n, prot, flags, fd, off);
}

int __wrap_mprotect(void *a, size_t n, int prot);
int __wrap_mprotect(void *a, size_t n, int prot)
{
	if (should_fail(F_MPROTECT, RA)) {
		errno = ENOMEM;
		return -1;
	}
	return __real_mprotect(a, n, prot);
}

int __wrap_memfd_create(const char *name, unsigned int flags);
int __wrap_memfd_create(const char *name, unsigned int flags)
{
	if (should_fail(F_MEMFD_CREATE, RA)) {
		errno = ENOMEM;
		return -1;
	}
	return __real_memfd_create(name, flags);
}

FILE *__wrap_open_memstream(char **p, size_t *n);
FILE *__wrap_open_memstream(char **p, size_t *n)
{
	if (should_fail(F_OPEN_MEMSTREAM, RA)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_open_memstream(p, n);
}

void *__wrap_dlopen(const char *f, int flags);
void *__wrap_dlopen(const char *f, int flags)
{
	if (should_fail(F_DLOPEN, RA)) {
		/* A real failure, so that dlerror() has its message. */
		void *h = __real_dlopen("/nonexistent/ss-fault-injected.so", flags);
		if (h)
			dlclose(h);
		return NULL;
	}
	return __real_dlopen(f, flags);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg)
{
	if (should_fail(F_PTHREAD_CREATE, RA))
		return EAGAIN;
	return __real_pthread_create(t, a, fn, arg);
}

static void dump_counts(void)
{
	for (int f = 0; f < NFN; f++) {
		rep("calls %s %lu", fn_names[f], atomic_load(&calls[f]));
		for (unsigned i = 0; i < NSITES; i++) {
			uintptr_t off = atomic_load(&sites[f][i].off);
			if (off)
				rep("site %s 0x%lx %lu", fn_names[f],
				    (unsigned long)off, atomic_load(&sites[f][i].n));
		}
	}
	rep("injected %s %lu", cfg.fn >= 0 ? fn_names[cfg.fn] : "-",
	    atomic_load(&injected));
}

/* Read FI_* before main: the wrappers may be called from the first
 * ss_* call on. */
__attribute__((constructor(101))) static void fi_init(void)
{
	const char *m = getenv("FI_MODE"), *f = getenv("FI_FN");
	const char *n = getenv("FI_N"), *s = getenv("FI_SITE");
	const char *p = getenv("FI_PERSIST_MS"), *r = getenv("FI_REPORT");

	if (r && *r) {
		int fd = open(r, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			cfg.report_fd = fd;
	}
	if (!m || !*m || strcmp(m, "count") == 0)
		cfg.mode = M_COUNT;
	else if (strcmp(m, "nth") == 0)
		cfg.mode = M_NTH;
	else if (strcmp(m, "site") == 0)
		cfg.mode = M_SITE;
	else if (strcmp(m, "persist") == 0)
		cfg.mode = M_PERSIST;
	else
		goto usage;
	if (cfg.mode == M_COUNT)
		return;
	for (int i = 0; f && i < NFN; i++)
		if (strcmp(f, fn_names[i]) == 0)
			cfg.fn = i;
	if (cfg.fn < 0 || !n || (cfg.n = strtoul(n, NULL, 0)) == 0)
		goto usage;
	if (cfg.mode == M_SITE &&
	    (!s || (cfg.site = (uintptr_t)strtoul(s, NULL, 16)) == 0))
		goto usage;
	cfg.persist_ns = (p ? strtoul(p, NULL, 0) : 300) * 1000000ull;
	return;
usage:
	fprintf(stderr, "fault: bad FI_MODE/FI_FN/FI_N/FI_SITE\n");
	_exit(2);
}

/* ================================================================ checks */

static int status; /* exit status: 0, 3 or 4 */
static _Atomic(const char *) phase = "start";

__attribute__((format(printf, 1, 2))) static void contract(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	rep("contract %s %s", phase, buf);
	fprintf(stderr, "fault: contract broken in %s: %s\n", phase, buf);
	if (status == 0)
		status = 4;
}

/* An API call failed with err: allowed only as the documented code of a
 * failed allocation or thread (one of `ok`), and only once one was
 * injected. */
static void failed_ok(const char *what, int err, int ok1, int ok2)
{
	if (err != ok1 && err != ok2)
		contract("%s failed with %d (%s), not a documented code", what,
		         err, strerror(err));
	else if (atomic_load(&injected) == 0)
		contract("%s failed with %s although nothing was injected", what,
		         strerror(err));
}

/* ---------------------------------------------------------------- slots */

/* Every task has a slot: what should happen to it and how often it ran. */
enum { S_NONE, S_SPAWNED, S_FAILED, S_CANCELLED, S_ANY };
#define MAXT 2048
static int expect[MAXT];       /* written by the spawner */
static const char *slot_phase[MAXT];
static atomic_int ran[MAXT];
static atomic_int next_slot;

static int slot_new(void)
{
	int i = atomic_fetch_add(&next_slot, 1);

	if (i >= MAXT) {
		fprintf(stderr, "fault: too many tasks\n");
		_exit(2);
	}
	slot_phase[i] = phase;
	return i;
}

static void *plain_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&ran[i], 1);
	return (void *)(intptr_t)(i + 1000);
}

static int group_fn(void *arg)
{
	atomic_fetch_add(&ran[(int)(intptr_t)arg], 1);
	return 0;
}

/* ss_spawn or ss_go into slot i; records the outcome. */
static __attribute__((noinline)) ss_task *spawn_into(int i, bool fiber,
                                                     void *(*fn)(void *))
{
	ss_task *t;

	errno = 0;
	t = fiber ? ss_go(fn, (void *)(intptr_t)i) : ss_spawn(fn, (void *)(intptr_t)i);
	if (t) {
		expect[i] = S_SPAWNED;
	} else {
		expect[i] = S_FAILED;
		failed_ok(fiber ? "ss_go" : "ss_spawn", errno, ENOMEM, EAGAIN);
	}
	return t;
}

/* Join t (slot i) and check what it says against the slot. */
static void join_check(ss_task *t, int i)
{
	void *r = NULL;
	int err;

	if (!t)
		return;
	err = ss_join(t, &r);
	if (err == ECANCELED && expect[i] == S_CANCELLED)
		return;
	if (err != 0)
		contract("ss_join of slot %d: %s", i, strerror(err));
	else if (expect[i] == S_CANCELLED)
		contract("ss_join of cancelled slot %d returned 0", i);
	else if (r != (void *)(intptr_t)(i + 1000))
		contract("ss_join of slot %d: result %p", i, r);
}

/* The final accounting of every slot. */
static void account(void)
{
	int n = atomic_load(&next_slot);

	for (int i = 0; i < n; i++) {
		int k = atomic_load(&ran[i]);

		switch (expect[i]) {
		case S_SPAWNED:
			if (k == 0)
				rep("lost %d %s", i, slot_phase[i]);
			else if (k > 1)
				rep("doubled %d %s %d", i, slot_phase[i], k);
			else
				continue;
			break;
		case S_ANY:
			if (k <= 1)
				continue;
			rep("doubled %d %s %d", i, slot_phase[i], k);
			break;
		default: /* S_NONE, S_FAILED, S_CANCELLED */
			if (k == 0)
				continue;
			rep("ghost %d %s %d (expect %d)", i, slot_phase[i], k,
			    expect[i]);
			break;
		}
		fprintf(stderr, "fault: slot %d (%s) ran %d times, expect %d\n",
		        i, slot_phase[i], k, expect[i]);
		status = 3;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Wait until the slots [a, b) that should run have run; false after
 * timeout_ms (lost; later waits then take 0.2 s at most, so that the run
 * ends well within run.sh's time limit and reports them). */
static bool waited_out;

static bool wait_slots(int a, int b, int timeout_ms)
{
	if (waited_out && timeout_ms > 200)
		timeout_ms = 200;
	for (int t = 0; t < timeout_ms; t++) {
		bool all = true;
		for (int i = a; i < b && all; i++)
			if (expect[i] == S_SPAWNED && atomic_load(&ran[i]) == 0)
				all = false;
		if (all)
			return true;
		sleep_ms(1);
	}
	waited_out = true;
	return false;
}

static int wait_timeout_ms = 5000;

/* ================================================================ phases */

/* Plain tasks from an ordinary thread: spawn, join. */
static void phase_plain(int n)
{
	ss_task *t[64];
	int s[64];

	phase = "plain";
	for (int i = 0; i < n; i++) {
		s[i] = slot_new();
		t[i] = spawn_into(s[i], false, plain_fn);
	}
	for (int i = 0; i < n; i++)
		join_check(t[i], s[i]);
}

/* Detached tasks: they run once, without a joiner. */
static void phase_detach(int n)
{
	int a = atomic_load(&next_slot);

	phase = "detach";
	for (int i = 0; i < n; i++) {
		int k = slot_new();
		ss_task *t = spawn_into(k, i % 4 == 3, plain_fn);
		int err;

		if (t && (err = ss_detach(t)) != 0)
			contract("ss_detach: %s", strerror(err));
	}
	wait_slots(a, atomic_load(&next_slot), wait_timeout_ms);
}

/* Cancel every other task right after spawning a batch; a worker kept
 * busy meanwhile so that some are still queued. */
static atomic_int hold;

static void *holder_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&ran[i], 1);
	for (int k = 0; k < 20000 && !atomic_load(&hold); k++)
		usleep(50);
	return (void *)(intptr_t)(i + 1000);
}

static void phase_cancel(int n)
{
	ss_task *t[128];
	int s[128];
	int h = slot_new();
	ss_task *ht;

	phase = "cancel";
	atomic_store(&hold, 0);
	ht = spawn_into(h, false, holder_fn);
	for (int i = 0; i < n; i++) {
		s[i] = slot_new();
		t[i] = spawn_into(s[i], false, plain_fn);
	}
	for (int i = 0; i < n; i += 2) {
		int err, err2;

		if (!t[i])
			continue;
		err = ss_cancel(t[i]);
		if (err == 0) {
			expect[s[i]] = S_CANCELLED;
			if ((err2 = ss_cancel(t[i])) != 0)
				contract("second ss_cancel: %s", strerror(err2));
		} else if (err != EBUSY) {
			contract("ss_cancel: %s", strerror(err));
		}
	}
	atomic_store(&hold, 1);
	{
		int nc = 0;
		for (int i = 0; i < n; i++)
			nc += expect[s[i]] == S_CANCELLED;
		rep("note cancelled %d of %d", nc, n);
	}
	join_check(ht, h);
	for (int i = 0; i < n; i++)
		join_check(t[i], s[i]);
}

/* A plain task that spawns children from its worker and joins them (an
 * unstarted child runs inline), and a fiber that does the same. */
struct nest {
	int self;
	int kids[8];
};
static struct nest nests[4];

static void *nest_fn(void *arg)
{
	struct nest *ns = arg;
	ss_task *t[8];

	atomic_fetch_add(&ran[ns->self], 1);
	for (int i = 0; i < 8; i++)
		t[i] = spawn_into(ns->kids[i], i % 3 == 2, plain_fn);
	for (int i = 0; i < 8; i++)
		join_check(t[i], ns->kids[i]);
	return (void *)(intptr_t)(ns->self + 1000);
}

static void phase_nested(void)
{
	ss_task *t[4];

	phase = "nested";
	for (int j = 0; j < 4; j++) {
		struct nest *ns = &nests[j];

		ns->self = slot_new();
		for (int i = 0; i < 8; i++) {
			ns->kids[i] = slot_new();
			/* Decided by the parent, if it runs. */
			expect[ns->kids[i]] = S_NONE;
		}
		errno = 0;
		t[j] = j % 2 ? ss_go(nest_fn, ns) : ss_spawn(nest_fn, ns);
		expect[ns->self] = t[j] ? S_SPAWNED : S_FAILED;
		if (!t[j])
			failed_ok("ss_spawn (nested)", errno, ENOMEM, EAGAIN);
	}
	for (int j = 0; j < 4; j++)
		join_check(t[j], nests[j].self);
}

/* Groups: plain and fiber tasks, an ignore policy. */
static void phase_group(int n)
{
	ss_group *g;
	int a, err;

	phase = "group";
	errno = 0;
	if (!(g = ss_group_new())) {
		failed_ok("ss_group_new", errno, ENOMEM, ENOMEM);
		return;
	}
	if ((err = ss_group_set_policy(g, SS_GROUP_IGNORE, NULL, NULL)) != 0)
		contract("ss_group_set_policy: %s", strerror(err));
	a = atomic_load(&next_slot);
	for (int i = 0; i < n; i++) {
		int k = slot_new();
		err = i % 3 == 1 ? ss_group_go(g, group_fn, (void *)(intptr_t)k)
		                 : ss_group_spawn(g, group_fn, (void *)(intptr_t)k);
		if (err == 0) {
			expect[k] = S_SPAWNED;
		} else {
			expect[k] = S_FAILED;
			failed_ok("ss_group_spawn", err, ENOMEM, EAGAIN);
		}
	}
	if ((err = ss_group_wait(g)) != 0)
		contract("ss_group_wait: %s", strerror(err));
	/* After the wait every task of the group has finished. */
	for (int i = a; i < atomic_load(&next_slot); i++)
		if (expect[i] == S_SPAWNED && atomic_load(&ran[i]) != 1) {
			contract("slot %d not run once after ss_group_wait", i);
			break;
		}
	ss_group_free(g);
}

/* Fibers that yield and sleep on the timer. */
static __attribute__((noinline)) bool is_fiber(void)
{
	return ss__fiber_self() != NULL;
}

static void *sleepy_fn(void *arg)
{
	int i = (int)(intptr_t)arg, err;

	ss_yield();
	if ((err = ss_sleep_ns(2000000)) != 0)
		contract("ss_sleep_ns: %s", strerror(err));
	ss_yield();
	atomic_fetch_add(&ran[i], 1);
	return (void *)(intptr_t)(i + 1000);
}

static void phase_fibers(int n)
{
	ss_task *t[64];
	int s[64];

	phase = "fibers";
	for (int i = 0; i < n; i++) {
		s[i] = slot_new();
		t[i] = spawn_into(s[i], true, sleepy_fn);
	}
	for (int i = 0; i < n; i++)
		join_check(t[i], s[i]);
}

/* ss_cancel of a fiber that sleeps: EBUSY, and its sleep ends with
 * ECANCELED (unless it had no stack and runs as a plain task: then it
 * stops once told that the cancel was done). */
static atomic_int canc_started, canc_requested, canc_result;

static void *cancellee_fn(void *arg)
{
	int i = (int)(intptr_t)arg, err = 0;
	bool fiber = is_fiber();

	atomic_fetch_add(&ran[i], 1);
	atomic_store(&canc_started, 1);
	for (int k = 0; k < 2000; k++) {
		if ((err = ss_sleep_ns(5000000)) != 0)
			break;
		if (!fiber && atomic_load(&canc_requested))
			break;
	}
	atomic_store(&canc_result, fiber ? err : ECANCELED);
	return (void *)(intptr_t)(i + 1000);
}

static void phase_fiber_cancel(void)
{
	int s = slot_new(), err;
	ss_task *t;

	phase = "fiber-cancel";
	atomic_store(&canc_started, 0);
	atomic_store(&canc_requested, 0);
	atomic_store(&canc_result, -1);
	if (!(t = spawn_into(s, true, cancellee_fn)))
		return;
	for (int k = 0; k < wait_timeout_ms && !atomic_load(&canc_started); k++)
		sleep_ms(1);
	if ((err = ss_cancel(t)) != EBUSY)
		contract("ss_cancel of a running fiber: %d", err);
	atomic_store(&canc_requested, 1);
	join_check(t, s);
	if (atomic_load(&canc_result) != ECANCELED)
		contract("cancelled fiber's sleep returned %d",
		         atomic_load(&canc_result));
}

/* Channels: a buffered producer/consumer pair of fibers, a rendezvous
 * between a plain task and this thread, request/reply with one-shots. */
static ss_chan *chan_a;
static atomic_long sent_sum, recv_sum;
#define NMSG 100

static void *producer_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&ran[i], 1);
	for (int k = 1; k <= NMSG; k++) {
		int err = ss_chan_send(chan_a, &k);
		if (err == EPIPE)
			break;
		if (err) {
			contract("ss_chan_send: %s", strerror(err));
			break;
		}
		atomic_fetch_add(&sent_sum, k);
	}
	ss_chan_close(chan_a);
	return (void *)(intptr_t)(i + 1000);
}

static void *consumer_fn(void *arg)
{
	int i = (int)(intptr_t)arg, v, err;

	atomic_fetch_add(&ran[i], 1);
	while ((err = ss_chan_recv(chan_a, &v)) == 0)
		atomic_fetch_add(&recv_sum, v);
	if (err != EPIPE)
		contract("ss_chan_recv: %s", strerror(err));
	return (void *)(intptr_t)(i + 1000);
}

static ss_chan *chan_r;

static void *rv_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&ran[i], 1);
	for (int k = 0; k < 10; k++) {
		int err = ss_chan_send(chan_r, &k);
		if (err) {
			contract("rendezvous send: %s", strerror(err));
			break;
		}
	}
	return (void *)(intptr_t)(i + 1000);
}

struct req {
	int x;
	ss_oneshot *reply;
};
static ss_chan *chan_q;

static void *server_fn(void *arg)
{
	int i = (int)(intptr_t)arg, err;
	struct req r;

	atomic_fetch_add(&ran[i], 1);
	while ((err = ss_chan_recv(chan_q, &r)) == 0) {
		int y = r.x * 2;
		if ((err = ss_oneshot_send(r.reply, &y)) != 0)
			contract("ss_oneshot_send: %s", strerror(err));
	}
	if (err != EPIPE)
		contract("server recv: %s", strerror(err));
	return (void *)(intptr_t)(i + 1000);
}

static ss_chan *chan_new_checked(size_t cap, size_t esz)
{
	ss_chan *c;

	errno = 0;
	if (!(c = ss_chan_new(cap, esz)))
		failed_ok("ss_chan_new", errno, ENOMEM, ENOMEM);
	return c;
}

static void phase_chan(void)
{
	int sp, sc, sr, ss;
	ss_task *tp, *tc, *tr, *ts;

	phase = "chan";
	atomic_store(&sent_sum, 0);
	atomic_store(&recv_sum, 0);
	if ((chan_a = chan_new_checked(4, sizeof(int)))) {
		sc = slot_new();
		tc = spawn_into(sc, true, consumer_fn);
		sp = slot_new();
		tp = spawn_into(sp, true, producer_fn);
		if (!tp)
			ss_chan_close(chan_a);
		if (!tc) {
			/* No consumer: this thread drains what was sent. */
			int v;
			while (ss_chan_recv(chan_a, &v) == 0)
				atomic_fetch_add(&recv_sum, v);
		}
		join_check(tp, sp);
		join_check(tc, sc);
		if (atomic_load(&sent_sum) != atomic_load(&recv_sum)) {
			rep("lost-message chan sent=%ld received=%ld",
			    atomic_load(&sent_sum), atomic_load(&recv_sum));
			status = 3;
		}
		if (tp && tc && atomic_load(&sent_sum) != NMSG * (NMSG + 1) / 2)
			contract("channel: only %ld of the sum sent",
			         atomic_load(&sent_sum));
		ss_chan_free(chan_a);
	}

	phase = "rendezvous";
	if ((chan_r = chan_new_checked(0, sizeof(int)))) {
		sr = slot_new();
		if ((tr = spawn_into(sr, false, rv_fn))) {
			for (int k = 0; k < 10; k++) {
				int v = -1, err = ss_chan_recv(chan_r, &v);
				if (err || v != k) {
					contract("rendezvous recv %d: err %d v %d",
					         k, err, v);
					break;
				}
			}
		}
		join_check(tr, sr);
		ss_chan_free(chan_r);
	}

	phase = "oneshot";
	if ((chan_q = chan_new_checked(2, sizeof(struct req)))) {
		ss = slot_new();
		if ((ts = spawn_into(ss, true, server_fn))) {
			for (int k = 0; k < 8; k++) {
				struct req r = { k, NULL };
				int y = -1, err;

				errno = 0;
				if (!(r.reply = ss_oneshot_new(sizeof(int)))) {
					failed_ok("ss_oneshot_new", errno, ENOMEM,
					          ENOMEM);
					continue;
				}
				if ((err = ss_chan_send(chan_q, &r)) != 0)
					contract("request send: %s", strerror(err));
				else if ((err = ss_oneshot_recv(r.reply, &y)) != 0 ||
				         y != 2 * k)
					contract("reply %d: err %d y %d", k, err, y);
				ss_oneshot_free(r.reply);
			}
			ss_chan_close(chan_q);
		}
		join_check(ts, ss);
		ss_chan_free(chan_q);
	}
}

/* Blocking tasks: the hint hands off and may add threads. */
static void *blocker_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&ran[i], 1);
	ss_blocking_begin();
	usleep(10000);
	ss_blocking_end();
	return (void *)(intptr_t)(i + 1000);
}

static void phase_blocking(int n)
{
	ss_task *t[32];
	int s[32];

	phase = "blocking";
	for (int i = 0; i < n; i++) {
		s[i] = slot_new();
		t[i] = spawn_into(s[i], false, i % 2 ? plain_fn : blocker_fn);
	}
	for (int i = 0; i < n; i++)
		join_check(t[i], s[i]);
}

/* A task that holds its worker past SMOLSCALE_STALL_REPORT_MS: ss-diag
 * captures its stack and symbolizes it (elfsym.c on this executable). */
static __attribute__((noinline)) void *stall_fn(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t end = now_ns() + 30000000u;

	atomic_fetch_add(&ran[i], 1);
	while (now_ns() < end)
		;
	return (void *)(intptr_t)(i + 1000);
}

static void phase_stall(void)
{
	int s = slot_new(), f;
	ss_task *t;

	phase = "stall";
	t = spawn_into(s, false, stall_fn);
	/* A fiber too: captured on its own stack. */
	f = slot_new();
	join_check(spawn_into(f, true, stall_fn), f);
	join_check(t, s);
	sleep_ms(20); /* let ss-diag write its report */
}

/* The counters and the stats report (the text in memory, the report to
 * the log, and one served by ss-diag for the stats signal). */
static void phase_stats(void)
{
	struct ss_stats st;
	size_t len = 0;
	char *text;
	int err;

	phase = "stats";
	if ((err = ss_stats(&st)) != 0)
		contract("ss_stats: %s", strerror(err));
	rep("note stalls %llu threads_created %llu", (unsigned long long)st.stalls,
	    (unsigned long long)st.threads_created);
	if ((text = ss__stats_text(&len)) != NULL) {
		if (len == 0 || strncmp(text, "smolscale: stats ", 17) != 0)
			contract("stats text: \"%.40s\"", text);
		free(text);
	} else if (atomic_load(&injected) == 0) {
		contract("ss__stats_text: NULL, nothing injected");
	}
	ss__stats_print();
	/* run.sh sets SMOLSCALE_STATS_SIGNAL=USR2 for the whole run, so the
	 * handler is there from the start (diag.c installs it at load). */
	if (getenv("SMOLSCALE_STATS_SIGNAL")) {
		raise(SIGUSR2);
		sleep_ms(10);
	}
}

/* A fiber parked on the timer while the pool's workers retire
 * (SMOLSCALE_IDLE_MS) and new ones start, busy with plain tasks: it is
 * resumed by a worker that never ran a fiber (fibers.c fw_of at resume). */
#define NMIG 2
static int mig_slot[NMIG];
static ss_task *mig_task[NMIG];

static void *migrant_fn(void *arg)
{
	int i = (int)(intptr_t)arg, err;

	if ((err = ss_sleep_ns(90000000u)) != 0)
		contract("migrant ss_sleep_ns: %s", strerror(err));
	for (int k = 0; k < 3; k++)
		ss_yield();
	atomic_fetch_add(&ran[i], 1);
	return (void *)(intptr_t)(i + 1000);
}

static void *occupier_fn(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t end = now_ns() + 40000000u;

	atomic_fetch_add(&ran[i], 1);
	while (now_ns() < end)
		usleep(1000);
	return (void *)(intptr_t)(i + 1000);
}

static void phase_migrate_begin(void)
{
	phase = "migrate";
	for (int i = 0; i < NMIG; i++) {
		mig_slot[i] = slot_new();
		mig_task[i] = spawn_into(mig_slot[i], true, migrant_fn);
	}
}

static void phase_migrate_end(int n)
{
	ss_task *t[8];
	int s[8];

	phase = "migrate";
	for (int i = 0; i < n; i++) {
		s[i] = slot_new();
		t[i] = spawn_into(s[i], false, occupier_fn);
	}
	for (int i = 0; i < NMIG; i++)
		join_check(mig_task[i], mig_slot[i]);
	for (int i = 0; i < n; i++)
		join_check(t[i], s[i]);
}

/* ss_block_on from this thread. */
static void *block_on_fn(void *arg)
{
	int i = (int)(intptr_t)arg;

	ss_yield();
	atomic_fetch_add(&ran[i], 1);
	return (void *)(intptr_t)(i + 1000);
}

static void phase_block_on(void)
{
	int s = slot_new();
	void *r;

	phase = "block_on";
	errno = 0;
	r = ss_block_on(block_on_fn, (void *)(intptr_t)s);
	if (r == (void *)(intptr_t)(s + 1000)) {
		expect[s] = S_SPAWNED;
	} else if (r == NULL) {
		/* It either never started (ENOMEM, EAGAIN) ... */
		expect[s] = S_FAILED;
		failed_ok("ss_block_on", errno, ENOMEM, EAGAIN);
	} else {
		expect[s] = S_ANY;
		contract("ss_block_on returned %p", r);
	}
}

/* ================================================================ main */

static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return true;
#else
	const char *s = getenv("SS_SANITIZER");
	return s && *s;
#endif
}

int main(void)
{
	int a;
	bool san = sanitized();

	/* Let run.sh's gdb attach to a hung run. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	/* backtrace() loads its unwinder on first use: not inside a wrapper. */
	{
		void *pc[2];
		backtrace(pc, 2);
	}
	if (san)
		wait_timeout_ms = 20000;
	/* The pool's configuration (run.sh unset every SMOLSCALE_*). */
	setenv("SMOLSCALE_THREADS", "3", 0);
	setenv("SMOLSCALE_IDLE_MS", "20", 0);
	setenv("SMOLSCALE_FIBER_STACK", "64K", 0);
	setenv("SMOLSCALE_STALL_REPORT", "1", 0);
	setenv("SMOLSCALE_STALL_REPORT_MS", "10", 0);
	setenv("SMOLSCALE_LOG", "/dev/null", 0);

	/* Nothing before the first call: the counters say 0. */
	{
		struct ss_stats st;
		if (ss_stats(&st) != 0 || st.threads_created != 0)
			contract("ss_stats before the pool");
	}
#define PHASE(call)                                                          \
	do {                                                                 \
		uint64_t t0_ = now_ns();                                     \
		call;                                                        \
		rep("time %s %llu", phase,                                   \
		    (unsigned long long)((now_ns() - t0_) / 1000000u));      \
	} while (0)
	PHASE(phase_plain(16));
	PHASE(phase_detach(16));
	PHASE(phase_cancel(64));
	PHASE(phase_nested());
	PHASE(phase_group(12));
	PHASE(phase_fibers(6));
	PHASE(phase_fiber_cancel());
	PHASE(phase_chan());
	PHASE(phase_blocking(8));
	PHASE(phase_stall());
	PHASE(phase_stats());
	/* Let idle workers retire (SMOLSCALE_IDLE_MS), then start anew:
	 * their slots are reused, their caches given back; a fiber parked
	 * meanwhile resumes on a new worker. */
	PHASE(phase_migrate_begin());
	phase = "idle";
	PHASE(sleep_ms(san ? 150 : 60));
	PHASE(phase_migrate_end(4));
	PHASE(phase_plain(8));
	PHASE(phase_fibers(3));
	PHASE(phase_block_on());
	PHASE(phase_detach(8));

	/* Late runs, twice-run tasks: give them a moment, then count. */
	phase = "end";
	a = atomic_load(&next_slot);
	if (!wait_slots(0, a, wait_timeout_ms))
		fprintf(stderr, "fault: some tasks never ran\n");
	sleep_ms(10);
	account();
	dump_counts();
	return status;
}
