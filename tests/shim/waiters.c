/*
 * waiters.c - threads that wait on each other.  Under the shim each of
 * these needs the waiting threads to be running at the same time, so the
 * pool must grow past its CPUs while they block.
 *
 *   waiters all        every case below but "wide"
 *   waiters CASE...    barrier, bigbarrier, condvar, pipering, pingpong,
 *                      semchain, joinchain, rwlock, spin, wide
 *
 * "wide" is max(256, 4 x CPUs) + 8 threads on one barrier: more than the
 * pool's default cap on worker threads (SMOLSCALE_MAX_THREADS).
 * Deterministic output; exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fail(const char *what, int err)
{
	fprintf(stderr, "waiters: %s: %s\n", what, strerror(err));
	exit(2);
}

#define MUST(call)                                                     \
	do {                                                           \
		int must_rc_ = (call);                                 \
		if (must_rc_ != 0)                                     \
			fail(#call, must_rc_ > 0 ? must_rc_ : errno);  \
	} while (0)

static void xsem_wait(sem_t *s)
{
	while (sem_wait(s) != 0)
		if (errno != EINTR)
			fail("sem_wait", errno);
}

/* ------------------------------------------------------------------ */
/* barrier: 8 threads x 1000 rounds; each round every thread adds its
 * contribution to the round's slot, and after the next barrier thread 0
 * checks the slot. */

enum { BN = 8, BROUNDS = 1000 };
static pthread_barrier_t bar;
static atomic_long slot[BROUNDS];
static atomic_int bar_bad;

void *w_barrier(void *arg);
void *w_barrier(void *arg)
{
	long me = (long)(intptr_t)arg;

	for (int r = 0; r < BROUNDS; r++) {
		atomic_fetch_add(&slot[r], me + r);
		pthread_barrier_wait(&bar);
		if (atomic_load(&slot[r]) != (long)BN * r + BN * (BN - 1) / 2)
			atomic_fetch_add(&bar_bad, 1);
		pthread_barrier_wait(&bar);
	}
	return NULL;
}

static void case_barrier(void)
{
	pthread_t t[BN];

	MUST(pthread_barrier_init(&bar, NULL, BN));
	for (long i = 0; i < BN; i++)
		MUST(pthread_create(&t[i], NULL, w_barrier, (void *)(intptr_t)i));
	for (int i = 0; i < BN; i++)
		MUST(pthread_join(t[i], NULL));
	pthread_barrier_destroy(&bar);
	printf("barrier: %d threads x %d rounds, %d bad rounds\n", BN, BROUNDS, (int)bar_bad);
}

/* ------------------------------------------------------------------ */
/* one barrier for many threads: all of them must be waiting at once */

static pthread_barrier_t bigbar;
static atomic_int serial_seen;

void *w_bigbarrier(void *arg);
void *w_bigbarrier(void *arg)
{
	if (pthread_barrier_wait(&bigbar) == PTHREAD_BARRIER_SERIAL_THREAD)
		atomic_fetch_add(&serial_seen, 1);
	return NULL;
}

static void many_on_barrier(const char *label, int n)
{
	pthread_t *t = calloc((size_t)n, sizeof *t);
	pthread_attr_t a;

	serial_seen = 0;
	MUST(pthread_attr_init(&a));
	MUST(pthread_attr_setstacksize(&a, 256 * 1024));
	MUST(pthread_barrier_init(&bigbar, NULL, (unsigned)n));
	for (int i = 0; i < n; i++)
		MUST(pthread_create(&t[i], &a, w_bigbarrier, NULL));
	for (int i = 0; i < n; i++)
		MUST(pthread_join(t[i], NULL));
	pthread_barrier_destroy(&bigbar);
	pthread_attr_destroy(&a);
	free(t);
	printf("%s: %d threads passed one barrier, %d serial\n", label, n, (int)serial_seen);
}

static void case_bigbarrier(void)
{
	many_on_barrier("bigbarrier", 64);
}

static void case_wide(void)
{
	cpu_set_t set;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > cpus)
		cpus = CPU_COUNT(&set);
	many_on_barrier("wide", (int)(cpus * 4 > 256 ? cpus * 4 : 256) + 8);
}

/* ------------------------------------------------------------------ */
/* condvar bounded buffer: 3 producers, 3 consumers, capacity 4 */

enum { CAP = 4, ITEMS = 20000, NP = 3 };
static struct {
	pthread_mutex_t m;
	pthread_cond_t not_full, not_empty;
	long buf[CAP];
	int head, count, producers_left;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	{ 0 }, 0, 0, NP };

void *w_producer(void *arg);
void *w_producer(void *arg)
{
	long base = (long)(intptr_t)arg * ITEMS;

	for (long i = 1; i <= ITEMS; i++) {
		pthread_mutex_lock(&q.m);
		while (q.count == CAP)
			pthread_cond_wait(&q.not_full, &q.m);
		q.buf[(q.head + q.count) % CAP] = base + i;
		q.count++;
		pthread_cond_signal(&q.not_empty);
		pthread_mutex_unlock(&q.m);
	}
	pthread_mutex_lock(&q.m);
	if (--q.producers_left == 0)
		pthread_cond_broadcast(&q.not_empty);
	pthread_mutex_unlock(&q.m);
	return NULL;
}

