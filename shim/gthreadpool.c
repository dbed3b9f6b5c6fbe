/*
 * gthreadpool.c - GLib's GThreadPool API on the work-balancing core.
 *
 * The preload library exports the sixteen g_thread_pool_* functions of
 * GLib 2.74 (preload/entry.c); a program's calls, and libgio's (GTask,
 * GThreadedResolver, GThreadedSocketService import them through the PLT),
 * come here.  libglib's own calls never do: it is linked with
 * -Bsymbolic-functions (RESEARCH.md 5.3).  Nothing here links GLib: the
 * few GLib functions this layer needs (g_set_error and its quark,
 * g_return_if_fail_warning) and GLib's own g_thread_pool_* are found at
 * run time (ss__real_find), so a program without GLib is untouched.
 *
 * A pool we create is a `struct gpool`, whose first three fields are the
 * public GThreadPool (func, user_data, exclusive: ABI).  Its items wait in
 * the pool's own queue; its "threads" are runner tasks on the core.  A
 * runner takes items one by one and calls func(item, user_data) until the
 * queue is empty, the pool's limit says it is one runner too many, or the
 * pool was freed with immediate=TRUE.  push() starts a runner when the
 * queued items outnumber the runners not inside func and the pool's
 * max_threads allows one more, so a pool never runs more items at once
 * than max_threads (-1: no limit), and a runner never waits for work:
 * the core's parked workers are the only idle reserve.  Runners that
 * block in func are the monitor's business, as any task's.
 *
 * Message passing between pools (pool A's func pushes to pool B) is where
 * GLib pays a thread wake-up per item: a runner started from a worker goes
 * to that worker's own queue.  After each item a runner looks at its
 * worker: if other tasks wait there (B's runner) and its own queue is not
 * empty, it hands its place to a continuation at the back of that queue,
 * so stages interleave on one worker with no wake-up at all.
 *
 * Foreign pools.  A pool this layer did not create (GLib created it:
 * SMOLSCALE_GTHREADPOOL=0 or "shared", or libglib itself) reaches here
 * all the same.  A pool of ours carries a mark after the public fields:
 * its own address xor GP_MAGIC.  In a GLib pool that word is its queue
 * pointer (GRealThreadPool, 2.74 and later), a user-space address, whose
 * top bits are zero on x86-64 and aarch64; the mark's top bits are not.
 * So the test is exact on 64-bit targets; anything unmarked goes to
 * GLib's real function.
 *
 * What is kept of GLib's behaviour (RESEARCH.md 6), and what is not:
 *  - FIFO start order, or the sort function's order (insertion is stable:
 *    equal items keep their push order); exact with max_threads 1.
 *  - set_max_threads(0) freezes; a lower limit takes effect as running
 *    items finish; a higher one starts runners for queued items at once.
 *  - free(immediate, wait_) in all four combinations.  Items dropped by
 *    immediate=TRUE get the item_free_func of new_full when the pool goes
 *    (GLib's free_internal): with wait_=FALSE that is when the last runner
 *    ends, and that runner frees the pool.  A
 *    free(wait_=TRUE) called from one of the pool's own items cannot wait
 *    for itself: GLib deadlocks there; here it returns as wait_=FALSE.
 *  - get_num_threads: the pool's live runners (items running or about to
 *    run).  GLib's idle threads wait ½ s for their pool before they stop
 *    counting; a runner stops counting when it finds the queue empty.  An
 *    exclusive pool reports at least its max_threads, as GLib starts them
 *    all at creation; no thread is kept for them here.
 *  - Unused threads: no OS thread is kept.  When a runner of a shared pool
 *    ends it counts as one unused thread for max_idle_time (default
 *    15 000 ms, 0: for ever), within max_unused_threads (default 2 as in
 *    2.74, -1: no limit, at most UNUSED_CAP); starting a runner takes one
 *    back.  So get_num_unused_threads, stop_unused_threads and the idle
 *    time read as GLib's do, and GLib's own tests that assert them pass.
 *    Unused threads of foreign pools are GLib's and are added in.
 *  - Creation errors: as 2.74, a valid pool plus a G_THREAD_ERROR_AGAIN
 *    GError when an exclusive pool's threads cannot start (here: the core
 *    cannot start).  push() and set_max_threads() that cannot start a
 *    runner return FALSE with that error, and the item stays queued.
 *  - Misuse gets GLib's g_return_val_if_fail message (a "critical") and
 *    GLib's return value.
 *  - Items that block: each item counts as a task of its own to the
 *    monitor, and as a thread (thread_like), so a blocked item with work
 *    queued behind it gets a worker beside it without the core's rate
 *    limit, as GLib would have had a thread running each item; the
 *    pool's max_threads still bounds the items in flight.
 *  - Exclusive pools share the core's workers; an item may run on another
 *    thread than the previous one, as in any GLib pool of more than one
 *    thread.  SMOLSCALE_GTHREADPOOL=shared leaves exclusive pools to GLib
 *    for programs that rely on a pool's thread identity.
 *
 * Locking: each pool's fields are under its lock; the global unused-thread
 * account under unused.lock; the list of live pools under reg_lock.  Order:
 * reg_lock, then a pool's lock, then unused.lock.  No lock is held while
 * func or an item_free_func runs, and the core is never called with a
 * pool's lock held (runners are submitted after it is let go, free()
 * lets it go around ss_blocking_begin/end), and the core calls into this
 * layer (a runner) with none of its own held: so the two layers' fork
 * handlers, which take all their locks, may run in either order.  The
 * sort function runs under the pool's lock, as in GLib.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "shim.h"

/* GLib's mark for our pools; see "Foreign pools" above. */
#define GP_MAGIC ((uintptr_t)0xf00d5ca1e0c0ffeeULL)
/* GLib 2.74's defaults (gthreadpool.c). */
#define DEFAULT_MAX_UNUSED 2
#define DEFAULT_MAX_IDLE_MS 15000u
/* At most this many unused threads are counted, whatever the limit. */
#define UNUSED_CAP 4096u
/* G_THREAD_ERROR_AGAIN */
#define GTHREAD_ERROR_AGAIN 0

