/*
 * internal.h - the structs every part of the core reads: the task record,
 * the worker record and the executor, plus the internal entry points of each
 * mechanism (one .c file each).
 *
 * Threads of the core:
 *   ss-worker-N   runs tasks: its "next" slot, its ring, the global queue
 *   ss-balancer   moves batches from long rings to the global queue and
 *                 wakes parked workers (balance mode only)
 *   ss-monitor    hands off the queue of a worker stuck in one task, adds a
 *                 thread when that worker is blocked off the CPU, retries
 *                 thread creation after EAGAIN
 */
#ifndef SS_INTERNAL_H
#define SS_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "smolscale.h"

#define SS_HIDDEN __attribute__((visibility("hidden")))
#define SS_CACHELINE 64
#define SS_ALIGNED __attribute__((aligned(SS_CACHELINE)))

/* Valgrind: fiber stacks (fiber.c) and the stall capture's alternate
 * signal stacks (diag.c) are registered with it, so that memcheck takes a
 * move of the stack pointer onto one for a change of stack, not for a
 * frame of hundreds of KiB (whose popped part it would then mark
 * unaddressable).  The client requests are a few instructions that do
 * nothing unless valgrind's JIT runs them, so they are compiled into every
 * build where the header exists; without it (valgrind is no build
 * dependency) they are left out. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#define SS_VALGRIND 1
#endif
#endif

struct ss_worker;

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ------------------------------------------------------------- config */

struct ss_config {
	unsigned threads;      /* SMOLSCALE_THREADS: active-worker target */
	unsigned max_threads;  /* SMOLSCALE_MAX_THREADS: hard cap on workers */
	unsigned stall_ms;     /* SMOLSCALE_STALL_MS */
	unsigned idle_ms;      /* SMOLSCALE_IDLE_MS */
	bool steal;            /* SMOLSCALE_STEAL */
	bool stats;            /* SMOLSCALE_STATS */
	size_t fiber_stack;    /* SMOLSCALE_FIBER_STACK: bytes, whole pages */
	unsigned cpus;         /* CPUs this process may use */
	bool stall_report;     /* SMOLSCALE_STALL_REPORT */
	unsigned stall_report_ms; /* SMOLSCALE_STALL_REPORT_MS */
	int stats_signal;      /* SMOLSCALE_STATS_SIGNAL, 0: none */
	/* SMOLSCALE_LOG (read with secure_getenv), "" for stderr. */
	char log_path[4096];
};

/* Read the SMOLSCALE_* variables once (pthread_once); bad values print one
 * line each and fall back to the default. */
SS_HIDDEN const struct ss_config *ss__config(void);

/* Parse one unsigned value in [lo, hi].  Returns 0, or -1 when s does not
 * parse or is out of range.  Exposed for tests and future fuzzing. */
SS_HIDDEN int ss__parse_uint(const char *s, unsigned long lo, unsigned long hi,
                             unsigned long *out);

/* Parse a size in bytes, with an optional suffix K (KiB) or M (MiB), either
 * case, in [lo, hi] bytes.  Returns 0, or -1 like ss__parse_uint. */
SS_HIDDEN int ss__parse_size(const char *s, unsigned long lo, unsigned long hi,
                             unsigned long *out);

/* Parse a signal: a number, or a name with or without "SIG" ("USR2",
 * "SIGUSR2", "RTMIN+3"), either case.  Only signals a program may catch
 * are accepted: not SIGKILL, SIGSTOP, glibc's internal ones, nor those
 * that report faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS).
 * Returns the number, or -1. */
SS_HIDDEN int ss__parse_signal(const char *s);

/* ------------------------------------------------------------- tasks */

/*
 * Task state word, 64 bits: generation << 32 | flags.
 *
 * The generation is bumped each time the record is freed, and every
 * transition is a CAS on the whole word, so an operation through a stale
 * handle can never succeed on a reused record (it sees another generation).
 *
 * Flags:
 *   PHASE   SCHEDULED -> RUNNING -> DONE, or SCHEDULED -> CANCELLED
 *   HANDLE  the user still holds the handle (cleared by join or detach)
 *   SCHED   the scheduler holds a reference: set while the record sits in a
 *           queue or runs on a worker; cleared when a worker completes it
 *           or pops it cancelled or already claimed by a joiner
 *   JOINING a joiner has claimed the join; if it claimed before the task
 *           finished, the completer must publish done_word and wake it
 *   FREE    the record is on a free list
 *   JOINED  a join consumed the handle; the record lives on only for the
 *           scheduler's reference, and the handle is stale (ESRCH)
 *
 * Invariant: a record is freed exactly once, by the CAS that clears the
 * last of HANDLE and SCHED while the phase is final (DONE or CANCELLED),
 * and that same CAS bumps the generation and sets FREE.
 */
