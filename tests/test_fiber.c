/*
 * test_fiber.c - the fiber bottom layer (core/fiber.c): the context switch
 * (a fresh context and back, a million ping-pong switches among two fibers
 * and the main context, a fiber suspended on one thread and resumed on
 * another, arguments, callee-saved and floating-point state kept across
 * switches, 16-byte stack alignment at entry), the stacks
 * (deep recursion near the size works, the guard page faults, the cache
 * stays bounded) and SMOLSCALE_FIBER_STACK.
 *
 * Built with -DSS_FIBER_UCONTEXT, the same tests cover the ucontext
 * fallback.  The ping-pong test prints the cost of one switch to stderr
 * (not asserted).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "util.h"

#define PING_PONGS 1000000L
#define ROUNDS 100

static struct ss_ctx main_ctx, ctx_a, ctx_b;
static struct ss_stack *stack_a, *stack_b;

static void make(struct ss_ctx *c, struct ss_stack **s,
                 void (*entry)(void *), void *arg)
{
	*s = ss__stack_new();
	ck_assert_ptr_nonnull(*s);
	ss__ctx_make(c, (*s)->lo, (*s)->size, entry, arg);
}

static void unmake(struct ss_ctx *c, struct ss_stack *s)
{
	ss__ctx_destroy(c);
	ss__stack_free(s);
}

/* Switch to a fiber's main loop for good: the last thing an entry does. */
static void __attribute__((noreturn)) leave(struct ss_ctx *self)
{
	ss__ctx_exit(self, &main_ctx);
}

/* ------------------------------------------------------------- switch */

static void *got_arg;
static int steps;

static void fresh_entry(void *arg)
{
	got_arg = arg;
	steps = 1;
	ss__ctx_switch(&ctx_a, &main_ctx);
	steps = 2;
	ss__ctx_switch(&ctx_a, &main_ctx);
	steps = 3;
	leave(&ctx_a);
}

START_TEST(fresh_and_back)
{
	void *arg = (void *)(uintptr_t)0x123456789abcdef0ull;

	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, fresh_entry, arg);
	ck_assert_int_eq(steps, 0);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_ptr_eq(got_arg, arg);
	ck_assert_int_eq(steps, 1);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(steps, 2);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(steps, 3);
	unmake(&ctx_a, stack_a);
	/* The struct and the stack can be made again. */
	steps = 0;
	make(&ctx_a, &stack_a, fresh_entry, NULL);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_ptr_null(got_arg);
	ck_assert_int_eq(steps, 1);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(steps, 3);
	unmake(&ctx_a, stack_a);
}
END_TEST

/* A and B bounce n times, then B goes back to main. */
static long bounces, bounce_limit;

static void pong_a(void *arg)
{
	for (;;)
		ss__ctx_switch(&ctx_a, &ctx_b);
}

static void pong_b(void *arg)
{
	for (;;) {
		if (++bounces >= bounce_limit)
			ss__ctx_switch(&ctx_b, &main_ctx);
		else
			ss__ctx_switch(&ctx_b, &ctx_a);
	}
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

START_TEST(ping_pong)
{
	double t0, ns;
	long switches;

	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, pong_a, NULL);
	make(&ctx_b, &stack_b, pong_b, NULL);
	/* Warm up, then time a million switches, then run them again: main
	 * -> A -> B -> A ... -> B -> main, each time. */
	bounce_limit = 1000;
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(bounces, bounce_limit);
	bounces = 0;
	bounce_limit = PING_PONGS / 2;
	t0 = now_ns();
	ss__ctx_switch(&main_ctx, &ctx_b); /* B resumes in its loop */
	ns = now_ns() - t0;
	ck_assert_int_eq(bounces, bounce_limit);
	/* main->B, then B->A, A->B limit-1 times, B->main. */
	switches = 2 * bounce_limit;
	fprintf(stderr, "fiber (%s%s): %.1f ns per switch over %ld switches\n",
#if defined(SS_FIBER_UCONTEXT)
	        "ucontext",
#else
	        "assembly",
#endif
#if defined(SS_FIBER_ASAN)
	        ", ASan",
#elif defined(SS_FIBER_TSAN)
	        ", TSan",
#else
	        "",
#endif
	        ns / switches, switches);
	unmake(&ctx_a, stack_a);
	unmake(&ctx_b, stack_b);
}
END_TEST

