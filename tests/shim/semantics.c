/*
 * semantics.c - the POSIX thread semantics that a thread rerouted by
 * libsmolscale-preload.so must keep, one line per check.
 *
 *   semantics GROUP...
 *
 * Groups:
 *   core      join, detach, equal, self, exit, cleanup, TSD, once, kill,
 *             names, attributes, cancellation (the shim's contract)
 *   realattrs threads whose attributes the workers cannot honour (explicit
 *             scheduling, affinity, caller's stack, a large stack): they
 *             must run as real threads (run.sh expects pthreads_rerouted=0)
 *   routeattrs threads with attributes the workers can honour (detached,
 *             small stack, guard size): exactly 3 threads
 *   names     1 thread of ssx_alpha_start, 2 of ssx_beta_start, 4 of
 *             ssx_gamma_start: run.sh reads which ones were rerouted from
 *             pthreads_rerouted under SMOLSCALE_PTHREAD_ONLY/_SKIP
 *   extra     POSIX semantics beyond the shim's stated contract (__thread
 *             variables, signal masks, default thread names, EDEADLK)
 *   unstarted threads canceled before they start never run (see there)
 *   stackrlimit, stacksetdefault
 *             threads with default attributes get the default stack size,
 *             from RLIMIT_STACK or pthread_setattr_default_np
 *
 * Each check prints "name: ok" or "name: FAIL <what was expected, what
 * happened>"; the output of a passing run is the same natively and under
 * the shim.  Exit status: 0 when every check passed, 1 otherwise.
 * Start routines are exported (the program is linked with -rdynamic), so
 * that the shim's dladdr finds their names.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check(const char *name, int ok, const char *fmt, ...)
{
	if (ok) {
		printf("%s: ok\n", name);
	} else {
		va_list ap;

		failures++;
		printf("%s: FAIL ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	fflush(stdout);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "semantics: %s: %s\n", what, strerror(err));
	exit(2);
}

#define MUST(call)                                                     \
	do {                                                           \
		int must_rc_ = (call);                                 \
		if (must_rc_ != 0)                                     \
			die(#call, must_rc_ > 0 ? must_rc_ : errno);   \
	} while (0)

static void xsem_wait(sem_t *s)
{
	while (sem_wait(s) != 0)
		if (errno != EINTR)
			die("sem_wait", errno);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* create and join                                                     */

void *sem_plus_one(void *arg);
void *sem_plus_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static void check_create_join(void)
{
	pthread_t t[100];
	uintptr_t sum = 0;
	void *v = NULL;
	int rc, bad = 0;

	rc = pthread_create(&t[0], NULL, sem_plus_one, (void *)41);
	if (rc == 0)
		rc = pthread_join(t[0], &v);
	check("create-join", rc == 0 && v == (void *)42,
	      "expected rc 0 value 42, got rc %d value %p", rc, v);

	for (uintptr_t i = 0; i < 100; i++)
		MUST(pthread_create(&t[i], NULL, sem_plus_one, (void *)i));
	for (int i = 0; i < 100; i++) {
		if (pthread_join(t[i], &v) != 0)
			bad++;
		sum += (uintptr_t)v;
	}
	check("create-join-100", bad == 0 && sum == 5050,
	      "expected 100 joins summing to 5050, got %d failed joins, sum %lu",
	      bad, (unsigned long)sum);
}

/* ------------------------------------------------------------------ */
/* pthread_self, pthread_equal, handles                                */

struct selfrec {
	pthread_t self;
	pthread_t child;       /* the handle this thread got for its child */
	pthread_t child_self;  /* what the child saw as pthread_self() */
	sem_t *started;        /* posted once self is recorded, if set */
	sem_t *hold;           /* wait here before returning, if set */
};

void *sem_record_self(void *arg);
void *sem_record_self(void *arg)
{
	struct selfrec *r = arg;

	r->self = pthread_self();
	if (r->started)
		MUST(sem_post(r->started));
	if (r->hold)
		xsem_wait(r->hold);
	return NULL;
}

static void make_real_attr(pthread_attr_t *a);

void *sem_record_self_nested(void *arg);
void *sem_record_self_nested(void *arg)
{
	struct selfrec *r = arg;
	struct selfrec inner = { 0 };

	r->self = pthread_self();
	MUST(pthread_create(&r->child, NULL, sem_record_self, &inner));
	MUST(pthread_join(r->child, NULL));
	r->child_self = inner.self;
	return NULL;
}

static void check_self(void)
{
	struct selfrec r = { 0 };
	pthread_t t;

	MUST(pthread_create(&t, NULL, sem_record_self, &r));
	MUST(pthread_join(t, NULL));
	check("self-is-handle", pthread_equal(r.self, t),
	      "pthread_self() in the thread differs from the handle pthread_create gave");
	check("self-not-main", !pthread_equal(t, pthread_self()),
	      "the new thread's handle equals main's pthread_self()");

	memset(&r, 0, sizeof r);
	MUST(pthread_create(&t, NULL, sem_record_self_nested, &r));
	MUST(pthread_join(t, NULL));
	check("self-is-handle-nested",
	      pthread_equal(r.self, t) && pthread_equal(r.child_self, r.child) &&
		      !pthread_equal(r.child, r.self),
	      "nested: self==handle %d, grandchild self==handle %d, child!=grandchild %d",
	      pthread_equal(r.self, t) != 0,
	      pthread_equal(r.child_self, r.child) != 0,
	      !pthread_equal(r.child, r.self));
}

/* A real thread: an attribute the workers cannot honour (an explicit
 * scheduling policy, the one we already have) keeps it off the pool. */
static void make_real_attr(pthread_attr_t *a)
{
	struct sched_param sp = { .sched_priority = 0 };

	MUST(pthread_attr_init(a));
	MUST(pthread_attr_setinheritsched(a, PTHREAD_EXPLICIT_SCHED));
	MUST(pthread_attr_setschedpolicy(a, SCHED_OTHER));
	MUST(pthread_attr_setschedparam(a, &sp));
}

void *sem_mixed_inner(void *arg);
void *sem_mixed_inner(void *arg)
{
	return (void *)((uintptr_t)arg * 2);
}

/* creates a thread (pooled when arg is 0, real otherwise) and joins it */
void *sem_mixed_outer(void *arg);
void *sem_mixed_outer(void *arg)
{
	pthread_attr_t real;
	pthread_t t;
	void *v = NULL;
	int rc;

	make_real_attr(&real);
	rc = pthread_create(&t, arg ? &real : NULL, sem_mixed_inner, (void *)21);
	pthread_attr_destroy(&real);
	if (rc == 0)
		rc = pthread_join(t, &v);
	return rc == 0 ? v : (void *)-1;
}

static void check_join_mixed(void)
{
	pthread_attr_t real;
	pthread_t a, b;
	void *va = NULL, *vb = NULL;

	make_real_attr(&real);
	MUST(pthread_create(&a, &real, sem_mixed_outer, (void *)0));  /* real joins pooled */
	MUST(pthread_create(&b, NULL, sem_mixed_outer, (void *)1));   /* pooled joins real */
	pthread_attr_destroy(&real);
	MUST(pthread_join(a, &va));
	MUST(pthread_join(b, &vb));
	check("join-mixed", va == (void *)42 && vb == (void *)42,
	      "a real thread joining a pooled one and a pooled one joining a real one: expected "
	      "42 and 42, got %ld and %ld", (long)(intptr_t)va, (long)(intptr_t)vb);
}

