/*
 * threads.c - helper for run.sh (built, not run as a test): starts N
 * plain pthreads (argv[1], default 3, at most 64), joins them and prints
 * their sum, so that `smolscale ab` sees the same stdout on every run and
 * exactly N thread creations.  With a second argument "wait" it then
 * waits for the end of its standard input (a live process for
 * `smolscale stats PID`).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *square(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	return (void *)(i * i);
}

int main(int argc, char **argv)
{
	pthread_t t[64];
	uintptr_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 3, i, sum = 0;
	void *r;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, square, (void *)i) != 0) {
			perror("pthread_create");
			return 1;
		}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], &r);
		sum += (uintptr_t)r;
	}
	printf("threads %lu sum %lu\n", (unsigned long)n, (unsigned long)sum);
	if (argc > 2 && strcmp(argv[2], "wait") == 0) {
		char buf[64];
		fflush(stdout);
		while (read(0, buf, sizeof buf) > 0)
			;
	}
	return 0;
}