struct gqueue {
	void **v;     /* ring of cap slots, cap a power of two (or 0) */
	size_t cap;
	size_t head;  /* index of the first item */
	size_t len;
};

struct gpool {
	GThreadPool pub;           /* func, user_data, exclusive: ABI */
	/* (uintptr_t)this ^ GP_MAGIC while ours.  Plain: written before the
	 * pool is handed out (the caller's own synchronisation publishes
	 * it) and cleared only by destroy(), after which a call through the
	 * pointer is the caller's use-after-free, as in GLib. */
	uintptr_t mark;

	pthread_mutex_t lock;
	pthread_cond_t idle;       /* free(wait_=TRUE) waits here */
	/* Under lock: */
	struct gqueue q;
	int max_threads;           /* -1: no limit */
	unsigned running;          /* live runner tasks (queued or running) */
	unsigned busy;             /* runners inside func */
	unsigned waiters;          /* threads waiting on `idle` */
	/* Callers of push/set_max_threads/free between counting new runners
	 * and submitting them (start_runners): the pool outlives them even
	 * if its last runner ends meanwhile. */
	unsigned pins;
	bool alive;                /* not yet freed (GLib's `running`) */
	bool immediate;            /* freed with immediate=TRUE */
	bool free_on_last;         /* freed with wait_=FALSE: last runner frees */
	GCompareDataFunc sort;
	void *sort_data;
	/* Counters for SMOLSCALE_STATS, kept here rather than in shared
	 * atomics (no global cache line on the per-item path); added to the
	 * totals when the pool goes. */
	unsigned long items, runners, yields;
	/* Set at creation, never changed. */
	GDestroyNotify item_free;

	/* The list of live pools, under reg_lock (fork handlers, stats). */
	struct gpool *prev, *next;
};

/* ------------------------------------------------------- configuration */

enum { MODE_OFF, MODE_ALL, MODE_SHARED };

/* GLib's functions, found on first use (pthread_once, so every field is
 * written before any reader sees `mode`). */
static struct {
	int mode;
	GThreadPool *(*new_full)(GFunc, void *, GDestroyNotify, int, int,
	                         GError **);
	int (*push)(GThreadPool *, void *, GError **);
	int (*set_max_threads)(GThreadPool *, int, GError **);
	int (*get_max_threads)(GThreadPool *);
	unsigned (*get_num_threads)(GThreadPool *);
	unsigned (*unprocessed)(GThreadPool *);
	void (*free)(GThreadPool *, int, int);
	void (*set_max_unused_threads)(int);
	int (*get_max_unused_threads)(void);
	unsigned (*get_num_unused_threads)(void);
	void (*stop_unused_threads)(void);
	void (*set_sort_function)(GThreadPool *, GCompareDataFunc, void *);
	void (*set_max_idle_time)(unsigned);
	unsigned (*get_max_idle_time)(void);
	int (*move_to_front)(GThreadPool *, void *);
	void (*set_error)(GError **, uint32_t, int, const char *, ...);
	uint32_t (*thread_error_quark)(void);
	void (*return_if_fail_warning)(const char *, const char *, const char *);
} glib;

