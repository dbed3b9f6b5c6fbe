/*
 * gthreadpool.c - the g_thread_pool_* names libsmolscale-preload.so
 * exports: GLib 2.74's GThreadPool API, each a plain forward to the
 * GThreadPool layer (shim/gthreadpool.c), which passes what is not its own
 * to GLib.  Unversioned, like GLib's own.  No constructor is needed: the
 * layer starts at its first call.  tests/gtp/ builds this file alone into
 * a test library, without the pthread names (which a sanitizer runtime
 * would call before it is ready).
 */
#include "shim.h"

#define SS_EXPORT __attribute__((visibility("default")))

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
