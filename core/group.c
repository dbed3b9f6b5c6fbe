/*
 * group.c - task groups (the seed's Nursery): a scope that waits for all
 * of its tasks, with per-group or per-task error policies.
 *
 * Group tasks are internal records without a user handle; each carries
 * its function, argument and resolved policy.  Cancelling a group does not
 * chase its queued records: each group task checks `cancelled` when it
 * starts and skips its function, which is what "tasks not yet started are
 * cancelled" means to the user.
 *
 * Fork: a task counts in its group exactly while its record names the
 * group.  Both change inside a group critical section, which fork_prepare
 * waits out, so a fork child can uncount the tasks it will never run.
 *
 * Skipped tasks count as cancelled, run ones as completed (task.c calls
 * ss__group_task_done before it completes the record).
 *
 * Lifetime: `refs` counts the owner plus every unfinished task.  A
 * finishing task decrements `pending` (and wakes waiters when it reaches
 * 0) before it drops its reference, so the group is still valid for that
 * wake even if the owner returns from ss_group_wait() and frees at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

#define GROUP_SPIN_NS 2000u

struct ss_group {
	_Atomic uint32_t pending;   /* futex word: unfinished tasks */
	_Atomic uint32_t nwaiters;  /* threads sleeping in ss_group_wait */
	_Atomic uint32_t refs;
	_Atomic int cancelled;      /* release: first_error is set before */
	_Atomic int first_error;
	/* Set by ss_group_set_policy before tasks are spawned; copied into
	 * each task at spawn. */
	int policy;
	ss_group_error_fn cb;
	void *ctx;
};

ss_group *ss_group_new(void)
{
	ss_group *g = calloc(1, sizeof *g);

	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&g->refs, 1);
	g->policy = SS_GROUP_PROPAGATE;
	return g;
}

static bool policy_ok(int policy, ss_group_error_fn cb, bool inherit_ok)
{
	switch (policy) {
	case SS_GROUP_INHERIT:
		return inherit_ok;
	case SS_GROUP_IGNORE:
	case SS_GROUP_PROPAGATE:
		return true;
	case SS_GROUP_CUSTOM:
		return cb != NULL;
	default:
		return false;
	}
}

int ss_group_set_policy(ss_group *g, int policy, ss_group_error_fn cb,
                        void *ctx)
{
	if (!g || !policy_ok(policy, cb, false))
		return EINVAL;
	g->policy = policy;
	g->cb = policy == SS_GROUP_CUSTOM ? cb : NULL;
	g->ctx = ctx;
	return 0;
}

static void cancel_with(ss_group *g, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong_explicit(&g->first_error, &zero, err,
	                                        memory_order_relaxed,
	                                        memory_order_relaxed);
	atomic_store_explicit(&g->cancelled, 1, memory_order_release);
}

int ss_group_cancel(ss_group *g)
{
	if (!g)
		return EINVAL;
	cancel_with(g, ECANCELED);
	return 0;
}

int ss_group_cancelled(const ss_group *g)
{
	return g ? atomic_load_explicit(&g->cancelled, memory_order_acquire)
	         : 0;
}

static void release(ss_group *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		free(g);
}

static void finish_one(ss_group *g)
{
	if (atomic_fetch_sub(&g->pending, 1) == 1 && atomic_load(&g->nwaiters))
		ss__futex_wake(&g->pending, INT_MAX);
	release(g);
}

/* What ss__group_run returns for a task it skipped (group cancelled). */
#define SKIPPED ((void *)1)

void *ss__group_run(void *arg)
{
	struct ss_task *t = arg;
	ss_group *g = atomic_load_explicit(&t->group, memory_order_relaxed);
	int rc, decision;

	if (atomic_load_explicit(&g->cancelled, memory_order_acquire))
		return SKIPPED;
	rc = t->gfn(t->garg);
	if (rc != 0) {
		decision = t->gpolicy;
		if (decision == SS_GROUP_CUSTOM)
			decision = t->gcb(g, rc, t->gctx);
		if (decision == SS_GROUP_PROPAGATE)
			cancel_with(g, rc);
	}
	return NULL;
}

/* Uncount t from its group, if it still counts there.  The exchange of
 * t->group decides who does it: the worker that ran t, or a fork child
 * for a task that will never run there. */
static void uncount(struct ss_task *t)
{
	ss_group *g = atomic_exchange_explicit(&t->group, NULL,
	                                       memory_order_relaxed);
	if (g)
		finish_one(g);
}

void ss__group_crit_enter(void)
{
	struct ss_exec *e = &ss__exec;

	for (;;) {
		atomic_fetch_add(&e->group_busy, 1);
		if (!atomic_load(&e->forking))
			return;
		atomic_fetch_sub(&e->group_busy, 1);
		while (atomic_load(&e->forking))
			sched_yield();
	}
}