enum {
	SS_PH_SCHEDULED = 0,
	SS_PH_RUNNING = 1,
	SS_PH_DONE = 2,
	SS_PH_CANCELLED = 3,
	SS_PHASE = 3,
	SS_HANDLE = 1u << 2,
	SS_SCHED = 1u << 3,
	SS_JOINING = 1u << 4,
	SS_FREE = 1u << 5,
	SS_JOINED = 1u << 6,
	SS_KEEP = 1u << 7, /* fork child only: on the forking thread's stack */
	SS_FIBER = 1u << 8, /* a fiber's record (t->fiber): readable from a
	                     * stale look at the state word, unlike t->fiber */
};

#define SS_GEN(s) ((uint32_t)((s) >> 32))
#define SS_FLAGS(s) ((uint32_t)(s))
#define SS_PH(s) ((uint32_t)(s)&SS_PHASE)

struct ss_task {
	_Atomic uint64_t state;
	/* Futex word for a joiner that claimed JOINING before completion:
	 * 0 while running, 2 once the joiner sleeps on it, 1 when done
	 * (exchanged by the completer, acq_rel: publishes the result). */
	_Atomic uint32_t done_word;
	uint32_t index;        /* slot in the handle table; fixed for life */
	void *(*fn)(void *);   /* written before publication, then read-only */
	void *arg;
	void *result;          /* written by the runner before DONE (release) */
	/* Link in the global queue (see queue.c). */
	_Atomic(struct ss_task *) qnext;
	/* Link in a free list: owned by whichever list holds the record. */
	struct ss_task *link;
	/* The task this one runs inside of on the same stack (an inline
	 * join), or NULL; set by the running thread only. */
	struct ss_task *outer;
	/* Group tasks (fn == ss__group_run): the group while this task
	 * counts in its pending and refs.  Set at spawn after counting;
	 * exchanged to NULL by the one who uncounts it (relaxed: the
	 * counters carry their own order). */
	_Atomic(struct ss_group *) group;
	/* A fiber (ss_go): its state (fibers.c), NULL for a plain task.  Set
	 * before publication, freed with the record. */
	struct ss_fiber *fiber;
	/* A fiber that joins this task and parked for it (done_word 3);
	 * written by that joiner before its CAS of done_word, read by the
	 * completer after its exchange (acq_rel). */
	struct ss_task *join_fiber;
	int (*gfn)(void *);
	void *garg;
	int gpolicy;
	ss_group_error_fn gcb;
	void *gctx;
} SS_ALIGNED;

SS_HIDDEN struct ss_task *ss__task_alloc(void);
SS_HIDDEN void ss__task_free(struct ss_task *t);
/* A retiring worker gives its cached free records to the global list. */
SS_HIDDEN void ss__task_cache_release(struct ss_worker *w);
/* Make t runnable: into the current worker's ring (or global queue). */
SS_HIDDEN void ss__task_submit(struct ss_task *t);
/* Run a popped task on worker w (claims it; skips cancelled ones). */
struct ss_worker;
SS_HIDDEN void ss__task_run(struct ss_worker *w, struct ss_task *t);
/* After fork, in the child: every record that was queued or running in the
 * parent is finished as CANCELLED, and the free lists are rebuilt. */
SS_HIDDEN void ss__tasks_after_fork(struct ss_task *keep);
SS_HIDDEN struct ss_task *ss__current_task(void);
/* The current task's thread is being unwound away for good (pthread_exit
 * or cancellation inside a rerouted thread, shim/pthread.c): complete the
 * task this worker runs at top level, with a NULL result.  False when no
 * task, or a nested one (run inline under another): nothing is done. */
SS_HIDDEN bool ss__task_abandon_current(struct ss_worker *w);
/* On worker w: claim and run one unstarted task of g from w's own ring,
 * newest first; false if there is none. */
SS_HIDDEN bool ss__run_group_task_here(struct ss_worker *w,
                                       struct ss_group *g);

SS_HIDDEN void *ss__group_run(void *task);
/* A record with no user handle (group tasks), in state SCHEDULED. */
SS_HIDDEN struct ss_task *ss__task_new_internal(void *(*fn)(void *),
                                                void *arg);
