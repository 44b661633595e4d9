/* SPDX-License-Identifier: MIT */
/*
 * A VM throttle: slows a running VM down by holding its vCPUs paused for
 * a share of every period (a duty cycle), for migration's auto-converge
 * and for charging a VM that takes more than its share of the host.
 *
 * throttle_set(t, 30) with the default 100 ms period: every period the
 * vCPUs are paused for 30 ms and run for 70 ms, so the guest gets about
 * 70% of the CPU time it had.  The wait for the pause counts as paused
 * time; the running share starts once the resume is done (a slow resume
 * stretches the period rather than squeeze the guest further).  0 turns
 * it off (the thread then sleeps until the next throttle_set() or
 * throttle_destroy()).
 *
 * Composition: the pauses are vm_pause_within()/vm_resume() pairs, which
 * nest (vm/vm.h), so a VM an operator, a snapshot or the pager paused
 * stays paused whatever the throttle does.  A vCPU blocked in a
 * userfaultfd fault cannot pause until the fault is served, so the
 * throttle never waits for a pause longer than the period's paused
 * share: it gives up (vm_pause_within() withdraws the request) and skips
 * that period rather than stall fault service.  A VM not started yet is
 * retried every period; a VM that is ending (-ECANCELED) ends the
 * throttle's work quietly: throttle_set() still succeeds, nothing more
 * is paused.
 *
 * Threads: one thread of its own, started by throttle_create() and
 * joined by throttle_destroy().  throttle_set() and throttle_stats() may
 * be called from any thread; throttle_destroy() once, from any thread
 * but the throttle's, and before vm_destroy() (the VM must outlive it).
 * throttle_destroy() returns with the throttle's pause undone: the VM
 * runs again unless someone else holds it paused.
 *
 * Errors: -errno, with @err filled where given.
 */
#ifndef RACKVM_SCHED_THROTTLE_H
#define RACKVM_SCHED_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"

struct throttle;
struct vm;

#define THROTTLE_DEFAULT_PERIOD_NS 100000000ull	/* 100 ms */
#define THROTTLE_MAX_PERCENT 99u

/* @period_ns 0 means THROTTLE_DEFAULT_PERIOD_NS; at least 1 ms, at most
 * 10 s (-EINVAL).  Starts at 0% (off). */
int throttle_create(struct vm *vm, uint64_t period_ns, struct throttle **out,
		    struct errmsg *err);
/* The share of each period, in percent, during which the vCPUs are held
 * paused: 0 (off) to THROTTLE_MAX_PERCENT, else -EINVAL.  Takes effect
 * at the next period (at once when it was off). */
int throttle_set(struct throttle *t, unsigned percent);
unsigned throttle_get(struct throttle *t);

struct throttle_stats {
	uint64_t held;		/* periods the vCPUs were held paused */
	uint64_t skipped;	/* periods skipped: the pause timed out */
	uint64_t held_ns;	/* total time held paused */
	bool vm_ended;		/* the VM is ending: the throttle idles */
};
void throttle_stats(struct throttle *t, struct throttle_stats *out);

/* Stops the thread (waking it at once, even mid-pause), resumes what it
 * paused and frees @t.  NULL is a no-op. */
void throttle_destroy(struct throttle *t);

#endif