static pthread_once_t glib_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void glib_resolve(void)
{
	const char *s = getenv("SMOLSCALE_GTHREADPOOL");

#define FIND(field, name) glib.field = (__typeof__(glib.field))ss__real_find(name)
	FIND(new_full, "g_thread_pool_new_full");
	FIND(push, "g_thread_pool_push");
	FIND(set_max_threads, "g_thread_pool_set_max_threads");
	FIND(get_max_threads, "g_thread_pool_get_max_threads");
	FIND(get_num_threads, "g_thread_pool_get_num_threads");
	FIND(unprocessed, "g_thread_pool_unprocessed");
	FIND(free, "g_thread_pool_free");
	FIND(set_max_unused_threads, "g_thread_pool_set_max_unused_threads");
	FIND(get_max_unused_threads, "g_thread_pool_get_max_unused_threads");
	FIND(get_num_unused_threads, "g_thread_pool_get_num_unused_threads");
	FIND(stop_unused_threads, "g_thread_pool_stop_unused_threads");
	FIND(set_sort_function, "g_thread_pool_set_sort_function");
	FIND(set_max_idle_time, "g_thread_pool_set_max_idle_time");
	FIND(get_max_idle_time, "g_thread_pool_get_max_idle_time");
	FIND(move_to_front, "g_thread_pool_move_to_front");
	FIND(set_error, "g_set_error");
	FIND(thread_error_quark, "g_thread_error_quark");
	FIND(return_if_fail_warning, "g_return_if_fail_warning");
#undef FIND
	/* Before any pool of ours exists: its fork handlers and stats. */
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	ss__shim_stats_init();
	glib.mode = MODE_ALL;
	if (!s || !*s || strcmp(s, "1") == 0)
		return;
	if (strcmp(s, "0") == 0)
		glib.mode = MODE_OFF;
	else if (strcmp(s, "shared") == 0)
		glib.mode = MODE_SHARED;
	else
		fprintf(stderr,
		        "smolscale: SMOLSCALE_GTHREADPOOL=\"%.64s\" is not 0, 1 or "
		        "shared; using the default 1\n", s);
	/* Without GLib's pool to pass to, there is nothing to turn off. */
	if (glib.mode != MODE_ALL && !glib.new_full)
		glib.mode = MODE_ALL;
}

static void glib_init(void)
{
	pthread_once(&glib_once, glib_resolve);
}

/* GLib's g_return_val_if_fail message: "assertion 'expr' failed". */
static void critical(const char *func, const char *expr)
{
	if (glib.return_if_fail_warning)
		glib.return_if_fail_warning("GLib", func, expr);
	else
		fprintf(stderr, "(process:%d): GLib-CRITICAL **: %s: assertion "
		                "'%s' failed\n", (int)getpid(), func, expr);
}

/* G_THREAD_ERROR_AGAIN, worded as GLib's g_thread_pool_start_thread. */
static void thread_error(GError **error, int err)
{
	if (error && glib.set_error && glib.thread_error_quark)
		glib.set_error(error, glib.thread_error_quark(),
		               GTHREAD_ERROR_AGAIN, "Error creating thread: %s",
		               strerror(err));
}

/* -------------------------------------------------------------- stats */

/* Pools created here and passed to GLib; the item, runner and yield
 * counts of pools that are gone (live ones keep their own).  Relaxed:
 * counters, read once at exit. */
static atomic_ulong n_pools, n_foreign, n_items, n_runners, n_yields;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gpool *reg_head;

void ss__gtp_stats(FILE *f)
{
	unsigned long items = atomic_load_explicit(&n_items, memory_order_relaxed);
	unsigned long runners = atomic_load_explicit(&n_runners,
	                                             memory_order_relaxed);
	unsigned long yields = atomic_load_explicit(&n_yields, memory_order_relaxed);

	/* Trylocks: this runs at exit, maybe while another thread is
	 * stopped inside the layer; a pool it holds is then left out. */
	if (pthread_mutex_trylock(&reg_lock) == 0) {
		for (struct gpool *p = reg_head; p; p = p->next) {
			if (pthread_mutex_trylock(&p->lock) != 0)
				continue;
			items += p->items;
			runners += p->runners;
			yields += p->yields;
			pthread_mutex_unlock(&p->lock);
		}
		pthread_mutex_unlock(&reg_lock);
	}
	fprintf(f, " gpools=%lu gpools_foreign=%lu gpool_items=%lu"
	           " gpool_runners=%lu gpool_yields=%lu",
	        atomic_load_explicit(&n_pools, memory_order_relaxed),
	        atomic_load_explicit(&n_foreign, memory_order_relaxed),
	        items, runners, yields);
}

/* -------------------------------------------------------------- queue */

static inline void *q_at(const struct gqueue *q, size_t i)
{
	return q->v[(q->head + i) & (q->cap - 1)];
}

static inline void **q_slot(struct gqueue *q, size_t i)
{
	return &q->v[(q->head + i) & (q->cap - 1)];
}