static void check_equal(void)
{
	enum { NR = 8, NREAL = 2, N = NR + NREAL };
	struct selfrec r[N];
	pthread_t t[N];
	pthread_attr_t real;
	sem_t hold, started;
	int same_handles = 0, same_selves = 0, self_mismatch = 0, main_eq = 0;

	memset(r, 0, sizeof r);
	MUST(sem_init(&hold, 0, 0));
	MUST(sem_init(&started, 0, 0));
	make_real_attr(&real);
	for (int i = 0; i < N; i++) {
		r[i].hold = &hold;
		r[i].started = &started;
		MUST(pthread_create(&t[i], i < NR ? NULL : &real,
				    sem_record_self, &r[i]));
	}
	/* All alive together (held), so no handle can have been reused. */
	for (int i = 0; i < N; i++)
		xsem_wait(&started);
	for (int i = 0; i < N; i++) {
		if (!pthread_equal(r[i].self, t[i]))
			self_mismatch++;
		if (pthread_equal(t[i], pthread_self()))
			main_eq++;
		for (int j = i + 1; j < N; j++) {
			if (pthread_equal(t[i], t[j]))
				same_handles++;
			if (pthread_equal(r[i].self, r[j].self))
				same_selves++;
		}
	}
	for (int i = 0; i < N; i++)
		MUST(sem_post(&hold));
	for (int i = 0; i < N; i++)
		MUST(pthread_join(t[i], NULL));
	pthread_attr_destroy(&real);
	sem_destroy(&hold);
	sem_destroy(&started);
	check("equal-distinct",
	      same_handles == 0 && same_selves == 0 && main_eq == 0 && self_mismatch == 0,
	      "8 pooled + 2 real live threads: %d equal handle pairs, %d equal self pairs, "
	      "%d equal to main, %d self!=handle",
	      same_handles, same_selves, main_eq, self_mismatch);
	check("equal-reflexive", pthread_equal(t[0], t[0]) != 0,
	      "pthread_equal(t, t) returned 0");
	check_join_mixed();
}

/* ------------------------------------------------------------------ */
/* detach                                                              */

struct detrec {
	sem_t go, done;
	int detachstate;
	int self_detach_rc;
	int do_self_detach;
};

void *sem_detached_body(void *arg);
void *sem_detached_body(void *arg)
{
	struct detrec *d = arg;
	pthread_attr_t a;

	if (d->do_self_detach)
		d->self_detach_rc = pthread_detach(pthread_self());
	else
		xsem_wait(&d->go);
	d->detachstate = -1;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getdetachstate(&a, &d->detachstate);
		pthread_attr_destroy(&a);
	}
	MUST(sem_post(&d->done));
	return NULL;
}

static void check_detach(void)
{
	struct detrec d;
	pthread_t t;
	pthread_attr_t a;
	int rc;

	memset(&d, 0, sizeof d);
	MUST(sem_init(&d.go, 0, 0));
	MUST(sem_init(&d.done, 0, 0));
	MUST(pthread_create(&t, NULL, sem_detached_body, &d));
	rc = pthread_detach(t);
	MUST(sem_post(&d.go));
	xsem_wait(&d.done);
	check("detach-running", rc == 0 && d.detachstate == PTHREAD_CREATE_DETACHED,
	      "expected detach rc 0 and the thread to see itself detached, got rc %d state %d",
	      rc, d.detachstate);

	d.detachstate = 0;
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
	MUST(pthread_create(&t, &a, sem_detached_body, &d));
	pthread_attr_destroy(&a);
	MUST(sem_post(&d.go));
	xsem_wait(&d.done);
	check("detach-attr", d.detachstate == PTHREAD_CREATE_DETACHED,
	      "expected getattr_np to report DETACHED (%d), got %d",
	      PTHREAD_CREATE_DETACHED, d.detachstate);

	d.detachstate = 0;
	d.do_self_detach = 1;
	d.self_detach_rc = -1;
	MUST(pthread_create(&t, NULL, sem_detached_body, &d));
	xsem_wait(&d.done);
	check("detach-self", d.self_detach_rc == 0 && d.detachstate == PTHREAD_CREATE_DETACHED,
	      "expected pthread_detach(pthread_self()) 0 and DETACHED, got rc %d state %d",
	      d.self_detach_rc, d.detachstate);
	sem_destroy(&d.go);
	sem_destroy(&d.done);
	/* Detached threads finish on their own; let them go. */
	sleep_ms(20);
}

/* ------------------------------------------------------------------ */
/* tryjoin, timedjoin, clockjoin                                       */

void *sem_wait_then_return(void *arg);
void *sem_wait_then_return(void *arg)
{
	xsem_wait(arg);
	return (void *)0x77;
}

static void check_nonblocking_joins(void)
{
	sem_t s;
	pthread_t t;
	void *v = NULL;
	int busy, rc;
	struct timespec ts;

	MUST(sem_init(&s, 0, 0));

	MUST(pthread_create(&t, NULL, sem_wait_then_return, &s));
	busy = pthread_tryjoin_np(t, &v);
	MUST(sem_post(&s));
	while ((rc = pthread_tryjoin_np(t, &v)) == EBUSY)
		sleep_ms(1);
	check("tryjoin", busy == EBUSY && rc == 0 && v == (void *)0x77,
	      "expected EBUSY (%d) while blocked, then 0 and 0x77; got %d, then %d and %p",
	      EBUSY, busy, rc, v);

	v = NULL;
	MUST(pthread_create(&t, NULL, sem_wait_then_return, &s));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 20000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	busy = pthread_timedjoin_np(t, &v, &ts);
	MUST(sem_post(&s));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 120;
	rc = pthread_timedjoin_np(t, &v, &ts);
	check("timedjoin", busy == ETIMEDOUT && rc == 0 && v == (void *)0x77,
	      "expected ETIMEDOUT (%d) while blocked, then 0 and 0x77; got %d, then %d and %p",
	      ETIMEDOUT, busy, rc, v);

	v = NULL;
	MUST(pthread_create(&t, NULL, sem_wait_then_return, &s));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 20000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	busy = pthread_clockjoin_np(t, &v, CLOCK_MONOTONIC, &ts);
	MUST(sem_post(&s));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 120;
	rc = pthread_clockjoin_np(t, &v, CLOCK_MONOTONIC, &ts);
	check("clockjoin", busy == ETIMEDOUT && rc == 0 && v == (void *)0x77,
	      "expected ETIMEDOUT (%d) while blocked, then 0 and 0x77; got %d, then %d and %p",
	      ETIMEDOUT, busy, rc, v);

	sem_destroy(&s);
}

/* ------------------------------------------------------------------ */
/* pthread_exit from deep frames, cleanup handlers                     */

struct exitrec {
	int order[8];
	int n;
	int reached_after_exit;
	pthread_key_t key;      /* with a destructor that logs -1 */
	int use_key;
};

static void log_cleanup(void *arg)
{
	struct exitrec *e = *(struct exitrec **)arg;
	int depth = (int)(intptr_t)((void **)arg)[1];

	if (e->n < 8)
		e->order[e->n++] = depth;
}

/* called through a pointer: gcc takes a recursion that ends only in a
 * noreturn call for an infinite one */
static void (*volatile exit_fn)(void *) = pthread_exit;

static int deep(struct exitrec *e, int depth)
{
	volatile char pad[64];
	void *ctx[2] = { e, (void *)(intptr_t)depth };
	int r;

	pad[0] = (char)depth;
	if (depth > 1000)
		return 0;
	if (depth == 64)
		exit_fn((void *)0x5a);
	if (depth == 0 || depth == 10 || depth == 63) {
		pthread_cleanup_push(log_cleanup, ctx);
		r = deep(e, depth + 1) + pad[0];
		pthread_cleanup_pop(0);
	} else {
		r = deep(e, depth + 1) + pad[0];
	}
	e->reached_after_exit = 1;
	return r;
}

static void tsd_log_dtor(void *v)
{
	struct exitrec *e = v;

	if (e->n < 8)
		e->order[e->n++] = -1;
}

void *sem_exit_deep(void *arg);
void *sem_exit_deep(void *arg)
{
	struct exitrec *e = arg;

	if (e->use_key)
		MUST(pthread_setspecific(e->key, e));
	deep(e, 0);
	e->reached_after_exit = 1;
	return (void *)1;
}

static void cleanup_flag(void *arg)
{
	(*(int *)arg)++;
}

void *sem_cleanup_pop(void *arg);
void *sem_cleanup_pop(void *arg)
{
	int *runs = arg;   /* [0]: pop(1) handler, [1]: pop(0) handler */

	pthread_cleanup_push(cleanup_flag, &runs[1]);
	pthread_cleanup_push(cleanup_flag, &runs[0]);
	pthread_cleanup_pop(1);
	pthread_cleanup_pop(0);
	return NULL;
}

void *sem_exit_null(void *arg);
void *sem_exit_null(void *arg)
{
	pthread_exit(NULL);
}