/* A fiber task's function returned r on worker w: count it and complete
 * it, as run_claimed() does for a plain task (fibers.c calls it from the
 * worker's own stack, after the fiber left its stack for good). */
SS_HIDDEN void ss__task_finish(struct ss_worker *w, struct ss_task *t, void *r);
/* A record for a fiber task (ss_go, ss_group_go): SCHEDULED, with `refs`. */
SS_HIDDEN struct ss_task *ss__task_new_fiber(void *(*fn)(void *), void *arg,
                                             uint32_t refs,
                                             struct ss_fiber *f);
SS_HIDDEN void ss__task_set_current(struct ss_task *t);
/* A group task that will never run (fork child): finish it for its group. */
SS_HIDDEN void ss__group_task_dropped(struct ss_task *t);
/* Wait out forks in progress (fork_prepare), then enter / leave. */
SS_HIDDEN void ss__group_crit_enter(void);
SS_HIDDEN void ss__group_crit_leave(void);
/* A group task ran (r is what ss__group_run returned): count it and
 * finish it for its group, on worker w. */
SS_HIDDEN void ss__group_task_done(struct ss_worker *w, struct ss_task *t,
                                  void *r);

/* ------------------------------------------------------------- queues */

#define SS_RING_CAP 256u
#define SS_RING_MASK (SS_RING_CAP - 1)

/*
 * Bounded ring: one producer (the owning worker, at tail), several
 * consumers (the owner, and the balancer, the monitor or a thief in steal
 * mode) that claim from head by CAS.
 *
 * Invariant: head <= tail, tail - head <= SS_RING_CAP; both only grow (64
 * bits, no wrap).  Slots in [head, tail) hold tasks.  The producer writes a
 * slot only when it lies outside [head, tail) as seen with an acquire load
 * of head, so a consumer's reads of slots it then claims by CAS can never
 * race a rewrite that it would keep: if the producer wrapped onto them, head
 * moved and the CAS fails.  Slots are atomics (relaxed) so a losing
 * consumer's stale read is not a data race.
 */
struct ss_ring {
	_Atomic uint64_t head SS_ALIGNED;
	_Atomic uint64_t tail SS_ALIGNED;
	_Atomic(struct ss_task *) slot[SS_RING_CAP] SS_ALIGNED;
};

SS_HIDDEN bool ss__ring_push(struct ss_ring *r, struct ss_task *t);
SS_HIDDEN struct ss_task *ss__ring_pop(struct ss_ring *r);
SS_HIDDEN unsigned ss__ring_take(struct ss_ring *r, struct ss_task **out,
                                 unsigned max);
SS_HIDDEN unsigned ss__ring_len(struct ss_ring *r);

/* The global injection queue: lock-free pushes, pops under a lock (see
 * queue.c), its length in an atomic for lock-free checks. */
SS_HIDDEN void ss__gq_push(struct ss_task *t);
SS_HIDDEN void ss__gq_push_batch(struct ss_task **v, unsigned n);
/* Pop one task for w and move up to a fair share more into w's ring. */
SS_HIDDEN struct ss_task *ss__gq_pop(struct ss_worker *w);
SS_HIDDEN uint64_t ss__gq_len(void);
/* In a fork child: empty the global queue (its records are handled by
 * ss__tasks_after_fork). */
SS_HIDDEN void ss__gq_reset(void);
/* Move w's next slot and whole ring to the global queue; returns count. */
SS_HIDDEN unsigned ss__worker_handoff(struct ss_worker *w);

/* ------------------------------------------------------------- fibers */

struct ss_fiber;
struct ss_fw;

/* fibers.c: the worker side.  ss__fiber_run() starts or resumes fiber task
 * t on worker w (from ss__task_run, on the worker's own stack) and returns
 * when it parks or ends. */
SS_HIDDEN void ss__fiber_run(struct ss_worker *w, struct ss_task *t);
/* Has fiber task t started (so that a queue entry of it is a resume)?
 * Read by whoever popped t: the queue orders it. */
SS_HIDDEN bool ss__fiber_started(const struct ss_task *t);
/* A fiber's state, before its record exists (ss_go); NULL on ENOMEM. */
SS_HIDDEN struct ss_fiber *ss__fiber_new(void);
/* Free a fiber's state with its record (ss__task_free). */
SS_HIDDEN void ss__fiber_release(struct ss_fiber *f);
/* A worker leaves: its stack cache and scheduler context go. */
SS_HIDDEN void ss__fiber_worker_exit(struct ss_worker *w);
/* The fiber running on this thread now, or NULL (a plain task or an
 * ordinary thread).  Never inlined: fibers migrate between threads. */
