/*
 * pthread.c - the pthread layer: threads that become tasks.
 *
 * With SMOLSCALE_PTHREAD=1, pthread_create() of a routable thread (below)
 * takes a record, hands back a handle that names it, and spawns a core
 * task that runs the start routine inside a trampoline.  Everything that
 * takes a pthread_t looks at the handle first: a rerouted thread's is
 * served here, any other goes to glibc untouched.  Routing is off by
 * default, and every doubt (a sanitizer runtime, attributes that cannot be
 * honoured, a core that cannot start) passes the call to the real
 * function.
 *
 * Handles.  A record is 64-byte aligned and never freed (type-stable, in
 * chunks), so a handle is its address with bit 0 set and bits 1-5 holding
 * the low bits of the record's generation.  glibc's pthread_t is the
 * address of its struct pthread, which is aligned: a handle can never
 * equal a real pthread_t, and a stale handle (the record was joined and
 * reused) is refused with ESRCH 31 times out of 32 instead of naming the
 * new thread.  Records are never unmapped, so even a stale handle is safe
 * to look at.
 *
 * One record's life, in its state word (the futex joiners sleep on):
 *
 *   QUEUED --(its trampoline, its joiner inline, or a spill starts it)-->
 *   RUNNING --(start routine returned, or its thread is being unwound)-->
 *   FINISHING --> DONE --(joined: JOINED; or detached)--> freed
 *
 * Two references keep a record: the thread's (its join, or its end when
 * detached) and its core task's (dropped when that task has run, whether
 * it ran the thread or found it run elsewhere, SPILLED).  A freed record
 * keeps its generation until it is taken again, so its handle still says
 * how it ended (EINVAL for a detached one, ESRCH for a joined one).
 *
 * The phase changes from QUEUED and from RUNNING are made under the
 * record's lock, so that pthread_cancel(), pthread_kill() and the
 * functions that pass the worker's pthread_t to glibc see a phase that
 * cannot move under them: while they hold the lock in RUNNING, the worker
 * thread is still inside this record's run (it takes the lock to leave
 * RUNNING, even when it is being unwound).  The flags DETACHED, JOINING
 * and WAITERS change by CAS; whoever sees both DONE and DETACHED (the
 * trampoline or pthread_detach) releases the thread's reference, the one
 * JOINING
 * caller releases it after DONE.
 *
 * Semantics kept for a rerouted thread (DESIGN.md, RESEARCH.md 4.4-4.9):
 *  - pthread_self() inside it returns its handle (this thread's TLS).
 *  - Its signal mask is its creator's (or the attribute's), set on the
 *    worker while it runs; signals sent to it before it started are raised
 *    when it starts.
 *  - pthread_exit() from any depth and cancellation are glibc's own forced
 *    unwind, which runs the thread's cleanup handlers and C++ destructors.
 *    The trampoline's cleanup frame stops nothing: it finishes the record
 *    (the value, or PTHREAD_CANCELED), runs the key destructors, and takes
 *    the worker out of the pool (ss__worker_abandon); glibc then ends the
 *    worker thread, which it has marked as exiting for good, and the pool
 *    starts a replacement when work is queued.
 *  - Thread-specific data: keys are created by glibc (interposed to learn
 *    their destructors); at the end of a rerouted thread its values get
 *    glibc's destructor rounds (PTHREAD_DESTRUCTOR_ITERATIONS) and are set
 *    back to NULL, so the next rerouted thread on that worker starts with
 *    NULL.  __thread / thread_local variables are the worker's and persist
 *    from one rerouted thread to the next: that is documented, and the
 *    SMOLSCALE_PTHREAD_ONLY/SKIP patterns keep such threads real.
 *  - Cancellation: glibc's pthread_cancel() goes to the worker while the
 *    record's lock pins it to this thread, and acts at the thread's
 *    cancellation points as for a real thread.  One cancelled before it
 *    started starts with the cancel pending, so it runs up to its first
 *    cancellation point and its cleanup handlers run, as glibc's threads
 *    do (the Open POSIX test pthread_join/3-1 counts on it).  If it
 *    returns before acting on a cancel, the trampoline consumes the
 *    request (the joiner still gets the returned value) so it cannot hit
 *    the next task; the worker then leaves the pool.
 *  - A rerouted thread that holds its worker while others wait (blocked,
 *    or spinning on a flag another queued thread must set) gets a worker
 *    beside it without a token: natively it had its own thread.
 *  - A join from a worker tells the core it blocks (ss_blocking_begin), so
 *    the joiner's queued work, often the joined thread, moves at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shim.h"

/* ------------------------------------------------------------ records */

#define PT_MAGIC 0x73737074u    /* "sspt" */
#define PT_CHUNK 64

/* state: the phase in the low two bits, then flags. */
#define PH_MASK 3u
#define PH_QUEUED 0u
#define PH_RUNNING 1u
#define PH_FINISHING 2u
#define PH_DONE 3u
#define F_DETACHED (1u << 2)    /* detached: the end frees the record */
#define F_JOINING (1u << 3)     /* a joiner claimed it */
#define F_WAITERS (1u << 4)     /* a joiner sleeps on the futex */
#define F_CANCEL_REQ (1u << 5)  /* cancelled before it started */
#define F_CANCEL_SENT (1u << 6) /* glibc's cancel went to the worker */
#define F_EXITING (1u << 7)     /* it called pthread_exit */
#define F_FREE (1u << 8)        /* on the free list */
#define F_JOINED (1u << 10)     /* joined: its handle is spent */
#define F_SPILLED (1u << 9)     /* ran outside its core task: on a real
                                 * thread (spill) or inline in its joiner */
#define PH(s) ((s) & PH_MASK)

struct ss_pt {
	uint32_t magic;         /* PT_MAGIC, set once */
	/* Bumped when the record is taken for a new thread (under
	 * pool_lock); read by lookup() without it, hence atomic. */
	_Atomic uint32_t gen;
	_Atomic uint32_t state; /* the life above; the joiners' futex */
	/* Two references: the thread's (dropped by its join, or at the end
	 * of a detached thread) and the core task's (dropped when the task
	 * has run, whether it ran the thread or found it spilled).  The
	 * record is freed when both are gone, so a queued task never finds
	 * its record reused by another thread. */
	atomic_uint refs;

	/* Written by the creator before the task is spawned (the spawn
	 * publishes them), read by the trampoline. */
	void *(*fn)(void *);
	void *arg;
	sigset_t mask;
	size_t stack_req;       /* the stack size asked for, 0 if no attr */

	/* Written by the thread itself before DONE (release), read by the
	 * joiner after it (acquire). */
	void *result;
	void *exit_value;       /* pthread_exit's argument */

	/* Signals sent to its worker, bit sig-1: or-ed in by killers under
	 * the lock and by the thread itself without it (raising its own), so
	 * atomic; relaxed, since the thread reads it at its end, after
	 * leave_running() took the lock every killer held. */
	_Atomic uint64_t sent;

	/* Under lock. */
	pthread_mutex_t lock;
	pthread_t worker;       /* the worker running it, while RUNNING */
	uint64_t pending;       /* signals sent before it started: bit sig-1 */
	unsigned inline_depth;  /* it runs a thread it joins inline (join) */
	bool cancel_deferred;   /* cancelled meanwhile: sent when it resumes */
	bool named;
	char name[16];

	struct ss_pt *next_free; /* under pool_lock */
} __attribute__((aligned(64)));

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t verdict_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ss_pt *pool_free;
/* Every chunk, for the spill scan: appended under pool_lock, the count
 * published with release after the pointer. */
#define PT_MAX_CHUNKS 65536
static struct ss_pt *chunks[PT_MAX_CHUNKS];
static atomic_uint nchunks;

static struct ss_pt *rec_alloc(void)
{
	struct ss_pt *t;