/* A fiber suspended on one thread resumes on another (pthread_join orders
 * the handoff, as a scheduler's queue would). */
static struct ss_ctx *home;
static int where[3];
static char fiber_local[64];

static void migrate_entry(void *arg)
{
	where[0] = 1;
	snprintf(fiber_local, sizeof(fiber_local), "first %d", where[0]);
	ss__ctx_switch(&ctx_a, home);
	where[1] = 2;
	snprintf(fiber_local, sizeof(fiber_local), "then %d", where[1]);
	ss__ctx_exit(&ctx_a, home);
}

static void *migrate_thread(void *arg)
{
	struct ss_ctx here;

	ss__ctx_init_thread(&here);
	home = &here;
	ss__ctx_switch(&here, &ctx_a);
	where[2] = 3;
	return NULL;
}

START_TEST(migrates_between_threads)
{
	pthread_t t;

	make(&ctx_a, &stack_a, migrate_entry, NULL);
	ck_assert_int_eq(pthread_create(&t, NULL, migrate_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(where[0], 1);
	ck_assert_int_eq(where[2], 3);
	ck_assert_str_eq(fiber_local, "first 1");
	ss__ctx_init_thread(&main_ctx);
	home = &main_ctx;
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(where[1], 2);
	ck_assert_str_eq(fiber_local, "then 2");
	unmake(&ctx_a, stack_a);
}
END_TEST

/* ------------------------------------------------------------- state */

#define NLONG 16
#define NDBL 10

static volatile long seed_l[NLONG];
static volatile double seed_d[NDBL];
static int reg_failures;

/* Fill the callee-saved registers with junk right before switching: the
 * switch itself must restore the other side's. */
static void __attribute__((noinline)) switch_dirty(struct ss_ctx *from,
                                                   struct ss_ctx *to)
{
#if defined(__x86_64__)
	__asm__ volatile("movq $-1, %%rbx\n\tmovq $-2, %%r12\n\tmovq $-3, %%r13\n\t"
	                 "movq $-4, %%r14\n\tmovq $-5, %%r15\n\t"
	                 "pcmpeqd %%xmm6, %%xmm6\n\tpcmpeqd %%xmm7, %%xmm7"
	                 ::: "rbx", "r12", "r13", "r14", "r15", "xmm6", "xmm7");
#elif defined(__aarch64__)
	__asm__ volatile("mov x19, #-1\n\tmov x20, #-2\n\tmov x21, #-3\n\t"
	                 "mov x22, #-4\n\tmov x23, #-5\n\tmov x24, #-6\n\t"
	                 "mov x25, #-7\n\tmov x26, #-8\n\tmov x27, #-9\n\t"
	                 "mov x28, #-10\n\tfmov d8, #-1.0\n\tfmov d9, #-2.0\n\t"
	                 "fmov d10, #-3.0\n\tfmov d11, #-4.0\n\tfmov d12, #-5.0\n\t"
	                 "fmov d13, #-6.0\n\tfmov d14, #-7.0\n\tfmov d15, #-8.0"
	                 ::: "x19", "x20", "x21", "x22", "x23", "x24", "x25",
	                     "x26", "x27", "x28", "d8", "d9", "d10", "d11",
	                     "d12", "d13", "d14", "d15");
#endif
	ss__ctx_switch(from, to);
}

/* Many values live across each switch: more than there are callee-saved
 * registers, so some are in them and some spilled on this stack. */
static void keep_values(struct ss_ctx *self, struct ss_ctx *other, int salt)
{
	long l[NLONG];
	double d[NDBL];
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		long l0 = seed_l[0] + salt, l1 = seed_l[1] * salt,
		     l2 = seed_l[2] ^ salt, l3 = seed_l[3] - salt;
		double d0 = seed_d[0] * salt, d1 = seed_d[1] + salt;

		for (i = 0; i < NLONG; i++)
			l[i] = seed_l[i] * (r + 1) + salt;
		for (i = 0; i < NDBL; i++)
			d[i] = seed_d[i] * (r + 1) + salt;
		switch_dirty(self, other);
		for (i = 0; i < NLONG; i++)
			reg_failures += l[i] != seed_l[i] * (r + 1) + salt;
		for (i = 0; i < NDBL; i++)
			reg_failures += d[i] != seed_d[i] * (r + 1) + salt;
		reg_failures += l0 != seed_l[0] + salt;
		reg_failures += l1 != seed_l[1] * salt;
		reg_failures += l2 != (seed_l[2] ^ salt);
		reg_failures += l3 != seed_l[3] - salt;
		reg_failures += d0 != seed_d[0] * salt;
		reg_failures += d1 != seed_d[1] + salt;
	}
}

static void keep_a(void *arg)
{
	keep_values(&ctx_a, &ctx_b, (int)(intptr_t)arg);
	leave(&ctx_a);
}

static void keep_b(void *arg)
{
	keep_values(&ctx_b, &ctx_a, (int)(intptr_t)arg);
	leave(&ctx_b);
}

START_TEST(values_kept)
{
	int i;

	for (i = 0; i < NLONG; i++)
		seed_l[i] = 1000003L * (i + 1);
	for (i = 0; i < NDBL; i++)
		seed_d[i] = 1.0 / (i + 3);
	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, keep_a, (void *)7);
	make(&ctx_b, &stack_b, keep_b, (void *)11);
	/* A and B alternate ROUNDS times; A finishes first, B after the
	 * next switch to it. */
	ss__ctx_switch(&main_ctx, &ctx_a);
	ss__ctx_switch(&main_ctx, &ctx_b);
	ck_assert_int_eq(reg_failures, 0);
	/* main's own values came through too. */
	ck_assert_int_eq(seed_l[3], 1000003L * 4);
	unmake(&ctx_a, stack_a);
	unmake(&ctx_b, stack_b);
}
END_TEST

