/*
 * contract.c - GLib 2.74's GThreadPool contract as Check tests.
 *
 * One program, two uses: run natively against real GLib 2.74 it is the
 * oracle and must pass, so the tests say what GLib does; run under
 * LD_PRELOAD=libsmolscale-preload.so (or as contract-linked, linked with
 * the layer through tests/gtp/lib.c, in every build, sanitizers included)
 * the shim's g_thread_pool_* must pass the same contract.  tests/gtp/run.sh
 * runs it all three ways.
 *
 * SS_GTP_EXPECT ("glib" or "shim") makes main() check, with dladdr() on
 * &g_thread_pool_new, which object provides the API; main() always prints
 * the providing object on one line to stderr.
 * SS_GTP_STRICT=1 also requires exact-once item accounting where
 * g_thread_pool_free(immediate=TRUE) races with idle pool threads
 * (test_many_pools); GLib 2.74 itself fails that, see the comment there.
 *
 * Captured GLib criticals are echoed as "[captured GLib] ..." lines.
 * Every test runs in a forked child (Check's default; keep CK_FORK), so
 * GLib's process-global pool state (unused threads, idle time) starts
 * fresh in each test.  No timing assertions: waits poll with a bounded
 * 10 s timeout that fails the test instead of hanging.  Short sleeps only
 * give a wrong implementation a chance to misbehave.  Where the contract
 * encodes undocumented GLib 2.74 behaviour, the test says so in a comment
 * ("UNDOCUMENTED").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <check.h>
#include <dlfcn.h>
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* helpers                                                            */
/* ------------------------------------------------------------------ */

/* A guard against hangs, not a bar: a pool's threads on a machine at load
 * 6 took more than 10 s to all report unused. */
#define WAIT_S 20