static void check_exit(void)
{
	struct exitrec e;
	pthread_t t;
	void *v = NULL;
	int runs[2] = { 0, 0 };

	memset(&e, 0, sizeof e);
	MUST(pthread_create(&t, NULL, sem_exit_deep, &e));
	MUST(pthread_join(t, &v));
	check("exit-deep",
	      v == (void *)0x5a && e.n == 3 && e.order[0] == 63 && e.order[1] == 10 &&
		      e.order[2] == 0 && !e.reached_after_exit,
	      "expected value 0x5a, cleanup handlers 63,10,0, nothing after the exit; "
	      "got %p, %d handlers (%d,%d,%d), after-exit %d",
	      v, e.n, e.order[0], e.order[1], e.order[2], e.reached_after_exit);

	memset(&e, 0, sizeof e);
	e.use_key = 1;
	MUST(pthread_key_create(&e.key, tsd_log_dtor));
	MUST(pthread_create(&t, NULL, sem_exit_deep, &e));
	MUST(pthread_join(t, &v));
	check("exit-deep-tsd",
	      v == (void *)0x5a && e.n == 4 && e.order[0] == 63 && e.order[3] == -1,
	      "expected cleanup handlers then the key destructor (63,10,0,-1) before join "
	      "returned; got %d entries (%d,%d,%d,%d)",
	      e.n, e.order[0], e.order[1], e.order[2], e.order[3]);
	pthread_key_delete(e.key);

	MUST(pthread_create(&t, NULL, sem_cleanup_pop, runs));
	MUST(pthread_join(t, NULL));
	check("cleanup-pop", runs[0] == 1 && runs[1] == 0,
	      "expected pop(1) to run its handler once and pop(0) not; got %d and %d",
	      runs[0], runs[1]);

	v = (void *)1;
	MUST(pthread_create(&t, NULL, sem_exit_null, NULL));
	MUST(pthread_join(t, &v));
	check("exit-null", v == NULL, "expected NULL, got %p", v);
}

/* ------------------------------------------------------------------ */
/* thread-specific data                                                */

static pthread_key_t k_plain;    /* no destructor */
static pthread_key_t k_dtor;     /* destructor counts */
static pthread_key_t k_again;    /* destructor sets the value once more */
static atomic_int dtor_calls, dtor_bad, again_calls;

static void count_dtor(void *v)
{
	atomic_fetch_add(&dtor_calls, 1);
	if (v != (void *)0xd7)
		atomic_fetch_add(&dtor_bad, 1);
}

static void again_dtor(void *v)
{
	if (atomic_fetch_add(&again_calls, 1) == 0)
		pthread_setspecific(k_again, (void *)0xa2);
}

struct tsdrec {
	atomic_int seen_nonnull;
};

void *sem_tsd_body(void *arg);
void *sem_tsd_body(void *arg)
{
	struct tsdrec *r = arg;

	if (pthread_getspecific(k_plain) != NULL || pthread_getspecific(k_dtor) != NULL ||
	    pthread_getspecific(k_again) != NULL)
		atomic_fetch_add(&r->seen_nonnull, 1);
	MUST(pthread_setspecific(k_plain, (void *)0x11));
	MUST(pthread_setspecific(k_dtor, (void *)0xd7));
	return NULL;
}

void *sem_tsd_again(void *arg);
void *sem_tsd_again(void *arg)
{
	MUST(pthread_setspecific(k_again, (void *)0xa1));
	return NULL;
}

static pthread_key_t k_self;
static pthread_t dtor_saw_self;
static int dtor_self_runs;

static void self_dtor(void *v)
{
	dtor_saw_self = pthread_self();
	dtor_self_runs++;
}

void *sem_tsd_self(void *arg);
void *sem_tsd_self(void *arg)
{
	MUST(pthread_setspecific(k_self, (void *)1));
	return NULL;
}

static void check_tsd(void)
{
	struct tsdrec r;
	pthread_t t[20];
	int main_kept;

	atomic_init(&r.seen_nonnull, 0);
	MUST(pthread_key_create(&k_plain, NULL));
	MUST(pthread_key_create(&k_dtor, count_dtor));
	MUST(pthread_key_create(&k_again, again_dtor));
	MUST(pthread_setspecific(k_plain, (void *)0x1));
	MUST(pthread_setspecific(k_dtor, (void *)0x2));

	MUST(pthread_create(&t[0], NULL, sem_tsd_body, &r));
	MUST(pthread_join(t[0], NULL));
	check("tsd-starts-null", r.seen_nonnull == 0,
	      "a new thread saw a non-NULL value for a key main had set");
	check("tsd-destructor", dtor_calls == 1 && dtor_bad == 0,
	      "expected the destructor once with the thread's value before join returned; "
	      "got %d calls, %d with another value", (int)dtor_calls, (int)dtor_bad);

	atomic_store(&r.seen_nonnull, 0);
	dtor_calls = 0;
	for (int i = 0; i < 40; i++) {
		MUST(pthread_create(&t[0], NULL, sem_tsd_body, &r));
		MUST(pthread_join(t[0], NULL));
	}
	check("tsd-no-leak-sequential", r.seen_nonnull == 0 && dtor_calls == 40,
	      "40 threads one after another: expected all to start with NULL values and "
	      "40 destructor calls; %d saw a value left by an earlier one, %d calls",
	      (int)r.seen_nonnull, (int)dtor_calls);

	atomic_store(&r.seen_nonnull, 0);
	dtor_calls = 0;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 20; i++)
			MUST(pthread_create(&t[i], NULL, sem_tsd_body, &r));
		for (int i = 0; i < 20; i++)
			MUST(pthread_join(t[i], NULL));
	}
	check("tsd-no-leak-batches", r.seen_nonnull == 0 && dtor_calls == 100,
	      "5 batches of 20: %d threads saw a value left behind, %d of 100 destructor calls",
	      (int)r.seen_nonnull, (int)dtor_calls);

	MUST(pthread_create(&t[0], NULL, sem_tsd_again, NULL));
	MUST(pthread_join(t[0], NULL));
	check("tsd-destructor-repeat", again_calls == 2,
	      "a destructor that sets its key again must be called again: expected 2 calls, got %d",
	      (int)again_calls);

	MUST(pthread_key_create(&k_self, self_dtor));
	MUST(pthread_create(&t[0], NULL, sem_tsd_self, NULL));
	MUST(pthread_join(t[0], NULL));
	check("tsd-destructor-self", dtor_self_runs == 1 && pthread_equal(dtor_saw_self, t[0]),
	      "expected the destructor to run once, in the thread (pthread_self() == its handle); "
	      "got %d runs, self==handle %d", dtor_self_runs,
	      pthread_equal(dtor_saw_self, t[0]) != 0);
	pthread_key_delete(k_self);

	main_kept = pthread_getspecific(k_plain) == (void *)0x1 &&
		    pthread_getspecific(k_dtor) == (void *)0x2;
	check("tsd-main-kept", main_kept, "main's own values changed: %p %p",
	      pthread_getspecific(k_plain), pthread_getspecific(k_dtor));
	pthread_setspecific(k_dtor, NULL);
}

/* A thread that creates a child and joins it at once (a pool may run a
 * child that has not started on its joiner's stack): the child has its
 * own identity, TSD, cancellation state, and its pthread_exit ends only
 * the child. */
static pthread_key_t k_nest;

struct nestrec {
	pthread_t child_handle, child_self;
	void *child_tsd_at_start;
	int child_cancel_state;
	int child_cleanup_runs;
	void *joined;
	void *parent_tsd_after;
	int parent_cancel_state_after;
	int parent_reached_end;
};

static void nest_cleanup(void *arg)
{
	((struct nestrec *)arg)->child_cleanup_runs++;
}

static void nest_deep_exit(struct nestrec *r, int depth)
{
	if (depth > 1000)
		return;
	if (depth == 5)
		exit_fn((void *)0xb0);
	nest_deep_exit(r, depth + 1);
	r->child_cleanup_runs += 100;   /* never */
}