void ss__group_crit_leave(void)
{
	atomic_fetch_sub_explicit(&ss__exec.group_busy, 1, memory_order_release);
}

void ss__group_task_done(struct ss_worker *w, struct ss_task *t, void *r)
{
	struct ss_exec *e = &ss__exec;

	if (r == SKIPPED)
		atomic_fetch_add_explicit(&e->cancelled, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&w->n_completed, 1,
		                          memory_order_relaxed);
	ss__group_crit_enter();
	uncount(t);
	ss__group_crit_leave();
}

void ss__group_task_dropped(struct ss_task *t)
{
	uncount(t);
}

/* Spawn into g as a plain task, or as a fiber. */
static int group_spawn(ss_group *g, int (*fn)(void *), void *arg, int policy,
                       ss_group_error_fn cb, void *ctx, bool fiber)
{
	struct ss_fiber *f = NULL;
	struct ss_task *t;

	if (!g || !fn || !policy_ok(policy, cb, true))
		return EINVAL;
	if (atomic_load_explicit(&g->cancelled, memory_order_acquire))
		return ECANCELED;
	if (ss__start() != 0)
		return EAGAIN;
	if (fiber && !(f = ss__fiber_new()))
		return ENOMEM;
	t = fiber ? ss__task_new_fiber(ss__group_run, NULL, 0, f)
	          : ss__task_new_internal(ss__group_run, NULL);
	if (!t) {
		if (f)
			ss__fiber_release(f);
		return ENOMEM;
	}
	t->arg = t;
	t->gfn = fn;
	t->garg = arg;
	if (policy == SS_GROUP_INHERIT) {
		t->gpolicy = g->policy;
		t->gcb = g->cb;
		t->gctx = g->ctx;
	} else {
		t->gpolicy = policy;
		t->gcb = cb;
		t->gctx = ctx;
	}
	/* The counts and the record's group pointer change together, as far
	 * as a fork child can tell. */
	ss__group_crit_enter();
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	atomic_fetch_add(&g->pending, 1);
	atomic_store_explicit(&t->group, g, memory_order_relaxed);
	ss__group_crit_leave();
	ss__task_submit(t);
	return 0;
}

int ss_group_spawn_policy(ss_group *g, int (*fn)(void *), void *arg,
                          int policy, ss_group_error_fn cb, void *ctx)
{
	return group_spawn(g, fn, arg, policy, cb, ctx, false);
}

int ss_group_spawn(ss_group *g, int (*fn)(void *), void *arg)
{
	return group_spawn(g, fn, arg, SS_GROUP_INHERIT, NULL, NULL, false);
}

int ss_group_go(ss_group *g, int (*fn)(void *), void *arg)
{
	return group_spawn(g, fn, arg, SS_GROUP_INHERIT, NULL, NULL, true);
}

static bool group_done(void *g)
{
	return atomic_load(&((ss_group *)g)->pending) == 0;
}

int ss_group_wait(ss_group *g)
{
	struct ss_worker *w = ss__self();
	struct ss_task *cur = ss__current_task();
	uint64_t deadline;
	uint32_t p;

	if (!g)
		return EINVAL;
	if (cur && atomic_load_explicit(&cur->group, memory_order_relaxed) == g)
		return EDEADLK;
	/* Inside a task, the group's unstarted tasks are likely in this
	 * worker's own ring: run them here, as ss_join runs an unstarted
	 * task.  Nothing else: a task run on a waiter's stack that blocks on
	 * something the waiter would do after its wait would deadlock it (the
	 * hazard of help-first waits, oneTBB's "task isolation"), while the
	 * waiter's own tasks are what it waits for anyway. */
	if (w)
		while (!group_done(g) && ss__run_group_task_here(w, g))
			;
	deadline = ss__now_ns() + GROUP_SPIN_NS;
	while (atomic_load(&g->pending) && ss__now_ns() < deadline)
		ss__cpu_relax();
	if (atomic_load(&g->pending)) {
		/* Only a sleeper counts as a waiter, so finishing tasks make
		 * no system call while nobody sleeps. */
		atomic_fetch_add(&g->nwaiters, 1);
		while ((p = atomic_load(&g->pending)) != 0)
			ss__futex_wait(&g->pending, p, 0);
		atomic_fetch_sub(&g->nwaiters, 1);
	}
	return atomic_load_explicit(&g->first_error, memory_order_relaxed);
}

void ss_group_free(ss_group *g)
{
	if (!g)
		return;
	ss_group_wait(g);
	release(g);
}