void *w_consumer(void *arg);
void *w_consumer(void *arg)
{
	long *sum = arg, n = 0;

	for (;;) {
		pthread_mutex_lock(&q.m);
		while (q.count == 0 && q.producers_left > 0)
			pthread_cond_wait(&q.not_empty, &q.m);
		if (q.count == 0) {
			pthread_mutex_unlock(&q.m);
			break;
		}
		*sum += q.buf[q.head];
		q.head = (q.head + 1) % CAP;
		q.count--;
		n++;
		pthread_cond_signal(&q.not_full);
		pthread_mutex_unlock(&q.m);
	}
	return (void *)(intptr_t)n;
}

static void case_condvar(void)
{
	pthread_t p[NP], c[NP];
	long sums[NP] = { 0 }, total = 0, n = 0, want = 0;
	void *v;

	for (long i = 0; i < NP; i++)
		MUST(pthread_create(&c[i], NULL, w_consumer, &sums[i]));
	for (long i = 0; i < NP; i++)
		MUST(pthread_create(&p[i], NULL, w_producer, (void *)(intptr_t)i));
	for (int i = 0; i < NP; i++)
		MUST(pthread_join(p[i], NULL));
	for (int i = 0; i < NP; i++) {
		MUST(pthread_join(c[i], &v));
		n += (intptr_t)v;
		total += sums[i];
	}
	for (long i = 0; i < NP; i++)
		want += i * ITEMS * ITEMS + (long)ITEMS * (ITEMS + 1) / 2;
	printf("condvar: %ld items, sum %s\n", n, total == want ? "right" : "WRONG");
}

/* ------------------------------------------------------------------ */
/* pipe ring: 16 threads pass a counter around through pipes */

enum { RN = 16, RLAPS = 200 };
static int ring[RN][2];

void *w_ring(void *arg);
void *w_ring(void *arg)
{
	int me = (int)(intptr_t)arg;
	long v;

	for (;;) {
		if (read(ring[me][0], &v, sizeof v) != sizeof v)
			fail("ring read", errno);
		if (v < 0 || v >= (long)RN * RLAPS) {
			/* pass the stop token on and quit */
			if (write(ring[(me + 1) % RN][1], &v, sizeof v) != sizeof v)
				fail("ring write", errno);
			return NULL;
		}
		v++;
		if (write(ring[(me + 1) % RN][1], &v, sizeof v) != sizeof v)
			fail("ring write", errno);
	}
}

static void case_pipering(void)
{
	pthread_t t[RN];
	long v = 0, final;

	for (int i = 0; i < RN; i++)
		MUST(pipe(ring[i]));
	for (int i = 0; i < RN; i++)
		MUST(pthread_create(&t[i], NULL, w_ring, (void *)(intptr_t)i));
	if (write(ring[0][1], &v, sizeof v) != sizeof v)
		fail("write", errno);
	for (int i = 0; i < RN; i++)
		MUST(pthread_join(t[i], NULL));
	if (read(ring[0][0], &final, sizeof final) != sizeof final)
		fail("read", errno);
	for (int i = 0; i < RN; i++) {
		close(ring[i][0]);
		close(ring[i][1]);
	}
	printf("pipering: %d threads, token reached %ld\n", RN, final);
}

/* ------------------------------------------------------------------ */
/* ping-pong: two threads alternate on a mutex and condvar */

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static long pturn;

void *w_pingpong(void *arg);
void *w_pingpong(void *arg)
{
	long me = (long)(intptr_t)arg;

	for (int r = 0; r < 20000; r++) {
		pthread_mutex_lock(&pm);
		while (pturn % 2 != me)
			pthread_cond_wait(&pc, &pm);
		pturn++;
		pthread_cond_signal(&pc);
		pthread_mutex_unlock(&pm);
	}
	return NULL;
}

static void case_pingpong(void)
{
	pthread_t a, b;

	MUST(pthread_create(&a, NULL, w_pingpong, (void *)0));
	MUST(pthread_create(&b, NULL, w_pingpong, (void *)1));
	MUST(pthread_join(a, NULL));
	MUST(pthread_join(b, NULL));
	printf("pingpong: %ld turns\n", pturn);
}

/* ------------------------------------------------------------------ */
/* semaphore chain: thread i waits for sem[N-1-i] and posts sem[N-i], so
 * the last one created runs first and the first one created waits for all
 * the others. */

enum { SN = 32 };
static sem_t chain[SN + 1];
static atomic_int chain_order[SN], chain_pos;

void *w_chain(void *arg);
void *w_chain(void *arg)
{
	int me = (int)(intptr_t)arg;

	xsem_wait(&chain[SN - 1 - me]);
	chain_order[atomic_fetch_add(&chain_pos, 1)] = me;
	MUST(sem_post(&chain[SN - me]));
	return NULL;
}