/* Poll until cond holds; fail the test after WAIT_S seconds. */
#define WAIT_UNTIL(cond)                                                       \
	do {                                                                   \
		gint64 wu_end_ =                                               \
			g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;      \
		while (!(cond)) {                                              \
			if (g_get_monotonic_time() > wu_end_)                  \
				ck_abort_msg("timeout (%d s) waiting for: %s", \
					     WAIT_S, #cond);                   \
			g_usleep(1000);                                        \
		}                                                              \
	} while (0)

static gint aget(gint *p)
{
	return g_atomic_int_get(p);
}

/* A gate items can block on; waits are bounded (a stuck item records it).
 * The test's own locks are pthread's, not GMutex/GCond: GLib's are raw
 * futexes, which ThreadSanitizer cannot see (the TSan build runs this). */
typedef struct {
	pthread_mutex_t m;
	pthread_cond_t c;
	gboolean open;
	gint timeouts;
} Gate;

static void gate_init(Gate *g)
{
	pthread_condattr_t a;
	pthread_mutex_init(&g->m, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&g->c, &a);
	pthread_condattr_destroy(&a);
	g->open = FALSE;
	g->timeouts = 0;
}

static void gate_wait(Gate *g)
{
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += WAIT_S;
	pthread_mutex_lock(&g->m);
	while (!g->open)
		if (pthread_cond_timedwait(&g->c, &g->m, &end) == ETIMEDOUT) {
			g_atomic_int_inc(&g->timeouts);
			break;
		}
	pthread_mutex_unlock(&g->m);
}

static void gate_open(Gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = TRUE;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

/* Peak-concurrency meter. */
typedef struct {
	gint cur;
	gint peak;
} Meter;

static void meter_enter(Meter *m)
{
	gint v = g_atomic_int_add(&m->cur, 1) + 1;
	gint p;
	while ((p = g_atomic_int_get(&m->peak)) < v)
		if (g_atomic_int_compare_and_exchange(&m->peak, p, v))
			break;
}

static void meter_leave(Meter *m)
{
	g_atomic_int_add(&m->cur, -1);
}

/* Item bookkeeping: items are pointers into a fixed array so that every
 * run / free can be attributed to exactly one item. */
#define MAXITEMS 4096

typedef struct Ctx Ctx;
typedef struct {
	Ctx *ctx;
	gint idx;
	gint prio;
	gboolean block; /* wait on ctx->gate */
} Item;

struct Ctx {
	Item items[MAXITEMS];
	gint ran[MAXITEMS];
	gint freed[MAXITEMS];
	gint bogus_free;  /* item_free_func called on GUINT_TO_POINTER (1) */
	gint bogus_other; /* item_free_func called on any other non-item */
	gint bogus_run;	  /* func called on a non-item pointer */
	gint started;
	gint done;
	gint nfreed;
	Gate gate;
	Meter meter;
	gulong sleep_us;    /* each item sleeps this long */
	gpointer user_data; /* expected user_data */
	gint bad_user_data;
	/* run order */
	pthread_mutex_t order_m;
	gint order[MAXITEMS];
	gint norder;
};

static Ctx *ctx_new(gint n)
{
	Ctx *c = g_new0(Ctx, 1);
	gate_init(&c->gate);
	pthread_mutex_init(&c->order_m, NULL);
	for (gint i = 0; i < MAXITEMS; i++) {
		c->items[i].ctx = c;
		c->items[i].idx = i;
		c->items[i].prio = i;
	}
	(void)n;
	c->user_data = c;
	return c;
}

static gint item_index(Ctx *c, gpointer p)
{
	if ((Item *)p >= c->items && (Item *)p < c->items + MAXITEMS)
		return ((Item *)p)->idx;
	return -1;
}

/* Current test context (tests run in forked children, one at a time). */
static Ctx *CUR;

static void item_func(gpointer data, gpointer user_data)
{
	Ctx *c = CUR;
	gint i = item_index(c, data);
	if (user_data != c->user_data)
		g_atomic_int_inc(&c->bad_user_data);
	if (i < 0) {
		g_atomic_int_inc(&c->bogus_run);
		return;
	}
	meter_enter(&c->meter);
	g_atomic_int_inc(&c->started);
	pthread_mutex_lock(&c->order_m);
	c->order[c->norder++] = i;
	pthread_mutex_unlock(&c->order_m);
	if (c->items[i].block)
		gate_wait(&c->gate);
	if (c->sleep_us)
		g_usleep(c->sleep_us);
	g_atomic_int_inc(&c->ran[i]);
	meter_leave(&c->meter);
	g_atomic_int_inc(&c->done);
}

static void item_free(gpointer data)
{
	Ctx *c = CUR;
	gint i = item_index(c, data);
	if (i < 0) {
		if (data == GUINT_TO_POINTER(1))
			g_atomic_int_inc(&c->bogus_free);
		else
			g_atomic_int_inc(&c->bogus_other);
		return;
	}
	g_atomic_int_inc(&c->freed[i]);
	g_atomic_int_inc(&c->nfreed);
}

static gint cmp_prio(gconstpointer a, gconstpointer b, gpointer ud)
{
	(void)ud;
	gint pa = ((const Item *)a)->prio, pb = ((const Item *)b)->prio;
	return (pa > pb) - (pa < pb);
}

/* Every item in [0,n) accounted exactly once (ran xor freed). */
static void check_exactly_once(Ctx *c, gint n)
{
	for (gint i = 0; i < n; i++) {
		gint r = aget(&c->ran[i]), f = aget(&c->freed[i]);
		ck_assert_msg(r + f == 1,
			      "item %d: ran %d times, freed %d times", i, r, f);
	}
	ck_assert_int_eq(aget(&c->bogus_run), 0);
	ck_assert_int_eq(aget(&c->bogus_other), 0);
	ck_assert_int_eq(aget(&c->bad_user_data), 0);
	ck_assert_int_eq(aget(&c->gate.timeouts), 0);
}

static GThreadPool *mkpool(Ctx *c, gint max, gboolean exclusive, gboolean full)
{
	GError *err = NULL;
	GThreadPool *p;
	/* Written only when it changes: items of earlier pools may be reading
	 * it (a plain store of the same value is still a race to TSan). */
	if (CUR != c)
		CUR = c;
	if (full)
		p = g_thread_pool_new_full(item_func, c->user_data, item_free,
					   max, exclusive, &err);
	else
		p = g_thread_pool_new(item_func, c->user_data, max, exclusive,
				      &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(err);
	return p;
}

static void push(GThreadPool *p, Ctx *c, gint i)
{
	GError *err = NULL;
	ck_assert_msg(g_thread_pool_push(p, &c->items[i], &err), "push %d", i);
	ck_assert_ptr_null(err);
}

/* Critical/warning capture: installed in every test (fixture). */
static pthread_mutex_t log_m = PTHREAD_MUTEX_INITIALIZER;
static gint log_criticals;
static gint log_warnings;
static gchar *log_last;

static void log_capture(const gchar *domain, GLogLevelFlags level,
			const gchar *msg, gpointer ud)
{
	(void)ud;
	pthread_mutex_lock(&log_m);
	if (level & G_LOG_LEVEL_CRITICAL)
		log_criticals++;
	else if (level & G_LOG_LEVEL_WARNING)
		log_warnings++;
	if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
		g_free(log_last);
		log_last = g_strdup(msg);
	}
	pthread_mutex_unlock(&log_m);
	if (!(level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)))
		fprintf(stderr, "[captured %s] %s\n", domain ? domain : "-",
			msg);
}

static gboolean never_fatal(const gchar *d, GLogLevelFlags l, const gchar *m,
			    gpointer ud)
{
	(void)d;
	(void)l;
	(void)m;
	(void)ud;
	return FALSE;
}

static void setup(void)
{
	g_log_set_always_fatal(G_LOG_LEVEL_ERROR);
	g_log_set_fatal_mask("GLib", G_LOG_LEVEL_ERROR);
	g_test_log_set_fatal_handler(never_fatal, NULL);
	GLogLevelFlags lv =
		G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION;
	g_log_set_handler("GLib", lv, log_capture, NULL);
	g_log_set_handler(NULL, lv, log_capture, NULL);
	g_log_set_default_handler(log_capture, NULL);
	log_criticals = log_warnings = 0;
}

static gint ncrit(void)
{
	pthread_mutex_lock(&log_m);
	gint n = log_criticals;
	pthread_mutex_unlock(&log_m);
	return n;
}

static gboolean last_log_has(const gchar *s)
{
	pthread_mutex_lock(&log_m);
	gboolean r = log_last && strstr(log_last, s);
	pthread_mutex_unlock(&log_m);
	return r;
}

static void no_criticals(void)
{
	ck_assert_msg(ncrit() == 0, "unexpected critical: %s",
		      log_last ? log_last : "?");
}

/* ------------------------------------------------------------------ */
/* TCase "api": creation, struct fields, getters / setters             */
/* ------------------------------------------------------------------ */

START_TEST(test_new_fields)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 3, FALSE, FALSE);
	ck_assert_ptr_eq((gpointer)p->func, (gpointer)item_func);
	ck_assert_ptr_eq(p->user_data, c->user_data);
	ck_assert_int_eq(p->exclusive, FALSE);
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 3);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 0);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	for (gint i = 0; i < 5; i++)
		push(p, c, i);
	WAIT_UNTIL(aget(&c->done) == 5);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 5);
	no_criticals();
}
END_TEST

START_TEST(test_new_full_fields)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 2, TRUE, TRUE);
	ck_assert_ptr_eq((gpointer)p->func, (gpointer)item_func);
	ck_assert_ptr_eq(p->user_data, c->user_data);
	ck_assert_int_eq(p->exclusive, TRUE);
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 2);
	for (gint i = 0; i < 5; i++)
		push(p, c, i);
	g_thread_pool_free(p, FALSE, TRUE);
	/* wait_=TRUE, immediate=FALSE: all ran, nothing freed, on return. */
	ck_assert_int_eq(aget(&c->done), 5);
	ck_assert_int_eq(aget(&c->nfreed), 0);
	check_exactly_once(c, 5);
	no_criticals();
}
END_TEST

START_TEST(test_max_threads_getset)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 1, FALSE, FALSE);
	gint vals[] = {4, -1, 0, 7, 1};
	for (guint k = 0; k < G_N_ELEMENTS(vals); k++) {
		GError *err = NULL;
		ck_assert(g_thread_pool_set_max_threads(p, vals[k], &err));
		ck_assert_ptr_null(err);
		ck_assert_int_eq(g_thread_pool_get_max_threads(p), vals[k]);
	}
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* UNDOCUMENTED in the function docs but part of 2.74's gthreadpool.c:
 * defaults are max_unused_threads = 2 and max_idle_time = 15000 ms. */