void *sem_nest_child(void *arg);
void *sem_nest_child(void *arg)
{
	struct nestrec *r = arg;
	int st;

	r->child_self = pthread_self();
	r->child_tsd_at_start = pthread_getspecific(k_nest);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &st);
	r->child_cancel_state = st;
	MUST(pthread_setspecific(k_nest, (void *)0xb));
	pthread_cleanup_push(nest_cleanup, r);
	nest_deep_exit(r, 0);
	pthread_cleanup_pop(0);
	return NULL;
}

void *sem_nest_parent(void *arg);
void *sem_nest_parent(void *arg)
{
	struct nestrec *r = arg;
	int st;

	MUST(pthread_setspecific(k_nest, (void *)0xa));
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &st);
	MUST(pthread_create(&r->child_handle, NULL, sem_nest_child, r));
	MUST(pthread_join(r->child_handle, &r->joined));
	r->parent_tsd_after = pthread_getspecific(k_nest);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &st);
	r->parent_cancel_state_after = st;
	r->parent_reached_end = 1;
	return (void *)0xa0;
}

static void check_nested_join(void)
{
	struct nestrec r[20];
	pthread_t t[20];
	void *v;
	int bad_self = 0, bad_tsd = 0, bad_cancel = 0, bad_exit = 0, bad_parent = 0;

	MUST(pthread_key_create(&k_nest, NULL));
	memset(r, 0, sizeof r);
	for (int i = 0; i < 20; i++)
		MUST(pthread_create(&t[i], NULL, sem_nest_parent, &r[i]));
	for (int i = 0; i < 20; i++) {
		MUST(pthread_join(t[i], &v));
		bad_self += !pthread_equal(r[i].child_self, r[i].child_handle);
		bad_tsd += r[i].child_tsd_at_start != NULL;
		bad_cancel += r[i].child_cancel_state != PTHREAD_CANCEL_ENABLE;
		bad_exit += r[i].joined != (void *)0xb0 || r[i].child_cleanup_runs != 1;
		bad_parent += v != (void *)0xa0 || !r[i].parent_reached_end ||
			      r[i].parent_tsd_after != (void *)0xa ||
			      r[i].parent_cancel_state_after != PTHREAD_CANCEL_DISABLE;
	}
	pthread_key_delete(k_nest);
	check("nested-join", !bad_self && !bad_tsd && !bad_cancel && !bad_exit && !bad_parent,
	      "20 threads each creating and at once joining a child that pthread_exits from "
	      "depth: of 20, child self!=handle %d, child saw parent's TSD %d, child started "
	      "with cancellation disabled %d, wrong exit value or cleanup %d, parent state "
	      "disturbed %d", bad_self, bad_tsd, bad_cancel, bad_exit, bad_parent);
}

/* ------------------------------------------------------------------ */
/* pthread_once                                                        */

static pthread_once_t once_ctl = PTHREAD_ONCE_INIT;
static atomic_int once_runs;
static atomic_int once_seen_bad;

static void once_init(void)
{
	sleep_ms(20);   /* the others must wait, blocked, for this to finish */
	atomic_fetch_add(&once_runs, 1);
}

void *sem_once_body(void *arg);
void *sem_once_body(void *arg)
{
	MUST(pthread_once(&once_ctl, once_init));
	if (atomic_load(&once_runs) != 1)
		atomic_fetch_add(&once_seen_bad, 1);
	return NULL;
}

static void check_once(void)
{
	pthread_t t[16];

	for (int i = 0; i < 16; i++)
		MUST(pthread_create(&t[i], NULL, sem_once_body, NULL));
	for (int i = 0; i < 16; i++)
		MUST(pthread_join(t[i], NULL));
	check("once", once_runs == 1 && once_seen_bad == 0,
	      "16 threads: expected the init routine once and every caller to return after it; "
	      "got %d runs, %d callers returned early", (int)once_runs, (int)once_seen_bad);
}

/* ------------------------------------------------------------------ */
/* pthread_kill                                                        */

static volatile sig_atomic_t usr1_hits;
static pthread_t usr1_self;

static void usr1_handler(int sig)
{
	usr1_self = pthread_self();
	usr1_hits++;
}

struct killrec {
	sem_t started;
	atomic_int stop;
	int read_rc, read_errno;
	int fd;
};

void *sem_kill_spin(void *arg);
void *sem_kill_spin(void *arg)
{
	struct killrec *k = arg;

	MUST(sem_post(&k->started));
	while (!usr1_hits)
		sleep_ms(1);
	return NULL;
}

void *sem_kill_read(void *arg);
void *sem_kill_read(void *arg)
{
	struct killrec *k = arg;
	char c;

	MUST(sem_post(&k->started));
	k->read_rc = (int)read(k->fd, &c, 1);
	k->read_errno = errno;
	atomic_store(&k->stop, 1);
	return NULL;
}

