/*
 * fiber.c - the machine context switch and fiber stacks (see fiber.h).
 *
 * The assembly switch, ss__ctx_swap(&from->sp, to->sp), pushes the
 * callee-saved state on the running stack, stores the stack pointer, loads
 * the other one and pops the same frame from there.  A made context starts
 * with a forged frame whose return address is ss__ctx_tramp, which calls
 * ss__ctx_start(c) with c taken from a callee-saved register (rbx / x19).
 *
 * x86-64 frame, from the saved sp up (64 bytes; the sp is 16-aligned):
 *   [0] MXCSR (32 bits) and x87 control word (16 bits at +4)
 *   [8] r15 r14 r13 r12 rbx rbp   [56] return address
 * AArch64 frame (160 bytes): x19..x28, x29, x30 (the return address),
 * d8..d15.
 * The status bits of MXCSR are caller-saved, so carrying them along is
 * harmless; FPCR/FPSR on AArch64 are left to the thread.
 *
 * The sanitizer hooks sit on both sides of every swap: san_leave just
 * before, san_arrive just after (or first thing in ss__ctx_start), so that
 * nothing instrumented runs between a hook and the swap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"

#if defined(SS_FIBER_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif
#if defined(SS_FIBER_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(SS_VALGRIND)
/* Client requests: no-ops unless the program runs under valgrind. */
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/* The first code of a made context, on its own stack; never returns. */
SS_HIDDEN void ss__ctx_start(struct ss_ctx *c) __attribute__((noreturn));

/* ------------------------------------------------------------- switch */

#if !defined(SS_FIBER_UCONTEXT)
SS_HIDDEN void ss__ctx_swap(void **save_sp, void *sp);
SS_HIDDEN void ss__ctx_tramp(void);
#endif

#if !defined(SS_FIBER_UCONTEXT) && defined(__x86_64__)
__asm__(
	".text\n"
	".globl ss__ctx_swap\n"
	".hidden ss__ctx_swap\n"
	".type ss__ctx_swap, @function\n"
	".p2align 4\n"
	"ss__ctx_swap:\n"
	".cfi_startproc\n"
	"	pushq %rbp\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %rbp, 0\n"
	"	pushq %rbx\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %rbx, 0\n"
	"	pushq %r12\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %r12, 0\n"
	"	pushq %r13\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %r13, 0\n"
	"	pushq %r14\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %r14, 0\n"
	"	pushq %r15\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_rel_offset %r15, 0\n"
	"	subq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"	stmxcsr (%rsp)\n"
	"	fnstcw 4(%rsp)\n"
	"	movq %rsp, (%rdi)\n"
	/* Same frame layout on the other stack: the CFI stays true. */
	"	movq %rsi, %rsp\n"
	"	ldmxcsr (%rsp)\n"
	"	fldcw 4(%rsp)\n"
	"	addq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"	popq %r15\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %r15\n"
	"	popq %r14\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %r14\n"
	"	popq %r13\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %r13\n"
	"	popq %r12\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %r12\n"
	"	popq %rbx\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %rbx\n"
	"	popq %rbp\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_restore %rbp\n"
	"	ret\n"
	".cfi_endproc\n"
	".size ss__ctx_swap, .-ss__ctx_swap\n"
	/* The outermost frame of a fiber: rip undefined ends backtraces.
	 * The nop keeps return address - 1 inside this FDE. */
	".globl ss__ctx_tramp\n"
	".hidden ss__ctx_tramp\n"
	".type ss__ctx_tramp, @function\n"
	".p2align 4\n"
	".cfi_startproc\n"
	".cfi_undefined %rip\n"
	"	nop\n"
	"ss__ctx_tramp:\n"
	"	movq %rbx, %rdi\n"
	"	call ss__ctx_start\n"
	"	ud2\n"
	".cfi_endproc\n"
	".size ss__ctx_tramp, .-ss__ctx_tramp\n");

#define SS_FRAME_WORDS 8  /* the saved frame, return address included */
#define SS_FRAME_RA 7
#define SS_FRAME_ARG 5    /* rbx */

static void frame_fp_state(uint64_t *f)
{
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	f[0] = (mxcsr & ~0x3fu) | (uint64_t)cw << 32; /* no status flags */
}

