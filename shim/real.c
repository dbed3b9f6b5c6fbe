/*
 * real.c - find the functions the shim stands in front of.
 *
 * dlsym(RTLD_NEXT, name) from this library gives the next definition after
 * it in the lookup order: glibc's, since the preload comes first (and a
 * test program that links the library directly loads it before libc as
 * well).  If that fails, RTLD_DEFAULT, refusing our own definition, as the
 * sanitizers' interceptors do (RESEARCH.md 4.1).  Never
 * dlopen("libpthread.so.0"): since glibc 2.34 it is an empty stub
 * (RESEARCH.md 4.3).
 *
 * dlsym(RTLD_NEXT) returns a symbol's default version.  On x86-64 and
 * aarch64 every pthread function's versions (GLIBC_2.2.5 or 2.17, and
 * 2.34) are one function, so one pointer serves calls bound to either.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "shim.h"

struct ss_real ss__real;

/* Release: every pointer of ss__real is written before this is set. */
static atomic_bool ready;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *our_base(void)
{
	Dl_info info;

	return dladdr((void *)&ss__real, &info) ? info.dli_fbase : NULL;
}

static void *find(const char *name, void *self)
{
	Dl_info info;
	void *p = dlsym(RTLD_NEXT, name);

	if (p && !(dladdr(p, &info) && info.dli_fbase == self))
		return p;
	p = dlsym(RTLD_DEFAULT, name);
	if (p && dladdr(p, &info) && info.dli_fbase == self)
		return NULL;
	return p;
}

static void resolve(void)
{
	void *self = our_base();

#define FIND(name) ss__real.name = (__typeof__(ss__real.name))find(#name, self)
	FIND(pthread_create);
	FIND(pthread_join);
	FIND(pthread_tryjoin_np);
	FIND(pthread_timedjoin_np);
	FIND(pthread_clockjoin_np);
	FIND(pthread_detach);
	FIND(pthread_self);
	FIND(pthread_exit);
	FIND(pthread_cancel);
	FIND(pthread_kill);
	FIND(pthread_sigqueue);
	FIND(pthread_setname_np);
	FIND(pthread_getname_np);
	FIND(pthread_getattr_np);
	FIND(pthread_getcpuclockid);
	FIND(pthread_setaffinity_np);
	FIND(pthread_getaffinity_np);
	FIND(pthread_setschedparam);
	FIND(pthread_getschedparam);
	FIND(pthread_setschedprio);
	FIND(pthread_key_create);
	FIND(pthread_key_delete);
#undef FIND
	atomic_store_explicit(&ready, true, memory_order_release);
}

void *ss__real_find(const char *name)
{
	void *p = find(name, our_base());

	if (!p && strncmp(name, "g_", 2) == 0) {
		void *glib = dlopen("libglib-2.0.so.0", RTLD_LAZY | RTLD_NOLOAD);

		if (glib) {
			p = dlsym(glib, name);
			dlclose(glib);
		}
	}
	return p;
}

void ss__real_resolve(void)
{
	if (__builtin_expect(atomic_load_explicit(&ready, memory_order_acquire), 1))
		return;
	pthread_once(&once, resolve);
}
