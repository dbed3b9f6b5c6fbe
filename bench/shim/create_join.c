/*
 * create_join.c - the cost of one short-lived thread: pthread_create of a
 * thread that returns at once, then pthread_join, in a loop.  Plain
 * pthreads, nothing of smolscale: bench/shim/run runs it natively and under
 * the preload shim (SMOLSCALE_PTHREAD=1) and prints the ratio.
 *
 *   create_join [ITERATIONS]     (default 20,000 after 1,000 warm-up)
 *
 * Prints "create_join <ns per create+join> ns <cpu s> cpu_s".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static void *child(void *arg)
{
	return arg;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void loop(long n)
{
	for (long i = 0; i < n; i++) {
		pthread_t t;
		void *r;
		int rc = pthread_create(&t, NULL, child, (void *)i);

		if (rc != 0 || (rc = pthread_join(t, &r)) != 0 || r != (void *)i) {
			fprintf(stderr, "create_join: iteration %ld failed (%d)\n", i, rc);
			exit(1);
		}
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000;
	uint64_t t0;
	double c0;

	if (n <= 0) {
		fprintf(stderr, "usage: create_join [ITERATIONS > 0]\n");
		return 2;
	}
	loop(1000);
	c0 = cpu_s();
	t0 = now_ns();
	loop(n);
	printf("create_join %.0f ns %.3f cpu_s\n", (double)(now_ns() - t0) / n,
	       cpu_s() - c0);
	return 0;
}
