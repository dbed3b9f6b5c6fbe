/*
 * dlopen.c - the preload's dlopen, for the pool interposer (shim/pools.c):
 * a library loaded later may call a described pool, so its GOT must be
 * rewritten before it runs.
 *
 * glibc's dlopen looks at its return address to find the calling object,
 * whose DT_RUNPATH and $ORIGIN it applies (and its namespace).  A C
 * wrapper would make this library the caller.  So dlopen is a few
 * instructions: unless the pool layer is active it jumps to the real
 * dlopen, whose return address is then the caller's own, and nothing
 * changes for any program; when it is active it jumps to the layer's
 * function with the caller's return address as a third argument, and the
 * layer applies that caller's search path itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#include "shim.h"

/* Before the constructor ran (a dlopen from an earlier constructor):
 * find the real one first.  This path is a C call, so the caller seen by
 * glibc is this library; it can only happen before main. */
__attribute__((used, visibility("hidden"))) void *ss__dlopen_slow(const char *file,
                                                                  int mode);
void *ss__dlopen_slow(const char *file, int mode)
{
	if (!ss__dlopen_next)
		*(void **)&ss__dlopen_next = dlsym(RTLD_NEXT, "dlopen");
	return ss__dlopen_next ? ss__dlopen_next(file, mode) : NULL;
}

__attribute__((constructor)) static void dlopen_init(void)
{
	if (!ss__dlopen_next)
		*(void **)&ss__dlopen_next = dlsym(RTLD_NEXT, "dlopen");
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl dlopen\n"
        ".type dlopen, @function\n"
        ".p2align 4\n"
        "dlopen:\n"
        "	.cfi_startproc\n"
        "	endbr64\n" /* an indirect-branch target under CET (a NOP else) */
        "	movq ss__pools_dlopen_hook(%rip), %rax\n"
        "	testq %rax, %rax\n"
        "	jnz 1f\n"
        "	movq ss__dlopen_next(%rip), %rax\n"
        "	testq %rax, %rax\n"
        "	jz 2f\n"
        "	jmp *%rax\n"
        "1:	movq (%rsp), %rdx\n"
        "	jmp *%rax\n"
        "2:	jmp ss__dlopen_slow\n"
        "	.cfi_endproc\n"
        ".size dlopen, .-dlopen\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl dlopen\n"
        ".type dlopen, %function\n"
        ".p2align 2\n"
        "dlopen:\n"
        "	.cfi_startproc\n"
        "	bti c\n" /* a call target under BTI (a NOP else) */
        "	adrp x16, ss__pools_dlopen_hook\n"
        "	ldr x16, [x16, :lo12:ss__pools_dlopen_hook]\n"
        "	cbnz x16, 1f\n"
        "	adrp x16, ss__dlopen_next\n"
        "	ldr x16, [x16, :lo12:ss__dlopen_next]\n"
        "	cbz x16, 2f\n"
        "	br x16\n"
        "1:	mov x2, x30\n"
        "	br x16\n"
        "2:	b ss__dlopen_slow\n"
        "	.cfi_endproc\n"
        ".size dlopen, .-dlopen\n");
#else
/* Elsewhere a C wrapper: the pool layer's dlopen hook is not installed
 * (pools.c has no GOT rewriting there), so this only passes through. */
__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
	return ss__dlopen_slow(file, mode);
}
#endif