START_TEST(test_global_getset)
{
	ck_assert_int_eq(g_thread_pool_get_max_unused_threads(), 2);
	ck_assert_uint_eq(g_thread_pool_get_max_idle_time(), 15000);
	ck_assert_uint_eq(g_thread_pool_get_num_unused_threads(), 0);
	gint vals[] = {-1, 0, 5, 2};
	for (guint k = 0; k < G_N_ELEMENTS(vals); k++) {
		g_thread_pool_set_max_unused_threads(vals[k]);
		ck_assert_int_eq(g_thread_pool_get_max_unused_threads(),
				 vals[k]);
	}
	guint iv[] = {0, 50, 1000, 15000};
	for (guint k = 0; k < G_N_ELEMENTS(iv); k++) {
		g_thread_pool_set_max_idle_time(iv[k]);
		ck_assert_uint_eq(g_thread_pool_get_max_idle_time(), iv[k]);
	}
	/* stop_unused_threads restores the previous max_unused_threads */
	g_thread_pool_set_max_unused_threads(5);
	g_thread_pool_stop_unused_threads();
	ck_assert_int_eq(g_thread_pool_get_max_unused_threads(), 5);
	no_criticals();
}
END_TEST

/* user_data is passed as the second argument of func on every call. */
START_TEST(test_user_data_passed)
{
	Ctx *c = ctx_new(0);
	c->user_data = GINT_TO_POINTER(0x5eed);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	ck_assert_ptr_eq(p->user_data, GINT_TO_POINTER(0x5eed));
	for (gint i = 0; i < 20; i++)
		push(p, c, i);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 20);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "free": the four (immediate, wait_) combinations              */
/* ------------------------------------------------------------------ */

#define FK 6 /* items: #0 blocks on the gate, #1..5 queued (max_threads 1) */

typedef struct {
	Gate *g;
	gulong delay_us;
} Opener;

static gpointer opener_thread(gpointer d)
{
	Opener *o = d;
	g_usleep(o->delay_us);
	gate_open(o->g);
	return NULL;
}

static GThreadPool *free_setup(Ctx *c, gboolean full)
{
	GThreadPool *p = mkpool(c, 1, FALSE, full);
	c->items[0].block = TRUE;
	for (gint i = 0; i < FK; i++)
		push(p, c, i);
	WAIT_UNTIL(aget(&c->started) == 1);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), FK - 1);
	return p;
}

/* immediate=FALSE, wait_=TRUE: returns after every queued item ran. */
START_TEST(test_free_drain_wait)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = free_setup(c, TRUE);
	Opener o = {&c->gate, 100000};
	GThread *t = g_thread_new("opener", opener_thread, &o);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(aget(&c->done), FK);
	ck_assert_int_eq(aget(&c->nfreed), 0);
	check_exactly_once(c, FK);
	g_thread_join(t);
	ck_assert_int_eq(aget(&c->bogus_free), 0);
	no_criticals();
}
END_TEST

/* immediate=TRUE, wait_=TRUE: returns after the running item finished;
 * queued items never run; item_free_func once per dropped item, and the
 * frees happen before free() returns (GLib 2.74: the queue is unreffed
 * synchronously in g_thread_pool_free). */
START_TEST(test_free_immediate_wait)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = free_setup(c, TRUE);
	Opener o = {&c->gate, 100000};
	GThread *t = g_thread_new("opener", opener_thread, &o);
	g_thread_pool_free(p, TRUE, TRUE);
	ck_assert_int_eq(aget(&c->done), 1);
	ck_assert_int_eq(aget(&c->ran[0]), 1);
	ck_assert_int_eq(aget(&c->nfreed), FK - 1);
	g_usleep(100000); /* nothing may run late */
	ck_assert_int_eq(aget(&c->done), 1);
	check_exactly_once(c, FK);
	ck_assert_int_eq(aget(&c->bogus_free), 0);
	g_thread_join(t);
	no_criticals();
}
END_TEST

/* immediate=FALSE, wait_=FALSE: returns at once while item #0 is still
 * blocked; after the gate opens the rest of the queue still drains. */
START_TEST(test_free_drain_nowait)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = free_setup(c, TRUE);
	g_thread_pool_free(p, FALSE, FALSE);
	ck_assert_int_eq(aget(&c->done), 0); /* #0 is still blocked */
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == FK);
	g_usleep(100000);
	ck_assert_int_eq(aget(&c->done), FK);
	ck_assert_int_eq(aget(&c->nfreed), 0);
	check_exactly_once(c, FK);
	ck_assert_int_eq(aget(&c->bogus_free), 0);
	no_criticals();
}
END_TEST

/* immediate=TRUE, wait_=FALSE: returns at once; the blocked item finishes
 * after the gate opens; the queued ones never run and are each freed once
 * (GLib 2.74 frees them when the last pool thread leaves, i.e. after the
 * blocked item returns). */
START_TEST(test_free_immediate_nowait)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = free_setup(c, TRUE);
	g_thread_pool_free(p, TRUE, FALSE);
	ck_assert_int_eq(aget(&c->done), 0);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) + aget(&c->nfreed) == FK);
	g_usleep(100000);
	ck_assert_int_eq(aget(&c->done), 1);
	ck_assert_int_eq(aget(&c->ran[0]), 1);
	ck_assert_int_eq(aget(&c->nfreed), FK - 1);
	check_exactly_once(c, FK);
	/* UNDOCUMENTED/SURPRISING (GLib 2.74): g_thread_pool_free(immediate,
	 * !wait) pushes one GUINT_TO_POINTER(1) wake-up dummy per pool thread
	 * into the queue; if a dummy is still queued when the pool is finally
	 * freed, item_free_func would see it. We require that it is not. */
	ck_assert_int_eq(aget(&c->bogus_free), 0);
	no_criticals();
}
END_TEST

/* Plain g_thread_pool_new (no free func), immediate=TRUE: dropped items
 * never run. */
START_TEST(test_free_immediate_plain)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = free_setup(c, FALSE);
	Opener o = {&c->gate, 50000};
	GThread *t = g_thread_new("opener", opener_thread, &o);
	g_thread_pool_free(p, TRUE, TRUE);
	ck_assert_int_eq(aget(&c->done), 1);
	g_usleep(100000);
	ck_assert_int_eq(aget(&c->done), 1);
	ck_assert_int_eq(aget(&c->nfreed), 0);
	g_thread_join(t);
	no_criticals();
}
END_TEST

