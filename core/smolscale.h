/*
 * smolscale.h - a global, auto-scaling, preemptive, work-balancing task
 * scheduler for C.  The only public header of libsmolscale.
 *
 * One executor per process, created by the first call that needs it.  Tasks
 * run on hidden worker threads ("ss-worker-N").  Workers never steal from
 * each other: a hidden balancer thread ("ss-balancer") moves batches from
 * long queues to idle workers, and a hidden monitor thread ("ss-monitor")
 * hands the queue of a worker stuck in one task to another worker, adding a
 * thread when the stuck one is blocked off the CPU.  That compensation is
 * best-effort with a detection delay of SMOLSCALE_STALL_MS (10 ms), half
 * of it for a worker blocked off the CPU;
 * call ss_blocking_begin()/ss_blocking_end() around a known blocking call to
 * hand off at once.
 *
 * Errors are errno-style codes: functions returning int return 0 or a
 * positive errno value; functions returning a pointer return NULL and set
 * errno.  Misuse (NULL or stale handles, a second join) returns a code and
 * never crashes.
 *
 * All functions are thread-safe and may be called from tasks and from
 * ordinary threads alike.
 */
#ifndef SMOLSCALE_H
#define SMOLSCALE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SS_API __attribute__((visibility("default")))
#else
#define SS_API
#endif

/* ---------------------------------------------------------------- tasks */

/*
 * An opaque task handle.  Handles are generation-checked: after ss_join()
 * or ss_detach() consumed a handle, using it again returns ESRCH instead of
 * touching another task.  A handle is never NULL and never equal to a valid
 * pointer (its low bit is set).
 */
typedef struct ss_task ss_task;

/*
 * Spawn fn(arg) as a task.  From a worker the task goes to that worker's
 * queue; from any other thread to the global queue.  Returns a handle that
 * must be given to exactly one of ss_join() or ss_detach().
 * Errors (NULL returned, errno set): EINVAL fn is NULL; ENOMEM no memory for
 * the task record; EAGAIN the executor could not start its first threads.
 */
SS_API ss_task *ss_spawn(void *(*fn)(void *), void *arg);

/*
 * Wait for t to finish, store its return value in *result (if result is not
 * NULL) and release the handle.  Joining from inside a task is allowed: a
 * task that has not started yet is run by the joiner itself, and a joiner
 * waiting for one that runs elsewhere is handled like any blocked task
 * (the monitor moves its queue and may add a thread), so joins never
 * deadlock the pool.  No other task runs on a joiner's stack.
 * Returns 0; ECANCELED if t was cancelled before it ran (the handle is
 * released); EINVAL t is NULL, detached, or already being joined; ESRCH t
 * is stale (already joined or detached and finished); EDEADLK a task joins
 * itself.
 */
SS_API int ss_join(ss_task *t, void **result);

/*
 * Let t run on without a joiner; its record is freed when it finishes.
 * Returns 0; EINVAL t is NULL, already detached or being joined; ESRCH t is
 * stale.
 */
SS_API int ss_detach(ss_task *t);

/*
 * Cancel t if it has not started.  Returns 0 if it had not started: it will
 * never run, and ss_join() then returns ECANCELED (the handle must still be
 * joined or detached).  EBUSY if it is running or done; EINVAL t is NULL or
 * detached; ESRCH t is stale.  Cancelling twice returns 0 both times.
 */
SS_API int ss_cancel(ss_task *t);

/*
 * Announce that the calling task is about to block (a system call, a lock,
 * a wait on another thread).  Its worker's queued tasks are handed to other
 * workers at once and the pool may add a thread to keep SMOLSCALE_THREADS
 * workers active.  Calls nest; each begin needs one end.  Both are no-ops
 * outside a worker thread.
 */
SS_API void ss_blocking_begin(void);
SS_API void ss_blocking_end(void);

/* ---------------------------------------------------------------- groups */

/*
 * A group (the seed's Nursery) is a scope for structured concurrency:
 * ss_group_wait() returns when every task spawned into it has finished.
 *
 * Each task returns an int: 0 is success, anything else an error that the
 * task's error policy handles:
 *   SS_GROUP_IGNORE     the error is dropped;
 *   SS_GROUP_PROPAGATE  the group is cancelled: tasks not yet started never
 *                       run, running ones see ss_group_cancelled() != 0, and
 *                       ss_group_wait() returns the first propagated error;
 *   SS_GROUP_CUSTOM     the error callback decides, per error, by returning
 *                       SS_GROUP_IGNORE or SS_GROUP_PROPAGATE.
 * The group's policy (default SS_GROUP_PROPAGATE) applies to tasks spawned
 * with ss_group_spawn(); ss_group_spawn_policy() sets one task's policy.
 */
typedef struct ss_group ss_group;

