/*
 * shim.h - the interface between the preload entry (preload/entry.c) and
 * the translation layers of shim/: the real functions the shim stands in
 * front of, and the pthread layer.
 *
 * Layering (DESIGN.md): preload -> shim -> core.  preload/entry.c defines
 * the exported, interposed names and calls the ss__pt_* functions below;
 * shim/ calls the core and the real functions; the core knows nothing of
 * either.
 */
#ifndef SS_SHIM_H
#define SS_SHIM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#define SS_SHIM_HIDDEN __attribute__((visibility("hidden")))

/*
 * The real functions, found with dlsym(RTLD_NEXT, ...) after the preload
 * library in the lookup order (RESEARCH.md 4.1-4.3).  ss__real_resolve()
 * fills the whole table once, from the constructor or from whichever
 * interposed call comes first (another library's constructor may create a
 * thread before ours runs); later calls return at once.  Each pointer is
 * written before `ss__real_ready` is released and never changes after.
 * A function that cannot be found stays NULL: its interposed name then
 * fails with ENOSYS rather than recursing into itself.
 */
struct ss_real {
	int (*pthread_create)(pthread_t *, const pthread_attr_t *,
	                      void *(*)(void *), void *);
	int (*pthread_join)(pthread_t, void **);
	int (*pthread_tryjoin_np)(pthread_t, void **);
	int (*pthread_timedjoin_np)(pthread_t, void **, const struct timespec *);
	int (*pthread_clockjoin_np)(pthread_t, void **, clockid_t,
	                            const struct timespec *);
	int (*pthread_detach)(pthread_t);
	pthread_t (*pthread_self)(void);
	void (*pthread_exit)(void *) __attribute__((noreturn));
	int (*pthread_cancel)(pthread_t);
	int (*pthread_kill)(pthread_t, int);
	int (*pthread_sigqueue)(pthread_t, int, const union sigval);
	int (*pthread_setname_np)(pthread_t, const char *);
	int (*pthread_getname_np)(pthread_t, char *, size_t);
	int (*pthread_getattr_np)(pthread_t, pthread_attr_t *);
	int (*pthread_getcpuclockid)(pthread_t, clockid_t *);
	int (*pthread_setaffinity_np)(pthread_t, size_t, const cpu_set_t *);
	int (*pthread_getaffinity_np)(pthread_t, size_t, cpu_set_t *);
	int (*pthread_setschedparam)(pthread_t, int, const struct sched_param *);
	int (*pthread_getschedparam)(pthread_t, int *, struct sched_param *);
	int (*pthread_setschedprio)(pthread_t, int);
	int (*pthread_key_create)(pthread_key_t *, void (*)(void *));
	int (*pthread_key_delete)(pthread_key_t);
};

SS_SHIM_HIDDEN extern struct ss_real ss__real;
SS_SHIM_HIDDEN void ss__real_resolve(void);

/* The next definition of `name` after the preload library (RTLD_NEXT,
 * then RTLD_DEFAULT, never our own), or, for a GLib name, libglib's if it
 * is loaded at all (a library that dlopen()ed GLib RTLD_LOCAL); NULL if
 * none.  For names outside the table above: the GThreadPool layer. */
SS_SHIM_HIDDEN void *ss__real_find(const char *name);

/* The shim's part of the SMOLSCALE_STATS line (after the core's): each
 * layer's counters.  ss__shim_stats_init() installs it in the core. */
SS_SHIM_HIDDEN void ss__shim_stats_init(void);
SS_SHIM_HIDDEN void ss__pt_stats(FILE *f);
SS_SHIM_HIDDEN void ss__gtp_stats(FILE *f);

/* The pool interposer (pools.c): SMOLSCALE_POOLS read at start-up. */
SS_SHIM_HIDDEN void ss__pools_init(void);
SS_SHIM_HIDDEN void ss__pools_stats(FILE *f);
/* The real dlopen (RTLD_NEXT), and while the pool layer is active its
 * dlopen, which the preload's dlopen jumps to with the caller's return
 * address (preload/dlopen.c).  Both set before main, then read-only. */
SS_SHIM_HIDDEN extern void *(*ss__dlopen_next)(const char *, int);
SS_SHIM_HIDDEN extern void *(*ss__pools_dlopen_hook)(const char *, int,
                                                    void *);

/* The real function `name`, resolving the table first if needed. */
#define SS_REAL(name) (ss__real_resolve(), ss__real.name)

/* Call the real function `name` with the arguments, or ENOSYS if it was
 * not found (for the pthread functions that return an error number). */
#define SS_CALL_REAL(name, ...) \
	(SS_REAL(name) ? ss__real.name(__VA_ARGS__) : ENOSYS)

/* ------------------------------------------------------------ pthread */

/* Read the SMOLSCALE_PTHREAD* variables and register the fork handlers;
 * from the constructor, and lazily from the first interposed call. */