static void case_semchain(void)
{
	pthread_t t[SN];
	int in_order = 1;

	for (int i = 0; i <= SN; i++)
		MUST(sem_init(&chain[i], 0, 0));
	for (int i = 0; i < SN; i++)
		MUST(pthread_create(&t[i], NULL, w_chain, (void *)(intptr_t)i));
	MUST(sem_post(&chain[0]));   /* releases the last one created */
	xsem_wait(&chain[SN]);
	for (int i = 0; i < SN; i++)
		MUST(pthread_join(t[i], NULL));
	for (int i = 0; i < SN; i++)
		in_order &= chain_order[i] == SN - 1 - i;
	printf("semchain: %d threads, released last-created first: %s\n", SN,
	       in_order ? "yes" : "NO");
}

/* ------------------------------------------------------------------ */
/* join chain: thread i joins thread i-1; thread 0 waits for a go */

enum { JN = 40 };
static pthread_t jt[JN];
static sem_t jgo;

void *w_joinchain(void *arg);
void *w_joinchain(void *arg)
{
	intptr_t me = (intptr_t)arg;
	void *v;

	xsem_wait(&jgo);   /* main posts once per thread, after all exist */
	if (me == 0)
		return (void *)1;
	MUST(pthread_join(jt[me - 1], &v));
	return (void *)((intptr_t)v + 1);
}

static void case_joinchain(void)
{
	void *v;

	MUST(sem_init(&jgo, 0, 0));
	for (intptr_t i = JN - 1; i >= 0; i--)
		MUST(pthread_create(&jt[i], NULL, w_joinchain, (void *)i));
	for (int i = 0; i < JN; i++)
		MUST(sem_post(&jgo));
	MUST(pthread_join(jt[JN - 1], &v));
	printf("joinchain: %d threads, last joined %ld\n", JN, (long)(intptr_t)v);
	sem_destroy(&jgo);
}

/* ------------------------------------------------------------------ */
/* rwlock: 6 readers check an invariant while 2 writers update it */

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_a, rw_b;
static atomic_int rw_bad;

void *w_reader(void *arg);
void *w_reader(void *arg)
{
	for (int i = 0; i < 20000; i++) {
		pthread_rwlock_rdlock(&rw);
		if (rw_a + rw_b != 0)
			atomic_fetch_add(&rw_bad, 1);
		pthread_rwlock_unlock(&rw);
	}
	return NULL;
}

void *w_writer(void *arg);
void *w_writer(void *arg)
{
	for (int i = 0; i < 5000; i++) {
		pthread_rwlock_wrlock(&rw);
		rw_a++;
		sched_yield();
		rw_b--;
		pthread_rwlock_unlock(&rw);
	}
	return NULL;
}

static void case_rwlock(void)
{
	pthread_t t[8];

	for (int i = 0; i < 8; i++)
		MUST(pthread_create(&t[i], NULL, i < 2 ? w_writer : w_reader, NULL));
	for (int i = 0; i < 8; i++)
		MUST(pthread_join(t[i], NULL));
	printf("rwlock: a=%ld b=%ld, %d torn reads\n", rw_a, rw_b, (int)rw_bad);
}

/* ------------------------------------------------------------------ */
/* spin: threads busy-wait (with sched_yield) for flags that threads
 * created after them set */

enum { SPN = 6 };
static atomic_int spin_flag[SPN + 1];

void *w_spin(void *arg);
void *w_spin(void *arg)
{
	int me = (int)(intptr_t)arg;

	/* thread me waits for flag[me+1], then sets flag[me] */
	while (!atomic_load(&spin_flag[me + 1]))
		sched_yield();
	atomic_store(&spin_flag[me], 1);
	return NULL;
}

static void case_spin(void)
{
	pthread_t t[SPN];

	for (int i = 0; i < SPN; i++)
		MUST(pthread_create(&t[i], NULL, w_spin, (void *)(intptr_t)i));
	atomic_store(&spin_flag[SPN], 1);
	for (int i = 0; i < SPN; i++)
		MUST(pthread_join(t[i], NULL));
	printf("spin: %d spinning threads released in a chain: %s\n", SPN,
	       atomic_load(&spin_flag[0]) ? "yes" : "NO");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
		int in_all;
	} cases[] = {
		{ "barrier", case_barrier, 1 },   { "bigbarrier", case_bigbarrier, 1 },
		{ "condvar", case_condvar, 1 },   { "pipering", case_pipering, 1 },
		{ "pingpong", case_pingpong, 1 }, { "semchain", case_semchain, 1 },
		{ "joinchain", case_joinchain, 1 }, { "rwlock", case_rwlock, 1 },
		{ "spin", case_spin, 1 },         { "wide", case_wide, 0 },
	};
	const size_t n = sizeof cases / sizeof cases[0];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: waiters all|CASE...\n");
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		int found = 0;

		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[a], cases[i].name) == 0 ||
			    (strcmp(argv[a], "all") == 0 && cases[i].in_all)) {
				cases[i].fn();
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "waiters: no case %s\n", argv[a]);
			return 2;
		}
	}
	return 0;
}