/* Room for one more item.  GLib aborts when it cannot allocate; so does
 * this, with a message, rather than lose an item. */
static void q_reserve(struct gqueue *q)
{
	if (q->len < q->cap)
		return;
	size_t cap = q->cap ? q->cap * 2 : 16;
	void **v = malloc(cap * sizeof *v);

	if (!v) {
		fprintf(stderr, "smolscale: out of memory queueing a GThreadPool "
		                "item\n");
		abort();
	}
	for (size_t i = 0; i < q->len; i++)
		v[i] = q_at(q, i);
	free(q->v);
	q->v = v;
	q->cap = cap;
	q->head = 0;
}

/* Insert x before position i (0 <= i <= len), shifting the tail. */
static void q_insert(struct gqueue *q, size_t i, void *x)
{
	q_reserve(q);
	if (i == 0) {
		q->head = (q->head - 1) & (q->cap - 1);
	} else {
		for (size_t j = q->len; j > i; j--)
			*q_slot(q, j) = q_at(q, j - 1);
	}
	*q_slot(q, i) = x;
	q->len++;
}

/* An emptied queue gives back a large array (GTask's pool lives as long
 * as the program; one burst should not keep its peak for good). */
#define Q_KEEP 256

static void *q_pop(struct gqueue *q)
{
	void *x = q_at(q, 0);

	q->head = (q->head + 1) & (q->cap - 1);
	if (--q->len == 0 && q->cap > Q_KEEP) {
		free(q->v);
		q->v = NULL;
		q->cap = 0;
		q->head = 0;
	}
	return x;
}

static void q_remove(struct gqueue *q, size_t i)
{
	for (size_t j = i; j + 1 < q->len; j++)
		*q_slot(q, j) = q_at(q, j + 1);
	q->len--;
}

/* Where x goes with the pool's sort function: after every item that does
 * not sort after it (stable). */
static size_t q_sorted_pos(const struct gpool *p, void *x)
{
	size_t lo = 0, hi = p->q.len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->sort(q_at(&p->q, mid), x, p->sort_data) > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Sort the queue stably: re-insert every item in turn. */
static void q_sort(struct gpool *p)
{
	size_t n = p->q.len;
	void **tmp;

	if (n < 2)
		return;
	tmp = malloc(n * sizeof *tmp);
	if (!tmp) {
		fprintf(stderr, "smolscale: out of memory sorting a GThreadPool "
		                "queue\n");
		abort();
	}
	for (size_t i = 0; i < n; i++)
		tmp[i] = q_at(&p->q, i);
	p->q.len = 0;
	for (size_t i = 0; i < n; i++)
		q_insert(&p->q, q_sorted_pos(p, tmp[i]), tmp[i]);
	free(tmp);
}

/* ------------------------------------------------------ unused threads */

/* GLib's global unused-thread account, kept as numbers (see the top). */
static struct {
	pthread_mutex_t lock;
	int max_unused;            /* -1: no limit */
	unsigned max_idle_ms;      /* 0: unused threads never expire */
	uint64_t t[UNUSED_CAP];    /* ring: when each became unused, oldest first */
	size_t head, len;
} unused = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.max_unused = DEFAULT_MAX_UNUSED,
	.max_idle_ms = DEFAULT_MAX_IDLE_MS,
};

/* Under unused.lock: forget the ones idle longer than max_idle_time. */
static void unused_expire(uint64_t now)
{
	uint64_t idle_ns = (uint64_t)unused.max_idle_ms * 1000000u;

	while (unused.len && idle_ns && now - unused.t[unused.head] >= idle_ns) {
		unused.head = (unused.head + 1) % UNUSED_CAP;
		unused.len--;
	}
}

/* Under unused.lock: keep at most max (>= 0) of them, the newest. */
static void unused_trim(size_t max)
{
	while (unused.len > max) {
		unused.head = (unused.head + 1) % UNUSED_CAP;
		unused.len--;
	}
}

/* A runner of a shared pool ended: one more unused thread, if allowed. */
static void unused_add(void)
{
	uint64_t now = ss__now_ns();

	pthread_mutex_lock(&unused.lock);
	unused_expire(now);
	if (unused.max_unused != 0 &&
	    (unused.max_unused < 0 || unused.len < (size_t)unused.max_unused)) {
		if (unused.len == UNUSED_CAP)
			unused_trim(UNUSED_CAP - 1);
		unused.t[(unused.head + unused.len) % UNUSED_CAP] = now;
		unused.len++;
	}
	pthread_mutex_unlock(&unused.lock);
}

/* A runner of a shared pool starts: it "reuses" the newest unused one. */
static void unused_take(unsigned n)
{
	pthread_mutex_lock(&unused.lock);
	unused_expire(ss__now_ns());
	unused.len -= n < unused.len ? n : unused.len;
	pthread_mutex_unlock(&unused.lock);
}