enum ss_group_policy {
	SS_GROUP_INHERIT = 0, /* ss_group_spawn_policy only: the group's */
	SS_GROUP_IGNORE = 1,
	SS_GROUP_PROPAGATE = 2,
	SS_GROUP_CUSTOM = 3,
};

/* Decides what to do with err, returned by a task of g.  Runs on the worker
 * that ran the task.  Returns SS_GROUP_IGNORE or SS_GROUP_PROPAGATE. */
typedef int (*ss_group_error_fn)(ss_group *g, int err, void *ctx);

/* A new, empty group with policy SS_GROUP_PROPAGATE.  NULL and ENOMEM. */
SS_API ss_group *ss_group_new(void);

/* Set the group's policy; cb (with ctx) is required for SS_GROUP_CUSTOM and
 * ignored otherwise.  Returns 0 or EINVAL. */
SS_API int ss_group_set_policy(ss_group *g, int policy, ss_group_error_fn cb,
                               void *ctx);

/* Spawn fn(arg) into g.  Returns 0; EINVAL g or fn NULL; ECANCELED the
 * group was cancelled by a propagated error (fn will not run); ENOMEM;
 * EAGAIN. */
SS_API int ss_group_spawn(ss_group *g, int (*fn)(void *), void *arg);

/* The same, with this task's own policy (SS_GROUP_INHERIT uses the
 * group's); cb and ctx as in ss_group_set_policy. */
SS_API int ss_group_spawn_policy(ss_group *g, int (*fn)(void *), void *arg,
                                 int policy, ss_group_error_fn cb, void *ctx);

/* Wait until every task spawned into g so far has finished or been
 * cancelled.  Returns 0, the first propagated error, EINVAL for a NULL g,
 * or EDEADLK when called from one of g's own tasks.  Inside a task it runs
 * g's unstarted tasks from its worker's queue itself, then waits like
 * ss_join().  After
 * it returns the group may be used again; the cancelled state and the first
 * error are kept until ss_group_free(). */
SS_API int ss_group_wait(ss_group *g);

/* Nonzero once a propagated error cancelled g (0 for NULL).  Long-running
 * tasks poll it to stop early. */
SS_API int ss_group_cancelled(const ss_group *g);

/* Cancel g as if a task had propagated ECANCELED.  Returns 0 or EINVAL. */
SS_API int ss_group_cancel(ss_group *g);

/* Wait for the group's tasks (as ss_group_wait) and free it.  NULL is a
 * no-op. */
SS_API void ss_group_free(ss_group *g);

/* ---------------------------------------------------------------- fibers */

/*
 * A fiber is a task with a stack of its own (SMOLSCALE_FIBER_STACK, default
 * 256 KiB, with a guard page below it), taken from its worker's cache when
 * it first runs and given back when it ends.  A fiber can suspend: the
 * suspension points below park it and free its worker for other tasks, and
 * whoever wakes it puts it back on a queue: from a worker, into that
 * worker's next-task slot, so it runs right after the waker's task.
 * From a plain task or an ordinary thread the same calls block instead.
 *
 * A fiber may resume on another worker than the one it suspended on (after
 * balancing or a hand-off): thread-local variables, errno included, and
 * pthread_self() may change across any suspension point.  Keep no pointer
 * to a thread-local across one.  Beware that the compiler keeps such
 * pointers for you: glibc declares __errno_location() const, so in a
 * function that calls a suspension point GCC may compute &errno once and
 * use it after the fiber moved to another thread.  Read errno right after
 * the failing call in a function that does not suspend (a helper of its
 * own, not inlined into the suspending one).  Do not hold a mutex across a
 * suspension point either, and do not suspend between ss_blocking_begin()
 * and ss_blocking_end().  The library's own code reads its thread-locals
 * through functions the compiler cannot merge across a switch.
 */

/*
 * Spawn fn(arg) as a fiber.  The handle is a task handle: ss_join(),
 * ss_detach() and ss_cancel() take it.  Errors as ss_spawn().
 *
 * ss_cancel() of a fiber that has started returns EBUSY, as for any task
 * that runs, and also asks the fiber to stop: the channel operation or
 * sleep it is parked in, and every later one, returns ECANCELED (ss_yield
 * just returns; ss_join is not a cancellation point).  The fiber decides
 * how to end; ss_join() then gets what it returned.
 */
SS_API ss_task *ss_go(void *(*fn)(void *), void *arg);

/* Spawn fn(arg) into g as a fiber (see ss_group_spawn). */
SS_API int ss_group_go(ss_group *g, int (*fn)(void *), void *arg);

/*
 * Run fn(arg) as a fiber and wait for it; returns what fn returned.  From
 * an ordinary thread (main()) this is the way into fiber code.  NULL with
 * errno set if the fiber could not be started.
 */
SS_API void *ss_block_on(void *(*fn)(void *), void *arg);