	pthread_mutex_lock(&pool_lock);
	if (!pool_free) {
		struct ss_pt *c;
		unsigned nc = atomic_load_explicit(&nchunks, memory_order_relaxed);

		if (nc == PT_MAX_CHUNKS ||
		    posix_memalign((void **)&c, 64, PT_CHUNK * sizeof *c) != 0) {
			pthread_mutex_unlock(&pool_lock);
			return NULL;
		}
		memset(c, 0, PT_CHUNK * sizeof *c);
		for (int i = 0; i < PT_CHUNK; i++) {
			c[i].magic = PT_MAGIC;
			pthread_mutex_init(&c[i].lock, NULL);
			atomic_init(&c[i].state, F_FREE);
			c[i].next_free = i + 1 < PT_CHUNK ? &c[i + 1] : NULL;
		}
		pool_free = c;
		chunks[nc] = c;
		atomic_store_explicit(&nchunks, nc + 1, memory_order_release);
	}
	t = pool_free;
	pool_free = t->next_free;
	atomic_store_explicit(&t->gen, atomic_load_explicit(&t->gen, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	pthread_mutex_unlock(&pool_lock);
	return t;
}

/* Until it is taken again, a freed record remembers how its thread went:
 * detached (a join or detach through its handle is EINVAL, as glibc says)
 * or joined (ESRCH). */
static void rec_free(struct ss_pt *t)
{
	uint32_t how = atomic_load_explicit(&t->state, memory_order_relaxed) &
	               F_DETACHED ? F_DETACHED : F_JOINED;

	pthread_mutex_lock(&pool_lock);
	atomic_store_explicit(&t->state, F_FREE | how, memory_order_release);
	t->next_free = pool_free;
	pool_free = t;
	pthread_mutex_unlock(&pool_lock);
}

static void rec_put(struct ss_pt *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		rec_free(t);
}

static pthread_t handle_of(const struct ss_pt *t)
{
	uint32_t gen = atomic_load_explicit(&t->gen, memory_order_relaxed);

	return (pthread_t)((uintptr_t)t | ((gen & 31u) << 1) | 1u);
}

enum { REAL_THREAD, OURS, STALE };

/* Which kind of pthread_t th is; for OURS, *out is its record.  STALE: a
 * thread that was joined or has ended detached (*out is its record while
 * no other thread has taken it, else NULL), or no handle of ours. */
static int lookup(pthread_t th, struct ss_pt **out)
{
	uintptr_t v = (uintptr_t)th;
	struct ss_pt *t = (struct ss_pt *)(v & ~(uintptr_t)63);

	*out = NULL;
	if (!(v & 1))
		return REAL_THREAD;
	if (t->magic != PT_MAGIC ||
	    ((v >> 1) & 31u) != (atomic_load_explicit(&t->gen, memory_order_relaxed) & 31u))
		return STALE;
	*out = t;
	if (atomic_load_explicit(&t->state, memory_order_acquire) & (F_FREE | F_JOINED))
		return STALE;
	return OURS;
}

/* What a join or detach of a STALE handle returns: EINVAL for a thread
 * that ended detached, as glibc, else ESRCH. */
static int stale_errno(const struct ss_pt *t)
{
	return t && (atomic_load_explicit(&t->state, memory_order_relaxed) & F_DETACHED)
	               ? EINVAL : ESRCH;
}

/* ------------------------------------------------------------ config */

static struct {
	bool route;             /* SMOLSCALE_PTHREAD=1 */
	bool sanitizer;         /* a sanitizer runtime is loaded */
	char **only, **skip;    /* NULL-terminated glob lists, or NULL */
	size_t worker_stack;    /* the workers' stack size */
	size_t default_stack;   /* a fresh attribute object's stack size */
	size_t default_guard;   /* and guard size */
} cfg;

static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;
static atomic_ulong n_rerouted, n_real, n_spilled, n_inline;

/* "a, b*,c" -> {"a", "b*", "c", NULL}; NULL when there is no pattern. */
static char **patterns(const char *name)
{
	const char *s = getenv(name);
	char *copy, *p, **list;
	size_t n = 1;

	if (!s || !*s)
		return NULL;
	for (const char *q = s; *q; q++)
		n += *q == ',';
	copy = strdup(s);
	list = calloc(n + 1, sizeof *list);
	if (!copy || !list) {
		free(copy);
		free(list);
		fprintf(stderr, "smolscale: out of memory reading %s; ignoring it\n",
		        name);
		return NULL;
	}
	n = 0;
	char *save = NULL;
	for (p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ' || *p == '\t')
			p++;
		for (char *e = p + strlen(p); e > p && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		if (*p)
			list[n++] = p;
	}
	if (!n) {
		free(copy);
		free(list);
		return NULL;
	}
	return list;
}

static void spill_queued(void);

void ss__pt_stats(FILE *f)
{
	fprintf(f, " pthreads_rerouted=%lu pthreads_real=%lu pthreads_spilled=%lu"
	           " pthreads_inline=%lu",
	        atomic_load_explicit(&n_rerouted, memory_order_relaxed),
	        atomic_load_explicit(&n_real, memory_order_relaxed),
	        atomic_load_explicit(&n_spilled, memory_order_relaxed),
	        atomic_load_explicit(&n_inline, memory_order_relaxed));
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&pool_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&pool_lock);
}

static atomic_long live;

/* In the child only the forking thread lives on.  Its rerouted threads
 * (its own record, and those it runs inline) go on; every other record
 * not yet ended names a thread that does not exist here: it is marked
 * joined (its handle gives ESRCH) so that nothing runs it, and `live`
 * counts the survivors.  Locks other threads held stay held in the copy:
 * they are made new. */
static void fork_child(void)
{
	unsigned nc = atomic_load_explicit(&nchunks, memory_order_acquire);
	pthread_t me = ss__real.pthread_self();
	long keep = 0;

	pthread_mutex_unlock(&pool_lock);
	pthread_mutex_init(&verdict_lock, NULL);
	for (unsigned c = 0; c < nc; c++)
		for (int i = 0; i < PT_CHUNK; i++) {
			struct ss_pt *t = &chunks[c][i];
			uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

			pthread_mutex_init(&t->lock, NULL);
			if ((s & F_FREE) || PH(s) == PH_DONE)
				continue;
			if (PH(s) == PH_RUNNING && t->worker == me) {
				keep++;
				continue;
			}
			atomic_store_explicit(&t->state, (s & ~PH_MASK) | PH_DONE | F_JOINED,
			                      memory_order_relaxed);
		}
	atomic_store(&live, keep);
}

static void cfg_read(void)
{
	const char *s = getenv("SMOLSCALE_PTHREAD");
	pthread_attr_t a;

	if (s && *s && strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
		fprintf(stderr,
		        "smolscale: SMOLSCALE_PTHREAD=\"%.64s\" is not 0 or 1; "
		        "using the default 0\n", s);
	cfg.route = s && strcmp(s, "1") == 0;
	cfg.only = patterns("SMOLSCALE_PTHREAD_ONLY");
	cfg.skip = patterns("SMOLSCALE_PTHREAD_SKIP");
	/* The sanitizers intercept pthread_create themselves and wrap the
	 * start routine in their own: such a thread must stay real. */
	cfg.sanitizer = dlsym(RTLD_DEFAULT, "__asan_init") ||
	                dlsym(RTLD_DEFAULT, "__tsan_init") ||
	                dlsym(RTLD_DEFAULT, "__msan_init") ||
	                dlsym(RTLD_DEFAULT, "__hwasan_init");
	/* The workers' stack: the default stack size when the shim starts
	 * (RLIMIT_STACK, usually 8 MiB). */
	cfg.worker_stack = 0;
	if (pthread_getattr_default_np(&a) == 0) {
		pthread_attr_getstacksize(&a, &cfg.worker_stack);
		pthread_attr_destroy(&a);
	}
	if (pthread_attr_init(&a) == 0) {
		pthread_attr_getstacksize(&a, &cfg.default_stack);
		pthread_attr_getguardsize(&a, &cfg.default_guard);
		pthread_attr_destroy(&a);
	}
	/* Workers get exactly this stack, whatever the program sets as the
	 * default later: routing compares with it. */
	ss__worker_stack = cfg.worker_stack;
	/* The core's own threads bypass the interposed pthread_create. */
	ss__real_resolve();
	if (ss__real.pthread_create)
		ss__real_pthread_create = ss__real.pthread_create;
	else
		cfg.route = false;
	ss__shim_stats_init();
	ss__saturated_hook = spill_queued;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void ss__pt_init(void)
{
	pthread_once(&cfg_once, cfg_read);
}

/* ------------------------------------------------------------ routing */

static bool match_any(char **list, const char *name)
{
	for (; *list; list++)
		if (fnmatch(*list, name, 0) == 0)
			return true;
	return false;
}

/* Pattern verdicts per start routine: dladdr costs microseconds. */
#define VERDICTS 256
static struct {
	void *fn;
	bool route;
} verdicts[VERDICTS];

static bool patterns_allow(void *(*fn)(void *))
{
	unsigned h = (unsigned)(((uintptr_t)fn >> 4) * 2654435761u) % VERDICTS;
	Dl_info info;
	const char *name = "";
	bool route;

	pthread_mutex_lock(&verdict_lock);
	if (verdicts[h].fn == (void *)fn) {
		route = verdicts[h].route;
		pthread_mutex_unlock(&verdict_lock);
		return route;
	}
	pthread_mutex_unlock(&verdict_lock);
	if (dladdr((void *)fn, &info) && info.dli_sname &&
	    info.dli_saddr == (void *)fn)
		name = info.dli_sname;
	route = (!cfg.only || match_any(cfg.only, name)) &&
	        !(cfg.skip && match_any(cfg.skip, name));
	pthread_mutex_lock(&verdict_lock);
	verdicts[h].fn = (void *)fn;
	verdicts[h].route = route;
	pthread_mutex_unlock(&verdict_lock);
	return route;
}

#define SMALL_STACK (64u * 1024)

/* Can a task on a worker honour these attributes? */
static bool attr_routable(const pthread_attr_t *attr)
{
	void *addr = NULL;
	size_t size = 0;
	int inherit = PTHREAD_INHERIT_SCHED;
	cpu_set_t set;

	if (!attr) {
		/* The default attributes, which pthread_setattr_default_np
		 * may have changed since the workers started. */
		pthread_attr_t def;
		bool ok = true;

		if (cfg.worker_stack && pthread_getattr_default_np(&def) == 0) {
			ok = pthread_attr_getstacksize(&def, &size) == 0 &&
			     size <= cfg.worker_stack;
			pthread_attr_destroy(&def);
		}
		return ok;
	}
	if (pthread_attr_getinheritsched(attr, &inherit) != 0 ||
	    inherit == PTHREAD_EXPLICIT_SCHED)
		return false;
	/* A caller-supplied stack.  glibc's pthread_attr_getstack returns the
	 * stored top minus the size, so without a stack it gives -size and
	 * the sum is 0 (pthread_attr_getstackaddr says it directly but is
	 * deprecated, with a link-time warning). */
	if (pthread_attr_getstack(attr, &addr, &size) != 0 ||
	    (uintptr_t)addr + size != 0)
		return false;
	/* A stack above the workers', or one so small (under 64 KiB) or a
	 * guard other than the default, that the program may count on where
	 * its stack ends: the Open POSIX tests pthread_create/1-5 and 3-2
	 * overflow a minimal stack on purpose, and a worker's stack is
	 * neither that size nor guarded there. */
	if (pthread_attr_getstacksize(attr, &size) != 0 || size < SMALL_STACK ||
	    (cfg.worker_stack && size > cfg.worker_stack))
		return false;
	if (pthread_attr_getguardsize(attr, &size) != 0 || size != cfg.default_guard)
		return false;
	/* glibc fills the set with every CPU when no affinity was given. */
	if (pthread_attr_getaffinity_np(attr, sizeof set, &set) != 0 ||
	    CPU_COUNT(&set) != CPU_SETSIZE)
		return false;
	return true;
}

/* ------------------------------------------------------------ futex */

static int futex_wait_abs(_Atomic uint32_t *w, uint32_t val, clockid_t clk,
                          const struct timespec *abs)
{
	int op = FUTEX_WAIT_BITSET_PRIVATE |
	         (abs && clk == CLOCK_REALTIME ? FUTEX_CLOCK_REALTIME : 0);

	if (syscall(SYS_futex, w, op, val, abs, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return errno;
}

static void futex_wake_all(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------ keys */

/* The destructors of the keys the program created (through the
 * interposed pthread_key_create), and 1 + the highest such key.  glibc
 * holds the values; these only say which keys to clear and how.  dtor is
 * stored before live (release) and read after it (acquire). */
static struct {
	_Atomic(void (*)(void *)) dtor;
	atomic_bool live;
} keys[PTHREAD_KEYS_MAX];
static atomic_uint keys_hi;

int ss__pt_key_create(pthread_key_t *key, void (*destructor)(void *))
{
	int (*real)(pthread_key_t *, void (*)(void *)) = SS_REAL(pthread_key_create);
	int rc;

	if (!real)
		return ENOSYS;
	rc = real(key, destructor);
	if (rc == 0 && *key < PTHREAD_KEYS_MAX) {
		unsigned hi = atomic_load(&keys_hi);

		atomic_store_explicit(&keys[*key].dtor, destructor,
		                      memory_order_relaxed);
		atomic_store_explicit(&keys[*key].live, true, memory_order_release);
		while (hi < *key + 1 &&
		       !atomic_compare_exchange_weak(&keys_hi, &hi, *key + 1))
			;
	}
	return rc;
}

int ss__pt_key_delete(pthread_key_t key)
{
	int (*real)(pthread_key_t) = SS_REAL(pthread_key_delete);
	int rc;

	if (!real)
		return ENOSYS;
	if (key < PTHREAD_KEYS_MAX)
		atomic_store_explicit(&keys[key].live, false, memory_order_release);
	rc = real(key);
	return rc;
}

/* At the end of a rerouted thread: what glibc does at a thread's exit
 * (nptl_deallocate_tsd), then every value back to NULL. */
static void keys_destroy(void)
{
	unsigned hi = atomic_load_explicit(&keys_hi, memory_order_acquire);
	bool again = true;

	for (int round = 0; again && round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		again = false;
		for (unsigned k = 0; k < hi; k++) {
			void (*d)(void *);
			void *v;

			if (!atomic_load_explicit(&keys[k].live, memory_order_acquire) ||
			    !(v = pthread_getspecific(k)))
				continue;
			d = atomic_load_explicit(&keys[k].dtor, memory_order_relaxed);
			pthread_setspecific(k, NULL);
			if (d) {
				d(v);
				again = true;
			}
		}
	}
	if (again)
		for (unsigned k = 0; k < hi; k++)
			if (atomic_load_explicit(&keys[k].live, memory_order_acquire) &&
			    pthread_getspecific(k))
				pthread_setspecific(k, NULL);
}

/* ------------------------------------------------------------ running */

static __thread struct ss_pt *tls_cur __attribute__((tls_model("initial-exec")));

/* RUNNING -> FINISHING under the lock; returns the state before. */
static uint32_t leave_running(struct ss_pt *t)
{
	uint32_t s;

	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	while (PH(s) == PH_RUNNING &&
	       !atomic_compare_exchange_weak_explicit(
		       &t->state, &s, (s & ~PH_MASK) | PH_FINISHING,
		       memory_order_relaxed, memory_order_relaxed))
		;
	pthread_mutex_unlock(&t->lock);
	return s;
}

/* ------------------------------------------------------------ process end */

/*
 * A process ends when its last thread does: a program whose main() ends
 * with pthread_exit() lives on until its other threads have finished,
 * then exits with status 0 (glibc calls exit(0) in the last thread).
 * Under the shim the pool's threads would keep it alive for ever.  So
 * when main calls pthread_exit() with routing on, a reaper thread starts
 * and watches: once main's thread is gone, no rerouted thread is queued
 * or running (`live`, seq_cst) and /proc/self/task lists no thread but
 * the pool's own ("ss-" names) and itself, it calls exit(0).  Real
 * threads, those glibc starts for itself (SIGEV_THREAD timers, AIO)
 * included, are seen in /proc until their very end, key destructors and
 * all.  It polls (1 ms, doubling to 20 ms): it only runs after main has
 * exited, and costs well under 1% of a CPU.
 */
static void thread_gone(void)
{
	atomic_fetch_sub(&live, 1);
}

/* The state letter of /proc/self/task/TID/stat, and whether its name is
 * one of the pool's ("ss-"); 0 if the thread is gone. */
static char task_state(const char *tid, bool *pool)
{
	char path[320], buf[256], *name, *end;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	name = strchr(buf, '(');
	end = strrchr(buf, ')');
	if (!name || !end || end[1] != ' ')
		return 0;
	*pool = strncmp(name + 1, "ss-", 3) == 0;
	return end[2];
}

static bool only_pool_left(void)
{
	char self[16], main_tid[16];
	struct dirent *e;
	bool only = true;
	DIR *d;

	if (atomic_load(&live) != 0 || !(d = opendir("/proc/self/task")))
		return false;
	snprintf(self, sizeof self, "%d", (int)gettid());
	snprintf(main_tid, sizeof main_tid, "%d", (int)getpid());
	while (only && (e = readdir(d))) {
		bool pool = false;
		char st;

		if (e->d_name[0] == '.' || strcmp(e->d_name, self) == 0)
			continue;
		st = task_state(e->d_name, &pool);
		if (strcmp(e->d_name, main_tid) == 0)
			only = st == 0 || st == 'Z' || st == 'X';
		else
			only = st == 0 || pool;
	}
	closedir(d);
	return only && atomic_load(&live) == 0;
}

static void *reaper(void *unused)
{
	struct timespec nap = { 0, 1000000 };

	(void)unused;
	ss__real.pthread_setname_np(ss__real.pthread_self(), "ss-reaper");
	while (!only_pool_left()) {
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 20000000)
			nap.tv_nsec *= 2;
	}
	exit(0);
}

/* -> DONE: the result is published (release); wake the joiner, or drop
 * the thread's reference if it is detached; `task_ref`: also drop the
 * core task's (the thread ran in its task). */
static void finish(struct ss_pt *t, bool task_ref)
{
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		       &t->state, &s, (s & ~PH_MASK) | PH_DONE,
		       memory_order_release, memory_order_relaxed))
		;
	if (s & F_DETACHED)
		rec_put(t);
	else if (s & F_WAITERS)
		futex_wake_all(&t->state); /* a spurious wake if t is reused */
	if (task_ref)
		rec_put(t);
	thread_gone();
}

/* Signals sent to t's worker (t->sent) that its mask left pending would
 * reach the next thread on that worker: drop the thread-directed ones, as
 * a thread's exit does.  /proc/thread-self/status's SigPnd is this
 * thread's own pending set, apart from the process-wide one; sigtimedwait
 * takes a thread-directed signal before a process-directed one. */
static void drop_sent_signals(struct ss_pt *t)
{
	char line[128];
	uint64_t own = 0, drop, sent = atomic_load_explicit(&t->sent, memory_order_relaxed);
	FILE *f;

	if (!sent || !(f = fopen("/proc/thread-self/status", "re")))
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "SigPnd:", 7) == 0) {
			own = strtoull(line + 7, NULL, 16);
			break;
		}
	fclose(f);
	drop = own & sent;
	for (int sig = 1; drop; sig++, drop >>= 1)
		if (drop & 1) {
			struct timespec zero = { 0, 0 };
			sigset_t one;

			sigemptyset(&one);
			sigaddset(&one, sig);
			sigtimedwait(&one, NULL, &zero);
		}
}

/* Put the worker back as the core left it, after the thread's end. */
static void leave_thread(struct ss_pt *t)
{
	sigset_t all;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	keys_destroy();
	tls_cur = NULL;
	ss__set_thread_like(false);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	ss__diag_unblock(); /* the worker's own mask: stack captures */
	drop_sent_signals(t);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
}

/* The trampoline's cleanup frame: the thread is being unwound away by
 * pthread_exit() or cancellation; glibc ends the worker thread after. */
static void unwound(void *p)
{
	struct ss_pt *t = p;
	uint32_t s = leave_running(t);

	if (PH(s) == PH_RUNNING)
		t->result = s & F_EXITING ? t->exit_value : PTHREAD_CANCELED;
	/* else FINISHING: a cancel consumed after the return; the value
	 * the start routine returned stands. */
	leave_thread(t);
	if (s & F_SPILLED) {
		/* A real thread of its own: glibc simply ends it. */
		finish(t, false);
		return;
	}
	finish(t, true);
	/* Off a worker (a forked child's copy of one) nothing is owed. */
	if (!ss__worker_abandon() && ss__self())
		fprintf(stderr, "smolscale: a rerouted thread ended inside a "
		                "nested task; its worker is lost\n");
}

/* Raise the signals sent to t before it started, now that its mask is
 * set, inside its cleanup frame (a handler may call pthread_exit). */
static void raise_pending(struct ss_pt *t, uint64_t pending)
{
	pthread_t self = ss__real.pthread_self();

	for (int sig = 1; pending; sig++, pending >>= 1)
		if (pending & 1) {
			atomic_fetch_or_explicit(&t->sent, 1ull << (sig - 1), memory_order_relaxed);
			ss__real.pthread_kill(self, sig);
		}
}

static __attribute__((noinline)) void run_body(struct ss_pt *t, uint64_t pending)
{
	pthread_cleanup_push(unwound, t);
	raise_pending(t, pending);
	ss__set_entry((void *)t->fn);
	t->result = t->fn(t->arg);
	if (leave_running(t) & F_CANCEL_SENT) {
		/* Cancelled while it ran, returned before acting on it: the
		 * request is still pending on this worker.  Take it here,
		 * inside our frame, rather than in the next task. */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		pthread_testcancel();
	}
	pthread_cleanup_pop(0);
}

static void *trampoline(void *p)
{
	struct ss_pt *t = p;
	uint64_t pending;
	uint32_t s;

	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (s & F_SPILLED) {
		/* It ran elsewhere: on a real thread (the monitor found the
		 * pool full, spill below) or inline in its joiner
		 * (run_inline): only our reference is left. */
		pthread_mutex_unlock(&t->lock);
		rec_put(t);
		return NULL;
	}
	t->worker = ss__real.pthread_self();
	while (!atomic_compare_exchange_weak_explicit(
		       &t->state, &s,
		       (s & ~PH_MASK) | PH_RUNNING | (s & F_CANCEL_REQ ? F_CANCEL_SENT : 0),
		       memory_order_relaxed, memory_order_relaxed))
		;
	pending = t->pending;
	t->pending = 0;
	pthread_mutex_unlock(&t->lock);

	tls_cur = t;
	ss__set_thread_like(true);
	/* A new thread's cancellation state and type. */
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
	pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
	/* Cancelled before it started: it starts with the cancel pending and
	 * acts on it at its first cancellation point, running its cleanup
	 * handlers, as glibc's threads do (Open POSIX pthread_join/3-1). */
	if (s & F_CANCEL_REQ)
		ss__real.pthread_cancel(t->worker);
	run_body(t, pending);
	leave_thread(t);
	finish(t, true);
	return NULL;
}

/* ------------------------------------------------------------ spill */

/*
 * Threads that wait for each other need all of their number running: a
 * barrier of 1,000 threads never opens on a pool capped at MAX_THREADS
 * workers.  When the monitor finds the pool at its cap with fewer active
 * workers than its target (ss__pool_saturated), it calls spill_queued():
 * every rerouted thread still queued then starts on a real thread of its
 * own, as it would have natively.  Its core task, when it runs, finds it
 * SPILLED and only drops its reference.
 */
static void *spill_main(void *p)
{
	struct ss_pt *t = p;
	uint64_t pending;

	/* After spill_queued() set RUNNING and the worker. */
	pthread_mutex_lock(&t->lock);
	pending = t->pending;
	t->pending = 0;
	pthread_mutex_unlock(&t->lock);
	tls_cur = t;
	pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
	if (atomic_load_explicit(&t->state, memory_order_relaxed) & F_CANCEL_REQ)
		ss__real.pthread_cancel(ss__real.pthread_self());
	run_body(t, pending);
	leave_thread(t);
	finish(t, false);
	return NULL;
}

static void spill_queued(void)
{
	unsigned nc = atomic_load_explicit(&nchunks, memory_order_acquire);
	pthread_attr_t attr;
	sigset_t all, old;

	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The thread sets its own mask; start it with every signal blocked
	 * rather than the monitor's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned c = 0; c < nc; c++)
		for (int i = 0; i < PT_CHUNK; i++) {
			struct ss_pt *t = &chunks[c][i];
			uint32_t s = atomic_load_explicit(&t->state,
			                                  memory_order_relaxed);
			pthread_t th;

			if ((s & F_FREE) || PH(s) != PH_QUEUED)
				continue;
			pthread_mutex_lock(&t->lock);
			s = atomic_load_explicit(&t->state, memory_order_acquire);
			if (!(s & F_FREE) && PH(s) == PH_QUEUED &&
			    ss__real.pthread_create(&th, &attr, spill_main, t) == 0) {
				t->worker = th;
				atomic_fetch_add_explicit(&n_spilled, 1,
				                          memory_order_relaxed);
				while (!atomic_compare_exchange_weak_explicit(
					       &t->state, &s,
					       (s & ~PH_MASK) | PH_RUNNING | F_SPILLED |
					       (s & F_CANCEL_REQ ? F_CANCEL_SENT : 0),
					       memory_order_relaxed, memory_order_relaxed))
					;
			}
			pthread_mutex_unlock(&t->lock);
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

/* ------------------------------------------------------------ create */

/*
 * RLIMIT_NPROC counts every thread of the user.  Under a limit that the
 * pool could reach, rerouting would trade the program's threads for the
 * pool's: its hidden threads take part of the allowance, and threads that
 * wait for each other need a worker each, which the pool may then be
 * unable to start (a hang where natively every pthread_create succeeded;
 * tests/hostile, nproc-*).  So under a finite limit below the pool's cap
 * plus its hidden threads, every thread is a real one, as natively.
 */
#define PT_HIDDEN_THREADS 8 /* monitor, balancer, ss-diag, reaper, spare */

/* Whether this process is in the initial user namespace, whose root the
 * kernel never holds to the limit (kernel/fork.c, copy_process: the
 * init_ucounts exemption): its uid_map maps every id to itself. */
static bool in_init_userns(void)
{
	char line[128] = "";
	FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long a = 1, b = 1, n = 0;

	if (f) {
		if (fgets(line, sizeof line, f))
			sscanf(line, "%lu %lu %lu", &a, &b, &n);
		fclose(f);
	}
	return a == 0 && b == 0 && n == 4294967295ul;
}

static bool nproc_tight_now(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NPROC, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)ss__config()->max_threads + PT_HIDDEN_THREADS)
		return false;
	/* The limit counts by real user ID. */
	return !(getuid() == 0 && in_init_userns());
}

/*
 * The verdict is cached: getrlimit() is a system call (1.4 us on a VM, a
 * fifth of a rerouted create+join), and limits seldom change.  It is made
 * again once NPROC_RECHECK_MS have passed on CLOCK_MONOTONIC_COARSE (a
 * few ns, from the vDSO).  The first create of a process checks at once,
 * so a limit set before any thread starts (a sandbox's way) is always
 * seen; one lowered while threads run is seen within that time.
 */
#define NPROC_RECHECK_MS 100

/* Bit 0: tight; the rest: when it was decided, in coarse ms + 1 (0: not
 * yet).  Relaxed: a stale or racing verdict only moves the next check. */
static _Atomic uint64_t nproc_verdict;

static bool nproc_tight(void)
{
	uint64_t v = atomic_load_explicit(&nproc_verdict, memory_order_relaxed);
	struct timespec ts;
	uint64_t now;
	bool tight;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1;
	if (v && now - (v >> 1) < NPROC_RECHECK_MS)
		return v & 1;
	tight = nproc_tight_now();
	atomic_store_explicit(&nproc_verdict, now << 1 | tight,
	                      memory_order_relaxed);
	return tight;
}

int ss__pt_create(pthread_t *th, const pthread_attr_t *attr,
                  void *(*fn)(void *), void *arg)
{
	int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
	            void *) = SS_REAL(pthread_create);
	int detach = PTHREAD_CREATE_JOINABLE;
	struct ss_pt *t;
	ss_task *task;

	if (!real)
		return ENOSYS;
	ss__pt_init();
	if (!cfg.route || cfg.sanitizer || !th || !fn || !attr_routable(attr) ||
	    ((cfg.only || cfg.skip) && !patterns_allow(fn)) ||
	    (attr && pthread_attr_getdetachstate(attr, &detach) != 0) ||
	    nproc_tight() || ss__pool_saturated() || !(t = rec_alloc()))
		goto real;

	t->fn = fn;
	t->arg = arg;
	t->result = t->exit_value = NULL;
	t->pending = 0;
	atomic_store_explicit(&t->sent, 0, memory_order_relaxed);
	t->named = t->cancel_deferred = false;
	t->stack_req = 0;
	if (attr) {
		size_t size = 0;

		pthread_attr_getstacksize(attr, &size);
		t->stack_req = size;
	}
	t->inline_depth = 0;
	atomic_store_explicit(&t->refs, 2, memory_order_relaxed);
	/* The attribute's mask if it has one (else the call returns
	 * PTHREAD_ATTR_NO_SIGMASK_NP), else the creator's, as for a thread. */
	if (!attr || pthread_attr_getsigmask_np(attr, &t->mask) != 0)
		pthread_sigmask(SIG_BLOCK, NULL, &t->mask);
	/* Release: the monitor's spill_queued() may take it from here on,
	 * and must see the fields above (it loads the state with acquire). */
	atomic_store_explicit(&t->state,
	                      PH_QUEUED | (detach == PTHREAD_CREATE_DETACHED ?
	                                   F_DETACHED : 0),
	                      memory_order_release);
	/* glibc stores the handle before the thread can run; so do we. */
	*th = handle_of(t);
	atomic_fetch_add(&live, 1);
	task = ss_spawn(trampoline, t);
	if (!task) {
		uint32_t s;

		/* Under the lock, against spill_queued(). */
		pthread_mutex_lock(&t->lock);
		s = atomic_load_explicit(&t->state, memory_order_relaxed);
		if (PH(s) == PH_QUEUED)
			rec_free(t); /* pool_lock nests inside a record's */
		pthread_mutex_unlock(&t->lock);
		if (PH(s) != PH_QUEUED) {
			/* Spilled meanwhile: it runs; no task will drop its
			 * reference. */
			rec_put(t);
			atomic_fetch_add_explicit(&n_rerouted, 1, memory_order_relaxed);
			return 0;
		}
		atomic_fetch_sub(&live, 1);
		goto real;
	}
	ss_detach(task);
	atomic_fetch_add_explicit(&n_rerouted, 1, memory_order_relaxed);
	return 0;
real:
	atomic_fetch_add_explicit(&n_real, 1, memory_order_relaxed);
	return real(th, attr, fn, arg);
}

/* ------------------------------------------------------------ join, detach */

/* Clears JOINING when a joiner leaves without the thread (timeout, or its
 * own cancellation): the thread stays joinable. */
static void unclaim(void *p)
{
	struct ss_pt *t = p;
	uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		       &t->state, &s, s & ~(F_JOINING | F_WAITERS),
		       memory_order_relaxed, memory_order_relaxed))
		;
	/* If it finished meanwhile, DONE without a joiner is fine: a later
	 * join or detach frees it. */
}