/* ------------------------------------------------------------- pools */

/* The pool whose item this thread is running, if any. */
static __thread struct gpool *tls_pool __attribute__((tls_model("initial-exec")));

/* A pool this layer did not create goes to GLib's function `name` (the
 * args), or returns `none` when GLib has none. */
#define FOREIGN(pool, none, name, ...)                                       \
	do {                                                                 \
		if (!ours(pool)) {                                           \
			glib_init();                                         \
			return glib.name ? glib.name(__VA_ARGS__) : (none);  \
		}                                                            \
	} while (0)

static inline bool ours(const GThreadPool *pool)
{
	const struct gpool *p = (const struct gpool *)pool;

	return p && p->mark == ((uintptr_t)p ^ GP_MAGIC);
}

/* Under p->lock: how many runners to start now.  One per queued item that
 * no idle runner (started, not inside func) will take, within max_threads;
 * none once freed with immediate=TRUE. */
static unsigned runners_wanted(const struct gpool *p)
{
	size_t idle = p->running - p->busy;
	size_t need;

	if (!p->alive && p->immediate)
		return 0;
	if (p->q.len <= idle)
		return 0;
	need = p->q.len - idle;
	if (p->max_threads >= 0) {
		if (p->running >= (unsigned)p->max_threads)
			return 0;
		if (need > (unsigned)p->max_threads - p->running)
			need = (unsigned)p->max_threads - p->running;
	}
	return (unsigned)need;
}

/* Under p->lock: may a runner take the next item? */
static bool may_take(const struct gpool *p)
{
	if (!p->q.len || (!p->alive && p->immediate))
		return false;
	return p->max_threads < 0 || p->running <= (unsigned)p->max_threads;
}

static void *runner(void *arg);

static int submit_runner(struct gpool *p)
{
	struct ss_task *t;

	if (ss__start() != 0)
		return EAGAIN;
	t = ss__task_new_internal(runner, p);
	if (!t)
		return ENOMEM;
	ss__task_submit(t);
	return 0;
}

static void destroy(struct gpool *p);

/* Under p->lock: freed with wait_=FALSE, and nobody is left who may
 * touch the pool: whoever sees this true last frees it. */
static bool last_out(const struct gpool *p)
{
	return p->free_on_last && p->running == 0 && p->pins == 0;
}

/* Under p->lock: count n new runners, and pin the pool for the caller
 * until its start_runners() is done. */
static void count_runners(struct gpool *p, unsigned n)
{
	p->running += n;
	if (n)
		p->pins++;
}

/* Start n runners, counted by count_runners() under the lock, which the
 * caller has let go.  Those that cannot start are uncounted again; their
 * items stay queued for the next push or limit change, as GLib's do when
 * a thread cannot be created.  Then the caller's pin goes.  Returns 0 or
 * the error. */
static int start_runners(struct gpool *p, unsigned n)
{
	unsigned failed = 0;
	int err = 0;

	if (!n)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		int e = submit_runner(p);

		if (e) {
			err = e;
			failed = n - i;
			break;
		}
	}
	if (!p->pub.exclusive && n > failed)
		unused_take(n - failed);
	pthread_mutex_lock(&p->lock);
	p->runners += n - failed;
	p->running -= failed;
	p->pins--;
	bool gone = last_out(p);
	if (p->waiters)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	if (gone)
		destroy(p);
	return err;
}

/* Is other work waiting on this worker (its next slot or its ring)? */
static bool worker_has_other_work(void)
{
	struct ss_worker *w = ss__self();

	return w && (atomic_load_explicit(&w->next, memory_order_relaxed) ||
	             ss__ring_len(&w->ring) > 0);
}

static void *runner(void *arg)
{
	struct gpool *p = arg;
	struct gpool *outer = tls_pool;
	bool gone;

	pthread_mutex_lock(&p->lock);
	while (may_take(p)) {
		void *item = q_pop(&p->q);

		p->busy++;
		pthread_mutex_unlock(&p->lock);
		/* Each item is a unit of work to the monitor, and stands for
		 * a thread of its own, as it has in GLib: blocked (or stuck)
		 * with work waiting, it gets a worker beside it without the
		 * rate limit.  The pool's max_threads still bounds how many
		 * items run at once. */
		ss__task_progress();
		ss__set_thread_like(true);
		ss__set_entry((void *)p->pub.func);
		tls_pool = p;
		p->pub.func(item, p->pub.user_data);
		tls_pool = outer;
		ss__set_thread_like(false);
		pthread_mutex_lock(&p->lock);
		p->busy--;
		p->items++;
		if (p->waiters)
			pthread_cond_broadcast(&p->idle);
		/* Let the tasks this item spawned here (another pool's runner)
		 * go first: a continuation takes this runner's place, behind
		 * them.  `running` does not change. */
		if (may_take(p) && worker_has_other_work()) {
			p->yields++;
			pthread_mutex_unlock(&p->lock);
			if (submit_runner(p) == 0)
				return NULL;
			pthread_mutex_lock(&p->lock);
			p->yields--;
		}
	}
	p->running--;
	gone = last_out(p);
	if (p->waiters)
		pthread_cond_broadcast(&p->idle);
	bool shared = !p->pub.exclusive;
	pthread_mutex_unlock(&p->lock);
	/* After the unlock p belongs to whoever frees it: not touched again
	 * unless this runner is that one. */
	if (gone)
		destroy(p);
	else if (shared)
		unused_add();
	return NULL;
}

