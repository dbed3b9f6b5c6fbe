/*
 * forkjoin.c - fork-join programs written with plain pthreads: a thread
 * per recursive call (fib), a parallel merge sort, a parallel-for repeated
 * many times, and a wide tree of nested creates and joins.  Deterministic
 * output; exit 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void xcreate(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);

	if (rc != 0) {
		fprintf(stderr, "forkjoin: pthread_create: %s\n", strerror(rc));
		exit(2);
	}
}

static void xjoin(pthread_t t, void **v)
{
	int rc = pthread_join(t, v);

	if (rc != 0) {
		fprintf(stderr, "forkjoin: pthread_join: %s\n", strerror(rc));
		exit(2);
	}
}

/* fib: a thread for each call with n above the cutoff */
static long fib_seq(long n)
{
	return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

static _Atomic long fib_threads;

void *fj_fib(void *arg);
void *fj_fib(void *arg)
{
	long n = (long)(intptr_t)arg;
	pthread_t a;
	void *va, *vb;

	if (n <= 12)
		return (void *)(intptr_t)fib_seq(n);
	fib_threads++;
	xcreate(&a, fj_fib, (void *)(intptr_t)(n - 1));
	vb = fj_fib((void *)(intptr_t)(n - 2));
	xjoin(a, &va);
	return (void *)((intptr_t)va + (intptr_t)vb);
}

/* merge sort: split into threads down to a depth */
struct sortjob {
	uint32_t *a, *tmp;
	size_t n;
	int depth;
};

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

void *fj_sort(void *arg);
void *fj_sort(void *arg)
{
	struct sortjob *j = arg;
	size_t h = j->n / 2, i = 0, k = h, o = 0;
	struct sortjob left = { j->a, j->tmp, h, j->depth - 1 };
	struct sortjob right = { j->a + h, j->tmp + h, j->n - h, j->depth - 1 };
	pthread_t t;

	if (j->depth == 0 || j->n < 1024) {
		qsort(j->a, j->n, sizeof *j->a, cmp_u32);
		return NULL;
	}
	xcreate(&t, fj_sort, &left);
	fj_sort(&right);
	xjoin(t, NULL);
	while (i < h && k < j->n)
		j->tmp[o++] = j->a[i] <= j->a[k] ? j->a[i++] : j->a[k++];
	while (i < h)
		j->tmp[o++] = j->a[i++];
	while (k < j->n)
		j->tmp[o++] = j->a[k++];
	memcpy(j->a, j->tmp, j->n * sizeof *j->a);
	return NULL;
}

/* parallel for: 4 threads sum slices, repeated */
struct slice {
	const uint32_t *a;
	size_t lo, hi;
	uint64_t sum;
};

void *fj_slice(void *arg);
void *fj_slice(void *arg)
{
	struct slice *s = arg;

	s->sum = 0;
	for (size_t i = s->lo; i < s->hi; i++)
		s->sum += s->a[i] % 1000;
	return NULL;
}

/* tree: each node creates `fan` children down to a depth, joins, sums */
void *fj_tree(void *arg);
void *fj_tree(void *arg)
{
	intptr_t depth = (intptr_t)arg, sum = 1;
	pthread_t t[4];
	void *v;

	if (depth == 0)
		return (void *)1;
	for (int i = 0; i < 4; i++)
		xcreate(&t[i], fj_tree, (void *)(depth - 1));
	for (int i = 0; i < 4; i++) {
		xjoin(t[i], &v);
		sum += (intptr_t)v;
	}
	return (void *)sum;
}

int main(void)
{
	enum { N = 1 << 20 };
	uint32_t *a = malloc(N * sizeof *a), *tmp = malloc(N * sizeof *tmp);
	uint32_t x = 12345;
	uint64_t h = 1469598103934665603ull, total = 0;
	struct sortjob job = { a, tmp, N, 5 };
	struct slice s[4];
	pthread_t t[4];
	void *v;
	int sorted = 1;

	v = fj_fib((void *)22);
	printf("fib(22) = %ld with %ld threads\n", (long)(intptr_t)v, (long)fib_threads);

	for (size_t i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		a[i] = x;
	}
	fj_sort(&job);
	for (size_t i = 1; i < N; i++)
		sorted &= a[i - 1] <= a[i];
	for (size_t i = 0; i < N; i += 97)
		h = (h ^ a[i]) * 1099511628211ull;
	printf("sort 1048576: sorted %d, hash %016llx\n", sorted, (unsigned long long)h);

	for (int round = 0; round < 300; round++) {
		for (int i = 0; i < 4; i++) {
			s[i].a = a;
			s[i].lo = (size_t)i * (N / 4) + (size_t)round;
			s[i].hi = s[i].lo + 2000;
			xcreate(&t[i], fj_slice, &s[i]);
		}
		for (int i = 0; i < 4; i++) {
			xjoin(t[i], NULL);
			total += s[i].sum;
		}
	}
	printf("parallel-for 300 rounds x 4 threads: %llu\n", (unsigned long long)total);

	v = fj_tree((void *)3);
	printf("tree fan 4 depth 3: %ld nodes\n", (long)(intptr_t)v);
	free(a);
	free(tmp);
	return 0;
}
