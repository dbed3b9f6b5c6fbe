/*
 * fiber.h - the bottom layer of fibers: a machine context switch and the
 * stacks that fibers run on, with a small per-owner cache of them.
 *
 * A context (struct ss_ctx) is a place to save one flow of control: a fiber
 * made with ss__ctx_make, or a thread's own stack (ss__ctx_init_thread).
 * ss__ctx_switch(from, to) saves the running flow in from and resumes to,
 * on the same OS thread.  A suspended context may be resumed on another
 * thread; the handoff (a queue) must order it, release then acquire, as for
 * any other data: the fields below are plain and belong to whoever runs or
 * holds the context.
 *
 * Switch: x86-64 SysV and AArch64 (ELF, LP64) have a few lines of assembly
 * in fiber.c that save only the callee-saved state; anything else, or a
 * build with -DSS_FIBER_UCONTEXT, uses getcontext/makecontext/swapcontext
 * (slower: glibc's swapcontext makes a sigprocmask system call).  The signal
 * mask is not part of an assembly context: it belongs to the thread.  On
 * AArch64 FPCR/FPSR are not switched either (thread-wide, as in most fiber
 * libraries).  CET shadow stacks (x86) are not supported: fiber.c carries
 * no SHSTK property note, so a link that includes it is not marked
 * shadow-stack compatible and the kernel never enables them.
 *
 * Code on a fiber that may resume on another thread must not keep the
 * address of a thread-local variable across a switch (GCC treats it as
 * constant within a function): read TLS through a noinline function.
 *
 * Sanitizers: the annotations are inside this API; the caller's duties are:
 *   - the scheduler's own flow on a worker (or any thread) is saved in a
 *     context set up by ss__ctx_init_thread, on that thread, before its
 *     first switch (TSan: it takes __tsan_get_current_fiber; ASan: its
 *     stack bounds are learned by the first context it switches to);
 *   - a fiber's context is set up by ss__ctx_make (TSan: creates a fiber;
 *     ASan: records the stack and unpoisons it, as it may be reused);
 *   - a fiber that is done leaves with ss__ctx_exit rather than a last
 *     ss__ctx_switch (ASan: frees its fake stack; a last plain switch would
 *     leak it, nothing worse);
 *   - once a made context will never run again, and from another context,
 *     ss__ctx_destroy(c) (TSan: destroys its fiber; it must not be the
 *     current one) before its memory or stack is reused; ss__ctx_make on
 *     the same struct again needs it first;
 *   - a context from ss__ctx_init_thread needs no destroy (its TSan fiber
 *     is the thread's own).
 * Every switch synchronizes for TSan (flags 0): what from did happens
 * before what to does next, so a stack or context handed on through a
 * switch is never a race.  Stacks are LSan root regions (ASan builds), so
 * pointers held only by a suspended fiber's locals are not leaks.
 * Valgrind (SS_VALGRIND, internal.h): every stack is registered from
 * ss__stack_new to ss__stack_free, and ss__ctx_make marks a reused one
 * undefined again.
 */
#ifndef SS_FIBER_H
#define SS_FIBER_H

#include <stddef.h>

#include "internal.h"

#if !defined(SS_FIBER_UCONTEXT) &&                                     \
	!(defined(__ELF__) && !defined(__ILP32__) &&                   \
	  (defined(__x86_64__) || defined(__aarch64__)))
#define SS_FIBER_UCONTEXT 1
#endif

#if defined(SS_FIBER_UCONTEXT)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SS_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SS_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SS_FIBER_TSAN 1
#endif
#endif

struct ss_ctx;

/* What the sanitizers need per context; empty (GNU C) in a plain build. */
struct ss_fiber_san {
#if defined(SS_FIBER_ASAN)
	const void *bottom;   /* this context's stack (lowest byte), or NULL */
	size_t size;          /*   until learned (thread contexts) */
	void *fake_stack;     /* ASan's fake stack while switched away */
	struct ss_ctx *prev;  /* the context that last switched to this one:
	                       * set by the switcher, read on arrival */
#endif
#if defined(SS_FIBER_TSAN)
	void *fiber;          /* TSan's fiber for this context */
	bool owned;           /* made by ss__ctx_make: ss__ctx_destroy frees */
#endif
};