static void check_kill(void)
{
	struct sigaction sa;
	struct killrec k;
	pthread_t t;
	int rc0, rc1, fds[2];

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;   /* no SA_RESTART: a blocked read fails with EINTR */
	MUST(sigaction(SIGUSR1, &sa, NULL));

	memset(&k, 0, sizeof k);
	MUST(sem_init(&k.started, 0, 0));
	usr1_hits = 0;
	MUST(pthread_create(&t, NULL, sem_kill_spin, &k));
	xsem_wait(&k.started);
	rc0 = pthread_kill(t, 0);
	rc1 = pthread_kill(t, SIGUSR1);
	MUST(pthread_join(t, NULL));
	check("kill-running", rc0 == 0 && rc1 == 0 && usr1_hits == 1 && pthread_equal(usr1_self, t),
	      "expected pthread_kill 0 and 0, one handler run on the target thread; got %d, %d, "
	      "%d runs, on the target %d", rc0, rc1, (int)usr1_hits, pthread_equal(usr1_self, t) != 0);

	MUST(pipe(fds));
	k.fd = fds[0];
	atomic_store(&k.stop, 0);
	usr1_hits = 0;
	MUST(pthread_create(&t, NULL, sem_kill_read, &k));
	xsem_wait(&k.started);
	/* The thread may not have entered read() yet: signal until it leaves. */
	while (!atomic_load(&k.stop)) {
		rc1 = pthread_kill(t, SIGUSR1);
		if (rc1 != 0)
			break;
		sleep_ms(5);
	}
	MUST(pthread_join(t, NULL));
	check("kill-interrupts-read", rc1 == 0 && k.read_rc == -1 && k.read_errno == EINTR,
	      "expected the blocked read() to fail with EINTR; got pthread_kill %d, read %d errno %d",
	      rc1, k.read_rc, k.read_errno);
	close(fds[0]);
	close(fds[1]);
	sem_destroy(&k.started);
	signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------ */
/* names                                                               */

struct namerec {
	sem_t step1, step2, done;
	int set_rc;
	char own[32], after[32];
	int long_rc, small_rc;
};

void *sem_name_body(void *arg);
void *sem_name_body(void *arg)
{
	struct namerec *n = arg;
	char small[4];

	n->set_rc = pthread_setname_np(pthread_self(), "ss-self");
	pthread_getname_np(pthread_self(), n->own, sizeof n->own);
	n->long_rc = pthread_setname_np(pthread_self(), "a-name-far-too-long-for-linux");
	n->small_rc = pthread_getname_np(pthread_self(), small, sizeof small);
	MUST(sem_post(&n->step1));
	xsem_wait(&n->step2);
	pthread_getname_np(pthread_self(), n->after, sizeof n->after);
	MUST(sem_post(&n->done));
	return NULL;
}

struct earlyname {
	sem_t go;
	char name[32];
};

void *sem_early_name(void *arg);
void *sem_early_name(void *arg)
{
	struct earlyname *e = arg;

	xsem_wait(&e->go);
	pthread_getname_np(pthread_self(), e->name, sizeof e->name);
	return NULL;
}

static void check_names_early(void)
{
	struct earlyname e[10];
	pthread_t t[10];
	pthread_attr_t a;
	char buf[32];
	int set_bad = 0, name_bad = 0, attr_bad = 0;

	for (int i = 0; i < 10; i++) {
		MUST(sem_init(&e[i].go, 0, 0));
		MUST(pthread_create(&t[i], NULL, sem_early_name, &e[i]));
		snprintf(buf, sizeof buf, "early-%d", i);
		set_bad += pthread_setname_np(t[i], buf) != 0;
		if (pthread_getattr_np(t[i], &a) == 0) {
			int st = -1;

			pthread_attr_getdetachstate(&a, &st);
			attr_bad += st != PTHREAD_CREATE_JOINABLE;
			pthread_attr_destroy(&a);
		} else {
			attr_bad++;
		}
	}
	for (int i = 0; i < 10; i++) {
		MUST(sem_post(&e[i].go));
		MUST(pthread_join(t[i], NULL));
		snprintf(buf, sizeof buf, "early-%d", i);
		name_bad += strcmp(e[i].name, buf) != 0;
		sem_destroy(&e[i].go);
	}
	check("setname-just-created", set_bad == 0 && name_bad == 0,
	      "naming 10 threads right after pthread_create: %d setname calls failed, %d threads "
	      "did not see their name", set_bad, name_bad);
	check("getattr-just-created", attr_bad == 0,
	      "pthread_getattr_np right after pthread_create: %d of 10 failed or not JOINABLE",
	      attr_bad);
}

static void check_names(void)
{
	struct namerec n;
	pthread_t t;
	char seen[32] = "", seen2[32] = "";
	int rc_get, rc_set;

	memset(&n, 0, sizeof n);
	MUST(sem_init(&n.step1, 0, 0));
	MUST(sem_init(&n.step2, 0, 0));
	MUST(sem_init(&n.done, 0, 0));
	MUST(pthread_create(&t, NULL, sem_name_body, &n));
	xsem_wait(&n.step1);
	rc_get = pthread_getname_np(t, seen, sizeof seen);
	rc_set = pthread_setname_np(t, "ss-by-main");
	pthread_getname_np(t, seen2, sizeof seen2);
	MUST(sem_post(&n.step2));
	xsem_wait(&n.done);
	MUST(pthread_join(t, NULL));
	check("setname-self", n.set_rc == 0 && strcmp(n.own, "ss-self") == 0,
	      "expected 0 and \"ss-self\", got %d and \"%s\"", n.set_rc, n.own);
	check("setname-errors", n.long_rc == ERANGE && n.small_rc == ERANGE,
	      "expected ERANGE (%d) for a 29-char name and a 4-byte buffer, got %d and %d",
	      ERANGE, n.long_rc, n.small_rc);
	check("getname-other", rc_get == 0 && strcmp(seen, "ss-self") == 0,
	      "main reading the running thread's name: expected 0 \"ss-self\", got %d \"%s\"",
	      rc_get, seen);
	check("setname-other", rc_set == 0 && strcmp(seen2, "ss-by-main") == 0 &&
		      strcmp(n.after, "ss-by-main") == 0,
	      "main naming the running thread: expected 0, then \"ss-by-main\" seen by main and by "
	      "the thread; got %d, \"%s\", \"%s\"", rc_set, seen2, n.after);
	sem_destroy(&n.step1);
	sem_destroy(&n.step2);
	sem_destroy(&n.done);
	check_names_early();
}

/* ------------------------------------------------------------------ */
/* pthread_getattr_np                                                  */

struct attrrec {
	sem_t started, go;
	uintptr_t local;
	int ok_inside;
	size_t size_inside;
	int state_inside;
	int in_range_inside;
};

static int in_stack(pthread_attr_t *a, uintptr_t p, size_t *size)
{
	void *addr;
	size_t sz;

	if (pthread_attr_getstack(a, &addr, &sz) != 0)
		return 0;
	if (size)
		*size = sz;
	return p >= (uintptr_t)addr && p < (uintptr_t)addr + sz;
}

void *sem_attr_body(void *arg);
void *sem_attr_body(void *arg)
{
	struct attrrec *r = arg;
	volatile int local = 1;
	pthread_attr_t a;

	r->local = (uintptr_t)&local;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		r->ok_inside = 1;
		r->in_range_inside = in_stack(&a, (uintptr_t)&local, &r->size_inside);
		pthread_attr_getdetachstate(&a, &r->state_inside);
		pthread_attr_destroy(&a);
	}
	MUST(sem_post(&r->started));
	xsem_wait(&r->go);
	return (void *)(intptr_t)local;
}

static void check_getattr(void)
{
	struct attrrec r;
	pthread_attr_t req, got;
	pthread_t t;
	int rc, in_range = 0, state = -1;
	size_t size = 0;

	memset(&r, 0, sizeof r);
	MUST(sem_init(&r.started, 0, 0));
	MUST(sem_init(&r.go, 0, 0));
	MUST(pthread_attr_init(&req));
	MUST(pthread_attr_setstacksize(&req, 512 * 1024));
	MUST(pthread_create(&t, &req, sem_attr_body, &r));
	pthread_attr_destroy(&req);
	xsem_wait(&r.started);
	rc = pthread_getattr_np(t, &got);
	if (rc == 0) {
		in_range = in_stack(&got, r.local, &size);
		pthread_attr_getdetachstate(&got, &state);
		pthread_attr_destroy(&got);
	}
	MUST(sem_post(&r.go));
	MUST(pthread_join(t, NULL));
	check("getattr-self",
	      r.ok_inside && r.in_range_inside && r.size_inside >= 512 * 1024 &&
		      r.state_inside == PTHREAD_CREATE_JOINABLE,
	      "inside: expected the stack to hold a local, size >= 512 KiB, JOINABLE; got ok %d, "
	      "holds %d, size %zu, state %d",
	      r.ok_inside, r.in_range_inside, r.size_inside, r.state_inside);
	check("getattr-other",
	      rc == 0 && in_range && size >= 512 * 1024 && state == PTHREAD_CREATE_JOINABLE,
	      "from main: expected 0, a stack holding the thread's local, size >= 512 KiB, "
	      "JOINABLE; got %d, holds %d, size %zu, state %d", rc, in_range, size, state);
	sem_destroy(&r.started);
	sem_destroy(&r.go);
}

/* ------------------------------------------------------------------ */
/* cancellation                                                        */

struct cancelrec {
	sem_t started, hold;
	pthread_mutex_t m;
	pthread_cond_t c;
	int fd;
	int cleanup_runs;
	int passed;
	int mutex_held_in_cleanup;
	int mode;
};

static void cancel_cleanup(void *arg)
{
	struct cancelrec *r = arg;

	r->cleanup_runs++;
	if (r->mode == 3) {
		/* cond_wait reacquired the mutex before acting on the cancel */
		r->mutex_held_in_cleanup = pthread_mutex_trylock(&r->m) == EBUSY;
		pthread_mutex_unlock(&r->m);
	}
}

void *sem_cancel_blocked(void *arg);
void *sem_cancel_blocked(void *arg)
{
	struct cancelrec *r = arg;
	struct timespec ts = { 3600, 0 };
	char c;

	pthread_cleanup_push(cancel_cleanup, r);
	switch (r->mode) {
	case 0:
		MUST(sem_post(&r->started));
		sem_wait(&r->hold);
		break;
	case 1:
		MUST(sem_post(&r->started));
		(void)!read(r->fd, &c, 1);
		break;
	case 2:
		MUST(sem_post(&r->started));
		nanosleep(&ts, NULL);
		break;
	case 3:
		pthread_mutex_lock(&r->m);
		MUST(sem_post(&r->started));
		for (;;)
			pthread_cond_wait(&r->c, &r->m);
		break;
	}
	r->passed = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

static pthread_key_t k_cancel;
static atomic_int cancel_dtor_runs;

static void cancel_dtor(void *v)
{
	if (v == (void *)0xc1)
		atomic_fetch_add(&cancel_dtor_runs, 1);
}

void *sem_cancel_with_tsd(void *arg);
void *sem_cancel_with_tsd(void *arg)
{
	struct cancelrec *r = arg;

	MUST(pthread_setspecific(k_cancel, (void *)0xc1));
	MUST(sem_post(&r->started));
	sem_wait(&r->hold);
	r->passed = 1;
	return NULL;
}

void *sem_cancel_disabled(void *arg);
void *sem_cancel_disabled(void *arg)
{
	struct cancelrec *r = arg;
	int old;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	pthread_cleanup_push(cancel_cleanup, r);
	MUST(sem_post(&r->started));
	xsem_wait(&r->hold);    /* not a cancellation point while disabled */
	r->passed = 1;
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	pthread_testcancel();
	r->passed = 2;
	pthread_cleanup_pop(0);
	return NULL;
}

void *sem_cancel_self(void *arg);
void *sem_cancel_self(void *arg)
{
	struct cancelrec *r = arg;

	pthread_cleanup_push(cancel_cleanup, r);
	pthread_cancel(pthread_self());
	r->passed = 1;          /* pthread_cancel is not a cancellation point */
	pthread_testcancel();
	r->passed = 2;
	pthread_cleanup_pop(0);
	return NULL;
}

void *sem_cancel_early(void *arg);
void *sem_cancel_early(void *arg)
{
	struct cancelrec *r = arg;

	pthread_cleanup_push(cancel_cleanup, r);
	xsem_wait(&r->hold);    /* never posted: a cancellation point */
	r->passed = 1;
	pthread_cleanup_pop(0);
	return NULL;
}

void *sem_cancel_state_probe(void *arg);
void *sem_cancel_state_probe(void *arg)
{
	int *bad = arg, state, type;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &type);
	pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
	if (state != PTHREAD_CANCEL_ENABLE || type != PTHREAD_CANCEL_DEFERRED)
		(*bad)++;
	/* returns with cancellation disabled */
	return NULL;
}