/* How long a joiner spins before it sleeps: long (JOIN_SPIN_LONG_NS) while
 * its joins have mostly ended within that long, briefly otherwise, as the
 * core's joins (ss__spin_learn, core/internal.h).  A short thread ends a
 * few microseconds after its join begins while a worker is awake, but once
 * both sides sleep each join costs a wake-up on each side (tens of
 * microseconds in a VM); spinning that long is what keeps them awake. */
#define JOIN_SPIN_NS 2000u
#define JOIN_SPIN_LONG_NS 50000u
static __thread unsigned join_score __attribute__((tls_model("initial-exec")));

/* A joiner cancelled while it sleeps takes its blocking hint back. */
static void unhint(void *hinted)
{
	if (*(volatile bool *)hinted)
		ss_blocking_end();
}

/* The sleeping part of wait_done: futex waits until t is DONE (0, *ps its
 * state), or the deadline passed (ETIMEDOUT); *hinted is set once the
 * blocking hint is given. */
static int sleep_until_done(struct ss_pt *t, volatile uint32_t *ps, clockid_t clk,
                            const struct timespec *abs, volatile bool *hinted)
{
	uint32_t s = *ps;
	int rc = 0;

	while (PH(s) != PH_DONE) {
		struct timespec slice, *wait_until = (struct timespec *)abs;
		clockid_t wclk = clk;

		if (!*hinted) {
			/* A joiner on a worker blocks it: say so, so its
			 * queued work (often the thread it joins) moves now. */
			ss_blocking_begin();
			*hinted = true;
		}
		if (!(s & F_WAITERS) &&
		    !atomic_compare_exchange_strong_explicit(
			    &t->state, &s, s | F_WAITERS, memory_order_acquire,
			    memory_order_acquire))
			continue;
		s |= F_WAITERS;
		/* pthread_join is a cancellation point: sleep in slices of
		 * 100 ms at most (on the deadline's clock, up to the deadline)
		 * and look for a cancel between them. */
		if (!abs)
			wclk = CLOCK_MONOTONIC;
		clock_gettime(wclk, &slice);
		slice.tv_nsec += 100000000;
		if (slice.tv_nsec >= 1000000000) {
			slice.tv_sec++;
			slice.tv_nsec -= 1000000000;
		}
		wait_until = &slice;
		if (abs && (abs->tv_sec < slice.tv_sec ||
		            (abs->tv_sec == slice.tv_sec && abs->tv_nsec < slice.tv_nsec)))
			wait_until = (struct timespec *)abs;
		rc = futex_wait_abs(&t->state, s, wclk, wait_until);
		pthread_testcancel();
		s = atomic_load_explicit(&t->state, memory_order_acquire);
		if (abs && PH(s) != PH_DONE) {
			struct timespec now;

			clock_gettime(clk, &now);
			if (now.tv_sec > abs->tv_sec ||
			    (now.tv_sec == abs->tv_sec && now.tv_nsec >= abs->tv_nsec)) {
				rc = ETIMEDOUT;
				break;
			}
		}
		rc = 0;
	}
	*ps = s;
	return rc;
}