#if defined(__x86_64__)
static unsigned get_mxcsr(void)
{
	unsigned v;

	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void set_mxcsr(unsigned v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static unsigned short get_cw(void)
{
	unsigned short v;

	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void set_cw(unsigned short v)
{
	__asm__ volatile("fldcw %0" : : "m"(v));
}

#define RC_MASK 0x6000u  /* MXCSR rounding control */
#define RC_ZERO 0x6000u
#define RC_UP 0x4000u
#define CW_RC 0x0c00u    /* x87 rounding control */
#define CW_ZERO 0x0c00u
#define CW_UP 0x0800u

static unsigned fib_mxcsr, fib_cw;

static void fp_entry(void *arg)
{
	/* A fresh context starts with the modes of its maker. */
	fib_mxcsr = get_mxcsr();
	fib_cw = get_cw();
	set_mxcsr((get_mxcsr() & ~RC_MASK) | RC_UP);
	set_cw((unsigned short)((get_cw() & ~CW_RC) | CW_UP));
	ss__ctx_switch(&ctx_a, &main_ctx);
	fib_mxcsr = get_mxcsr();
	fib_cw = get_cw();
	leave(&ctx_a);
}

START_TEST(fp_control_kept)
{
	unsigned mx0 = get_mxcsr(), cw0 = get_cw();
	/* 1/10 is rounded up to nearest: toward zero gives less. */
	volatile double one = 1.0, ten = 10.0;
	double down;

	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, fp_entry, NULL);
	set_mxcsr((mx0 & ~RC_MASK) | RC_ZERO);
	set_cw((unsigned short)((cw0 & ~CW_RC) | CW_ZERO));
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_uint_eq(fib_mxcsr & RC_MASK, mx0 & RC_MASK);
	ck_assert_uint_eq(fib_cw & CW_RC, cw0 & CW_RC);
	ck_assert_uint_eq(get_mxcsr() & RC_MASK, RC_ZERO);
	ck_assert_uint_eq(get_cw() & CW_RC, CW_ZERO);
	down = one / ten; /* rounded toward zero by SSE */
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_uint_eq(fib_mxcsr & RC_MASK, RC_UP);
	ck_assert_uint_eq(fib_cw & CW_RC, CW_UP);
	/* Valgrind keeps the control words' rounding bits (the checks
	 * above pass there) but does SSE arithmetic rounded to nearest
	 * whatever MXCSR says (its manual, "Limitations"), so the modes'
	 * effect on a division is checked only outside it. */
	if (!under_valgrind())
		ck_assert(one / ten == down);
	set_mxcsr(mx0);
	set_cw((unsigned short)cw0);
	if (!under_valgrind())
		ck_assert(one / ten > down);
	unmake(&ctx_a, stack_a);
}
END_TEST
#endif

/* ------------------------------------------------------------- alignment */

static uintptr_t entry_frame, inner_frame, aligned_local;
static char printed[64];

static void __attribute__((noinline)) inner(void)
{
	_Alignas(16) volatile char probe[16];

	probe[0] = 1;
	inner_frame = (uintptr_t)__builtin_frame_address(0);
	aligned_local = (uintptr_t)probe;
	/* A varargs call with a double: glibc saves the vector registers
	 * with aligned moves, which fault on a misaligned stack. */
	snprintf(printed, sizeof(printed), "%.2f %d", 2.5, probe[0]);
}

static void align_entry(void *arg)
{
	entry_frame = (uintptr_t)__builtin_frame_address(0);
	inner();
	leave(&ctx_a);
}

START_TEST(aligned_at_entry)
{
	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, align_entry, NULL);
	ss__ctx_switch(&main_ctx, &ctx_a);
	/* The frame address is the sp after the entry's return address and
	 * saved frame pointer (x86-64) or frame record (AArch64): a multiple
	 * of 16 exactly when the sp was as the ABI wants at the call. */
	ck_assert_msg(entry_frame % 16 == 0, "entry frame at %#lx",
	              (unsigned long)entry_frame);
	ck_assert_msg(inner_frame % 16 == 0, "inner frame at %#lx",
	              (unsigned long)inner_frame);
	ck_assert_uint_eq(aligned_local % 16, 0);
	ck_assert_str_eq(printed, "2.50 1");
	ck_assert_uint_gt(entry_frame, (uintptr_t)stack_a->lo);
	ck_assert_uint_lt(entry_frame, (uintptr_t)stack_a->lo + stack_a->size);
	unmake(&ctx_a, stack_a);
}
END_TEST

/* ------------------------------------------------------------- stacks */

static uintptr_t deepest, stack_lo;
static long max_depth;

/* Recurse, touching each frame, until what is left below is about two
 * frames and a margin. */
static long __attribute__((noinline)) dive(uintptr_t prev, long depth)
{
	volatile char buf[256];
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	uintptr_t frame = prev - here;
	long r;

	buf[0] = (char)depth;
	buf[sizeof(buf) - 1] = (char)depth;
	if (here < deepest)
		deepest = here;
	if (here - stack_lo < 2 * frame + 4096)
		return depth;
	r = dive(here, depth + 1);
	return r + buf[0] - buf[sizeof(buf) - 1];
}

static void deep_entry(void *arg)
{
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);

	deepest = top;
	max_depth = dive(top, 1);
	leave(&ctx_a);
}