SS_HIDDEN struct ss_task *ss__fiber_self(void);
/* Park the calling fiber.  Once its context is saved, its worker calls
 * commit(arg) on the worker's own stack: from then on a waker may find it
 * and ss__fiber_ready() it.  commit returns false to resume it at once
 * (the wait is already over). */
SS_HIDDEN void ss__fiber_park(bool (*commit)(void *), void *arg);
/* Make parked fiber task t runnable: from a worker, into its next-task
 * slot (the task there before moves to its ring); else the global queue. */
SS_HIDDEN void ss__fiber_ready(struct ss_task *t);
/* ss_cancel() of a started fiber: ask it to stop (see smolscale.h). */
SS_HIDDEN void ss__fiber_cancel(struct ss_task *t);
/* Has the calling fiber been asked to stop?  False outside fibers. */
SS_HIDDEN bool ss__fiber_cancelled(void);
/* fork child: the timer thread and its sleepers are the parent's. */
SS_HIDDEN void ss__fibers_after_fork(void);
/* Counters for ss_stats: fibers created; fiber stacks mapped now. */
SS_HIDDEN uint64_t ss__fibers_created(void);
SS_HIDDEN uint64_t ss__fiber_stacks_mapped(void);

/*
 * One waiter, of any kind: a parked fiber or a blocked thread, waiting in
 * a channel, a one-shot slot, the timer or a join.  It lives on the
 * waiter's own stack.  Whoever ends the wait (a waker, or ss_cancel of the
 * fiber) claims it first: CAS `state` WAITING -> CLAIMED (acq_rel), so a
 * wait ends once; the winner writes `result`, then ss__wait_wake().
 */
enum { SS_WAIT_WAITING = 0, SS_WAIT_CLAIMED = 1 };
struct ss_wait {
	_Atomic uint32_t state;
	/* Thread waiters sleep on it: 0, then 1 once woken (release). */
	_Atomic uint32_t word;
	int result;
	struct ss_task *fiber;       /* NULL: a thread waiter */
	/* Channels: the element to give or to fill, and the queue link
	 * (under the channel's lock). */
	void *elem;
	struct ss_wait *next, *prev;
	bool linked;
};
SS_HIDDEN void ss__wait_init(struct ss_wait *wt);

/* Claim wt for a waker; false if someone else ended it first. */
SS_HIDDEN bool ss__wait_claim(struct ss_wait *wt);
/* Wake the claimed waiter with result r.  wt may be gone once this
 * returns. */
SS_HIDDEN void ss__wait_wake(struct ss_wait *wt, int r);
/* Wait until woken: a fiber parks (commit(arg) runs once it is parked,
 * e.g. to let go of the lock that guards wt's container; with the calling
 * fiber exposed to ss_cancel), a thread unlocks by commit(arg) and sleeps.
 * Returns wt->result. */
SS_HIDDEN int ss__wait(struct ss_wait *wt, bool (*commit)(void *), void *arg);

/* ------------------------------------------------------------- workers */

enum {
	SS_SLOT_FREE = 0,   /* never used, or its thread exited */
	SS_SLOT_LIVE = 1,   /* a thread owns it */
	SS_SLOT_ORPHAN = 2, /* after fork: the forking worker's, never reused */
};

struct ss_worker {
	struct ss_ring ring;
	/* Task to run next (woken from this worker).  Set by the owner with
	 * exchange; taken by the owner or, at hand-off, the monitor, with
	 * exchange (acq_rel: the task's fields travel with it). */
	_Atomic(struct ss_task *) next SS_ALIGNED;
	/* Heartbeat: odd while inside a task, bumped at each task start and
	 * end.  Single writer (owner); the monitor and balancer read it
	 * relaxed, except around `blocked` (see monitor.c). */
	_Atomic uint64_t tick;
	/* Blocked marks: SS_BLOCKED_HINT (the owner, ss_blocking_begin) and
	 * SS_BLOCKED_MON (the monitor); the worker counts once in
	 * exec.nblocked while either is set.  seq_cst, see ss__block_mark. */
	_Atomic uint32_t blocked;
	/* The current task stands for a thread of its own (a rerouted
	 * pthread, shim/pthread.c): the owner sets and clears it around the
	 * task (ss__set_thread_like), the monitor reads it relaxed.  A
	 * compensating thread for such a task needs no token: natively it
	 * would have had its own thread anyway. */
	_Atomic bool thread_like;
	/* Futex word: 1 while parked, 0 once woken (set by the waker). */
	_Atomic uint32_t park_word;
	/* SS_SLOT_*; written under exec.lock, read relaxed by the balancer
	 * and monitor (a stale read only skips or visits an idle worker). */
	_Atomic uint32_t slot_state;