static int wait_done(struct ss_pt *t, clockid_t clk, const struct timespec *abs)
{
	uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	uint64_t start = ss__now_ns();
	uint64_t spin_until = start + ss__spin_ns(join_score, JOIN_SPIN_NS,
	                                          JOIN_SPIN_LONG_NS);
	volatile bool hinted = false;
	int rc = 0;

	/* The clock is read every 8th round: in a VM it costs more than a
	 * look at the state. */
	for (unsigned i = 1; PH(s) != PH_DONE; i++) {
		if (i % 8 == 0 && ss__now_ns() > spin_until)
			break;
		ss__cpu_relax();
		s = atomic_load_explicit(&t->state, memory_order_acquire);
	}
	/* volatile: the cleanup frame is a setjmp. */
	volatile uint32_t vs = s;

	pthread_cleanup_push(unhint, (void *)&hinted);
	rc = sleep_until_done(t, &vs, clk, abs, &hinted);
	pthread_cleanup_pop(0);
	s = vs;
	if (hinted)
		ss_blocking_end();
	if (PH(s) == PH_DONE) {
		ss__spin_learn(&join_score, ss__now_ns() - start, JOIN_SPIN_LONG_NS);
		return 0;
	}
	return rc ? rc : ETIMEDOUT;
}

/* ------------------------------------------------------------ inline joins */

