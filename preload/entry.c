/*
 * entry.c - the names libsmolscale-preload.so exports, and its start-up.
 *
 * The g_thread_pool_* names are in gthreadpool.c.  Every exported name
 * here is a pthread function that takes a pthread_t (or
 * that a rerouted thread needs: self, exit, the key functions), defined
 * unversioned so that it stands in front of glibc's for calls bound to any
 * of its versions (RESEARCH.md 4.2).  Each is a plain forward to the
 * pthread layer (shim/pthread.c); the layer passes every call it cannot
 * or need not handle to the real function.  preload/Makefile.am exports
 * these names and nothing else.  pthread_equal is in equal.c: pthread.h
 * defines it inline when optimizing.
 *
 * Start-up: the constructor finds the real functions and reads the
 * configuration; an interposed call that comes earlier (another library's
 * constructor) does the same lazily.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "shim.h"

#define SS_EXPORT __attribute__((visibility("default")))

__attribute__((constructor)) static void preload_init(void)
{
	ss__real_resolve();
	ss__pt_init();
	ss__pools_init();
}

SS_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                             void *(*fn)(void *), void *arg)
{
	return ss__pt_create(th, attr, fn, arg);
}

SS_EXPORT int pthread_join(pthread_t th, void **ret)
{
	return ss__pt_join(th, ret);
}

SS_EXPORT int pthread_tryjoin_np(pthread_t th, void **ret)
{
	return ss__pt_tryjoin(th, ret);
}

SS_EXPORT int pthread_timedjoin_np(pthread_t th, void **ret,
                                   const struct timespec *abstime)
{
	return ss__pt_timedjoin(th, ret, abstime);
}

SS_EXPORT int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clk,
                                   const struct timespec *abstime)
{
	return ss__pt_clockjoin(th, ret, clk, abstime);
}

SS_EXPORT int pthread_detach(pthread_t th)
{
	return ss__pt_detach(th);
}

SS_EXPORT pthread_t pthread_self(void)
{
	return ss__pt_self();
}

SS_EXPORT void pthread_exit(void *ret)
{
	ss__pt_exit(ret);
}

SS_EXPORT int pthread_cancel(pthread_t th)
{
	return ss__pt_cancel(th);
}

SS_EXPORT int pthread_kill(pthread_t th, int sig)
{
	return ss__pt_kill(th, sig);
}

SS_EXPORT int pthread_sigqueue(pthread_t th, int sig, const union sigval val)
{
	return ss__pt_sigqueue(th, sig, val);
}

SS_EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
	return ss__pt_setname(th, name);
}

SS_EXPORT int pthread_getname_np(pthread_t th, char *buf, size_t len)
{
	return ss__pt_getname(th, buf, len);
}

SS_EXPORT int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
	return ss__pt_getattr(th, attr);
}

SS_EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
	return ss__pt_getcpuclockid(th, clk);
}

SS_EXPORT int pthread_setaffinity_np(pthread_t th, size_t size,
                                     const cpu_set_t *set)
{
	return ss__pt_setaffinity(th, size, set);
}

SS_EXPORT int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set)
{
	return ss__pt_getaffinity(th, size, set);
}

SS_EXPORT int pthread_setschedparam(pthread_t th, int policy,
                                    const struct sched_param *p)
{
	return ss__pt_setschedparam(th, policy, p);
}

SS_EXPORT int pthread_getschedparam(pthread_t th, int *policy,
                                    struct sched_param *p)
{
	return ss__pt_getschedparam(th, policy, p);
}

SS_EXPORT int pthread_setschedprio(pthread_t th, int prio)
{
	return ss__pt_setschedprio(th, prio);
}

SS_EXPORT int pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
	return ss__pt_key_create(key, destructor);
}

SS_EXPORT int pthread_key_delete(pthread_key_t key)
{
	return ss__pt_key_delete(key);
}