	/* Set at start by the owner, read by the monitor after slot_state. */
	int id;
	/* The thread's CPU clock (a clockid_t), or SS_NO_CLOCK: stored by
	 * the owner at start, cleared when the slot is reused; one atomic so
	 * the monitor never pairs a flag with another thread's clock. */
	_Atomic int64_t cpuclock;
	/* The thread's kernel id (for a stack capture's signal), 0 before
	 * start: stored by the owner at start, read relaxed by ss-diag. */
	_Atomic int32_t tid;
	/* Whether the task the owner runs at top level is a fiber: set at
	 * each task start, read by the capture's handler on the owner thread
	 * (never the record itself, which its joiner may free before the
	 * tick moves on). */
	_Atomic bool cur_fiber;
	/* The user's function behind the current unit of work: the task's
	 * function at each task start (a group task's own), refined by a
	 * layer that runs a user's function inside a task of its own
	 * (ss__set_entry).  Owner-written, relaxed; ss-diag reads the value
	 * (never through it) to name a stall before it signals. */
	_Atomic(void *) entry;
	/* An alternate signal stack for the capture handler, which must not
	 * run on a fiber's small stack: mapped once per slot, when stall
	 * reports are on, and kept for the slot's next threads. */
	void *altstack;
	/* Time the owner spent parked (ns, owner-written, relaxed), the
	 * start of the park in progress (0: awake) and of the thread, for
	 * the stats' per-worker lines. */
	_Atomic uint64_t parked_ns;
	_Atomic uint64_t park_since_ns;
	_Atomic uint64_t born_ns;

	/* Idle list link and membership: under exec.idle_lock. */
	struct ss_worker *idle_next;
	bool on_idle_list;

	/* Owner-only. */
	bool start_searching;   /* set by the creator before the thread runs */
	bool retire_after;      /* leave the pool after the current task */
	/* How often work came back within SS_SPIN_LONG_NS of the start of a
	 * search, 0..SS_SCORE_ONE, an EWMA with weight 1/8 (worker.c). */
	unsigned spin_score;
	uint64_t search_start;  /* ns, when the current search began */
	/* ns, when a waker took w off the idle list (0: not woken so):
	 * written by the waker before its release store of park_word = 0,
	 * read and cleared by the owner after its acquire load of it. */
	uint64_t woken_at;
	struct ss_task *cache;  /* free task records, linked by ->link */
	struct ss_fw *fw;       /* fibers.c: scheduler context, stack cache */
	unsigned ncache;
	unsigned blocking_depth;
	uint32_t rng;
	uint32_t fork_gen;

	/* Counters: single writer (owner), relaxed; summed by ss_stats. */
	_Atomic uint64_t n_spawned SS_ALIGNED;
	_Atomic uint64_t n_completed;
	_Atomic uint64_t n_parks;
	_Atomic uint64_t n_wakeups;
	_Atomic uint64_t n_steals;
	_Atomic uint64_t n_suspends;   /* fibers parked on this worker */

	/* Monitor-private. */
	uint64_t mon_reported; /* the tick last counted as a stall */
	uint64_t mon_tick;
	uint64_t mon_since_ns;
	uint64_t mon_cpu_ns;
	uint64_t mon_cpu_at_ns;
	/* Balancer-private. */
	uint64_t bal_tick;
} SS_ALIGNED;

SS_HIDDEN struct ss_worker *ss__self(void);
/* Wake a parked worker for new global work unless a worker is searching;
 * start a worker when none is parked and the pool is below target. */
SS_HIDDEN void ss__notify(void);
/* Wake an idle worker or start one, for the monitor (may exceed the active
 * target only by compensating blocked workers; rate-limited). */
SS_HIDDEN bool ss__grow(void);
/* As ss__notify / ss__grow, for a blocked thread-like task: beyond the
 * active target without taking a token (still capped by MAX_THREADS). */