SS_SHIM_HIDDEN void ss__pt_init(void);

SS_SHIM_HIDDEN int ss__pt_create(pthread_t *th, const pthread_attr_t *attr,
                                 void *(*fn)(void *), void *arg);
SS_SHIM_HIDDEN int ss__pt_join(pthread_t th, void **ret);
SS_SHIM_HIDDEN int ss__pt_tryjoin(pthread_t th, void **ret);
SS_SHIM_HIDDEN int ss__pt_clockjoin(pthread_t th, void **ret, clockid_t clk,
                                    const struct timespec *abstime);
SS_SHIM_HIDDEN int ss__pt_timedjoin(pthread_t th, void **ret,
                                    const struct timespec *abstime);
SS_SHIM_HIDDEN int ss__pt_detach(pthread_t th);
SS_SHIM_HIDDEN pthread_t ss__pt_self(void);
SS_SHIM_HIDDEN void ss__pt_exit(void *ret) __attribute__((noreturn));
SS_SHIM_HIDDEN int ss__pt_cancel(pthread_t th);
SS_SHIM_HIDDEN int ss__pt_kill(pthread_t th, int sig);
SS_SHIM_HIDDEN int ss__pt_sigqueue(pthread_t th, int sig,
                                   const union sigval val);
SS_SHIM_HIDDEN int ss__pt_setname(pthread_t th, const char *name);
SS_SHIM_HIDDEN int ss__pt_getname(pthread_t th, char *buf, size_t len);
SS_SHIM_HIDDEN int ss__pt_getattr(pthread_t th, pthread_attr_t *attr);
SS_SHIM_HIDDEN int ss__pt_getcpuclockid(pthread_t th, clockid_t *clk);
SS_SHIM_HIDDEN int ss__pt_setaffinity(pthread_t th, size_t size,
                                      const cpu_set_t *set);
SS_SHIM_HIDDEN int ss__pt_getaffinity(pthread_t th, size_t size,
                                      cpu_set_t *set);
SS_SHIM_HIDDEN int ss__pt_setschedparam(pthread_t th, int policy,
                                        const struct sched_param *p);
SS_SHIM_HIDDEN int ss__pt_getschedparam(pthread_t th, int *policy,
                                        struct sched_param *p);
SS_SHIM_HIDDEN int ss__pt_setschedprio(pthread_t th, int prio);
SS_SHIM_HIDDEN int ss__pt_key_create(pthread_key_t *key,
                                     void (*destructor)(void *));
SS_SHIM_HIDDEN int ss__pt_key_delete(pthread_key_t key);

/* -------------------------------------------------------- GThreadPool */

/*
 * GLib's types as its ABI has them, so that no shim file needs GLib's
 * headers (the shim never links GLib: shim/gthreadpool.c).  GThreadPool is
 * the public prefix of every pool; gboolean is int.
 */
typedef void (*GFunc)(void *data, void *user_data);
typedef int (*GCompareDataFunc)(const void *a, const void *b, void *user_data);
typedef void (*GDestroyNotify)(void *data);
typedef struct GError GError;
typedef struct {
	GFunc func;
	void *user_data;
	int exclusive;
} GThreadPool;

SS_SHIM_HIDDEN GThreadPool *ss__gtp_new_full(GFunc func, void *user_data,
                                             GDestroyNotify item_free,
                                             int max_threads, int exclusive,
                                             GError **error);
SS_SHIM_HIDDEN int ss__gtp_push(GThreadPool *pool, void *data, GError **error);
SS_SHIM_HIDDEN int ss__gtp_set_max_threads(GThreadPool *pool, int max_threads,
                                           GError **error);
SS_SHIM_HIDDEN int ss__gtp_get_max_threads(GThreadPool *pool);
SS_SHIM_HIDDEN unsigned ss__gtp_get_num_threads(GThreadPool *pool);
SS_SHIM_HIDDEN unsigned ss__gtp_unprocessed(GThreadPool *pool);
SS_SHIM_HIDDEN void ss__gtp_free(GThreadPool *pool, int immediate, int wait_);
SS_SHIM_HIDDEN void ss__gtp_set_max_unused_threads(int max);
SS_SHIM_HIDDEN int ss__gtp_get_max_unused_threads(void);
SS_SHIM_HIDDEN unsigned ss__gtp_get_num_unused_threads(void);
SS_SHIM_HIDDEN void ss__gtp_stop_unused_threads(void);
SS_SHIM_HIDDEN void ss__gtp_set_sort_function(GThreadPool *pool,
                                              GCompareDataFunc func,
                                              void *user_data);
SS_SHIM_HIDDEN void ss__gtp_set_max_idle_time(unsigned interval);
SS_SHIM_HIDDEN unsigned ss__gtp_get_max_idle_time(void);
SS_SHIM_HIDDEN int ss__gtp_move_to_front(GThreadPool *pool, void *data);

#endif /* SS_SHIM_H */
