/* SPDX-License-Identifier: MIT */
/*
 * hostd's memory balancer.  Three parts, each usable alone:
 *
 *   balancer_decide()   the policy: a pure function from what every VM
 *                       looks like now (and what it was given last
 *                       period) to a target resident size per VM and the
 *                       levers that reach it.  No I/O, no clock: the unit
 *                       tests drive it with made-up VMs.
 *   balancer_observe()  one VM's inputs, read from its control API
 *                       (GET /vm/memory, GET /vm/memory/pager).
 *   balancer_apply()    one VM's levers set through its control API
 *                       (PATCH /vm/memory), only what changed.
 *
 * The policy (Waldspurger, "Memory Resource Management in VMware ESX
 * Server", OSDI 2002, section 5):
 *   - a VM's active memory is the upper end of its WSS estimate's
 *     confidence interval plus a headroom (a fraction of it, at least
 *     headroom_min); a VM without an estimate yet (booting, or its
 *     monitor not reporting) counts as wholly active, so a VM that boots
 *     gets memory at once;
 *   - fault feedback: a VM whose pager fault rate is over
 *     fault_rate_high pages/s is short of memory whatever its estimate
 *     says: its active memory is raised to what it has plus what it
 *     faulted in over the last feedback_s seconds, and at least to
 *     twice what it has (a fault-bound VM's rate understates its need:
 *     the allowance doubles each period it keeps faulting);
 *   - every VM starts at its max (its RAM unless lowered); while the sum
 *     is over the budget, memory is taken, a step at a time, from the VM
 *     with the lowest shares per adjusted page, where an idle page costs
 *     k = 1 / (1 - tau) active ones (tau, the idle memory tax, 0.75 by
 *     default: an idle page is "charged" 4x), never below the VM's min;
 *   - stability: a target moves only when it would move by more than the
 *     hysteresis (max(hysteresis_min, hysteresis_frac of RAM)); it falls
 *     by at most down_step_frac of RAM a period (slow down) and rises at
 *     once (fast up), as far as the budget allows; the sum of targets
 *     never exceeds the budget.
 *
 * Levers, chosen per VM from its policy: the balloon first for a guest
 * whose driver follows it (its balloon_actual moved towards the last
 * request), then hypervisor paging (mem_local) for any guest; "both"
 * asks the balloon for RAM - target and caps mem_local at the target, so
 * paging covers whatever the guest has not given back yet.
 */
#ifndef RACKVM_HOST_BALANCER_H
#define RACKVM_HOST_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

enum balancer_policy {
	BALANCER_BOTH,		/* balloon where it cooperates, then paging */
	BALANCER_BALLOON,	/* the balloon only */
	BALANCER_PAGING,	/* mem_local only */
	BALANCER_STATIC,	/* an equal split of the budget, fixed */
	BALANCER_NONE,		/* left alone (counted, never touched) */
};

/* "both", "balloon", "paging", "static", "none"; NULL for others. */
const char *balancer_policy_name(enum balancer_policy p);
/* -EINVAL for an unknown name. */
int balancer_policy_parse(const char *name, enum balancer_policy *out);

struct balancer_params {
	uint64_t budget;		/* bytes all targets must fit in */
	double tau;			/* idle memory tax, [0, 1) */
	double headroom_frac;		/* of the active estimate */
	uint64_t headroom_min;		/* bytes */
	double hysteresis_frac;		/* of a VM's RAM */
	uint64_t hysteresis_min;	/* bytes */
	double down_step_frac;		/* of a VM's RAM, per period */
	double fault_rate_high;		/* pages/s */
	double feedback_s;		/* seconds of faults given back */
	uint64_t min_default;		/* a VM's min when it sets none */
	/* After this many periods with a balloon request outstanding and
	 * balloon_actual not moving towards it, the balloon is taken as not
	 * cooperating (paging does the work; its target is let go) and is
	 * tried again after balloon_retry_periods.  A guest whose driver is
	 * not up (booting, or none) is never asked. */
	unsigned balloon_grace_periods;
	unsigned balloon_retry_periods;
};