/* GLib 2.74: g_thread_pool_free (p, immediate=FALSE, ...) on a pool with
 * max_threads == 0 and a non-empty queue fails a g_return_if_fail
 * ("g_thread_pool_free: assertion 'immediate || real->max_threads != 0 ||
 * g_async_queue_length (real->queue) == 0' failed") and does NOT free the
 * pool: it remains usable; free(TRUE, TRUE) then frees every item. */
START_TEST(test_free_frozen_critical)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 0, FALSE, TRUE);
	for (gint i = 0; i < 4; i++)
		push(p, c, i);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 4);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(ncrit(), 1);
	ck_assert(last_log_has("g_thread_pool_free"));
	ck_assert(last_log_has("max_threads != 0"));
	/* not freed: still answers */
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 4);
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 0);
	g_thread_pool_free(p, TRUE, TRUE);
	ck_assert_int_eq(ncrit(), 1);
	ck_assert_int_eq(aget(&c->done), 0);
	ck_assert_int_eq(aget(&c->nfreed), 4);
	check_exactly_once(c, 4);
}
END_TEST

/* exclusive pool: free(FALSE, TRUE) runs every queued item first. */
START_TEST(test_free_exclusive_drain)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 2, TRUE, TRUE);
	c->items[0].block = TRUE;
	for (gint i = 0; i < 10; i++)
		push(p, c, i);
	WAIT_UNTIL(aget(&c->started) >= 1);
	Opener o = {&c->gate, 50000};
	GThread *t = g_thread_new("opener", opener_thread, &o);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(aget(&c->done), 10);
	check_exactly_once(c, 10);
	g_thread_join(t);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "limits": per-pool concurrency, freeze, raise, lower          */
/* ------------------------------------------------------------------ */

static void peak_case(gint n, gboolean exclusive)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, n, exclusive, FALSE);
	gint extra = 3;
	for (gint i = 0; i < n + extra; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == n);
	g_usleep(100000); /* give extra items a chance to start wrongly */
	ck_assert_int_eq(aget(&c->started), n);
	ck_assert_int_eq(aget(&c->meter.peak), n);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), extra);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), n);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == n + extra);
	ck_assert_int_le(aget(&c->meter.peak), n);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, n + extra);
	no_criticals();
}

START_TEST(test_peak_1)
{
	peak_case(1, FALSE);
}
END_TEST
START_TEST(test_peak_2)
{
	peak_case(2, FALSE);
}
END_TEST
START_TEST(test_peak_4)
{
	peak_case(4, FALSE);
}
END_TEST
START_TEST(test_peak_3_exclusive)
{
	peak_case(3, TRUE);
}
END_TEST

/* max_threads -1: 20 blocking items all run at once. */
START_TEST(test_unlimited_20)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	for (gint i = 0; i < 20; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == 20);
	ck_assert_int_eq(aget(&c->meter.peak), 20);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 20);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 20);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 20);
	no_criticals();
}
END_TEST

/* max_threads 0 freezes the pool; raising the limit starts the queued
 * items (set_max_threads on a shared pool with a queue starts them). */
START_TEST(test_freeze_and_raise)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 0, FALSE, FALSE);
	for (gint i = 0; i < 8; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	g_usleep(100000);
	ck_assert_int_eq(aget(&c->started), 0);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 8);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 0);
	ck_assert(g_thread_pool_set_max_threads(p, 3, NULL));
	WAIT_UNTIL(aget(&c->started) == 3);
	g_usleep(50000);
	ck_assert_int_eq(aget(&c->started), 3);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 5);
	ck_assert(g_thread_pool_set_max_threads(p, -1, NULL));
	WAIT_UNTIL(aget(&c->started) == 8);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 8);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 8);
	no_criticals();
}
END_TEST

/* freeze a running pool: set 0 while items run; running ones finish (never
 * interrupted), queued ones wait until the limit is raised again. */
START_TEST(test_freeze_running)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 2, FALSE, FALSE);
	for (gint i = 0; i < 6; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == 2);
	ck_assert(g_thread_pool_set_max_threads(p, 0, NULL));
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 2);
	g_usleep(100000);
	ck_assert_int_eq(aget(&c->started), 2);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 4);
	ck_assert(g_thread_pool_set_max_threads(p, 2, NULL));
	WAIT_UNTIL(aget(&c->done) == 6);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 6);
	no_criticals();
}
END_TEST

/* Lowering the limit while items run: running items complete; items that
 * start after the change never overlap more than the new limit. */
static gint phase2_cur, phase2_peak;
static void lower_func(gpointer data, gpointer ud)
{
	Ctx *c = ud;
	Item *it = data;
	if (it->idx >= 4) {
		gint v = g_atomic_int_add(&phase2_cur, 1) + 1, pk;
		while ((pk = g_atomic_int_get(&phase2_peak)) < v)
			if (g_atomic_int_compare_and_exchange(&phase2_peak, pk,
							      v))
				break;
		g_usleep(20000);
		g_atomic_int_add(&phase2_cur, -1);
	} else {
		g_atomic_int_inc(&c->started);
		gate_wait(&c->gate);
	}
	g_atomic_int_inc(&c->ran[it->idx]);
	g_atomic_int_inc(&c->done);
}

START_TEST(test_lower_at_runtime)
{
	Ctx *c = ctx_new(0);
	CUR = c;
	GThreadPool *p = g_thread_pool_new(lower_func, c, 4, FALSE, NULL);
	ck_assert_ptr_nonnull(p);
	for (gint i = 0; i < 4; i++)
		push(p, c, i);
	WAIT_UNTIL(aget(&c->started) == 4);
	for (gint i = 4; i < 12; i++)
		push(p, c, i);
	ck_assert(g_thread_pool_set_max_threads(p, 1, NULL));
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 1);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 12);
	ck_assert_int_eq(aget(&phase2_peak), 1);
	g_thread_pool_free(p, FALSE, TRUE);
	for (gint i = 0; i < 12; i++)
		ck_assert_int_eq(aget(&c->ran[i]), 1);
	ck_assert_int_eq(aget(&c->gate.timeouts), 0);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "order": FIFO, sort function, move_to_front, unprocessed       */
/* ------------------------------------------------------------------ */

START_TEST(test_fifo)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 1, FALSE, FALSE);
	for (gint i = 0; i < 200; i++)
		push(p, c, i);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(c->norder, 200);
	for (gint i = 0; i < 200; i++)
		ck_assert_int_eq(c->order[i], i);
	check_exactly_once(c, 200);
	no_criticals();
}
END_TEST