static void destroy(struct gpool *p)
{
	pthread_mutex_lock(&reg_lock);
	if (p->prev)
		p->prev->next = p->next;
	else
		reg_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	atomic_fetch_add_explicit(&n_items, p->items, memory_order_relaxed);
	atomic_fetch_add_explicit(&n_runners, p->runners, memory_order_relaxed);
	atomic_fetch_add_explicit(&n_yields, p->yields, memory_order_relaxed);
	pthread_mutex_unlock(&reg_lock);
	p->mark = 0;
	/* Items that never ran (free with immediate=TRUE): GLib gives them
	 * to item_free_func when the pool itself goes, not before. */
	if (p->item_free)
		for (size_t i = 0; i < p->q.len; i++)
			p->item_free(q_at(&p->q, i));
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->q.v);
	free(p);
}

/* ------------------------------------------------------- the GLib API */

GThreadPool *ss__gtp_new_full(GFunc func, void *user_data,
                              GDestroyNotify item_free, int max_threads,
                              int exclusive, GError **error)
{
	struct gpool *p;

	glib_init();
	if (glib.mode == MODE_OFF || (glib.mode == MODE_SHARED && exclusive)) {
		atomic_fetch_add_explicit(&n_foreign, 1, memory_order_relaxed);
		return glib.new_full(func, user_data, item_free, max_threads,
		                     exclusive, error);
	}
	if (!func) {
		critical("g_thread_pool_new_full", "func");
		return NULL;
	}
	if (exclusive && max_threads == -1) {
		critical("g_thread_pool_new_full", "!exclusive || max_threads != -1");
		return NULL;
	}
	if (max_threads < -1) {
		critical("g_thread_pool_new_full", "max_threads >= -1");
		return NULL;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		fprintf(stderr, "smolscale: out of memory creating a GThreadPool\n");
		abort();
	}
	p->pub.func = func;
	p->pub.user_data = user_data;
	p->pub.exclusive = exclusive ? 1 : 0;
	p->mark = (uintptr_t)p ^ GP_MAGIC;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->max_threads = max_threads;
	p->alive = true;
	p->item_free = item_free;
	pthread_mutex_lock(&reg_lock);
	p->next = reg_head;
	if (reg_head)
		reg_head->prev = p;
	reg_head = p;
	pthread_mutex_unlock(&reg_lock);
	atomic_fetch_add_explicit(&n_pools, 1, memory_order_relaxed);
	/* GLib 2.74 starts an exclusive pool's threads now and reports a
	 * failure as an error beside a valid pool. */
	if (exclusive && max_threads > 0 && ss__start() != 0)
		thread_error(error, EAGAIN);
	return &p->pub;
}

int ss__gtp_push(GThreadPool *pool, void *data, GError **error)
{
	struct gpool *p = (struct gpool *)pool;
	unsigned n;
	int err;

	FOREIGN(pool, 0, push, pool, data, error);
	pthread_mutex_lock(&p->lock);
	if (!p->alive) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_push", "real->running");
		return 0;
	}
	if (!data) {
		/* GLib's queue refuses NULL with this message; push still
		 * returns TRUE (2.74). */
		pthread_mutex_unlock(&p->lock);
		critical("g_async_queue_push_unlocked", "data");
		return 1;
	}
	q_insert(&p->q, p->sort ? q_sorted_pos(p, data) : p->q.len, data);
	n = runners_wanted(p);
	count_runners(p, n);
	pthread_mutex_unlock(&p->lock);
	err = start_runners(p, n);
	if (err) {
		thread_error(error, err);
		return 0;
	}
	return 1;
}

