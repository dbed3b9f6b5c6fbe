/*
 * user_dl.c - a program that loads a library using a pool only after it
 * has started threads of its own: it starts two ordinary pthreads (they
 * wait until the end), then dlopen()s libplugin.so (RTLD_NOW |
 * RTLD_LOCAL; it brings libtpool.so with it), runs plugin_run, and
 * dlclose()s it; by default twice, so that the interposer also sees the
 * library unloaded and loaded again (perhaps at the same address).
 *
 *   user_dl [PLUGIN [FLAT [LOADS]]]
 *       PLUGIN  path of libplugin.so (default: $SS_POOLS_PLUGIN)
 *       FLAT    flat items a cycle (default 1500)
 *       LOADS   times the library is loaded and run (default 2)
 *
 * stdout, as user.c's:
 *   checksum=HEX items=N     one line for each load, the same each time,
 *                            natively and under the interposer
 *   ran_on_workers=N ran_on_pool=M ran_elsewhere=K   summed over the loads
 * Exit status: 0; 1 when a check failed; 2 when the library cannot be
 * loaded.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int finished;

static void *bystander(void *arg)
{
	pthread_mutex_lock(&lock);
	while (!finished)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return arg;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : getenv("SS_POOLS_PLUGIN");
	int flat = argc > 2 ? atoi(argv[2]) : 1500;
	int loads = argc > 3 ? atoi(argv[3]) : 2;
	unsigned long total[4] = { 0, 0, 0, 0 };
	pthread_t th[2];
	int fails = 0;

	if (!path) {
		fprintf(stderr, "user_dl: no plugin: give its path or set SS_POOLS_PLUGIN\n");
		return 2;
	}
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, bystander, NULL) != 0) {
			fprintf(stderr, "user_dl: pthread_create failed\n");
			return 1;
		}

	for (int l = 0; l < loads; l++) {
		void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "user_dl: %s\n", dlerror());
			return 2;
		}
		int (*run)(int, unsigned long *) = (int (*)(int, unsigned long *))dlsym(h, "plugin_run");
		void (*counts)(unsigned long *) = (void (*)(unsigned long *))dlsym(h, "plugin_counts");
		if (!run || !counts) {
			fprintf(stderr, "user_dl: %s has no plugin_run or plugin_counts\n", path);
			return 2;
		}
		unsigned long sum = 0, c[4];
		fails += run(flat, &sum);
		counts(c);
		printf("checksum=%016lx items=%lu\n", sum, c[0]);
		for (int i = 0; i < 4; i++)
			total[i] += c[i];
		if (dlclose(h) != 0) {
			fprintf(stderr, "user_dl: dlclose: %s\n", dlerror());
			fails++;
		}
	}

	pthread_mutex_lock(&lock);
	finished = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);

	printf("ran_on_workers=%lu ran_on_pool=%lu ran_elsewhere=%lu\n",
	       total[1], total[2], total[3]);
	return fails ? 1 : 0;
}