static void shuffle_prios(Ctx *c, gint n, gint *perm)
{
	GRand *r = g_rand_new_with_seed(1234);
	for (gint i = 0; i < n; i++)
		perm[i] = i;
	for (gint i = n - 1; i > 0; i--) {
		gint j = g_rand_int_range(r, 0, i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	/* item i gets priority perm[i] (distinct) */
	for (gint i = 0; i < n; i++)
		c->items[i].prio = perm[i];
	g_rand_free(r);
}

static void check_sorted_order(Ctx *c, gint n)
{
	ck_assert_int_eq(c->norder, n);
	for (gint k = 0; k < n; k++)
		ck_assert_msg(c->items[c->order[k]].prio == k,
			      "position %d ran prio %d", k,
			      c->items[c->order[k]].prio);
}

/* sort function set before pushing, pool frozen (0) then limit 1. */
START_TEST(test_sort_push)
{
	Ctx *c = ctx_new(0);
	gint perm[100];
	shuffle_prios(c, 100, perm);
	GThreadPool *p = mkpool(c, 0, FALSE, FALSE);
	g_thread_pool_set_sort_function(p, cmp_prio, NULL);
	for (gint i = 0; i < 100; i++)
		push(p, c, i);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 100);
	ck_assert(g_thread_pool_set_max_threads(p, 1, NULL));
	WAIT_UNTIL(aget(&c->done) == 100);
	check_sorted_order(c, 100);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 100);
	no_criticals();
}
END_TEST

/* set_sort_function on an already-filled queue sorts it. */
START_TEST(test_sort_existing)
{
	Ctx *c = ctx_new(0);
	gint perm[100];
	shuffle_prios(c, 100, perm);
	GThreadPool *p = mkpool(c, 0, FALSE, FALSE);
	for (gint i = 0; i < 100; i++)
		push(p, c, i);
	g_thread_pool_set_sort_function(p, cmp_prio, NULL);
	ck_assert(g_thread_pool_set_max_threads(p, 1, NULL));
	WAIT_UNTIL(aget(&c->done) == 100);
	check_sorted_order(c, 100);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* sort with a running (blocked) item: later pushes are sorted relative to
 * each other; the running item is unaffected. Sort user_data is passed. */
static gint sort_ud_seen;
static gint cmp_prio_ud(gconstpointer a, gconstpointer b, gpointer ud)
{
	if (ud == GINT_TO_POINTER(77))
		g_atomic_int_set(&sort_ud_seen, 1);
	return cmp_prio(a, b, NULL);
}

START_TEST(test_sort_while_running)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 1, FALSE, FALSE);
	g_thread_pool_set_sort_function(p, cmp_prio_ud, GINT_TO_POINTER(77));
	c->items[0].block = TRUE;
	c->items[0].prio = 1000;
	push(p, c, 0);
	WAIT_UNTIL(aget(&c->started) == 1);
	for (gint i = 1; i <= 10; i++) {
		c->items[i].prio = 100 - i; /* reverse order */
		push(p, c, i);
	}
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 11);
	ck_assert_int_eq(c->order[0], 0);
	for (gint k = 1; k <= 10; k++)
		ck_assert_int_eq(c->order[k], 11 - k);
	ck_assert_int_eq(aget(&sort_ud_seen), 1);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

START_TEST(test_move_to_front)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 1, FALSE, FALSE);
	c->items[0].block = TRUE;
	push(p, c, 0);
	WAIT_UNTIL(aget(&c->started) == 1);
	for (gint i = 1; i <= 10; i++)
		push(p, c, i);
	ck_assert(g_thread_pool_move_to_front(p, &c->items[7]));
	/* not in the queue: never pushed, and the running item */
	ck_assert(!g_thread_pool_move_to_front(p, &c->items[50]));
	ck_assert(!g_thread_pool_move_to_front(p, &c->items[0]));
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 10);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 11);
	gint expect[] = {0, 7, 1, 2, 3, 4, 5, 6, 8, 9, 10};
	for (gint k = 0; k < 11; k++)
		ck_assert_int_eq(c->order[k], expect[k]);
	/* after everything ran: not found */
	ck_assert(!g_thread_pool_move_to_front(p, &c->items[7]));
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 11);
	no_criticals();
}
END_TEST

/* move_to_front on a frozen pool. */
START_TEST(test_move_to_front_frozen)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 0, FALSE, FALSE);
	for (gint i = 0; i < 5; i++)
		push(p, c, i);
	ck_assert(g_thread_pool_move_to_front(p, &c->items[4]));
	ck_assert(g_thread_pool_move_to_front(p, &c->items[2]));
	ck_assert(g_thread_pool_set_max_threads(p, 1, NULL));
	WAIT_UNTIL(aget(&c->done) == 5);
	gint expect[] = {2, 4, 0, 1, 3};
	for (gint k = 0; k < 5; k++)
		ck_assert_int_eq(c->order[k], expect[k]);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* unprocessed() counts queued items only, never running ones, and is 0
 * (not negative) when threads are idle waiting. */
START_TEST(test_unprocessed)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 2, FALSE, FALSE);
	for (gint i = 0; i < 7; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == 2);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 5);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 7);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "threads": exclusive / shared thread accounting, unused threads */
/* ------------------------------------------------------------------ */

/* Exclusive pool: GLib 2.74 starts max_threads threads inside
 * g_thread_pool_new and counts them synchronously, so get_num_threads is
 * exactly 3 right after creation; they stay attached while idle. */
START_TEST(test_exclusive_threads)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 3, TRUE, FALSE);
	ck_assert_int_eq(p->exclusive, TRUE);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 3);
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 3);
	for (gint i = 0; i < 6; i++)
		push(p, c, i);
	WAIT_UNTIL(aget(&c->done) == 6);
	g_usleep(700000); /* longer than a shared thread's 0.5 s linger */
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 3);
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	/* exclusive threads are not "unused" threads */
	ck_assert_uint_eq(g_thread_pool_get_num_unused_threads(), 0);
	g_thread_pool_free(p, FALSE, TRUE);
	check_exactly_once(c, 6);
	no_criticals();
}
END_TEST

/* exclusive && max_threads == -1 is rejected with a critical
 * ("g_thread_pool_new_full: assertion '!exclusive || max_threads != -1'
 * failed" in 2.74, since g_thread_pool_new calls new_full), NULL result,
 * error left unset. Same for max_threads < -1. */