/*
 * A rerouted thread that joins one that has not started yet runs it
 * itself, on its own stack, as the core's joins do: fork-join code that
 * starts a thread per half and joins it would otherwise block a worker
 * per level and make the pool add threads as fast as the program waits.
 * The joined thread gets what its own task would have given it: its
 * handle from pthread_self(), its signal mask, a new thread's cancellation
 * state, empty thread-specific data (the joiner's values are set aside and
 * put back), and its key destructors at its end.
 *
 * If it ends by pthread_exit() or cancellation, it is unwound to the
 * cleanup frame registered below, which catches the unwind and returns
 * into the joiner instead of passing it on (RESEARCH.md 4.6(b)).
 * pthread_exit() there unwinds without glibc's "exiting" mark
 * (ss__pt_exit), which would stop cancellation and setuid() from reaching
 * the joiner's thread.  A cancellation is glibc's own and leaves the mark:
 * the worker then leaves the pool as soon as the joiner's own task
 * returns (ss__worker_retire_after_task); until then the joiner cannot be
 * cancelled and a setuid() skips its thread.  A joiner with a cancel sent
 * or pending does not run threads inline, a cancel aimed at it meanwhile
 * waits until it resumes, a timed join never runs one, and neither does a
 * joiner with less than 3/4 of a worker's stack left.
 */