SS_HIDDEN void ss__notify_untokened(void);
SS_HIDDEN bool ss__grow_untokened(void);
/* On a worker: the current task stands for a thread (see thread_like). */
SS_HIDDEN void ss__set_thread_like(bool on);
/* On a worker, inside a task that runs units of work of its own one after
 * another (a GThreadPool runner's items): one unit ended and another
 * begins.  The monitor then sees progress, as between two tasks: the
 * heartbeat moves on (by 2, so still "inside a task") and the monitor's
 * blocked mark from the previous unit is cleared. */
SS_HIDDEN void ss__task_progress(void);
/* Is the pool at MAX_THREADS with fewer active workers than its target,
 * i.e. would it need a compensating thread it may not start?  A layer
 * that can run work elsewhere (the pthread shim: a real thread) should. */
SS_HIDDEN bool ss__pool_saturated(void);
/* Set once by such a layer before the pool starts: the monitor calls it
 * while the pool is saturated and work is queued. */
SS_HIDDEN extern void (*ss__saturated_hook)(void);
/* Under exec.lock: a thread above the active target exits. */
SS_HIDDEN void ss__refund_token_locked(void);
/* Park w (counted as searching) until woken; true if it timed out idle
 * and left the pool.  futile: how many searches in a row saw queued work
 * they could not take. */
SS_HIDDEN bool ss__park(struct ss_worker *w, unsigned futile);
/* After a search of w that began at w->search_start: work came back
 * (now, in ns) and the spin score learns whether a long spin paid. */
SS_HIDDEN void ss__search_learn(struct ss_worker *w, uint64_t now);
/* In a fork child: the calling thread is no worker of the new executor. */
SS_HIDDEN void ss__worker_forget_self(void);
/* Called on a worker thread that will never come back to its loop (its
 * current task's thread is being unwound away, see
 * ss__task_abandon_current): complete that task and leave the pool as a
 * retiring worker does, so the pool starts a replacement when work is
 * queued.  Returns false (and does nothing) off a worker or inside a
 * nested task. */
SS_HIDDEN bool ss__worker_abandon(void);
/* On a worker: leave the pool once the current top-level task returns
 * (its thread is no longer fit to run tasks: glibc marked it exiting). */
SS_HIDDEN void ss__worker_retire_after_task(void);
SS_HIDDEN void *ss__worker_main(void *arg);
enum { SS_BLOCKED_HINT = 1, SS_BLOCKED_MON = 2 };
#define SS_NO_CLOCK INT64_MIN
/* Set or clear one blocked mark, keeping exec.nblocked counting each
 * worker with any mark once. */
SS_HIDDEN void ss__block_mark(struct ss_worker *w, uint32_t bit);
SS_HIDDEN void ss__block_unmark(struct ss_worker *w, uint32_t bit);

/* ------------------------------------------------------------- supervisors */

/* A hidden thread that sleeps without a timer while the pool is idle. */
struct ss_sleeper {
	_Atomic uint32_t sleeping; /* 1 while in (or entering) a deep sleep */
	_Atomic uint32_t word;     /* futex: bumped by each wake */
	uint64_t idle_since_ns;    /* the sleeper's own: idle at every look since */
};

SS_HIDDEN void ss__sleeper_wake(struct ss_sleeper *s);
/* Sleep without timer unless the pool is busy; returns at once if busy. */
SS_HIDDEN void ss__sleeper_sleep_if_idle(struct ss_sleeper *s);
/* Has the pool been idle at every look for SS_SETTLE_NS?  Only then does
 * a supervisor sleep without a timer: under partial load the pool goes
 * idle between messages, and waking both supervisors for each message
 * would cost more than their naps. */
#define SS_SETTLE_NS 50000000u
SS_HIDDEN bool ss__sleeper_settled(struct ss_sleeper *s);
/* Sleep up to ns, or until woken. */
SS_HIDDEN void ss__sleeper_nap(struct ss_sleeper *s, uint64_t ns);
SS_HIDDEN void ss__wake_supervisors(void);
SS_HIDDEN bool ss__pool_idle(void);

SS_HIDDEN void *ss__balancer_main(void *arg);
SS_HIDDEN void *ss__monitor_main(void *arg);

/* ------------------------------------------------------------- executor */

struct ss_exec {
	/* Guards starting the executor, worker slots, thread creation and
	 * exit, the token bucket and the back-off. */
	pthread_mutex_t lock;
	_Atomic int started;   /* 0, then 1 once the supervisors run (release) */