START_TEST(test_exclusive_unlimited_rejected)
{
	GError *err = NULL;
	GThreadPool *p = g_thread_pool_new(item_func, NULL, -1, TRUE, &err);
	ck_assert_ptr_null(p);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(ncrit(), 1);
	ck_assert(last_log_has("!exclusive || max_threads != -1"));
	p = g_thread_pool_new_full(item_func, NULL, item_free, -1, TRUE, &err);
	ck_assert_ptr_null(p);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(ncrit(), 2);
	ck_assert(last_log_has("!exclusive || max_threads != -1"));
	p = g_thread_pool_new(item_func, NULL, -2, FALSE, &err);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(ncrit(), 3);
	ck_assert(last_log_has("max_threads >= -1"));
}
END_TEST

/* exclusive pools cannot be set to -1 either (critical, FALSE, unchanged). */
START_TEST(test_exclusive_set_unlimited_rejected)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 2, TRUE, FALSE);
	ck_assert(!g_thread_pool_set_max_threads(p, -1, NULL));
	ck_assert_int_eq(ncrit(), 1);
	ck_assert(last_log_has("!real->pool.exclusive || max_threads != -1"));
	ck_assert_int_eq(g_thread_pool_get_max_threads(p), 2);
	g_thread_pool_free(p, FALSE, TRUE);
}
END_TEST

/* Shared pool: threads leave the pool once idle (GLib: after 0.5 s). */
START_TEST(test_shared_threads_return)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 4, FALSE, FALSE);
	for (gint i = 0; i < 4; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == 4);
	ck_assert_uint_eq(g_thread_pool_get_num_threads(p), 4);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == 4);
	WAIT_UNTIL(g_thread_pool_get_num_threads(p) == 0);
	/* default max_unused_threads is 2: at most 2 are kept */
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() <= 2);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

static void burst(Ctx *c, GThreadPool *p, gint n)
{
	for (gint i = 0; i < n; i++) {
		c->items[i].block = TRUE;
		push(p, c, i);
	}
	WAIT_UNTIL(aget(&c->started) == n);
	gate_open(&c->gate);
	WAIT_UNTIL(aget(&c->done) == n);
	WAIT_UNTIL(g_thread_pool_get_num_threads(p) == 0);
}

START_TEST(test_unused_unlimited_and_stop)
{
	Ctx *c = ctx_new(0);
	g_thread_pool_set_max_unused_threads(-1);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	burst(c, p, 6);
	/* wait for all 6: GLib 2.74 only signals threads already counted as
	 * unused, a thread still on its way would keep waiting (15 s). */
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 6);
	g_thread_pool_stop_unused_threads();
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 0);
	ck_assert_int_eq(g_thread_pool_get_max_unused_threads(), -1);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

START_TEST(test_unused_zero)
{
	Ctx *c = ctx_new(0);
	g_thread_pool_set_max_unused_threads(0);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	burst(c, p, 4);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 0);
	for (gint k = 0; k < 20; k++) {
		ck_assert_uint_eq(g_thread_pool_get_num_unused_threads(), 0);
		g_usleep(10000);
	}
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* lowering max_unused_threads stops the surplus. */
START_TEST(test_unused_lower)
{
	Ctx *c = ctx_new(0);
	g_thread_pool_set_max_unused_threads(-1);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	burst(c, p, 6);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 6);
	g_thread_pool_set_max_unused_threads(1);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() <= 1);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

START_TEST(test_idle_time_expiry)
{
	Ctx *c = ctx_new(0);
	g_thread_pool_set_max_unused_threads(-1);
	g_thread_pool_set_max_idle_time(50);
	ck_assert_uint_eq(g_thread_pool_get_max_idle_time(), 50);
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	burst(c, p, 5);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 0);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* set_max_idle_time on threads already idle in the global pool applies to
 * them too (GLib wakes them to re-read the limits). */
START_TEST(test_idle_time_applies_to_idle)
{
	Ctx *c = ctx_new(0);
	g_thread_pool_set_max_unused_threads(-1);
	g_thread_pool_set_max_idle_time(0); /* 0: never expire */
	GThreadPool *p = mkpool(c, -1, FALSE, FALSE);
	/* One idle thread only. SURPRISING (GLib 2.74): with several idle
	 * threads this is racy in GLib itself: set_max_idle_time pushes one
	 * wake-up marker per thread counted as unused, and under CPU load one
	 * thread can swallow two markers (the relay logic only relays once), so
	 * another idle thread keeps its old (here infinite) idle time; a thread
	 * still on its way to the global pool is not signalled at all. */
	burst(c, p, 1);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 1);
	g_usleep(20000);
	g_thread_pool_set_max_idle_time(30);
	WAIT_UNTIL(g_thread_pool_get_num_unused_threads() == 0);
	g_thread_pool_free(p, FALSE, TRUE);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "misuse": NULL data                                           */
/* ------------------------------------------------------------------ */

/* GLib 2.74: g_thread_pool_push (p, NULL, ...) emits
 * "g_async_queue_push_unlocked: assertion 'data' failed", queues nothing,
 * and still returns TRUE (UNDOCUMENTED: the return value). func never sees
 * NULL; the pool keeps working. */