int ss__gtp_set_max_threads(GThreadPool *pool, int max_threads, GError **error)
{
	struct gpool *p = (struct gpool *)pool;
	unsigned n;
	int err;

	FOREIGN(pool, 0, set_max_threads, pool, max_threads, error);
	pthread_mutex_lock(&p->lock);
	if (!p->alive) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_set_max_threads", "real->running");
		return 0;
	}
	if (p->pub.exclusive && max_threads == -1) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_set_max_threads",
		         "!real->pool.exclusive || max_threads != -1");
		return 0;
	}
	if (max_threads < -1) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_set_max_threads", "max_threads >= -1");
		return 0;
	}
	p->max_threads = max_threads;
	n = runners_wanted(p);
	count_runners(p, n);
	pthread_mutex_unlock(&p->lock);
	err = start_runners(p, n);
	if (err) {
		thread_error(error, err);
		return 0;
	}
	return 1;
}

int ss__gtp_get_max_threads(GThreadPool *pool)
{
	struct gpool *p = (struct gpool *)pool;
	int r;

	FOREIGN(pool, 0, get_max_threads, pool);
	pthread_mutex_lock(&p->lock);
	r = p->max_threads;
	pthread_mutex_unlock(&p->lock);
	return r;
}

unsigned ss__gtp_get_num_threads(GThreadPool *pool)
{
	struct gpool *p = (struct gpool *)pool;
	unsigned r;

	FOREIGN(pool, 0, get_num_threads, pool);
	pthread_mutex_lock(&p->lock);
	r = p->running;
	if (p->pub.exclusive && p->alive && p->max_threads > 0 &&
	    r < (unsigned)p->max_threads)
		r = (unsigned)p->max_threads;
	pthread_mutex_unlock(&p->lock);
	return r;
}

unsigned ss__gtp_unprocessed(GThreadPool *pool)
{
	struct gpool *p = (struct gpool *)pool;
	unsigned r;

	FOREIGN(pool, 0, unprocessed, pool);
	pthread_mutex_lock(&p->lock);
	r = (unsigned)p->q.len;
	pthread_mutex_unlock(&p->lock);
	return r;
}

/* Under p->lock: wait until no runner and no pinning caller is left.
 * On a worker the core is told that this blocks (ss_blocking_begin), with
 * the pool's lock let go: the core's locks are never taken under a pool's
 * (see Locking at the top). */
static void wait_idle(struct gpool *p)
{
	bool worker = ss__self() != NULL;

	if (worker) {
		pthread_mutex_unlock(&p->lock);
		ss_blocking_begin();
		pthread_mutex_lock(&p->lock);
	}
	p->waiters++;
	while (p->running || p->pins)
		pthread_cond_wait(&p->idle, &p->lock);
	p->waiters--;
	if (worker) {
		pthread_mutex_unlock(&p->lock);
		ss_blocking_end();
		pthread_mutex_lock(&p->lock);
	}
}

void ss__gtp_free(GThreadPool *pool, int immediate, int wait_)
{
	struct gpool *p = (struct gpool *)pool;
	unsigned n = 0;
	bool now;

	if (!ours(pool)) {
		glib_init();
		if (glib.free)
			glib.free(pool, immediate, wait_);
		else if (!pool)
			critical("g_thread_pool_free", "real");
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (!p->alive) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_free", "real->running");
		return;
	}
	if (!immediate && p->max_threads == 0 && p->q.len) {
		/* No runner may start: nothing would ever empty the queue. */
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_free",
		         "immediate || real->max_threads != 0 || "
		         "g_async_queue_length (real->queue) == 0");
		return;
	}
	p->alive = false;
	p->immediate = immediate;
	n = runners_wanted(p);
	count_runners(p, n);
	pthread_mutex_unlock(&p->lock);
	start_runners(p, n);

	pthread_mutex_lock(&p->lock);
	/* From one of its own items a pool cannot wait for itself (GLib
	 * deadlocks): that runner frees it on its way out. */
	if (wait_ && tls_pool != p && (p->running || p->pins))
		wait_idle(p);
	/* Items that no runner could be started for (the core could not
	 * start a thread): rather than lose them, the caller runs them. */
	while (!p->running && may_take(p)) {
		void *item = q_pop(&p->q);

		pthread_mutex_unlock(&p->lock);
		p->pub.func(item, p->pub.user_data);
		pthread_mutex_lock(&p->lock);
		p->items++;
	}
	now = p->running == 0 && p->pins == 0;
	p->free_on_last = !now;
	pthread_mutex_unlock(&p->lock);
	if (now)
		destroy(p);
}