	struct ss_worker **workers; /* [max_threads], slots created lazily */
	/* Slots in [0, nslots) may be live; grows only (release), read
	 * acquire by the supervisors and ss_stats. */
	_Atomic uint32_t nslots;

	/*
	 * Pool counters, seq_cst: they take part in the Dekker-style checks
	 * between a spawner (push work, then read nsearching/nidle) and a
	 * worker going to sleep (publish idle, then re-read the queue).
	 *   nthreads    live worker threads
	 *   nblocked    workers whose `blocked` is 1
	 *   nidle       workers on the idle list
	 *   nsearching  workers awake without a task, looking for one
	 */
	_Atomic int32_t nthreads SS_ALIGNED;
	_Atomic int32_t nblocked;
	_Atomic int32_t nidle SS_ALIGNED;
	_Atomic int32_t nsearching SS_ALIGNED;

	/* Parked workers, LIFO (the most recent has the warmest cache). */
	pthread_mutex_t idle_lock SS_ALIGNED;
	struct ss_worker *idle_list;

	/* Global queue (queue.c): consumers under q_lock own q_head. */
	_Atomic(struct ss_task *) q_tail SS_ALIGNED;
	_Atomic uint64_t q_len;
	pthread_mutex_t q_lock SS_ALIGNED;
	struct ss_task *q_head;
	struct ss_task q_stub;

	/* Free task records (task.c), for threads that are not workers. */
	pthread_mutex_t free_lock SS_ALIGNED;
	struct ss_task *free_list;

	struct ss_sleeper balancer SS_ALIGNED;
	struct ss_sleeper monitor SS_ALIGNED;

	/* Under lock: token bucket for threads beyond the target, and the
	 * back-off after thread creation failed. */
	/* Forks between their prepare and parent handlers, and threads inside
	 * a group critical section (group.c ss__group_crit_enter): each side
	 * raises its own count, then reads the other's (seq_cst), so no fork
	 * child sees a group task half counted or half uncounted. */
	_Atomic uint32_t forking;
	_Atomic uint32_t group_busy;

	double tokens;
	uint64_t tokens_at_ns;
	uint64_t backoff_until_ns;
	uint64_t backoff_ns;
	/* Bumped only in a fork child (single-threaded then); workers read it
	 * plainly: in a process it never changes while they run, and a
	 * worker whose copy differs is the forking thread of a child. */
	uint32_t fork_gen;

	/* Counters without a single writer: relaxed atomics. */
	_Atomic uint64_t ext_spawned SS_ALIGNED;
	_Atomic uint64_t cancelled;
	_Atomic uint64_t preemptions;
	_Atomic uint64_t compensations;
	_Atomic uint64_t balancer_moves;
	_Atomic uint64_t threads_created;
	_Atomic uint64_t threads_exited;
	_Atomic uint64_t peak_threads;
	_Atomic uint64_t stalls; /* tasks past SMOLSCALE_STALL_REPORT_MS */
};

SS_HIDDEN extern struct ss_exec ss__exec;

/* Start the executor's hidden threads once.  Returns 0 or EAGAIN. */
SS_HIDDEN int ss__start(void);
/* Under exec.lock: take a free slot and start a worker thread on it. */
SS_HIDDEN int ss__start_worker_locked(bool searching);

/* ------------------------------------------------------------- threads */

typedef int (*ss_pthread_create_fn)(pthread_t *, const pthread_attr_t *,
                                    void *(*)(void *), void *);
/* The pthread_create the core uses for its hidden threads; a preload layer
 * that interposes pthread_create points it at the real one. */
SS_HIDDEN extern ss_pthread_create_fn ss__real_pthread_create;
/* The stack size of every hidden thread, when a layer above needs one it
 * can rely on (the pthread shim routes threads by it); 0: the default at
 * each creation.  Set once before the pool starts. */
SS_HIDDEN extern size_t ss__worker_stack;
/* Start a detached hidden thread with every signal blocked, named name. */
SS_HIDDEN int ss__thread_start(const char *name, void *(*fn)(void *),
                               void *arg);
SS_HIDDEN void ss__thread_set_name(const char *name);

/* ------------------------------------------------------------- time, futex */

static inline uint64_t ss__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void ss__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A spinlock for what a fiber holds across its park (a channel's, the
 * timer's): it is let go by the commit, on the worker's own stack, which a
 * pthread mutex's owner check (and ThreadSanitizer's fiber model) would
 * call another thread.  Held only for a few loads and stores; after 64
 * rounds a waiter yields the CPU to a holder that may be preempted. */