struct inline_run {
	struct ss_pt *t;        /* the thread run inline */
	uint64_t pending;       /* signals to raise when it starts */
	__pthread_unwind_buf_t cbuf;
	bool unwound;           /* by a cancellation: glibc marked the thread */
};

/* The joiner's values of the program's keys, set aside. */
struct saved_keys {
	unsigned n, cap;
	struct { unsigned k; void *v; } small[16], *e;
};

static void keys_set_aside(struct saved_keys *sk)
{
	unsigned hi = atomic_load_explicit(&keys_hi, memory_order_acquire);

	sk->n = 0;
	sk->cap = 16;
	sk->e = sk->small;
	for (unsigned k = 0; k < hi; k++) {
		void *v;

		if (!atomic_load_explicit(&keys[k].live, memory_order_acquire) ||
		    !(v = pthread_getspecific(k)))
			continue;
		if (sk->n == sk->cap) {
			void *bigger = malloc(2 * sk->cap * sizeof *sk->e);

			if (!bigger)
				break; /* this value stays visible to the child */
			memcpy(bigger, sk->e, sk->n * sizeof *sk->e);
			if (sk->e != sk->small)
				free(sk->e);
			sk->e = bigger;
			sk->cap *= 2;
		}
		sk->e[sk->n].k = k;
		sk->e[sk->n++].v = v;
		pthread_setspecific(k, NULL);
	}
}

static void keys_put_back(struct saved_keys *sk)
{
	for (unsigned i = 0; i < sk->n; i++)
		pthread_setspecific(sk->e[i].k, sk->e[i].v);
	if (sk->e != sk->small)
		free(sk->e);
}

/* The inline thread's end, normal or unwound: what leave_thread does for
 * a task, minus what the joiner restores. */
static void inline_end(struct ss_pt *t)
{
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	keys_destroy();
	drop_sent_signals(t);
	finish(t, false);       /* its core task drops the other reference */
}

/* glibc's __sigsetjmp, typed for the cancel buffer as pthread.h's own
 * pthread_cleanup_push declares it: that buffer has no room for a signal
 * mask, which savemask 0 never stores. */
extern int ss__sigsetjmp_cancel(struct __cancel_jmp_buf_tag env[1], int savemask)
	__asm__("__sigsetjmp") __attribute__((returns_twice));

static __attribute__((noinline)) void inline_body(struct inline_run *ir)
{
	struct ss_pt *t = ir->t;

	/* pthread_cleanup_push spelled out, to return here instead of
	 * passing the unwind on (pthread.h, the C variant). */
	if (ss__sigsetjmp_cancel(ir->cbuf.__cancel_jmp_buf, 0)) {
		uint32_t s;

		/* glibc longjmps here with its cleanup chain still at this
		 * frame: put back the joiner's before anything else. */
		__pthread_unregister_cancel(&ir->cbuf);
		s = leave_running(t);
		if (PH(s) == PH_RUNNING)
			t->result = s & F_EXITING ? t->exit_value : PTHREAD_CANCELED;
		/* pthread_exit unwound it without glibc's mark (ss__pt_exit);
		 * a cancellation was glibc's own and marked this thread. */
		ir->unwound = !(s & F_EXITING);
		inline_end(t);
		return;
	}
	__pthread_register_cancel(&ir->cbuf);
	raise_pending(t, ir->pending);
	t->result = t->fn(t->arg);
	if (leave_running(t) & F_CANCEL_SENT) {
		/* As in run_body: a cancel it did not act on is taken here. */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		pthread_testcancel();
	}
	__pthread_unregister_cancel(&ir->cbuf);
	inline_end(t);
}

