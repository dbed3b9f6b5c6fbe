/*
 * work.h - the work that the pool test programs (user.c, static_user.c,
 * plugin.c) give their pool, and the checks they make of it.  Header-only:
 * each program includes it once and defines, before including it,
 *
 *   static int work_submit(void (*fn)(void *), void *arg);
 *       submit fn(arg) to the program's pool; nonzero on success;
 *   static void work_wait(void);
 *       the pool's wait function;
 *   WORK_POOL_PREFIX
 *       the start of the names of the pool's own threads ("thpool").
 *
 * One cycle: work_trees() binary trees of items, each item of a tree
 * submitting its two children from inside itself after its own work (so
 * that a wait has to cover work that items submitted, to any depth), and
 * n flat items; then work_wait(), after which every item must have run
 * exactly once this cycle.  Each item computes a value that depends only
 * on its slot and the cycle, so the checksum is the same whatever ran the
 * items and in whatever order.  Every item also records what ran it: a
 * smolscale worker ("ss-worker-N"), a thread of the pool
 * (WORK_POOL_PREFIX), or any other thread.
 */
#ifndef SS_TEST_POOLS_WORK_H
#define SS_TEST_POOLS_WORK_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define WORK_TREES 64
#define WORK_DEPTH 3	/* a tree: 1 + 2 + 4 + 8 = 15 items */
#define WORK_TREE_ITEMS ((1u << (WORK_DEPTH + 1)) - 1)
#define WORK_ROUNDS 3000

static int work_submit(void (*fn)(void *), void *arg);
static void work_wait(void);

static struct {
	unsigned flat;		/* flat items a cycle */
	unsigned slots;		/* flat + trees */
	unsigned cycle;
	uint64_t *value;	/* by slot */
	_Atomic unsigned *runs;	/* by slot: times run, over all cycles */
	atomic_ulong done;	/* items finished this cycle */
	atomic_ulong on_worker, on_pool, elsewhere;
	atomic_int submit_failed;
} work;

static inline uint64_t work_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void work_compute(unsigned slot)
{
	uint64_t h = ((uint64_t)work.cycle << 32) ^ slot;
	unsigned rounds = WORK_ROUNDS + slot % 1000;
	char name[17] = "";

	for (unsigned r = 0; r < rounds; r++)
		h = work_mix(h + r);
	work.value[slot] = h;

	prctl(PR_GET_NAME, name, 0, 0, 0);
	if (strncmp(name, "ss-worker", 9) == 0)
		atomic_fetch_add(&work.on_worker, 1);
	else if (strncmp(name, WORK_POOL_PREFIX, strlen(WORK_POOL_PREFIX)) == 0)
		atomic_fetch_add(&work.on_pool, 1);
	else
		atomic_fetch_add(&work.elsewhere, 1);
	atomic_fetch_add(&work.runs[slot], 1);
	atomic_fetch_add(&work.done, 1);
}

static void work_flat(void *arg)
{
	work_compute((unsigned)(uintptr_t)arg);
}

/* A tree item: slot = flat + tree * WORK_TREE_ITEMS + node, where node
 * is the item's index in its tree's heap order. */
static void work_node(void *arg)
{
	unsigned slot = (unsigned)(uintptr_t)arg;
	unsigned base = slot - (slot - work.flat) % WORK_TREE_ITEMS;
	unsigned node = slot - base;

	work_compute(slot);
	for (unsigned c = 2 * node + 1; c <= 2 * node + 2 && c < WORK_TREE_ITEMS; c++)
		if (!work_submit(work_node, (void *)(uintptr_t)(base + c)))
			atomic_store(&work.submit_failed, 1);
}

static int work_init(unsigned flat)
{
	work.flat = flat;
	work.slots = flat + WORK_TREES * WORK_TREE_ITEMS;
	work.value = calloc(work.slots, sizeof *work.value);
	work.runs = calloc(work.slots, sizeof *work.runs);
	return work.value && work.runs;
}

/* Items a cycle. */
static unsigned long work_items(void)
{
	return work.slots;
}

/* One cycle: submit, wait, check; folds the cycle's values into *sum.
 * Returns the number of failures (each one said on stderr by who). */
static int work_cycle(const char *who, unsigned long *sum)
{
	int fails = 0;
	unsigned long done;
	unsigned t, i, missing = 0, twice = 0;

	atomic_store(&work.done, 0);
	for (t = 0; t < WORK_TREES; t++)
		if (!work_submit(work_node, (void *)(uintptr_t)(work.flat + t * WORK_TREE_ITEMS)))
			atomic_store(&work.submit_failed, 1);
	for (i = 0; i < work.flat; i++)
		if (!work_submit(work_flat, (void *)(uintptr_t)i))
			atomic_store(&work.submit_failed, 1);
	work_wait();

	/* Checked right after the wait: everything, children included, is
	 * done. */
	done = atomic_load(&work.done);
	for (i = 0; i < work.slots; i++) {
		unsigned r = atomic_load(&work.runs[i]);
		if (r < work.cycle + 1)
			missing++;
		else if (r > work.cycle + 1)
			twice++;
	}
	if (done != work.slots || missing || twice) {
		fprintf(stderr, "%s: cycle %u: the wait returned with %lu of %u items done"
			" (%u never ran, %u ran more than once)\n",
			who, work.cycle, done, work.slots, missing, twice);
		fails++;
	}
	if (atomic_load(&work.submit_failed)) {
		fprintf(stderr, "%s: cycle %u: a submit returned failure\n", who, work.cycle);
		atomic_store(&work.submit_failed, 0);
		fails++;
	}
	for (i = 0; i < work.slots; i++)
		*sum = (unsigned long)work_mix(*sum ^ work.value[i]);
	work.cycle++;
	return fails;
}

static void work_free(void)
{
	free(work.value);
	free(work.runs);
}

#endif
