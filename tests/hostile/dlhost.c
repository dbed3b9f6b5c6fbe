/*
 * dlhost.c - dlclose() of libraries whose functions were queued, for
 * tests/hostile/run.sh (issue 8).  Links libc only (no GLib, no pool
 * library): each plugin brings its own.
 *
 *   dlhost ROUNDS N LIB...
 *
 * For each round, for each LIB in turn: dlopen (RTLD_NOW, RTLD_LOCAL on
 * even rounds and RTLD_GLOBAL on odd ones), plugin_run(N), print the
 * checksum, dlclose.  Loading the plugins in turn puts a different
 * library at an address where another was before.  Two threads of the
 * host wait on a condition variable throughout.
 *
 * stdout: "round R: NAME checksum HEX" for each load (the same on every
 * round), and whatever the plugins print; exit status 0, 1 when a load or
 * a checksum failed.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int finished;

void *dl_bystander(void *arg);
void *dl_bystander(void *arg)
{
	pthread_mutex_lock(&lock);
	while (!finished)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return arg;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 0;
	int n = argc > 2 ? atoi(argv[2]) : 0;
	int nlibs = argc - 3, fails = 0;
	uint64_t first[16];
	pthread_t th[2];

	if (rounds <= 0 || n <= 0 || nlibs <= 0 || nlibs > 16) {
		fprintf(stderr, "usage: dlhost ROUNDS N LIB... (at most 16)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, dl_bystander, NULL) != 0) {
			fprintf(stderr, "dlhost: pthread_create failed\n");
			return 1;
		}
	for (int r = 0; r < rounds; r++)
		for (int l = 0; l < nlibs; l++) {
			const char *path = argv[3 + l], *name = strrchr(path, '/');
			void *h = dlopen(path, RTLD_NOW | (r % 2 ? RTLD_GLOBAL : RTLD_LOCAL));
			uint64_t (*run)(int);
			uint64_t sum;

			name = name ? name + 1 : path;
			if (!h) {
				fprintf(stderr, "dlhost: %s\n", dlerror());
				return 1;
			}
			run = (uint64_t (*)(int))dlsym(h, "plugin_run");
			if (!run) {
				fprintf(stderr, "dlhost: %s has no plugin_run\n", name);
				return 1;
			}
			sum = run(n);
			printf("round %d: %s checksum %016llx\n", r, name, (unsigned long long)sum);
			if (r == 0)
				first[l] = sum;
			else if (sum != first[l])
				fails++;
			if (sum == 0)
				fails++;
			if (dlclose(h) != 0) {
				fprintf(stderr, "dlhost: dlclose %s: %s\n", name, dlerror());
				fails++;
			}
		}
	pthread_mutex_lock(&lock);
	finished = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("dlhost: %d rounds of %d libraries, %s\n", rounds, nlibs,
	       fails ? "FAILED" : "all the same");
	return fails ? 1 : 0;
}