static void check_cancel(void)
{
	static const char *const names[] = { "cancel-blocked-sem", "cancel-blocked-read",
					     "cancel-blocked-nanosleep",
					     "cancel-blocked-condwait" };
	struct cancelrec r;
	pthread_t t;
	void *v;
	int fds[2], canceled = 0, bad = 0;

	MUST(pipe(fds));
	for (int mode = 0; mode < 4; mode++) {
		memset(&r, 0, sizeof r);
		MUST(sem_init(&r.started, 0, 0));
		MUST(sem_init(&r.hold, 0, 0));
		MUST(pthread_mutex_init(&r.m, NULL));
		MUST(pthread_cond_init(&r.c, NULL));
		r.fd = fds[0];
		r.mode = mode;
		v = NULL;
		MUST(pthread_create(&t, NULL, sem_cancel_blocked, &r));
		xsem_wait(&r.started);
		MUST(pthread_cancel(t));
		MUST(pthread_join(t, &v));
		if (mode == 3)
			check(names[mode],
			      v == PTHREAD_CANCELED && r.cleanup_runs == 1 && !r.passed &&
				      r.mutex_held_in_cleanup,
			      "expected PTHREAD_CANCELED, the cleanup handler once with the mutex "
			      "held; got %p, %d runs, passed %d, held %d",
			      v, r.cleanup_runs, r.passed, r.mutex_held_in_cleanup);
		else
			check(names[mode], v == PTHREAD_CANCELED && r.cleanup_runs == 1 && !r.passed,
			      "expected PTHREAD_CANCELED and the cleanup handler once; got %p, "
			      "%d runs, passed %d", v, r.cleanup_runs, r.passed);
		pthread_cond_destroy(&r.c);
		pthread_mutex_destroy(&r.m);
		sem_destroy(&r.started);
		sem_destroy(&r.hold);
	}
	close(fds[0]);
	close(fds[1]);

	memset(&r, 0, sizeof r);
	MUST(sem_init(&r.started, 0, 0));
	MUST(sem_init(&r.hold, 0, 0));
	MUST(pthread_key_create(&k_cancel, cancel_dtor));
	MUST(pthread_create(&t, NULL, sem_cancel_with_tsd, &r));
	xsem_wait(&r.started);
	MUST(pthread_cancel(t));
	MUST(pthread_join(t, &v));
	check("cancel-tsd-destructor", v == PTHREAD_CANCELED && !r.passed && cancel_dtor_runs == 1,
	      "expected PTHREAD_CANCELED and the key destructor once before join returned; got "
	      "canceled %d, passed %d, %d destructor runs", v == PTHREAD_CANCELED, r.passed,
	      (int)cancel_dtor_runs);
	pthread_key_delete(k_cancel);
	sem_destroy(&r.started);
	sem_destroy(&r.hold);

	memset(&r, 0, sizeof r);
	MUST(sem_init(&r.started, 0, 0));
	MUST(sem_init(&r.hold, 0, 0));
	MUST(pthread_create(&t, NULL, sem_cancel_disabled, &r));
	xsem_wait(&r.started);
	MUST(pthread_cancel(t));
	MUST(sem_post(&r.hold));
	MUST(pthread_join(t, &v));
	check("cancel-disabled", v == PTHREAD_CANCELED && r.passed == 1 && r.cleanup_runs == 1,
	      "expected the wait to finish while disabled, then cancellation at testcancel; "
	      "got %p, passed %d, %d cleanup runs", v, r.passed, r.cleanup_runs);

	memset(&r, 0, sizeof r);
	MUST(pthread_create(&t, NULL, sem_cancel_self, &r));
	MUST(pthread_join(t, &v));
	check("cancel-self", v == PTHREAD_CANCELED && r.passed == 1 && r.cleanup_runs == 1,
	      "expected pthread_cancel(self) to act at testcancel; got %p, passed %d, %d runs",
	      v, r.passed, r.cleanup_runs);

	/* Cancel right after create: whether it had started or not, it must
	 * end canceled (if it had not started, it must never run). */
	for (int i = 0; i < 50; i++) {
		memset(&r, 0, sizeof r);
		MUST(sem_init(&r.hold, 0, 0));
		MUST(pthread_create(&t, NULL, sem_cancel_early, &r));
		MUST(pthread_cancel(t));
		MUST(pthread_join(t, &v));
		canceled += v == PTHREAD_CANCELED && r.passed == 0;
		sem_destroy(&r.hold);
	}
	check("cancel-at-once", canceled == 50,
	      "50 threads canceled right after create: expected all to join as PTHREAD_CANCELED "
	      "without passing their cancellation point; %d did", canceled);

	for (int i = 0; i < 30; i++) {
		MUST(pthread_create(&t, NULL, sem_cancel_state_probe, &bad));
		MUST(pthread_join(t, NULL));
	}
	check("cancel-state-fresh", bad == 0,
	      "30 threads, each leaving cancellation disabled and asynchronous: expected each to "
	      "start ENABLE/DEFERRED; %d did not", bad);
}

/* ------------------------------------------------------------------ */
/* many short threads                                                  */

static void check_many(void)
{
	pthread_t t[50];
	uintptr_t sum = 0, want = 0;
	void *v;

	for (int round = 0; round < 40; round++) {
		for (uintptr_t i = 0; i < 50; i++)
			MUST(pthread_create(&t[i], NULL, sem_plus_one, (void *)(round * 50 + i)));
		for (int i = 0; i < 50; i++) {
			MUST(pthread_join(t[i], &v));
			sum += (uintptr_t)v;
		}
	}
	for (uintptr_t i = 0; i < 2000; i++)
		want += i + 1;
	check("many-short-threads", sum == want, "2000 threads: expected sum %lu, got %lu",
	      (unsigned long)want, (unsigned long)sum);
}

/* ------------------------------------------------------------------ */
/* realattrs: attributes that keep a thread real                       */

struct realrec {
	int policy;
	int one_cpu;
	uintptr_t lo, hi;
	int in_stack;
	size_t getattr_size;
	int big_ok;
	int self_ok;
	pthread_t *handle;
	sem_t ready;
};

void *sem_real_sched(void *arg);
void *sem_real_sched(void *arg)
{
	struct realrec *r = arg;
	struct sched_param sp;

	r->policy = -1;
	pthread_getschedparam(pthread_self(), &r->policy, &sp);
	return NULL;
}

void *sem_real_affinity(void *arg);
void *sem_real_affinity(void *arg)
{
	struct realrec *r = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		r->one_cpu = CPU_COUNT(&set) == 1 ? 1 : -CPU_COUNT(&set);
	return NULL;
}

void *sem_real_stack(void *arg);
void *sem_real_stack(void *arg)
{
	struct realrec *r = arg;
	volatile int local = 0;

	r->in_stack = (uintptr_t)&local >= r->lo && (uintptr_t)&local < r->hi;
	return (void *)(intptr_t)local;
}