START_TEST(test_push_null)
{
	Ctx *c = ctx_new(0);
	GThreadPool *p = mkpool(c, 1, FALSE, FALSE);
	GError *err = NULL;
	gboolean r = g_thread_pool_push(p, NULL, &err);
	ck_assert_ptr_null(err);
	ck_assert(r);
	ck_assert_int_eq(ncrit(), 1);
	ck_assert(last_log_has("assertion 'data' failed"));
	ck_assert_uint_eq(g_thread_pool_unprocessed(p), 0);
	for (gint i = 0; i < 3; i++)
		push(p, c, i);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(aget(&c->done), 3);
	check_exactly_once(c, 3);
	ck_assert_int_eq(ncrit(), 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* TCase "stress": message passing, GTask-like, nested free, many pools */
/* ------------------------------------------------------------------ */

#define NMSG 10000
static GThreadPool *pool_b, *pool_c;
static gint msg_count;
static gint64 msg_sum;
static gint msg_seen[NMSG + 1];
static gint msg_bad;

static void fa(gpointer d, gpointer ud)
{
	(void)ud;
	if (!g_thread_pool_push(pool_b, d, NULL))
		g_atomic_int_inc(&msg_bad);
}
static void fb(gpointer d, gpointer ud)
{
	(void)ud;
	if (!g_thread_pool_push(pool_c, d, NULL))
		g_atomic_int_inc(&msg_bad);
}
static void fc(gpointer d, gpointer ud)
{
	(void)ud;
	gint v = GPOINTER_TO_INT(d);
	if (v < 1 || v > NMSG) {
		g_atomic_int_inc(&msg_bad);
		return;
	}
	g_atomic_int_inc(&msg_seen[v]);
	__atomic_fetch_add(&msg_sum, (gint64)v, __ATOMIC_SEQ_CST);
	g_atomic_int_inc(&msg_count);
}

START_TEST(test_message_passing)
{
	GThreadPool *a = g_thread_pool_new(fa, NULL, 2, FALSE, NULL);
	pool_b = g_thread_pool_new(fb, NULL, 2, FALSE, NULL);
	pool_c = g_thread_pool_new(fc, NULL, -1, FALSE, NULL);
	ck_assert(a && pool_b && pool_c);
	for (gint i = 1; i <= NMSG; i++)
		ck_assert(g_thread_pool_push(a, GINT_TO_POINTER(i), NULL));
	g_thread_pool_free(a, FALSE, TRUE);
	g_thread_pool_free(pool_b, FALSE, TRUE);
	g_thread_pool_free(pool_c, FALSE, TRUE);
	ck_assert_int_eq(aget(&msg_bad), 0);
	ck_assert_int_eq(aget(&msg_count), NMSG);
	ck_assert(msg_sum == (gint64)NMSG * (NMSG + 1) / 2);
	for (gint i = 1; i <= NMSG; i++)
		ck_assert_int_eq(msg_seen[i], 1);
	no_criticals();
}
END_TEST

/* GTask-like: priority sort function + limit changed up and down (incl.
 * to 0 and back) while items run; every item runs exactly once. */
START_TEST(test_gtask_like)
{
	const gint n = 2000;
	Ctx *c = ctx_new(0);
	gint *perm = g_new(gint, n);
	shuffle_prios(c, n, perm);
	c->sleep_us = 50;
	GThreadPool *p = mkpool(c, 2, FALSE, TRUE);
	g_thread_pool_set_sort_function(p, cmp_prio, NULL);
	gint limits[] = {8, 1, 0, 3, -1, 2, 0, 1, 6, 4};
	gint next = 0;
	for (guint k = 0; k < G_N_ELEMENTS(limits); k++) {
		for (gint j = 0; j < n / 10 && next < n; j++)
			push(p, c, next++);
		ck_assert(g_thread_pool_set_max_threads(p, limits[k], NULL));
		ck_assert_int_eq(g_thread_pool_get_max_threads(p), limits[k]);
		g_usleep(2000);
	}
	ck_assert(g_thread_pool_set_max_threads(p, 4, NULL));
	WAIT_UNTIL(aget(&c->done) == n);
	g_thread_pool_free(p, FALSE, TRUE);
	ck_assert_int_eq(aget(&c->nfreed), 0);
	check_exactly_once(c, n);
	g_free(perm);
	no_criticals();
}
END_TEST

/* g_thread_pool_free (other, FALSE, TRUE) called from inside an item of
 * another pool: waits for other's items, then returns. */
static GThreadPool *victim;
static gint victim_done_at_return = -1;
static void freer_func(gpointer d, gpointer ud)
{
	Ctx *c = ud;
	(void)d;
	g_thread_pool_free(victim, FALSE, TRUE);
	g_atomic_int_set(&victim_done_at_return, aget(&c->done));
}

START_TEST(test_free_from_other_pool)
{
	Ctx *c = ctx_new(0);
	c->sleep_us = 2000;
	victim = mkpool(c, 2, FALSE, FALSE);
	for (gint i = 0; i < 20; i++)
		push(victim, c, i);
	GThreadPool *f = g_thread_pool_new(freer_func, c, 1, FALSE, NULL);
	ck_assert(g_thread_pool_push(f, GINT_TO_POINTER(1), NULL));
	g_thread_pool_free(f, FALSE, TRUE);
	ck_assert_int_eq(aget(&victim_done_at_return), 20);
	check_exactly_once(c, 20);
	no_criticals();
}
END_TEST

/* Same, victim exclusive and the freeing item in an exclusive pool. */
START_TEST(test_free_from_other_pool_exclusive)
{
	Ctx *c = ctx_new(0);
	c->sleep_us = 2000;
	victim = mkpool(c, 2, TRUE, FALSE);
	for (gint i = 0; i < 20; i++)
		push(victim, c, i);
	GThreadPool *f = g_thread_pool_new(freer_func, c, 1, TRUE, NULL);
	ck_assert(g_thread_pool_push(f, GINT_TO_POINTER(1), NULL));
	g_thread_pool_free(f, FALSE, TRUE);
	ck_assert_int_eq(aget(&victim_done_at_return), 20);
	check_exactly_once(c, 20);
	no_criticals();
}
END_TEST

/* 50 pools created and freed in a loop with a few items each.
 * Pools freed with immediate=FALSE: every item runs exactly once.
 * Pools freed with immediate=TRUE: every item runs or is freed AT MOST
 * once. SURPRISING (GLib 2.74, reproduced natively): when free(immediate)
 * races with pool threads that are idle-waiting for (or just being handed)
 * an item, GLib drops that item without running it and without calling
 * item_free_func (a leak), and free(immediate=TRUE, wait_=FALSE) can call
 * item_free_func on its internal GUINT_TO_POINTER(1) wake-up dummy. So the
 * oracle only guarantees "at most once" and tolerates frees of 0x1 here;
 * set SS_GTP_STRICT=1 to require exactly once and no dummy frees (the shim
 * should pass that; GLib 2.74 does not). Deterministic exact-once cases
 * for immediate=TRUE are in TCase "free". */
static gboolean strict_mode(void)
{
	const char *s = getenv("SS_GTP_STRICT");
	return s && *s && strcmp(s, "0") != 0;
}

START_TEST(test_many_pools)
{
	Ctx *c = ctx_new(0);
	const gint npools = 50, per = 5;
	gboolean strict = strict_mode();
	for (gint k = 0; k < npools; k++) {
		GThreadPool *p = mkpool(c, 1 + k % 3, k % 7 == 0, TRUE);
		for (gint j = 0; j < per; j++)
			push(p, c, k * per + j);
		switch (k % 4) {
		case 0:
			g_thread_pool_free(p, FALSE, TRUE);
			break;
		case 1:
			g_thread_pool_free(p, TRUE, TRUE);
			break;
		case 2:
			g_thread_pool_free(p, FALSE, FALSE);
			break;
		default:
			g_thread_pool_free(p, TRUE, FALSE);
			break;
		}
	}
	/* immediate=FALSE pools (k % 4 == 0 or 2) must run everything */
	for (gint k = 0; k < npools; k += 2)
		for (gint j = 0; j < per; j++)
			WAIT_UNTIL(aget(&c->ran[k * per + j]) == 1);
	if (strict)
		WAIT_UNTIL(aget(&c->done) + aget(&c->nfreed) == npools * per);
	/* let late runs / frees happen: wait until the counts are stable */
	gint64 end = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;
	gint prev = -1, now;
	while ((now = aget(&c->done) + aget(&c->nfreed) +
		      aget(&c->bogus_free)) != prev) {
		ck_assert_msg(g_get_monotonic_time() < end,
			      "counts never settle");
		prev = now;
		g_usleep(200000);
	}
	for (gint k = 0; k < npools; k++)
		for (gint j = 0; j < per; j++) {
			gint i = k * per + j, r = aget(&c->ran[i]),
			     f = aget(&c->freed[i]);
			if (k % 2 == 0)
				ck_assert_msg(
					r == 1 && f == 0,
					"drained item %d: ran %d freed %d", i,
					r, f);
			else if (strict)
				ck_assert_msg(r + f == 1,
					      "item %d: ran %d freed %d", i, r,
					      f);
			else
				ck_assert_msg(r + f <= 1,
					      "item %d: ran %d freed %d", i, r,
					      f);
		}
	ck_assert_int_eq(aget(&c->bogus_run), 0);
	ck_assert_int_eq(aget(&c->bogus_other), 0);
	if (strict)
		ck_assert_int_eq(aget(&c->bogus_free), 0);
	no_criticals();
}
END_TEST

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static int check_provider(void)
{
	const char *expect = getenv("SS_GTP_EXPECT");
	GThreadPool *(*volatile fp)(GFunc, gpointer, gint, gboolean,
				    GError **) = g_thread_pool_new;
	Dl_info info = {0}, self = {0};
	const char *path = "?";
	if (dladdr((void *)fp, &info) && info.dli_fname)
		path = info.dli_fname;
	/* In a non-PIE build &g_thread_pool_new may be a canonical PLT address
	 * inside the executable: fall back to the next definition after the
	 * executable in lookup order (LD_PRELOAD objects come first). */
	if (dladdr((void *)check_provider, &self) && info.dli_fbase &&
	    info.dli_fbase == self.dli_fbase) {
		void *s = dlsym(RTLD_NEXT, "g_thread_pool_new");
		if (s && dladdr(s, &info) && info.dli_fname)
			path = info.dli_fname;
	}
	/* libssgtp: the test library of tests/gtp/lib.c, the same layer. */
	const char *kind =
		(strstr(path, "smolscale-preload") || strstr(path, "libssgtp"))
			? "shim"
		: strstr(path, "libglib") ? "glib"
					  : "unknown";
	fprintf(stderr, "gtp-contract: g_thread_pool_new from %s (%s)%s%s\n",
		path, kind, expect ? ", SS_GTP_EXPECT=" : "",
		expect ? expect : "");
	if (expect && *expect && strcmp(expect, kind) != 0) {
		fprintf(stderr,
			"gtp-contract: FAIL: expected %s implementation\n",
			expect);
		return 1;
	}
	return 0;
}

static TCase *tc(Suite *s, const char *name)
{
	TCase *t = tcase_create(name);
	tcase_add_checked_fixture(t, setup, NULL);
	tcase_set_timeout(t, 3 * WAIT_S);
	suite_add_tcase(s, t);
	return t;
}

int main(void)
{
	if (check_provider())
		return 2;

	Suite *s = suite_create("gthreadpool-contract");
	TCase *t;

	t = tc(s, "api");
	tcase_add_test(t, test_new_fields);
	tcase_add_test(t, test_new_full_fields);
	tcase_add_test(t, test_max_threads_getset);
	tcase_add_test(t, test_global_getset);
	tcase_add_test(t, test_user_data_passed);

	t = tc(s, "free");
	tcase_add_test(t, test_free_drain_wait);
	tcase_add_test(t, test_free_immediate_wait);
	tcase_add_test(t, test_free_drain_nowait);
	tcase_add_test(t, test_free_immediate_nowait);
	tcase_add_test(t, test_free_immediate_plain);
	tcase_add_test(t, test_free_frozen_critical);
	tcase_add_test(t, test_free_exclusive_drain);

	t = tc(s, "limits");
	tcase_add_test(t, test_peak_1);
	tcase_add_test(t, test_peak_2);
	tcase_add_test(t, test_peak_4);
	tcase_add_test(t, test_peak_3_exclusive);
	tcase_add_test(t, test_unlimited_20);
	tcase_add_test(t, test_freeze_and_raise);
	tcase_add_test(t, test_freeze_running);
	tcase_add_test(t, test_lower_at_runtime);

	t = tc(s, "order");
	tcase_add_test(t, test_fifo);
	tcase_add_test(t, test_sort_push);
	tcase_add_test(t, test_sort_existing);
	tcase_add_test(t, test_sort_while_running);
	tcase_add_test(t, test_move_to_front);
	tcase_add_test(t, test_move_to_front_frozen);
	tcase_add_test(t, test_unprocessed);

	t = tc(s, "threads");
	tcase_add_test(t, test_exclusive_threads);
	tcase_add_test(t, test_exclusive_unlimited_rejected);
	tcase_add_test(t, test_exclusive_set_unlimited_rejected);
	tcase_add_test(t, test_shared_threads_return);
	tcase_add_test(t, test_unused_unlimited_and_stop);
	tcase_add_test(t, test_unused_zero);
	tcase_add_test(t, test_unused_lower);
	tcase_add_test(t, test_idle_time_expiry);
	tcase_add_test(t, test_idle_time_applies_to_idle);

	t = tc(s, "misuse");
	tcase_add_test(t, test_push_null);

	t = tc(s, "stress");
	tcase_add_test(t, test_message_passing);
	tcase_add_test(t, test_gtask_like);
	tcase_add_test(t, test_free_from_other_pool);
	tcase_add_test(t, test_free_from_other_pool_exclusive);
	tcase_add_test(t, test_many_pools);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