START_TEST(deep_recursion)
{
	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, deep_entry, NULL);
	stack_lo = (uintptr_t)stack_a->lo;
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_gt(max_depth, 10);
	/* Within a few frames of the bottom: most of the stack was used. */
	ck_assert_msg(deepest - stack_lo < 8192,
	              "deepest frame %lu bytes above the bottom, depth %ld",
	              (unsigned long)(deepest - stack_lo), max_depth);
	unmake(&ctx_a, stack_a);
}
END_TEST

/* A sanitizer's SIGSEGV handler would report and exit: the kernel's
 * default action is what these tests expect. */
static void default_segv(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGSEGV, &sa, NULL);
}

/* The stack guard_page_faults dies with: at file scope (volatile, so the
 * store is kept), memcheck's leak check at that death (tests/valgrind.sh)
 * finds its record reachable; a local may live only in a register that is
 * dead by then. */
static struct ss_stack *volatile guard_stack;

START_TEST(guard_page_faults)
{
	struct ss_stack *s = guard_stack = ss__stack_new();
	volatile char *p;

	ck_assert_ptr_nonnull(s);
	p = (volatile char *)s->lo;
	p[0] = 1;                     /* the bottom of the usable area */
	p[s->size - 1] = 1;           /* its top */
	default_segv();
	p[-1] = 1;                    /* the guard page: SIGSEGV */
	ck_abort_msg("writing below lo did not fault");
}
END_TEST

static volatile long forever = LONG_MAX;