#elif !defined(SS_FIBER_UCONTEXT) && defined(__aarch64__)
__asm__(
	".text\n"
	".globl ss__ctx_swap\n"
	".hidden ss__ctx_swap\n"
	".type ss__ctx_swap, %function\n"
	".p2align 4\n"
	"ss__ctx_swap:\n"
	".cfi_startproc\n"
	"	hint #34\n" /* bti c */
	"	sub sp, sp, #160\n"
	".cfi_def_cfa_offset 160\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	".cfi_offset x19, -160\n"
	".cfi_offset x20, -152\n"
	".cfi_offset x21, -144\n"
	".cfi_offset x22, -136\n"
	".cfi_offset x23, -128\n"
	".cfi_offset x24, -120\n"
	".cfi_offset x25, -112\n"
	".cfi_offset x26, -104\n"
	".cfi_offset x27, -96\n"
	".cfi_offset x28, -88\n"
	".cfi_offset x29, -80\n"
	".cfi_offset x30, -72\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x2, sp\n"
	"	str x2, [x0]\n"
	/* Same frame layout on the other stack: the CFI stays true. */
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	add sp, sp, #160\n"
	".cfi_def_cfa_offset 0\n"
	".cfi_restore x19\n"
	".cfi_restore x20\n"
	".cfi_restore x21\n"
	".cfi_restore x22\n"
	".cfi_restore x23\n"
	".cfi_restore x24\n"
	".cfi_restore x25\n"
	".cfi_restore x26\n"
	".cfi_restore x27\n"
	".cfi_restore x28\n"
	".cfi_restore x29\n"
	".cfi_restore x30\n"
	"	ret\n"
	".cfi_endproc\n"
	".size ss__ctx_swap, .-ss__ctx_swap\n"
	/* The outermost frame of a fiber (reached by ret: no BTI landing
	 * pad needed): x30 undefined ends backtraces; the nop keeps return
	 * address - 1 inside this FDE. */
	".globl ss__ctx_tramp\n"
	".hidden ss__ctx_tramp\n"
	".type ss__ctx_tramp, %function\n"
	".p2align 4\n"
	".cfi_startproc\n"
	".cfi_undefined x30\n"
	"	nop\n"
	"ss__ctx_tramp:\n"
	"	mov x0, x19\n"
	"	bl ss__ctx_start\n"
	"	brk #1000\n"
	".cfi_endproc\n"
	".size ss__ctx_tramp, .-ss__ctx_tramp\n");

#define SS_FRAME_WORDS 20
#define SS_FRAME_RA 11    /* x30 */
#define SS_FRAME_ARG 0    /* x19 */

static void frame_fp_state(uint64_t *f)
{
	(void)f;
}
#endif

/* ------------------------------------------------------------- sanitizers */

/* Just before the swap from -> to; last: from never runs again. */
static inline void san_leave(struct ss_ctx *from, struct ss_ctx *to,
                             bool last)
{
#if defined(SS_FIBER_ASAN)
	to->san.prev = from;
	__sanitizer_start_switch_fiber(last ? NULL : &from->san.fake_stack,
	                               to->san.bottom, to->san.size);
#endif
#if defined(SS_FIBER_TSAN)
	__tsan_switch_to_fiber(to->san.fiber, 0);
#endif
	(void)from;
	(void)to;
	(void)last;
}

/* Just after arriving in self (fresh: its first run).  ASan tells where
 * the stack we came from lies: a thread context learns its bounds here. */
static inline void san_arrive(struct ss_ctx *self, bool fresh)
{
#if defined(SS_FIBER_ASAN)
	struct ss_ctx *prev = self->san.prev;
	const void *bottom;
	size_t size;

	__sanitizer_finish_switch_fiber(fresh ? NULL : self->san.fake_stack,
	                                &bottom, &size);
	if (prev != NULL && prev->san.bottom == NULL) {
		prev->san.bottom = bottom;
		prev->san.size = size;
	}
#endif
	(void)self;
	(void)fresh;
}