/* Let other tasks run: a fiber goes to the back of its worker's queue; a
 * plain task or thread calls sched_yield(). */
SS_API void ss_yield(void);

/* Sleep at least ns nanoseconds.  A fiber parks on the executor's timer
 * (which may run up to about 1 ms late, batching wake-ups as tokio's
 * timer does); anything else sleeps in clock_nanosleep().  Returns 0. */
SS_API int ss_sleep_ns(uint64_t ns);

/* -------------------------------------------------------------- channels */

/*
 * A channel of fixed-size elements, for fibers, plain tasks and ordinary
 * threads alike, in any mix.  capacity 0 is a rendezvous: a send waits for
 * a receiver to take the element.  FIFO per channel; waiters are served in
 * the order they came.
 */
typedef struct ss_chan ss_chan;

/* A new channel.  NULL and errno: EINVAL elem_size 0 or too large
 * (> 64 KiB), ENOMEM. */
SS_API ss_chan *ss_chan_new(size_t capacity, size_t elem_size);

/* Copy *elem into c, waiting for room.  0; EPIPE c is closed (the
 * element was not sent); EINVAL c or elem NULL. */
SS_API int ss_chan_send(ss_chan *c, const void *elem);

/* Take the oldest element into *elem, waiting for one.  0; EPIPE c is
 * closed and drained; EINVAL. */
SS_API int ss_chan_recv(ss_chan *c, void *elem);

/* As send and recv, without waiting: EAGAIN when they would wait. */
SS_API int ss_chan_try_send(ss_chan *c, const void *elem);
SS_API int ss_chan_try_recv(ss_chan *c, void *elem);

/* Close c: waiting and later senders get EPIPE; receivers drain what is
 * buffered, then get EPIPE.  0; EPIPE already closed; EINVAL. */
SS_API int ss_chan_close(ss_chan *c);

/* Close c if open and free it once no call is inside it any more.  The
 * handle must not be used after this.  NULL is a no-op. */
SS_API void ss_chan_free(ss_chan *c);

/*
 * A one-shot reply slot: one send, one receive (a request carries one so
 * that the server can answer).  ss_oneshot_recv waits for the value;
 * EPIPE when the slot was closed without one.
 */
typedef struct ss_oneshot ss_oneshot;

/* NULL and errno: EINVAL elem_size 0 or > 64 KiB, ENOMEM. */
SS_API ss_oneshot *ss_oneshot_new(size_t elem_size);
/* 0; EBUSY a value was sent already; EPIPE closed; EINVAL. */
SS_API int ss_oneshot_send(ss_oneshot *o, const void *elem);
/* 0; EPIPE closed with no value; EBUSY received already; EINVAL. */
SS_API int ss_oneshot_recv(ss_oneshot *o, void *elem);
/* Wake a waiting receiver with EPIPE if no value came; 0, EINVAL. */
SS_API int ss_oneshot_close(ss_oneshot *o);
/* Close and free once no call is inside it.  NULL is a no-op. */
SS_API void ss_oneshot_free(ss_oneshot *o);

/* ---------------------------------------------------------------- stats */

struct ss_stats {
	uint64_t threads;          /* live worker threads */
	uint64_t active_workers;   /* workers not counted as blocked */
	uint64_t blocked_workers;  /* workers blocked (hinted or detected) */
	uint64_t idle_workers;     /* workers parked */
	uint64_t target_workers;   /* SMOLSCALE_THREADS in effect */
	uint64_t tasks_spawned;
	uint64_t tasks_completed;  /* tasks whose function returned */
	uint64_t tasks_cancelled;  /* tasks cancelled before they ran */
	uint64_t preemptions;      /* stalled workers whose queue was handed off */
	uint64_t compensations;    /* threads added for blocked workers */
	uint64_t balancer_moves;   /* tasks moved by the balancer */
	uint64_t steals;           /* tasks stolen (SMOLSCALE_STEAL=1 only) */
	uint64_t parks;            /* times a worker went to sleep */
	uint64_t wakeups;          /* times a parked worker was woken */
	uint64_t threads_created;  /* worker threads ever started */
	uint64_t threads_exited;   /* worker threads that exited */
	uint64_t peak_threads;     /* most live worker threads at once */
	uint64_t fibers_spawned;   /* fibers created (ss_go, ss_group_go) */
	uint64_t fiber_stacks;     /* fiber stacks mapped now, cached included */
	uint64_t suspends;         /* times a fiber parked */
	uint64_t stalls;           /* tasks seen holding their worker longer
	                            * than SMOLSCALE_STALL_REPORT_MS */
};

/* Fill *out with a snapshot of the counters (each read atomically, the set
 * not as one).  Returns 0 or EINVAL for NULL.  Does not start the executor:
 * before the first spawn every counter is 0. */
SS_API int ss_stats(struct ss_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* SMOLSCALE_H */