/* A saved machine context. */
struct ss_ctx {
	void *sp;       /* saved stack pointer; callee-saved registers are on
	                 * that stack (unused with ucontext) */
#if defined(SS_FIBER_UCONTEXT)
	ucontext_t uc;
#endif
	void (*entry)(void *); /* made contexts: what the first switch runs */
	void *arg;
	struct ss_fiber_san san;
};

/* Prepare c to run entry(arg) on the stack [lo, lo+size) when first
 * switched to; entry must never return (it switches away for good, with
 * ss__ctx_exit; returning aborts).  The top, lo + size, is aligned down
 * to 16 bytes. */
SS_HIDDEN void ss__ctx_make(struct ss_ctx *c, void *lo, size_t size,
                            void (*entry)(void *), void *arg);

/* Make c the save slot of the flow running now on this thread's own stack
 * (a worker's scheduler loop): call it on that thread, before switching
 * away from it. */
SS_HIDDEN void ss__ctx_init_thread(struct ss_ctx *c);

/* Save the current context in from and resume to.  Returns when someone
 * switches back to from. */
SS_HIDDEN void ss__ctx_switch(struct ss_ctx *from, struct ss_ctx *to);

/* The last switch of a made context (from), which will never run again:
 * as ss__ctx_switch, but never returns. */
SS_HIDDEN void ss__ctx_exit(struct ss_ctx *from, struct ss_ctx *to)
	__attribute__((noreturn));

/* Release what ss__ctx_make set up for c (sanitizer state), once c will
 * never run again; called from another context.  A no-op for contexts from
 * ss__ctx_init_thread and in a plain build. */
SS_HIDDEN void ss__ctx_destroy(struct ss_ctx *c);

/* A fiber stack: [lo, lo + size) is usable, a PROT_NONE guard page lies
 * just below lo. */
struct ss_stack {
	void *lo;
	size_t size;           /* usable bytes, above the guard page */
	void *map;             /* the mapping: guard page + usable area */
	size_t map_len;
	struct ss_stack *next; /* cache link */
	unsigned vg_id;        /* valgrind's stack id (SS_VALGRIND): kept
	                        * from ss__stack_new to ss__stack_free, as
	                        * the stack stays registered while cached */
};

/* The fiber stack size in bytes: SMOLSCALE_FIBER_STACK (a size with an
 * optional K or M suffix, 16 KiB..256 MiB, rounded up to pages; default
 * 256 KiB), read once with the other SMOLSCALE_* variables (ss__config). */
SS_HIDDEN size_t ss__fiber_stack_size(void);

/* A stack of ss__fiber_stack_size() bytes, or NULL with errno ENOMEM.
 * Pages are committed only when touched (MAP_NORESERVE). */
SS_HIDDEN struct ss_stack *ss__stack_new(void);
/* Unmap s and free its record. */
SS_HIDDEN void ss__stack_free(struct ss_stack *s);

/* A small cache of stacks, owned by one thread (a worker): no locking.
 * Cached stacks keep the pages their fibers touched. */
struct ss_stack_cache {
	struct ss_stack *head;
	unsigned n;
};

#define SS_STACK_CACHE_MAX 16
/* Stacks kept process-wide behind the per-owner caches (fiber.c). */
#define SS_STACK_GLOBAL_MAX 1024

/* fork child: the process-wide cache's lock may be the parent's. */
SS_HIDDEN void ss__stacks_after_fork(void);

/* A stack from the cache, else from the process-wide one, else a new one
 * (NULL, errno ENOMEM). */
SS_HIDDEN struct ss_stack *ss__stack_get(struct ss_stack_cache *c);
/* Keep s in the cache, else in the process-wide one, else free it. */
SS_HIDDEN void ss__stack_put(struct ss_stack_cache *c, struct ss_stack *s);
/* Free every cached stack. */
SS_HIDDEN void ss__stack_cache_drain(struct ss_stack_cache *c);

#endif