void ss__gtp_set_sort_function(GThreadPool *pool, GCompareDataFunc func,
                               void *user_data)
{
	struct gpool *p = (struct gpool *)pool;

	if (!ours(pool)) {
		glib_init();
		if (glib.set_sort_function)
			glib.set_sort_function(pool, func, user_data);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (!p->alive) {
		pthread_mutex_unlock(&p->lock);
		critical("g_thread_pool_set_sort_function", "real->running");
		return;
	}
	p->sort = func;
	p->sort_data = user_data;
	if (func)
		q_sort(p);
	pthread_mutex_unlock(&p->lock);
}

int ss__gtp_move_to_front(GThreadPool *pool, void *data)
{
	struct gpool *p = (struct gpool *)pool;
	int found = 0;

	FOREIGN(pool, 0, move_to_front, pool, data);
	/* The newest entry of data, as GLib's queue (pushed at its head)
	 * finds it first. */
	pthread_mutex_lock(&p->lock);
	for (size_t i = p->q.len; i-- > 0;)
		if (q_at(&p->q, i) == data) {
			q_remove(&p->q, i);
			q_insert(&p->q, 0, data);
			found = 1;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	return found;
}

/* The global settings apply to this layer's account and are passed on to
 * GLib, whose own pools (foreign ones) follow them too. */

void ss__gtp_set_max_unused_threads(int max)
{
	glib_init();
	if (glib.mode == MODE_OFF) {
		if (glib.set_max_unused_threads)
			glib.set_max_unused_threads(max);
		return;
	}
	if (max < -1) {
		critical("g_thread_pool_set_max_unused_threads", "max_threads >= -1");
		return;
	}
	pthread_mutex_lock(&unused.lock);
	unused.max_unused = max;
	if (max >= 0)
		unused_trim((size_t)max);
	pthread_mutex_unlock(&unused.lock);
	if (glib.set_max_unused_threads)
		glib.set_max_unused_threads(max);
}

int ss__gtp_get_max_unused_threads(void)
{
	int r;

	glib_init();
	if (glib.mode == MODE_OFF)
		return glib.get_max_unused_threads ?
			glib.get_max_unused_threads() : 0;
	pthread_mutex_lock(&unused.lock);
	r = unused.max_unused;
	pthread_mutex_unlock(&unused.lock);
	return r;
}

unsigned ss__gtp_get_num_unused_threads(void)
{
	unsigned r = 0;

	glib_init();
	if (glib.get_num_unused_threads)
		r = glib.get_num_unused_threads();
	if (glib.mode == MODE_OFF)
		return r;
	pthread_mutex_lock(&unused.lock);
	unused_expire(ss__now_ns());
	r += (unsigned)unused.len;
	pthread_mutex_unlock(&unused.lock);
	return r;
}

void ss__gtp_stop_unused_threads(void)
{
	glib_init();
	if (glib.stop_unused_threads)
		glib.stop_unused_threads();
	if (glib.mode == MODE_OFF)
		return;
	pthread_mutex_lock(&unused.lock);
	unused.len = 0;
	pthread_mutex_unlock(&unused.lock);
}

void ss__gtp_set_max_idle_time(unsigned interval)
{
	glib_init();
	if (glib.set_max_idle_time)
		glib.set_max_idle_time(interval);
	if (glib.mode == MODE_OFF)
		return;
	pthread_mutex_lock(&unused.lock);
	unused.max_idle_ms = interval;
	pthread_mutex_unlock(&unused.lock);
}

unsigned ss__gtp_get_max_idle_time(void)
{
	unsigned r;

	glib_init();
	if (glib.mode == MODE_OFF)
		return glib.get_max_idle_time ? glib.get_max_idle_time() : 0;
	pthread_mutex_lock(&unused.lock);
	r = unused.max_idle_ms;
	pthread_mutex_unlock(&unused.lock);
	return r;
}

/* --------------------------------------------------------------- fork */

/* Every lock of this layer is taken around fork(), so the child gets them
 * in a known state; none is held for long (never around func). */
static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (struct gpool *p = reg_head; p; p = p->next)
		pthread_mutex_lock(&p->lock);
	pthread_mutex_lock(&unused.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&unused.lock);
	for (struct gpool *p = reg_head; p; p = p->next)
		pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&reg_lock);
}

/* In the child the runners are gone (the core finishes their tasks as
 * cancelled), except the forking thread's own, if it forked from an item:
 * each pool counts what is left.  The items still queued are the
 * parent's, which runs them: as the core does with queued tasks, the
 * child drops them (neither run nor given to item_free_func, whose
 * effects would be the parent's business too).  Pushes in the child
 * start runners as usual. */
static void fork_child(void)
{
	pthread_mutex_init(&unused.lock, NULL);
	for (struct gpool *p = reg_head; p; p = p->next) {
		pthread_mutex_init(&p->lock, NULL);
		pthread_cond_init(&p->idle, NULL);
		p->running = p->busy = tls_pool == p ? 1 : 0;
		p->waiters = 0;
		p->pins = 0;
		p->q.len = 0;
		p->q.head = 0;
	}
	pthread_mutex_init(&reg_lock, NULL);
}