static long __attribute__((noinline)) dive_forever(long depth)
{
	volatile char buf[512];

	buf[0] = (char)depth;
	if (depth == forever)
		return 0;
	return dive_forever(depth + 1) + buf[0];
}

static void overflow_entry(void *arg)
{
	dive_forever(0);
	leave(&ctx_a);
}

START_TEST(overflow_faults)
{
	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, overflow_entry, NULL);
	default_segv();
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_abort_msg("a runaway recursion on a fiber did not fault");
}
END_TEST

START_TEST(stack_layout)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct ss_stack *s = ss__stack_new();

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->size, ss__fiber_stack_size());
	ck_assert_uint_eq(s->size, 256u << 10);
	ck_assert_uint_eq(s->map_len, s->size + page);
	ck_assert_ptr_eq(s->lo, (char *)s->map + page);
	ck_assert_uint_eq((uintptr_t)s->lo % page, 0);
	ck_assert_ptr_null(s->next);
	ss__stack_free(s);
}
END_TEST

START_TEST(cache_bounded)
{
	struct ss_stack_cache c = { NULL, 0 };
	struct ss_stack *v[100], *s;
	unsigned i, j, n;

	for (i = 0; i < 100; i++) {
		v[i] = ss__stack_get(&c);
		ck_assert_ptr_nonnull(v[i]);
		for (j = 0; j < i; j++)
			ck_assert_ptr_ne(v[i], v[j]);
	}
	ck_assert_uint_eq(c.n, 0);
	for (i = 0; i < 100; i++) {
		ss__stack_put(&c, v[i]);
		ck_assert_uint_le(c.n, SS_STACK_CACHE_MAX);
	}
	ck_assert_uint_eq(c.n, SS_STACK_CACHE_MAX);
	for (n = 0, s = c.head; s != NULL; s = s->next)
		n++;
	ck_assert_uint_eq(n, SS_STACK_CACHE_MAX);
	/* The last one put back is the first one out. */
	s = ss__stack_get(&c);
	ck_assert_ptr_eq(s, v[SS_STACK_CACHE_MAX - 1]);
	ck_assert_uint_eq(c.n, SS_STACK_CACHE_MAX - 1);
	ss__stack_put(&c, s);
	ck_assert_uint_eq(c.n, SS_STACK_CACHE_MAX);
	ss__stack_cache_drain(&c);
	ck_assert_uint_eq(c.n, 0);
	ck_assert_ptr_null(c.head);
	ss__stack_cache_drain(&c);
	ck_assert_uint_eq(c.n, 0);
}
END_TEST

/* A cached stack runs a second fiber after the first one left it in the
 * middle of its frames. */
static void reuse_entry(void *arg)
{
	volatile char buf[1024];

	buf[0] = 1;
	steps += buf[0];
	leave(&ctx_a);
}

START_TEST(cached_stack_reused)
{
	struct ss_stack_cache c = { NULL, 0 };
	struct ss_stack *s;
	int i;

	ss__ctx_init_thread(&main_ctx);
	for (i = 0; i < 100; i++) {
		s = ss__stack_get(&c);
		ck_assert_ptr_nonnull(s);
		ss__ctx_make(&ctx_a, s->lo, s->size, reuse_entry, NULL);
		ss__ctx_switch(&main_ctx, &ctx_a);
		ss__ctx_destroy(&ctx_a);
		ss__stack_put(&c, s);
		ck_assert_uint_eq(c.n, 1);
	}
	ck_assert_int_eq(steps, 100);
	ss__stack_cache_drain(&c);
}
END_TEST

START_TEST(stack_new_enomem)
{
	struct rlimit rl;
	long pages = 0;
	FILE *f;

	if (sanitized())
		return; /* the runtimes reserve terabytes: no RLIMIT_AS */
	setenv("SMOLSCALE_FIBER_STACK", "256M", 1);
	ck_assert_uint_eq(ss__fiber_stack_size(), 256u << 20);
	f = fopen("/proc/self/statm", "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%ld", &pages), 1);
	fclose(f);
	rl.rlim_cur = rl.rlim_max =
		(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (64u << 20);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	errno = 0;
	ck_assert_ptr_null(ss__stack_new());
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* ------------------------------------------------------------- config */

START_TEST(parse_size_good)
{
	static const struct {
		const char *s;
		unsigned long v;
	} good[] = {
		{ "16K", 16384 },
		{ "16k", 16384 },
		{ "16384", 16384 },
		{ " 100K ", 102400 },
		{ "20000", 20000 },
		{ "1M", 1ul << 20 },
		{ "1m", 1ul << 20 },
		{ "256M", 256ul << 20 },
		{ "262144K", 256ul << 20 },
		{ "268435456", 256ul << 20 },
		{ "0016K", 16384 },
	};
	unsigned long lo = 16ul << 10, hi = 256ul << 20, v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 0;
		ck_assert_msg(ss__parse_size(good[i].s, lo, hi, &v) == 0,
		              "\"%s\" refused", good[i].s);
		ck_assert_uint_eq(v, good[i].v);
	}
}
END_TEST

