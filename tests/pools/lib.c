/*
 * lib.c - the test library behind pools/user-linked and
 * pools/user_dl-linked (linked.sh): the preload's dlopen (so that a
 * library the program loads later is rewritten too) and its start-up of
 * the pool interposer, over the same shim and core, and nothing else: no
 * pthread names, which a sanitizer runtime calls before it is ready and
 * which TSan's runtime must own.  Linked into a program ahead of the pool
 * library, it is in the process before any pool is called; in a sanitizer
 * build the runtime comes first in the lookup order and its dlopen
 * interceptor reaches this one as the next definition.
 */
#include "../../preload/dlopen.c"

#include "shim.h"

__attribute__((constructor)) static void pools_lib_init(void)
{
	ss__real_resolve();
	ss__pools_init();
}