static void san_make(struct ss_ctx *c, void *lo, size_t size)
{
#if defined(SS_FIBER_ASAN)
	/* A reused stack keeps the redzones of frames it never returned
	 * from. */
	__asan_unpoison_memory_region(lo, size);
	c->san.bottom = lo;
	c->san.size = size;
	c->san.fake_stack = NULL;
	c->san.prev = NULL;
#endif
#if defined(SS_FIBER_TSAN)
	c->san.fiber = __tsan_create_fiber(0);
	c->san.owned = true;
#endif
#if defined(SS_VALGRIND)
	/* As for ASan: memcheck marked the frames that the stack's last
	 * fiber popped unaddressable, and the new frame (ss__ctx_make) is
	 * written there.  Undefined, not defined: the new fiber has written
	 * nothing yet, so a read of its stack before a write is a finding. */
	VALGRIND_MAKE_MEM_UNDEFINED(lo, size);
#endif
	(void)c;
	(void)lo;
	(void)size;
}

/* ------------------------------------------------------------- contexts */

void ss__ctx_start(struct ss_ctx *c)
{
	san_arrive(c, true);
	c->entry(c->arg);
	abort(); /* entry must switch away for good, never return */
}

#if defined(SS_FIBER_UCONTEXT)
/* makecontext passes int arguments: the context in two halves. */
static void uc_start(unsigned hi, unsigned lo)
{
	ss__ctx_start((struct ss_ctx *)(uintptr_t)((uint64_t)hi << 32 | lo));
}

void ss__ctx_make(struct ss_ctx *c, void *lo, size_t size,
                  void (*entry)(void *), void *arg)
{
	uint64_t p = (uintptr_t)c;

	c->sp = NULL;
	c->entry = entry;
	c->arg = arg;
	san_make(c, lo, size);
	if (getcontext(&c->uc) != 0)
		abort();
	c->uc.uc_stack.ss_sp = lo;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))uc_start, 2, (unsigned)(p >> 32),
	            (unsigned)p);
}

static inline void swap(struct ss_ctx *from, struct ss_ctx *to)
{
	if (swapcontext(&from->uc, &to->uc) != 0)
		abort();
}
#else
void ss__ctx_make(struct ss_ctx *c, void *lo, size_t size,
                  void (*entry)(void *), void *arg)
{
	/* 16 spare bytes at the top; the frame leaves the trampoline's sp
	 * 16-aligned before its call, as the ABI wants. */
	uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
	uint64_t *f = (uint64_t *)(top - 16) - SS_FRAME_WORDS;
	unsigned i;

	/* First: it makes the whole stack writable again for ASan and
	 * memcheck, and memcheck's "undefined" must not cover the frame. */
	san_make(c, lo, size);
	for (i = 0; i < SS_FRAME_WORDS + 2; i++)
		f[i] = 0;
	frame_fp_state(f);
	f[SS_FRAME_ARG] = (uintptr_t)c;
	f[SS_FRAME_RA] = (uintptr_t)ss__ctx_tramp;
	c->sp = f;
	c->entry = entry;
	c->arg = arg;
}

static inline void swap(struct ss_ctx *from, struct ss_ctx *to)
{
	ss__ctx_swap(&from->sp, to->sp);
}
#endif

void ss__ctx_init_thread(struct ss_ctx *c)
{
	c->sp = NULL;
	c->entry = NULL;
	c->arg = NULL;
#if defined(SS_FIBER_ASAN)
	c->san.bottom = NULL; /* learned in san_arrive */
	c->san.size = 0;
	c->san.fake_stack = NULL;
	c->san.prev = NULL;
#endif
#if defined(SS_FIBER_TSAN)
	c->san.fiber = __tsan_get_current_fiber();
	c->san.owned = false;
#endif
}

void ss__ctx_switch(struct ss_ctx *from, struct ss_ctx *to)
{
	san_leave(from, to, false);
	swap(from, to);
	san_arrive(from, false);
}

void ss__ctx_exit(struct ss_ctx *from, struct ss_ctx *to)
{
	san_leave(from, to, true);
	swap(from, to);
	abort();
}

void ss__ctx_destroy(struct ss_ctx *c)
{
#if defined(SS_FIBER_TSAN)
	if (c->san.owned && c->san.fiber != NULL)
		__tsan_destroy_fiber(c->san.fiber);
	c->san.fiber = NULL;
	c->san.owned = false;
#endif
	(void)c;
}

/* ------------------------------------------------------------- stacks */

/* Stacks mapped now (ss_stats' fiber_stacks); relaxed, a counter. */
static atomic_ulong n_stacks;

