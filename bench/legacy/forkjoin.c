/*
 * legacy-forkjoin - a small legacy-style program: fork-join work with one
 * pthread per piece of work.  Plain pthreads, no smolscale API: the kind
 * of program `smolscale ab --pthread` runs as it is, natively and under
 * the preload library.
 *
 *   legacy-forkjoin [VALUES [ROUNDS]]      (default 524288 values, 3 rounds)
 *
 * Each round fills an array with deterministic pseudo-random 32-bit
 * values, sorts it with a merge sort in which every split above
 * SORT_CUTOFF values starts a pthread for the left half, sorts the right
 * half itself and joins, then checks and sums it (weighted by position)
 * with the same shape of split above SUM_CUTOFF.  With the defaults that
 * is 2,298 short-lived threads, up to about 510 alive at once.  Prints
 * one line, the same on every run: the splits and a checksum.  When
 * pthread_create fails the piece runs inline, as the output does not
 * depend on where a piece runs.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SORT_CUTOFF 1024
#define SUM_CUTOFF 2048

static unsigned long splits;		/* pieces split off, all rounds */
static pthread_mutex_t splits_lock = PTHREAD_MUTEX_INITIALIZER;

struct piece {
	uint32_t *a, *tmp;
	size_t n, off;			/* off: index of a[0] in the array */
	uint64_t sum;			/* sum pieces: the result */
	int sorted;			/* sum pieces: a[] ascends */
};

static void count_split(void)
{
	pthread_mutex_lock(&splits_lock);
	splits++;
	pthread_mutex_unlock(&splits_lock);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

/* Run FN on LEFT in a new thread (inline if none can start), RIGHT here. */
static void fork_join(void *(*fn)(void *), struct piece *left, struct piece *right)
{
	pthread_t t;
	int started = pthread_create(&t, NULL, fn, left) == 0;

	count_split();
	if (!started)
		fn(left);
	fn(right);
	if (started)
		pthread_join(t, NULL);
}

static void *sort(void *arg)
{
	struct piece *p = arg;
	size_t h = p->n / 2, i = 0, j = h, k = 0;

	if (p->n <= SORT_CUTOFF) {
		qsort(p->a, p->n, sizeof *p->a, cmp_u32);
		return NULL;
	}
	struct piece left = { p->a, p->tmp, h, 0, 0, 0 };
	struct piece right = { p->a + h, p->tmp + h, p->n - h, 0, 0, 0 };
	fork_join(sort, &left, &right);
	while (i < h && j < p->n)
		p->tmp[k++] = p->a[j] < p->a[i] ? p->a[j++] : p->a[i++];
	while (i < h)
		p->tmp[k++] = p->a[i++];
	while (j < p->n)
		p->tmp[k++] = p->a[j++];
	memcpy(p->a, p->tmp, p->n * sizeof *p->a);
	return NULL;
}

static void *sum(void *arg)
{
	struct piece *p = arg;
	size_t h = p->n / 2, i;

	if (p->n <= SUM_CUTOFF) {
		p->sum = 0;
		p->sorted = 1;
		for (i = 0; i < p->n; i++) {
			p->sum += (uint64_t)p->a[i] * (p->off + i + 1);
			if (i > 0 && p->a[i - 1] > p->a[i])
				p->sorted = 0;
		}
		return NULL;
	}
	struct piece left = { p->a, NULL, h, p->off, 0, 0 };
	struct piece right = { p->a + h, NULL, p->n - h, p->off + h, 0, 0 };
	fork_join(sum, &left, &right);
	p->sum = left.sum + right.sum;
	p->sorted = left.sorted && right.sorted && p->a[h - 1] <= p->a[h];
	return NULL;
}

/* splitmix64: the values, the same on every run. */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static unsigned long arg(const char *s, unsigned long lo, unsigned long hi, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s < '0' || *s > '9' || *end || v < lo || v > hi) {
		fprintf(stderr, "legacy-forkjoin: %s wants a number from %lu to %lu\n", what, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? arg(argv[1], 2, 1ul << 28, "VALUES") : 1u << 19;
	unsigned long rounds = argc > 2 ? arg(argv[2], 1, 1000, "ROUNDS") : 3;
	uint32_t *a = malloc(n * sizeof *a), *tmp = malloc(n * sizeof *tmp);
	uint64_t check = 0;
	unsigned long r;
	size_t i;

	if (argc > 3 || !a || !tmp) {
		fputs(argc > 3 ? "usage: legacy-forkjoin [VALUES [ROUNDS]]\n"
			       : "legacy-forkjoin: out of memory\n", stderr);
		return 2;
	}
	for (r = 0; r < rounds; r++) {
		uint64_t seed = r + 1;
		struct piece all = { a, tmp, n, 0, 0, 0 };

		for (i = 0; i < n; i++)
			a[i] = (uint32_t)next(&seed);
		sort(&all);
		sum(&all);
		if (!all.sorted) {
			fprintf(stderr, "legacy-forkjoin: round %lu: the array is not sorted\n", r + 1);
			return 1;
		}
		check = (check ^ all.sum) * 0x100000001b3u;
	}
	printf("legacy-forkjoin: %lu rounds of %zu values, %lu splits, checksum %016llx\n",
	       rounds, n, splits, (unsigned long long)check);
	free(a);
	free(tmp);
	return 0;
}