/* In a rerouted thread on a worker: run t, which it joins, if t has not
 * started; true if t is DONE now. */
/* Threads run inline on this thread's stack, outermost first. */
static __thread unsigned tls_inline_depth __attribute__((tls_model("initial-exec")));
/* The low end of this thread's stack, 0 until looked up. */
static __thread uintptr_t tls_stack_lo __attribute__((tls_model("initial-exec")));

/* Has this thread the stack left to run t inline?  At least what t asked
 * for, and never less than 3/4 of a worker's stack (6 MiB by default):
 * natively it would have a stack of its own. */
static bool stack_allows(const struct ss_pt *t)
{
	size_t need = cfg.worker_stack / 4 * 3;
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);

	if (!tls_stack_lo) {
		pthread_attr_t a;
		void *lo;
		size_t size;

		if (ss__real.pthread_getattr_np(ss__real.pthread_self(), &a) != 0)
			return false;
		if (pthread_attr_getstack(&a, &lo, &size) == 0)
			tls_stack_lo = (uintptr_t)lo;
		pthread_attr_destroy(&a);
		if (!tls_stack_lo)
			return false;
	}
	if (t->stack_req > need)
		need = t->stack_req;
	return here > tls_stack_lo && here - tls_stack_lo >= need;
}

static bool run_inline(struct ss_pt *t)
{
	struct ss_pt *parent = tls_cur;
	struct inline_run ir = { .t = t, .unwound = false };  /* unwound: marked */
	struct saved_keys sk;
	sigset_t parent_mask;
	int cstate, ctype;
	uint64_t pending;
	uint32_t s;
	bool cancel;

	if (!stack_allows(t))
		return false;
	/* A cancel sent to the joiner, or waiting for it, would act in the
	 * inline thread: then the joiner waits as any other does.  From here
	 * on, cancels for it wait until it resumes (ss__pt_cancel). */
	pthread_mutex_lock(&parent->lock);
	s = atomic_load_explicit(&parent->state, memory_order_relaxed);
	if ((s & F_CANCEL_SENT) || parent->cancel_deferred) {
		pthread_mutex_unlock(&parent->lock);
		return false;
	}
	parent->inline_depth++;
	pthread_mutex_unlock(&parent->lock);

	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	/* One cancelled before it started runs in its own task: acting on
	 * the cancel takes the thread it runs on out of service. */
	if (PH(s) != PH_QUEUED || (s & F_CANCEL_REQ)) {
		pthread_mutex_unlock(&t->lock);
		pthread_mutex_lock(&parent->lock);
		cancel = --parent->inline_depth == 0 && parent->cancel_deferred;
		if (cancel) {
			parent->cancel_deferred = false;
			atomic_fetch_or_explicit(&parent->state, F_CANCEL_SENT,
			                         memory_order_relaxed);
			ss__real.pthread_cancel(parent->worker);
		}
		pthread_mutex_unlock(&parent->lock);
		return false;
	}
	t->worker = ss__real.pthread_self();
	while (!atomic_compare_exchange_weak_explicit(
		       &t->state, &s, (s & ~PH_MASK) | PH_RUNNING | F_SPILLED,
		       memory_order_relaxed, memory_order_relaxed))
		;
	pending = t->pending;
	t->pending = 0;
	pthread_mutex_unlock(&t->lock);
	atomic_fetch_add_explicit(&n_inline, 1, memory_order_relaxed);

	keys_set_aside(&sk);
	/* The type first: a new thread's state, never async while enabled. */
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &ctype);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &cstate);
	pthread_sigmask(SIG_SETMASK, &t->mask, &parent_mask);
	tls_cur = t;
	tls_inline_depth++;
	ir.pending = pending;
	inline_body(&ir);
	tls_inline_depth--;
	tls_cur = parent;
	pthread_sigmask(SIG_SETMASK, &parent_mask, NULL);
	keys_put_back(&sk);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_setcanceltype(ctype, NULL);
	pthread_setcancelstate(cstate, NULL);
	pthread_mutex_lock(&parent->lock);
	cancel = --parent->inline_depth == 0 && parent->cancel_deferred;
	if (cancel) {
		parent->cancel_deferred = false;
		atomic_fetch_or_explicit(&parent->state, F_CANCEL_SENT,
		                         memory_order_relaxed);
		ss__real.pthread_cancel(parent->worker);
	}
	pthread_mutex_unlock(&parent->lock);
	if (ir.unwound)
		ss__worker_retire_after_task();
	return true;
}

static int join_ours(struct ss_pt *t, void **ret, bool try, clockid_t clk,
                     const struct timespec *abs)
{
	uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	int saved = errno, rc;

	if (t == tls_cur)
		return EDEADLK;
	/* A cancellation point: a pending cancel acts before anything. */
	pthread_testcancel();
	if (abs && (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000))
		return EINVAL;
	if (abs && clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	do {
		if (s & (F_DETACHED | F_JOINING))
			return EINVAL;
		if (try && PH(s) != PH_DONE)
			return EBUSY;
	} while (!atomic_compare_exchange_weak_explicit(
		&t->state, &s, s | F_JOINING, memory_order_acquire,
		memory_order_acquire));
	/* A rerouted joiner on a worker runs a thread that has not started. */
	if (PH(s) == PH_QUEUED && !abs && tls_cur && ss__self() && run_inline(t))
		s = atomic_load_explicit(&t->state, memory_order_acquire);
	if (PH(s) != PH_DONE) {
		pthread_cleanup_push(unclaim, t);
		rc = wait_done(t, clk, abs);
		pthread_cleanup_pop(0);
		if (rc) {
			unclaim(t);
			errno = saved;
			return rc;
		}
	}
	if (ret)
		*ret = t->result;
	atomic_fetch_or_explicit(&t->state, F_JOINED, memory_order_relaxed);
	rec_put(t);
	errno = saved;
	return 0;
}

int ss__pt_join(pthread_t th, void **ret)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case OURS:
		return join_ours(t, ret, false, CLOCK_REALTIME, NULL);
	case STALE:
		return stale_errno(t);
	}
	return SS_CALL_REAL(pthread_join, th, ret);
}

int ss__pt_tryjoin(pthread_t th, void **ret)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case OURS:
		return join_ours(t, ret, true, CLOCK_REALTIME, NULL);
	case STALE:
		return stale_errno(t);
	}
	return SS_CALL_REAL(pthread_tryjoin_np, th, ret);
}

int ss__pt_timedjoin(pthread_t th, void **ret, const struct timespec *abstime)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case OURS:
		return join_ours(t, ret, false, CLOCK_REALTIME, abstime);
	case STALE:
		return stale_errno(t);
	}
	return SS_CALL_REAL(pthread_timedjoin_np, th, ret, abstime);
}

int ss__pt_clockjoin(pthread_t th, void **ret, clockid_t clk,
                     const struct timespec *abstime)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case OURS:
		return join_ours(t, ret, false, clk, abstime);
	case STALE:
		return stale_errno(t);
	}
	return SS_CALL_REAL(pthread_clockjoin_np, th, ret, clk, abstime);
}

int ss__pt_detach(pthread_t th)
{
	struct ss_pt *t;
	uint32_t s;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_detach, th);
	case STALE:
		return stale_errno(t);
	}
	s = atomic_load_explicit(&t->state, memory_order_acquire);
	do {
		if (s & (F_DETACHED | F_JOINING))
			return EINVAL;
	} while (!atomic_compare_exchange_weak_explicit(
		&t->state, &s, s | F_DETACHED, memory_order_acq_rel,
		memory_order_acquire));
	if (PH(s) == PH_DONE)
		rec_put(t);
	return 0;
}

/* ------------------------------------------------------------ self, exit */

pthread_t ss__pt_self(void)
{
	struct ss_pt *t = tls_cur;

	if (t)
		return handle_of(t);
	return SS_REAL(pthread_self)();
}