uint64_t ss__fiber_stacks_mapped(void)
{
	return atomic_load_explicit(&n_stacks, memory_order_relaxed);
}

size_t ss__fiber_stack_size(void)
{
	return ss__config()->fiber_stack;
}

struct ss_stack *ss__stack_new(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = ss__fiber_stack_size();
	struct ss_stack *s = malloc(sizeof(*s));
	void *map;

	if (s == NULL)
		goto fail;
	map = mmap(NULL, page + size, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
	           -1, 0);
	if (map == MAP_FAILED)
		goto fail;
	if (mprotect(map, page, PROT_NONE) != 0) {
		munmap(map, page + size);
		goto fail;
	}
	s->map = map;
	s->map_len = page + size;
	s->lo = (char *)map + page;
	s->size = size;
	s->next = NULL;
#if defined(SS_FIBER_ASAN)
	__lsan_register_root_region(s->lo, s->size);
#endif
#if defined(SS_VALGRIND)
	/* So that memcheck sees a switch onto or off this stack as a change
	 * of stack, not as a huge frame pushed or popped on the old one.
	 * Registered once for the stack's life, cached spells included: a
	 * cached stack is the same memory, whichever fiber runs on it next. */
	s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + s->size);
#else
	s->vg_id = 0;
#endif
	atomic_fetch_add_explicit(&n_stacks, 1, memory_order_relaxed);
	return s;
fail:
	free(s);
	errno = ENOMEM;
	return NULL;
}

void ss__stack_free(struct ss_stack *s)
{
#if defined(SS_FIBER_ASAN)
	__lsan_unregister_root_region(s->lo, s->size);
	__asan_unpoison_memory_region(s->lo, s->size);
#endif
#if defined(SS_VALGRIND)
	/* Before the unmap: a later mapping at these addresses is not a
	 * stack, and a stale registration would make memcheck take a move
	 * of the stack pointer into it for a switch. */
	VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
	munmap(s->map, s->map_len);
	free(s);
	atomic_fetch_sub_explicit(&n_stacks, 1, memory_order_relaxed);
}

/* Behind the per-worker caches, one process-wide cache of at most
 * SS_STACK_GLOBAL_MAX stacks: workers whose fibers end hand stacks to
 * workers whose fibers start, and many fibers parked at once (a fan-out of
 * a thousand receivers) do not map and unmap their stacks every time.
 * Each cached stack keeps the pages its fibers touched (a few KiB). */
static struct {
	_Atomic uint32_t lock;   /* ss__spin_lock; reset in a fork child */
	struct ss_stack *head;
	unsigned n;
} global;

static struct ss_stack *global_get(void)
{
	struct ss_stack *s;

	ss__spin_lock(&global.lock);
	s = global.head;
	if (s) {
		global.head = s->next;
		global.n--;
	}
	ss__spin_unlock(&global.lock);
	return s;
}

static bool global_put(struct ss_stack *s)
{
	bool kept = false;

	ss__spin_lock(&global.lock);
	if (global.n < SS_STACK_GLOBAL_MAX) {
		s->next = global.head;
		global.head = s;
		global.n++;
		kept = true;
	}
	ss__spin_unlock(&global.lock);
	return kept;
}

void ss__stacks_after_fork(void)
{
	atomic_store_explicit(&global.lock, 0, memory_order_relaxed);
}

struct ss_stack *ss__stack_get(struct ss_stack_cache *c)
{
	struct ss_stack *s = c->head;

	if (s == NULL) {
		s = global_get();
		if (s) {
			s->next = NULL;
			return s;
		}
		return ss__stack_new();
	}
	c->head = s->next;
	c->n--;
	s->next = NULL;
	return s;
}

void ss__stack_put(struct ss_stack_cache *c, struct ss_stack *s)
{
	if (c->n >= SS_STACK_CACHE_MAX) {
		if (!global_put(s))
			ss__stack_free(s);
		return;
	}
	s->next = c->head;
	c->head = s;
	c->n++;
}

void ss__stack_cache_drain(struct ss_stack_cache *c)
{
	struct ss_stack *s;

	while ((s = c->head) != NULL) {
		c->head = s->next;
		ss__stack_free(s);
	}
	c->n = 0;
}
