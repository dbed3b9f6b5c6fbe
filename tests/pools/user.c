/*
 * user.c - a program that uses the thpool pool (Pithikos/C-Thread-Pool's
 * API) from a shared library, libthpool.so (a DT_NEEDED dependency), for
 * tests/pools/run.sh.  It is also built with -Wl,-z,now (full RELRO,
 * BIND_NOW) and with -fno-plt (calls through the GOT), and static_user.c
 * builds it with thpool.c linked into the executable.
 *
 *   user [FLAT [CYCLES]]     defaults: 2000 flat items, 3 cycles
 *
 * A pool of 4 threads; each cycle submits 64 trees of 15 items (each item
 * submits its two children from inside itself) and FLAT flat items,
 * calls thpool_wait and checks right after it that every item has run
 * exactly once (work.h); then thpool_destroy.  stdout:
 *
 *   checksum=HEX items=N     the same natively and under the interposer
 *   ran_on_workers=N ran_on_pool=M ran_elsewhere=K
 *                            which threads ran the items: smolscale's
 *                            ("ss-worker-N"), the pool's ("thpool-N"),
 *                            any other (N + M + K = items)
 *
 * Exit status: 0, or 1 when a check failed (said on stderr).
 */
#include <stdio.h>
#include <stdlib.h>

#include "thpool.h"

#ifndef USER_NAME
#define USER_NAME "user"
#endif
#define WORK_POOL_PREFIX "thpool"

static threadpool pool;

static int work_submit(void (*fn)(void *), void *arg)
{
	return thpool_add_work(pool, fn, arg) == 0;
}

static void work_wait(void)
{
	thpool_wait(pool);
}

#include "work.h"

int main(int argc, char **argv)
{
	unsigned flat = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000;
	unsigned cycles = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 3;
	unsigned long sum = 0;
	int fails = 0;

	if (!work_init(flat)) {
		fprintf(stderr, "%s: out of memory\n", USER_NAME);
		return 1;
	}
	pool = thpool_init(4);
	if (!pool) {
		fprintf(stderr, "%s: thpool_init(4) failed\n", USER_NAME);
		return 1;
	}
	for (unsigned c = 0; c < cycles; c++)
		fails += work_cycle(USER_NAME, &sum);
	thpool_destroy(pool);

	printf("checksum=%016lx items=%lu\n", sum, work_items() * cycles);
	printf("ran_on_workers=%lu ran_on_pool=%lu ran_elsewhere=%lu\n",
	       atomic_load(&work.on_worker), atomic_load(&work.on_pool),
	       atomic_load(&work.elsewhere));
	work_free();
	return fails ? 1 : 0;
}