void ss__pt_exit(void *ret)
{
	struct ss_pt *t = tls_cur;

	ss__real_resolve();
	if (t && tls_inline_depth) {
		/* Run inline by its joiner (run_inline): glibc's pthread_exit
		 * would mark the joiner's thread as exiting for good.  Unwind
		 * as it does, minus that mark: from a buffer registered here,
		 * to the innermost cleanup frame before it, and on down to
		 * inline_body's, which returns into the joiner. */
		__pthread_unwind_buf_t here;

		t->exit_value = ret;
		atomic_fetch_or_explicit(&t->state, F_EXITING, memory_order_relaxed);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		__pthread_register_cancel(&here);
		__pthread_unwind_next(&here);
	}
	if (t) {
		/* Read by unwound() on this same thread. */
		t->exit_value = ret;
		atomic_fetch_or_explicit(&t->state, F_EXITING, memory_order_relaxed);
	} else if (cfg.route && !cfg.sanitizer && getpid() == gettid()) {
		/* main() ends its thread only; see "process end" above. */
		pthread_attr_t attr;
		sigset_t all, old;
		pthread_t th;

		if (pthread_attr_init(&attr) == 0) {
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			ss__real.pthread_create(&th, &attr, reaper, NULL);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			pthread_attr_destroy(&attr);
		}
	}
	ss__real.pthread_exit(ret);
}

/* ------------------------------------------------------------ cancel, kill */

int ss__pt_cancel(pthread_t th)
{
	struct ss_pt *t;
	uint32_t s;
	int rc = 0;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_cancel, th);
	case STALE:
		return ESRCH;
	}
	if (t == tls_cur && !t->inline_depth) {
		/* Itself: no lock (with asynchronous cancellation it unwinds
		 * at once, into unwound(), which takes the lock). */
		atomic_fetch_or_explicit(&t->state, F_CANCEL_SENT, memory_order_relaxed);
		return ss__real.pthread_cancel(ss__real.pthread_self());
	}
	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (PH(s) == PH_QUEUED) {
		atomic_fetch_or_explicit(&t->state, F_CANCEL_REQ, memory_order_relaxed);
	} else if (PH(s) == PH_RUNNING && t->inline_depth) {
		/* Its worker runs a thread it joins (run_inline): the cancel
		 * would hit that one.  Sent when it resumes. */
		t->cancel_deferred = true;
	} else if (PH(s) == PH_RUNNING && !(s & F_CANCEL_SENT)) {
		atomic_fetch_or_explicit(&t->state, F_CANCEL_SENT, memory_order_relaxed);
		rc = ss__real.pthread_cancel(t->worker);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* glibc refuses its internal signals (SIGCANCEL, SIGSETXID). */
static bool bad_signal(int sig)
{
	return sig < 0 || sig >= NSIG || (sig >= 32 && sig < SIGRTMIN);
}

int ss__pt_kill(pthread_t th, int sig)
{
	struct ss_pt *t;
	uint32_t s;
	int rc = 0;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_kill, th, sig);
	case STALE:
		return ESRCH;
	}
	if (bad_signal(sig))
		return EINVAL;
	if (sig == 0)
		return 0;
	if (t == tls_cur) {
		/* To itself: no lock (its handler may exit or longjmp), and
		 * it cannot leave RUNNING meanwhile. */
		atomic_fetch_or_explicit(&t->sent, 1ull << (sig - 1), memory_order_relaxed);
		return ss__real.pthread_kill(ss__real.pthread_self(), sig);
	}
	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (PH(s) == PH_QUEUED) {
		t->pending |= 1ull << (sig - 1);
	} else if (PH(s) == PH_RUNNING) {
		atomic_fetch_or_explicit(&t->sent, 1ull << (sig - 1), memory_order_relaxed);
		rc = ss__real.pthread_kill(t->worker, sig);
	}
	/* FINISHING or DONE: a thread that has ended takes no signal. */
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int ss__pt_sigqueue(pthread_t th, int sig, const union sigval val)
{
	struct ss_pt *t;
	uint32_t s;
	int rc = 0;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_sigqueue, th, sig, val);
	case STALE:
		return ESRCH;
	}
	if (bad_signal(sig))
		return EINVAL;
	if (sig == 0)
		return 0;
	if (t == tls_cur) {
		atomic_fetch_or_explicit(&t->sent, 1ull << (sig - 1), memory_order_relaxed);
		return ss__real.pthread_sigqueue(ss__real.pthread_self(), sig, val);
	}
	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (PH(s) == PH_QUEUED) {
		t->pending |= 1ull << (sig - 1); /* raised without its value */
	} else if (PH(s) == PH_RUNNING) {
		atomic_fetch_or_explicit(&t->sent, 1ull << (sig - 1), memory_order_relaxed);
		rc = ss__real.pthread_sigqueue(t->worker, sig, val);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* ------------------------------------------------------------ names, attributes */

int ss__pt_setname(pthread_t th, const char *name)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_setname_np, th, name);
	case STALE:
		return ESRCH;
	}
	if (strlen(name) > 15)
		return ERANGE;
	pthread_mutex_lock(&t->lock);
	strcpy(t->name, name);
	t->named = true;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int ss__pt_getname(pthread_t th, char *buf, size_t len)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_getname_np, th, buf, len);
	case STALE:
		return ESRCH;
	}
	if (len < 16)
		return ERANGE;
	pthread_mutex_lock(&t->lock);
	if (t->named) {
		strcpy(buf, t->name);
	} else {
		/* A new thread is named as its process. */
		strncpy(buf, program_invocation_short_name, 15);
		buf[15] = '\0';
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int ss__pt_getattr(pthread_t th, pthread_attr_t *attr)
{
	struct ss_pt *t;
	uint32_t s;
	int rc;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_getattr_np, th, attr);
	case STALE:
		return ESRCH;
	}
	pthread_mutex_lock(&t->lock);
	s = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (PH(s) == PH_RUNNING) {
		/* The worker's stack is the one it runs on. */
		rc = ss__real.pthread_getattr_np(t->worker, attr);
	} else {
		rc = pthread_attr_init(attr);
		if (rc == 0 && cfg.worker_stack)
			pthread_attr_setstacksize(attr, cfg.worker_stack);
	}
	pthread_mutex_unlock(&t->lock);
	if (rc == 0)
		pthread_attr_setdetachstate(attr, s & F_DETACHED
		                                          ? PTHREAD_CREATE_DETACHED
		                                          : PTHREAD_CREATE_JOINABLE);
	return rc;
}

int ss__pt_getcpuclockid(pthread_t th, clockid_t *clk)
{
	struct ss_pt *t;
	int rc = 0;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_getcpuclockid, th, clk);
	case STALE:
		return ESRCH;
	}
	/* Running: its worker's clock (which also counts the worker's other
	 * tasks).  Otherwise it runs on no thread: the process's clock. */
	pthread_mutex_lock(&t->lock);
	if (PH(atomic_load_explicit(&t->state, memory_order_relaxed)) == PH_RUNNING)
		rc = ss__real.pthread_getcpuclockid(t->worker, clk);
	else
		*clk = CLOCK_PROCESS_CPUTIME_ID;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Scheduling and affinity belong to the worker, shared by every task it
 * runs: a rerouted thread cannot change them (keep such threads real with
 * SMOLSCALE_PTHREAD_SKIP).  The getters answer for the worker. */
int ss__pt_setaffinity(pthread_t th, size_t size, const cpu_set_t *set)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_setaffinity_np, th, size, set);
	case STALE:
		return ESRCH;
	}
	return EINVAL;
}

int ss__pt_getaffinity(pthread_t th, size_t size, cpu_set_t *set)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_getaffinity_np, th, size, set);
	case STALE:
		return ESRCH;
	}
	return sched_getaffinity(0, size, set) == 0 ? 0 : errno;
}

int ss__pt_setschedparam(pthread_t th, int policy, const struct sched_param *p)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_setschedparam, th, policy, p);
	case STALE:
		return ESRCH;
	}
	return EPERM;
}

int ss__pt_getschedparam(pthread_t th, int *policy, struct sched_param *p)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_getschedparam, th, policy, p);
	case STALE:
		return ESRCH;
	}
	*policy = SCHED_OTHER;
	memset(p, 0, sizeof *p);
	return 0;
}

int ss__pt_setschedprio(pthread_t th, int prio)
{
	struct ss_pt *t;

	switch (lookup(th, &t)) {
	case REAL_THREAD:
		return SS_CALL_REAL(pthread_setschedprio, th, prio);
	case STALE:
		return ESRCH;
	}
	return EPERM;
}