/* The defaults: tau 0.75, headroom 10% and at least 16 MiB, hysteresis
 * 2% and at least 8 MiB, down 10% a period, fault_rate_high 200/s over
 * 2 s, min 64 MiB, grace 10 periods, retry after 30; budget 0 (the
 * caller sets it). */
void balancer_params_init(struct balancer_params *p);

/* What one VM looks like this period (balancer_observe() fills it). */
struct balancer_input {
	uint64_t ram;			/* guest RAM, bytes */
	bool responsive;		/* its API answered this period */
	bool has_pager;			/* mem_local can be set */
	bool has_balloon;		/* balloon_target can be set */
	bool balloon_driver;		/* the guest's driver is up */
	bool wss_valid;			/* an estimate exists */
	uint64_t wss_estimate;		/* bytes */
	uint64_t wss_error;		/* bytes, 95% half-width */
	uint64_t resident;		/* bytes in host RAM */
	uint64_t remote;		/* bytes in the page store */
	uint64_t mem_local;		/* the pager's limit now */
	uint64_t balloon_target;	/* bytes asked of the balloon now */
	uint64_t balloon_actual;	/* bytes the guest has given */
	/* pages the pager brought back in (its fetched_pages), cumulative:
	 * pages, not faults, since one fault reads a whole window ahead */
	uint64_t paged_in;
};

/* One VM as the balancer keeps it from period to period.  The caller
 * owns it (one per VM, zeroed to start), fills the settings and @in, and
 * reads @out. */
struct balancer_vm {
	/* settings */
	const char *name;		/* borrowed */
	double shares;			/* > 0; 1000 by default */
	uint64_t min, max;		/* 0: min_default, RAM */
	enum balancer_policy policy;

	struct balancer_input in;	/* this period's */

	/* the decision (balancer_decide) */
	struct {
		uint64_t active;	/* what the policy took as active */
		const char *active_from;	/* static text: how */
		uint64_t target;	/* resident bytes it may keep */
		bool use_balloon, use_paging;
		uint64_t balloon_target, mem_local;	/* to set */
		double fault_rate;	/* pages paged in per second */
		const char *reason;	/* static text: why this target */
	} out;

	/* memory between periods (the caller leaves it alone) */
	struct {
		bool seen;		/* a previous period exists */
		uint64_t target;
		uint64_t paged_in;
		double t;
		uint64_t balloon_asked;	/* last balloon target set */
		uint64_t balloon_actual;
		unsigned balloon_stuck;	/* periods without movement */
		bool balloon_cooperates;
	} prev;
};

/*
 * Decides this period's targets for @n VMs at time @now (seconds, any
 * monotonic origin).  Unresponsive VMs keep what they have (their
 * resident counts against the budget; they are never given more).
 * Returns 0, or -ENOSPC when the VMs' minimums alone exceed the budget
 * (every target is then its min: the caller says so).
 */
int balancer_decide(const struct balancer_params *p,
		    struct balancer_vm *vms, size_t n, double now);

/* Reads @vm->in from the VM API on @socket (two requests, each at most
 * @timeout_ms).  Failure: -errno with @err; @vm->in.responsive false. */
int balancer_observe(struct balancer_vm *vm, const char *socket,
		     unsigned timeout_ms, struct errmsg *err);

/* Sets what @vm->out asks that differs from @vm->in (PATCH /vm/memory).
 * 0 when nothing needed setting or it was set. */
int balancer_apply(struct balancer_vm *vm, const char *socket,
		   unsigned timeout_ms, struct errmsg *err);

/* One line of the decision log: a JSON object (no newline, malloc'ed)
 * with @now, the budget, and per VM its inputs, target, levers and
 * reason.  NULL when out of memory. */
char *balancer_log_line(const struct balancer_params *p,
			const struct balancer_vm *vms, size_t n, double now);

#endif