void *sem_real_bigstack(void *arg);
void *sem_real_bigstack(void *arg)
{
	struct realrec *r = arg;
	pthread_attr_t a;
	size_t n = 40u << 20;        /* 40 MiB of stack, touched page by page */
	volatile char *p = alloca(n);

	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)i;
	r->big_ok = p[4096] == (char)4096;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		in_stack(&a, (uintptr_t)p, &r->getattr_size);
		pthread_attr_destroy(&a);
	}
	return NULL;
}

static void check_realattrs(void)
{
	pthread_attr_t a;
	pthread_t t;
	struct realrec r;
	struct sched_param sp = { .sched_priority = 0 };
	cpu_set_t mine, one;
	void *stack;
	size_t stack_size = 1u << 20;
	int cpu = -1;

	/* SCHED_FIFO where we may (root), else an explicit SCHED_OTHER */
	memset(&r, 0, sizeof r);
	for (int k = 0; k < 2; k++) {
		int policy = k == 0 ? SCHED_FIFO : SCHED_OTHER, rc;

		sp.sched_priority = k == 0 ? 1 : 0;
		MUST(pthread_attr_init(&a));
		MUST(pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED));
		MUST(pthread_attr_setschedpolicy(&a, policy));
		MUST(pthread_attr_setschedparam(&a, &sp));
		rc = pthread_create(&t, &a, sem_real_sched, &r);
		pthread_attr_destroy(&a);
		if (rc == EPERM && k == 0)
			continue;
		if (rc != 0)
			die("pthread_create (explicit scheduling)", rc);
		MUST(pthread_join(t, NULL));
		check("real-explicit-sched", r.policy == policy,
		      "expected the thread to run under the policy asked for (%d), got %d",
		      policy, r.policy);
		break;
	}

	CPU_ZERO(&mine);
	MUST(sched_getaffinity(0, sizeof mine, &mine));
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &mine)) {
			cpu = i;
			break;
		}
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setaffinity_np(&a, sizeof one, &one));
	MUST(pthread_create(&t, &a, sem_real_affinity, &r));
	MUST(pthread_join(t, NULL));
	pthread_attr_destroy(&a);
	check("real-affinity", r.one_cpu == 1,
	      "expected the thread's affinity to be the one CPU asked for, got %d CPUs",
	      r.one_cpu < 0 ? -r.one_cpu : r.one_cpu);

	stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED)
		die("mmap", errno);
	r.lo = (uintptr_t)stack;
	r.hi = r.lo + stack_size;
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setstack(&a, stack, stack_size));
	MUST(pthread_create(&t, &a, sem_real_stack, &r));
	MUST(pthread_join(t, NULL));
	pthread_attr_destroy(&a);
	munmap(stack, stack_size);
	check("real-own-stack", r.in_stack == 1,
	      "expected the thread to run on the stack given with pthread_attr_setstack");

	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setstacksize(&a, 64u << 20));
	MUST(pthread_create(&t, &a, sem_real_bigstack, &r));
	MUST(pthread_join(t, NULL));
	pthread_attr_destroy(&a);
	check("real-big-stack", r.big_ok && r.getattr_size >= (64u << 20),
	      "expected a 64 MiB stack (40 MiB used, getattr_np size >= 64 MiB); used %d, size %zu",
	      r.big_ok, r.getattr_size);
}

/* ------------------------------------------------------------------ */
/* routeattrs: attributes the pool can honour                          */

void *sem_small_stack(void *arg);
void *sem_small_stack(void *arg)
{
	volatile char buf[8192];

	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)i;
	return (void *)(uintptr_t)(buf[100] == 100);
}

static void check_routeattrs(void)
{
	pthread_attr_t a;
	pthread_t t;
	void *v = NULL;
	struct detrec d;

	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setstacksize(&a, 128 * 1024));
	MUST(pthread_create(&t, &a, sem_small_stack, NULL));
	MUST(pthread_join(t, &v));
	pthread_attr_destroy(&a);
	check("route-small-stack", v == (void *)1, "expected 1, got %p", v);

	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setguardsize(&a, 64 * 1024));
	MUST(pthread_create(&t, &a, sem_small_stack, NULL));
	MUST(pthread_join(t, &v));
	pthread_attr_destroy(&a);
	check("route-guard-size", v == (void *)1, "expected 1, got %p", v);

	memset(&d, 0, sizeof d);
	MUST(sem_init(&d.go, 0, 1));
	MUST(sem_init(&d.done, 0, 0));
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED));
	MUST(pthread_create(&t, &a, sem_detached_body, &d));
	pthread_attr_destroy(&a);
	xsem_wait(&d.done);
	check("route-detached", d.detachstate == PTHREAD_CREATE_DETACHED,
	      "expected DETACHED, got %d", d.detachstate);
	sleep_ms(20);
}

/* ------------------------------------------------------------------ */
/* names: start routines for SMOLSCALE_PTHREAD_ONLY / _SKIP             */

void *ssx_alpha_start(void *arg);
void *ssx_beta_start(void *arg);
void *ssx_gamma_start(void *arg);

void *ssx_alpha_start(void *arg)
{
	return (void *)((uintptr_t)arg * 3);
}

void *ssx_beta_start(void *arg)
{
	return (void *)((uintptr_t)arg * 5);
}

void *ssx_gamma_start(void *arg)
{
	return (void *)((uintptr_t)arg * 7);
}

static void check_routine_names(void)
{
	void *(*fn[7])(void *) = { ssx_alpha_start, ssx_beta_start, ssx_beta_start,
				   ssx_gamma_start, ssx_gamma_start, ssx_gamma_start,
				   ssx_gamma_start };
	pthread_t t[7];
	uintptr_t sum = 0;
	void *v;

	for (int i = 0; i < 7; i++)
		MUST(pthread_create(&t[i], NULL, fn[i], (void *)1));
	for (int i = 0; i < 7; i++) {
		MUST(pthread_join(t[i], &v));
		sum += (uintptr_t)v;
	}
	check("names-7-threads", sum == 3 + 10 + 28, "expected 41, got %lu", (unsigned long)sum);
}

/* ------------------------------------------------------------------ */
/* unstarted: canceled before it started, a thread never runs.
 * run.sh runs this with SMOLSCALE_THREADS=1 SMOLSCALE_STALL_MS=60000, so
 * that under the shim the one worker is busy with the spinner and nothing
 * hands the victims to another worker until the spinner is released.
 * Natively the victims may or may not have started when canceled (if they
 * had, they are canceled at a wait that nothing ends), so only "joins as
 * PTHREAD_CANCELED" is checked; under the shim (detected from the
 * environment) none of them may have run at all. */

static atomic_int spinner_started, spinner_release, victims_ran;
static sem_t never_posted;

void *sem_spinner(void *arg);
void *sem_spinner(void *arg)
{
	atomic_store(&spinner_started, 1);
	while (!atomic_load(&spinner_release))
		;
	return NULL;
}

void *sem_victim(void *arg);
void *sem_victim(void *arg)
{
	atomic_fetch_add(&victims_ran, 1);   /* before any cancellation point */
	sem_wait(&never_posted);             /* a cancellation point */
	return (void *)1;
}

static void check_unstarted(void)
{
	enum { NV = 20 };
	pthread_t spinner, v[NV];
	int canceled = 0;
	void *ret;

	MUST(sem_init(&never_posted, 0, 0));
	MUST(pthread_create(&spinner, NULL, sem_spinner, NULL));
	while (!atomic_load(&spinner_started))
		sleep_ms(1);
	for (int i = 0; i < NV; i++) {
		MUST(pthread_create(&v[i], NULL, sem_victim, NULL));
		MUST(pthread_cancel(v[i]));
	}
	atomic_store(&spinner_release, 1);
	MUST(pthread_join(spinner, NULL));
	for (int i = 0; i < NV; i++) {
		MUST(pthread_join(v[i], &ret));
		canceled += ret == PTHREAD_CANCELED;
	}
	/* Rerouted or not, a thread cancelled before it started runs up to
	 * its first cancellation point and acts on the cancel there, as
	 * glibc's threads do (Open POSIX pthread_join/3-1 counts on its
	 * cleanup handlers running). */
	check("cancel-unstarted", canceled == NV,
	      "20 threads canceled right after create (started or not, they block at a "
	      "cancellation point): expected all PTHREAD_CANCELED, got %d", canceled);
}