START_TEST(parse_size_bad)
{
	static const char *const bad[] = {
		"", " ", "0", "0K", "12x", "1T", "1G", "-4", "+16K", "16KB",
		"K", "16 K", "1.5M", "16383", "15K", "257M", "268435457",
		"262145K", "18446744073709551615", "18446744073709551616",
		"99999999999999999999999", "17592186044416M",
		"18014398509481984K",
	};
	unsigned long lo = 16ul << 10, hi = 256ul << 20, v;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		ck_assert_msg(ss__parse_size(bad[i], lo, hi, &v) == -1,
		              "\"%s\" accepted as %lu", bad[i], v);
		ck_assert_uint_eq(v, 12345);
	}
}
END_TEST

START_TEST(env_default)
{
	unsetenv("SMOLSCALE_FIBER_STACK");
	ck_assert_uint_eq(ss__fiber_stack_size(), 256u << 10);
}
END_TEST

START_TEST(env_rounded_to_pages)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	setenv("SMOLSCALE_FIBER_STACK", "20000", 1);
	ck_assert_uint_eq(ss__fiber_stack_size(),
	                  (20000 + page - 1) / page * page);
	/* Read once. */
	setenv("SMOLSCALE_FIBER_STACK", "1M", 1);
	ck_assert_uint_eq(ss__fiber_stack_size(),
	                  (20000 + page - 1) / page * page);
}
END_TEST

START_TEST(env_bad_uses_default)
{
	setenv("SMOLSCALE_FIBER_STACK", "12x", 1);
	ck_assert_uint_eq(ss__fiber_stack_size(), 256u << 10);
}
END_TEST

START_TEST(env_small_stack_works)
{
	setenv("SMOLSCALE_FIBER_STACK", "16K", 1);
	ck_assert_uint_eq(ss__fiber_stack_size(), 16u << 10);
	ss__ctx_init_thread(&main_ctx);
	make(&ctx_a, &stack_a, fresh_entry, NULL);
	ck_assert_uint_eq(stack_a->size, 16u << 10);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ss__ctx_switch(&main_ctx, &ctx_a);
	ck_assert_int_eq(steps, 3);
	unmake(&ctx_a, stack_a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fiber");
	TCase *sw = tcase_new("switch");
	TCase *st = tcase_new("stack");
	TCase *cfg = tcase_new("config");

	tcase_add_test(sw, fresh_and_back);
	tcase_add_test(sw, ping_pong);
	tcase_add_test(sw, migrates_between_threads);
	tcase_add_test(sw, values_kept);
#if defined(__x86_64__)
	tcase_add_test(sw, fp_control_kept);
#endif
	tcase_add_test(sw, aligned_at_entry);
	tcase_add_test(st, deep_recursion);
	tcase_add_test_raise_signal(st, guard_page_faults, SIGSEGV);
	tcase_add_test_raise_signal(st, overflow_faults, SIGSEGV);
	tcase_add_test(st, stack_layout);
	tcase_add_test(st, cache_bounded);
	tcase_add_test(st, cached_stack_reused);
	tcase_add_test(st, stack_new_enomem);
	tcase_add_test(cfg, parse_size_good);
	tcase_add_test(cfg, parse_size_bad);
	tcase_add_test(cfg, env_default);
	tcase_add_test(cfg, env_rounded_to_pages);
	tcase_add_test(cfg, env_bad_uses_default);
	tcase_add_test(cfg, env_small_stack_works);
	suite_add_tcase(s, sw);
	suite_add_tcase(s, st);
	suite_add_tcase(s, cfg);
	return run_suite(s);
}
