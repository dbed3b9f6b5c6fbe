/*
 * entry.c - the names libsmolscale-preload.so exports, and its start-up.
 *
 * Two families of names.  The g_thread_pool_* functions of GLib 2.74 go
 * to the GThreadPool layer (shim/gthreadpool.c), which passes what is not
 * its own to GLib.  Every other exported name is a pthread function that
 * takes a pthread_t (or
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
	ss__gtp_init();
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

/* ---------------------------------------------------------- GThreadPool */

/* GLib 2.74's prototypes (glib/gthreadpool.h), in the shim's ABI types. */
SS_EXPORT GThreadPool *g_thread_pool_new(GFunc, void *, int, int, GError **);
SS_EXPORT GThreadPool *g_thread_pool_new_full(GFunc, void *, GDestroyNotify,
                                              int, int, GError **);
SS_EXPORT int g_thread_pool_push(GThreadPool *, void *, GError **);
SS_EXPORT int g_thread_pool_set_max_threads(GThreadPool *, int, GError **);
SS_EXPORT int g_thread_pool_get_max_threads(GThreadPool *);
SS_EXPORT unsigned g_thread_pool_get_num_threads(GThreadPool *);
SS_EXPORT unsigned g_thread_pool_unprocessed(GThreadPool *);
SS_EXPORT void g_thread_pool_free(GThreadPool *, int, int);
SS_EXPORT void g_thread_pool_set_max_unused_threads(int);
SS_EXPORT int g_thread_pool_get_max_unused_threads(void);
SS_EXPORT unsigned g_thread_pool_get_num_unused_threads(void);
SS_EXPORT void g_thread_pool_stop_unused_threads(void);
SS_EXPORT void g_thread_pool_set_sort_function(GThreadPool *, GCompareDataFunc,
                                               void *);
SS_EXPORT void g_thread_pool_set_max_idle_time(unsigned);
SS_EXPORT unsigned g_thread_pool_get_max_idle_time(void);
SS_EXPORT int g_thread_pool_move_to_front(GThreadPool *, void *);

SS_EXPORT GThreadPool *g_thread_pool_new(GFunc func, void *user_data,
                                         int max_threads, int exclusive,
                                         GError **error)
{
	return ss__gtp_new_full(func, user_data, NULL, max_threads, exclusive,
	                        error);
}

SS_EXPORT GThreadPool *g_thread_pool_new_full(GFunc func, void *user_data,
                                              GDestroyNotify item_free,
                                              int max_threads, int exclusive,
                                              GError **error)
{
	return ss__gtp_new_full(func, user_data, item_free, max_threads,
	                        exclusive, error);
}

SS_EXPORT int g_thread_pool_push(GThreadPool *pool, void *data, GError **error)
{
	return ss__gtp_push(pool, data, error);
}

SS_EXPORT int g_thread_pool_set_max_threads(GThreadPool *pool, int max_threads,
                                            GError **error)
{
	return ss__gtp_set_max_threads(pool, max_threads, error);
}

SS_EXPORT int g_thread_pool_get_max_threads(GThreadPool *pool)
{
	return ss__gtp_get_max_threads(pool);
}

SS_EXPORT unsigned g_thread_pool_get_num_threads(GThreadPool *pool)
{
	return ss__gtp_get_num_threads(pool);
}

SS_EXPORT unsigned g_thread_pool_unprocessed(GThreadPool *pool)
{
	return ss__gtp_unprocessed(pool);
}

SS_EXPORT void g_thread_pool_free(GThreadPool *pool, int immediate, int wait_)
{
	ss__gtp_free(pool, immediate, wait_);
}

SS_EXPORT void g_thread_pool_set_max_unused_threads(int max_threads)
{
	ss__gtp_set_max_unused_threads(max_threads);
}

SS_EXPORT int g_thread_pool_get_max_unused_threads(void)
{
	return ss__gtp_get_max_unused_threads();
}

SS_EXPORT unsigned g_thread_pool_get_num_unused_threads(void)
{
	return ss__gtp_get_num_unused_threads();
}

SS_EXPORT void g_thread_pool_stop_unused_threads(void)
{
	ss__gtp_stop_unused_threads();
}

SS_EXPORT void g_thread_pool_set_sort_function(GThreadPool *pool,
                                               GCompareDataFunc func,
                                               void *user_data)
{
	ss__gtp_set_sort_function(pool, func, user_data);
}

SS_EXPORT void g_thread_pool_set_max_idle_time(unsigned interval)
{
	ss__gtp_set_max_idle_time(interval);
}

SS_EXPORT unsigned g_thread_pool_get_max_idle_time(void)
{
	return ss__gtp_get_max_idle_time();
}

SS_EXPORT int g_thread_pool_move_to_front(GThreadPool *pool, void *data)
{
	return ss__gtp_move_to_front(pool, data);
}