/* stackdefault: a thread created with default attributes gets the default
 * stack size, which follows RLIMIT_STACK (run.sh runs this group under
 * ulimit -s 65536) or pthread_setattr_default_np. */

void *sem_use_40mib(void *arg);
void *sem_use_40mib(void *arg)
{
	size_t n = 40u << 20;
	volatile char *p = alloca(n);

	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)i;
	return (void *)(uintptr_t)(p[4096] == (char)4096);
}

static void use_40mib(const char *name)
{
	pthread_t t;
	void *v = NULL;

	MUST(pthread_create(&t, NULL, sem_use_40mib, NULL));
	MUST(pthread_join(t, &v));
	check(name, v == (void *)1, "expected the thread to use 40 MiB of its stack");
}

static void check_stack_rlimit(void)
{
	struct rlimit rl;
	pthread_attr_t a;
	size_t def = 0;

	if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur < (64u << 20)) {
		check("stack-default-rlimit", 0, "run this group under ulimit -s 65536 or more");
		return;
	}
	if (pthread_getattr_default_np(&a) == 0) {
		pthread_attr_getstacksize(&a, &def);
		pthread_attr_destroy(&a);
	}
	/* the pool is up before the thread that needs the big stack */
	check_create_join();
	if (def < (64u << 20)) {
		check("stack-default-rlimit", 0, "default stack %zu under ulimit -s 65536", def);
		return;
	}
	use_40mib("stack-default-rlimit");
}

static void check_stack_setdefault(void)
{
	pthread_attr_t a;

	/* the pool is up before the default changes */
	check_create_join();
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setstacksize(&a, 64u << 20));
	MUST(pthread_setattr_default_np(&a));
	pthread_attr_destroy(&a);
	use_40mib("stack-default-setattr");
}

/* ------------------------------------------------------------------ */
/* extra: POSIX thread semantics the contract does not list            */

static __thread int tls_zero;
static __thread int tls_init = 42;

void *sem_tls_body(void *arg);
void *sem_tls_body(void *arg)
{
	int *bad = arg;

	if (tls_zero != 0 || tls_init != 42)
		(*bad)++;
	tls_zero = 7;
	tls_init = 8;
	return NULL;
}

void *sem_mask_body(void *arg);
void *sem_mask_body(void *arg)
{
	sigset_t cur, add;

	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	/* leave something behind for whoever runs next on this thread */
	sigemptyset(&add);
	sigaddset(&add, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &add, NULL);
	return (void *)(uintptr_t)((sigismember(&cur, SIGUSR2) ? 1 : 0) |
				   (sigismember(&cur, SIGWINCH) ? 2 : 0));
}

void *sem_name_probe(void *arg);
void *sem_name_probe(void *arg)
{
	char *out = arg;

	pthread_getname_np(pthread_self(), out, 16);
	pthread_setname_np(pthread_self(), "left-behind");
	return NULL;
}

void *sem_wait_for_usr1(void *arg);
void *sem_wait_for_usr1(void *arg)
{
	while (!usr1_hits)
		sleep_ms(1);
	return NULL;
}

void *sem_join_self(void *arg);
void *sem_join_self(void *arg)
{
	return (void *)(intptr_t)pthread_join(pthread_self(), NULL);
}

static void check_extra(void)
{
	pthread_t t;
	int bad = 0, blocked_seen = 0, unblocked_wrong = 0, leaked = 0;
	sigset_t s;
	void *v;
	char mainname[16] = "", seen[16], want[16];

	for (int i = 0; i < 20; i++) {
		MUST(pthread_create(&t, NULL, sem_tls_body, &bad));
		MUST(pthread_join(t, NULL));
	}
	check("extra-tls-fresh", bad == 0,
	      "20 threads one after another: expected each to start with its own __thread "
	      "variables at their initial values (0 and 42); %d saw an earlier thread's values",
	      bad);

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	MUST(pthread_sigmask(SIG_BLOCK, &s, NULL));
	for (int i = 0; i < 10; i++) {
		MUST(pthread_create(&t, NULL, sem_mask_body, NULL));
		MUST(pthread_join(t, &v));
		blocked_seen += ((uintptr_t)v & 1) != 0;
		leaked += ((uintptr_t)v & 2) != 0;
	}
	MUST(pthread_sigmask(SIG_UNBLOCK, &s, NULL));
	for (int i = 0; i < 10; i++) {
		MUST(pthread_create(&t, NULL, sem_mask_body, NULL));
		MUST(pthread_join(t, &v));
		unblocked_wrong += ((uintptr_t)v & 1) != 0;
		leaked += ((uintptr_t)v & 2) != 0;
	}
	check("extra-sigmask-inherited", blocked_seen == 10 && unblocked_wrong == 0 && leaked == 0,
	      "expected each thread to start with its creator's signal mask: SIGUSR2 blocked in "
	      "%d of 10 (want 10) created while main blocked it, in %d of 10 (want 0) created "
	      "after; SIGWINCH left blocked by an earlier thread seen %d times (want 0)",
	      blocked_seen, unblocked_wrong, leaked);

	prctl(PR_GET_NAME, mainname);
	strcpy(want, mainname);
	bad = 0;
	for (int i = 0; i < 10; i++) {
		memset(seen, 0, sizeof seen);
		MUST(pthread_create(&t, NULL, sem_name_probe, seen));
		MUST(pthread_join(t, NULL));
		if (strcmp(seen, want) != 0)
			bad++;
	}
	check("extra-name-inherited", bad == 0,
	      "expected a new thread to be named like its creator (\"%s\") even after an earlier "
	      "thread renamed itself; %d of 10 were not (last saw \"%s\")", mainname, bad, seen);

	{
		struct sigaction sa;
		int rc;

		memset(&sa, 0, sizeof sa);
		sa.sa_handler = usr1_handler;
		sigemptyset(&sa.sa_mask);
		MUST(sigaction(SIGUSR1, &sa, NULL));
		usr1_hits = 0;
		MUST(pthread_create(&t, NULL, sem_wait_for_usr1, NULL));
		rc = pthread_kill(t, SIGUSR1);
		MUST(pthread_join(t, NULL));
		check("extra-kill-just-created", rc == 0 && usr1_hits == 1 && pthread_equal(usr1_self, t),
		      "pthread_kill right after pthread_create: expected 0 and the handler to run once "
		      "in that thread; got %d, %d runs, in the thread %d", rc, (int)usr1_hits,
		      pthread_equal(usr1_self, t) != 0);
		signal(SIGUSR1, SIG_DFL);
	}

	MUST(pthread_create(&t, NULL, sem_join_self, NULL));
	MUST(pthread_join(t, &v));
	check("extra-join-self", (intptr_t)v == EDEADLK,
	      "expected pthread_join(pthread_self()) to fail with EDEADLK (%d), got %d",
	      EDEADLK, (int)(intptr_t)v);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} groups[] = {
		{ "core", NULL },
		{ "realattrs", check_realattrs },
		{ "routeattrs", check_routeattrs },
		{ "names", check_routine_names },
		{ "extra", check_extra },
		{ "unstarted", check_unstarted },
		{ "stackrlimit", check_stack_rlimit },
		{ "stacksetdefault", check_stack_setdefault },
	};
	static void (*const core[])(void) = {
		check_create_join, check_self,   check_equal, check_detach,
		check_nonblocking_joins, check_exit, check_tsd, check_once,
		check_kill,        check_names,  check_getattr, check_cancel,
		check_many,        check_nested_join,
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: semantics core|realattrs|routeattrs|names|extra|unstarted|"
				"stackrlimit|stacksetdefault...\n");
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		size_t g;

		for (g = 0; g < sizeof groups / sizeof groups[0]; g++)
			if (strcmp(argv[a], groups[g].name) == 0)
				break;
		if (g == sizeof groups / sizeof groups[0]) {
			fprintf(stderr, "semantics: no group %s\n", argv[a]);
			return 2;
		}
		if (groups[g].fn)
			groups[g].fn();
		else
			for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
				core[i]();
	}
	return failures ? 1 : 0;
}