static inline void ss__spin_lock(_Atomic uint32_t *l)
{
	for (unsigned i = 0;; i++) {
		if (!atomic_load_explicit(l, memory_order_relaxed) &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		if (i < 64)
			ss__cpu_relax();
		else
			sched_yield();
	}
}

static inline void ss__spin_unlock(_Atomic uint32_t *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/*
 * Adaptive spinning, for a waiter that spins and then sleeps (a worker
 * without work, a joiner).  A sleep and its wake-up cost both sides CPU
 * and the waiter the wake-up latency (tens of µs in a VM); a spin costs its
 * length.  So spin long only while the wait has mostly ended within the
 * long spin: `score` (0..SS_SCORE_ONE, owned by one thread) is an EWMA,
 * weight 1/8, of "ended within long_ns", as glibc's adaptive mutex
 * averages its spins.  Two parties that hand work back and forth (a
 * spawner that joins, a worker that runs) stay awake once both learn it,
 * and fall back to short spins when the waits are long.
 */
#define SS_SCORE_ONE 256u

static inline uint64_t ss__spin_ns(unsigned score, uint64_t short_ns,
                                   uint64_t long_ns)
{
	return score >= SS_SCORE_ONE / 2 ? long_ns : short_ns;
}

static inline void ss__spin_learn(unsigned *score, uint64_t waited_ns,
                                  uint64_t long_ns)
{
	if (waited_ns <= long_ns)
		*score += (SS_SCORE_ONE - *score) / 8;
	else
		*score -= *score / 8;
}

/* Wait while *addr == val, up to timeout_ns (0 = forever).  Returns 0, or
 * ETIMEDOUT; spurious returns happen and callers loop. */
SS_HIDDEN int ss__futex_wait(_Atomic uint32_t *addr, uint32_t val,
                             uint64_t timeout_ns);
SS_HIDDEN void ss__futex_wake(_Atomic uint32_t *addr, int n);

/* ------------------------------------------------------------- diagnostics */

/* diag.c: stall reports, the live stats region and the stats signal, all
 * served by one hidden thread, ss-diag. */

/* Under exec.lock, at the pool's start: map the stats region, install the
 * signal handlers asked for, start ss-diag.  Failures only disable what
 * they concern (with one line when the user asked for it). */
SS_HIDDEN void ss__diag_start_locked(void);
/* The monitor saw worker w inside one task (heartbeat tick) since
 * since_ns for longer than SMOLSCALE_STALL_REPORT_MS: queue a report. */
SS_HIDDEN void ss__diag_stall(struct ss_worker *w, uint64_t tick,
                              uint64_t since_ns);
/* A worker thread lets the capture signal in (workers start with every
 * signal blocked); a no-op unless stall reports are on.  Layers that set
 * a task's mask of their own call it after restoring the worker's. */
SS_HIDDEN void ss__diag_unblock(void);
/* fork child: the region and ss-diag are the parent's. */
SS_HIDDEN void ss__diag_after_fork(void);
/* Write len bytes to the log (SMOLSCALE_LOG, else standard error) in one
 * write where possible, so lines from several threads do not mix. */
SS_HIDDEN void ss__log_write(const char *buf, size_t len);
/* The stats report (ss__stats_print's text) in a malloc'd string; NULL
 * on ENOMEM.  Not async-signal-safe. */
SS_HIDDEN char *ss__stats_text(size_t *len);
/* Lines about stall sites for the stats report (diag.c). */
SS_HIDDEN void ss__diag_stats(FILE *f);
/* On a worker, about to call a user's function fn inside a task of a
 * layer's own (a rerouted thread's start routine, a pool's item): name it
 * as the entry of stall reports until the next task starts. */
SS_HIDDEN void ss__set_entry(void *fn);
/* A worker thread starts (stall reports on: its alternate signal stack,
 * and the capture signal let in). */
SS_HIDDEN void ss__diag_worker_start(struct ss_worker *w);

/* ------------------------------------------------------------- stats */

SS_HIDDEN void ss__stats_print(void);
/* Set once by a layer above (the preload library) before any thread can
 * print: appends " key=value" fields of its own to the stats line. */
SS_HIDDEN extern void (*ss__stats_extra)(FILE *f);

#endif /* SS_INTERNAL_H */
