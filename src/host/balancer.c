// SPDX-License-Identifier: MIT
/*
 * The balancer's policy, see balancer.h.  Everything here is arithmetic
 * on the VMs' inputs and last period's targets: no I/O, no clock.
 *
 * Order of a decision:
 *   1. each VM's active memory (WSS upper bound + headroom, or all of
 *      RAM without an estimate, raised by the fault feedback);
 *   2. the ideal targets: everyone at max, then the idle-tax greedy
 *      takes memory from the lowest shares-per-adjusted-page VM until
 *      the sum fits the budget;
 *   3. stability: hysteresis, then the slow-down limit, then rises cut
 *      back so that the sum still fits the budget;
 *   4. the levers that reach each target.
 */
#include "host/balancer.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>

#define MIB (1024ull * 1024)
#define PAGE_SIZE_BYTES 4096ull

static const char *const policy_names[] = {
	[BALANCER_BOTH] = "both",
	[BALANCER_BALLOON] = "balloon",
	[BALANCER_PAGING] = "paging",
	[BALANCER_STATIC] = "static",
	[BALANCER_NONE] = "none",
};

const char *balancer_policy_name(enum balancer_policy p)
{
	if ((unsigned)p >= sizeof(policy_names) / sizeof(policy_names[0]))
		return NULL;
	return policy_names[p];
}

int balancer_policy_parse(const char *name, enum balancer_policy *out)
{
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]);
	     i++) {
		if (name && !strcmp(name, policy_names[i])) {
			*out = (enum balancer_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

void balancer_params_init(struct balancer_params *p)
{
	memset(p, 0, sizeof(*p));
	p->tau = 0.75;
	p->headroom_frac = 0.10;
	p->headroom_min = 16 * MIB;
	p->hysteresis_frac = 0.02;
	p->hysteresis_min = 8 * MIB;
	p->down_step_frac = 0.10;
	p->fault_rate_high = 200;
	p->feedback_s = 2;
	p->min_default = 64 * MIB;
	/* long: meanwhile paging holds the target ("both" caps mem_local
	 * too), so waiting costs nothing, while letting a slow driver go
	 * loses the balloon for the retry periods (a Linux guest sharing a
	 * loaded emulated CPU took over 3 s to give its first MiB) */
	p->balloon_grace_periods = 10;
	p->balloon_retry_periods = 30;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t vm_max(const struct balancer_vm *vm)
{
	uint64_t ram = vm->in.ram;

	return vm->max && vm->max < ram ? vm->max : ram;
}

static uint64_t vm_min(const struct balancer_params *p,
		       const struct balancer_vm *vm)
{
	uint64_t min = vm->min ? vm->min : p->min_default;

	return min_u64(min, vm_max(vm));
}

static double vm_shares(const struct balancer_vm *vm)
{
	return vm->shares > 0 ? vm->shares : 1000;
}

/* A VM the balancer does not move: its memory is counted as it is. */
static bool vm_fixed(const struct balancer_vm *vm)
{
	return !vm->in.responsive || vm->policy == BALANCER_NONE;
}

static uint64_t fixed_usage(const struct balancer_vm *vm)
{
	/* An unresponsive VM keeps whatever it was allowed or has. */
	uint64_t held = vm->prev.seen ? vm->prev.target : vm->in.ram;

	return vm->policy == BALANCER_NONE ? vm->in.ram :
	       max_u64(held, vm->in.resident);
}

/* --- 1. active memory ----------------------------------------------------- */

static double fault_rate(struct balancer_vm *vm, double now)
{
	double dt = now - vm->prev.t;

	if (!vm->prev.seen || dt <= 0 || vm->in.paged_in < vm->prev.paged_in)
		return 0;
	return (double)(vm->in.paged_in - vm->prev.paged_in) / dt;
}

static void estimate_active(const struct balancer_params *p,
			    struct balancer_vm *vm)
{
	uint64_t ram = vm->in.ram, active;

	if (!vm->in.wss_valid) {
		vm->out.active = ram;
		vm->out.active_from = "no WSS estimate yet: all of RAM";
		return;
	}
	active = vm->in.wss_estimate + vm->in.wss_error;
	active += max_u64((uint64_t)((double)active * p->headroom_frac),
			  p->headroom_min);
	vm->out.active_from = "WSS + error + headroom";
	if (vm->out.fault_rate > p->fault_rate_high && vm->prev.seen) {
		/* A VM short of memory faults only as fast as its faults are
		 * served, so its rate understates what it needs (a woken VM
		 * reading 600 MiB at 4 MiB/s of faults would get 8 MiB a
		 * period).  As in TCP's slow start, its allowance at least
		 * doubles every period it goes on faulting. */
		uint64_t back = (uint64_t)(vm->out.fault_rate * p->feedback_s *
					   (double)PAGE_SIZE_BYTES);
		uint64_t wanted = vm->prev.target + max_u64(back, vm->prev.target);

		if (wanted > active) {
			active = wanted;
			vm->out.active_from = "fault feedback: what it has + what it faulted in";
		}
	}
	vm->out.active = min_u64(active, ram);
}

/* --- 2. the idle-tax allocation ------------------------------------------- */

/*
 * Shares per adjusted page (Waldspurger's rho) at allocation @alloc:
 * active pages count once, idle ones k = 1/(1 - tau) times.
 */
static double shares_per_page(const struct balancer_params *p,
			      const struct balancer_vm *vm, uint64_t alloc)
{
	double k = 1.0 / (1.0 - p->tau);
	double active = (double)min_u64(vm->out.active, alloc);
	double idle = (double)(alloc - min_u64(vm->out.active, alloc));
	double adjusted = active + k * idle;

	return adjusted > 0 ? vm_shares(vm) / adjusted : 1e300;
}

/* The VM memory is taken from next: lowest rho among those above their
 * floor (@floors[i], or their min where @floors is NULL). */
static ssize_t poorest(const struct balancer_params *p,
		       const struct balancer_vm *vms, const uint64_t *alloc,
		       const uint64_t *floors, size_t n)
{
	ssize_t best = -1;
	double best_rho = 0;

	for (size_t i = 0; i < n; i++) {
		double rho;

		if (vm_fixed(&vms[i]) ||
		    alloc[i] <= (floors ? floors[i] : vm_min(p, &vms[i])))
			continue;
		rho = shares_per_page(p, &vms[i], alloc[i]);
		if (best < 0 || rho < best_rho) {
			best = (ssize_t)i;
			best_rho = rho;
		}
	}
	return best;
}

/* Returns the memory left over the budget (0 when it fits). */
static uint64_t ideal_targets(const struct balancer_params *p,
			      struct balancer_vm *vms, size_t n,
			      uint64_t *alloc)
{
	uint64_t sum = 0, excess, step;

	for (size_t i = 0; i < n; i++) {
		alloc[i] = vm_fixed(&vms[i]) ? fixed_usage(&vms[i]) :
			   vm_max(&vms[i]);
		sum += alloc[i];
	}
	if (sum <= p->budget)
		return 0;
	excess = sum - p->budget;
	/* Steps of 1/1024 of the excess (at least 1 MiB) bound the work to
	 * about 1024 passes whatever the sizes. */
	step = max_u64(excess / 1024, MIB);
	while (excess) {
		ssize_t v = poorest(p, vms, alloc, NULL, n);
		uint64_t room, take;

		if (v < 0)
			break;
		room = alloc[v] - vm_min(p, &vms[v]);
		take = min_u64(min_u64(step, excess), room);
		/* Never below the active part while an idle one is left
		 * elsewhere: rho already orders that; just take. */
		alloc[v] -= take;
		excess -= take;
	}
	return excess;
}

/* --- 3. stability ----------------------------------------------------------- */

static uint64_t hysteresis(const struct balancer_params *p,
			   const struct balancer_vm *vm)
{
	return max_u64((uint64_t)((double)vm->in.ram * p->hysteresis_frac),
		       p->hysteresis_min);
}

/*
 * Over the budget: first the rises that would only give a VM idle room
 * (the part of a rise above its active memory) wait for the slow falls.
 */
static uint64_t cut_idle_rises(const struct balancer_params *p,
			       struct balancer_vm *vms, size_t n,
			       uint64_t *alloc, uint64_t sum)
{
	for (size_t i = 0; i < n && sum > p->budget; i++) {
		struct balancer_vm *vm = &vms[i];
		uint64_t floor, cut;

		if (vm_fixed(vm) || !vm->prev.seen || alloc[i] <= vm->prev.target)
			continue;
		floor = max_u64(vm->prev.target, min_u64(alloc[i], vm->out.active));
		if (alloc[i] <= floor)
			continue;
		cut = min_u64(alloc[i] - floor, sum - p->budget);
		alloc[i] -= cut;
		sum -= cut;
		vm->out.reason = "rise into idle room limited by the budget";
	}
	return sum;
}

/*
 * Still over the budget because falls were slowed or held by the
 * hysteresis, and some VM's active memory needs the room:
 * a VM that needs memory gets it before one that does not keeps it, so
 * held-back falls go on to their ideal, the lowest shares per adjusted
 * page first, as far as the budget needs.  (The slow fall is for memory
 * nobody asks for; a waking VM must not wait for it.)
 */
static uint64_t release_held(const struct balancer_params *p,
			     struct balancer_vm *vms, size_t n,
			     uint64_t *alloc, const uint64_t *ideal,
			     uint64_t sum)
{
	while (sum > p->budget) {
		ssize_t v = poorest(p, vms, alloc, ideal, n);
		uint64_t cut;

		if (v < 0)
			break;
		cut = min_u64(alloc[v] - ideal[v], sum - p->budget);
		alloc[v] -= cut;
		sum -= cut;
		vms[v].out.reason = "released at once: another VM needs the memory";
	}
	return sum;
}

static void stabilise(const struct balancer_params *p,
		      struct balancer_vm *vms, size_t n, uint64_t *alloc)
{
	uint64_t sum = 0, rise = 0, ideal[n ? n : 1];

	memcpy(ideal, alloc, n * sizeof(*alloc));

	for (size_t i = 0; i < n; i++) {
		struct balancer_vm *vm = &vms[i];
		uint64_t prev = vm->prev.target, down;

		if (vm_fixed(vm) || !vm->prev.seen)
			continue;
		if (alloc[i] > prev ? alloc[i] - prev < hysteresis(p, vm) :
				      prev - alloc[i] < hysteresis(p, vm)) {
			alloc[i] = prev;
			continue;
		}
		down = (uint64_t)((double)vm->in.ram * p->down_step_frac);
		if (alloc[i] < prev && prev - alloc[i] > down) {
			alloc[i] = prev - down;
			vm->out.reason = "slowed down: at most down_step a period";
		}
		/* A max the operator just lowered holds at once: the slow
		 * fall is for the balancer's own decisions. */
		if (alloc[i] > vm_max(vm)) {
			alloc[i] = vm_max(vm);
			vm->out.reason = "its max";
		}
	}
	for (size_t i = 0; i < n; i++)
		sum += alloc[i];
	sum = cut_idle_rises(p, vms, n, alloc, sum);
	sum = release_held(p, vms, n, alloc, ideal, sum);
	if (sum <= p->budget)
		return;
	/* Still over (VMs the balancer cannot move hold it): rises wait
	 * for the room, cut in proportion. */
	for (size_t i = 0; i < n; i++) {
		if (!vm_fixed(&vms[i]) && vms[i].prev.seen &&
		    alloc[i] > vms[i].prev.target)
			rise += alloc[i] - vms[i].prev.target;
	}
	for (size_t i = 0; i < n && sum > p->budget && rise; i++) {
		struct balancer_vm *vm = &vms[i];
		uint64_t up, cut;

		if (vm_fixed(vm) || !vm->prev.seen || alloc[i] <= vm->prev.target)
			continue;
		up = alloc[i] - vm->prev.target;
		/* Proportional share of the over-run, rounded up. */
		cut = min_u64(up, (uint64_t)((double)(sum - p->budget) *
					     ((double)up / (double)rise)) + 1);
		alloc[i] -= cut;
		sum -= cut;
		vm->out.reason = "rise limited by the budget";
	}
	/* Still over (falls slowed below what the budget needs): falls go
	 * faster, the budget is the one hard rule. */
	for (size_t i = 0; i < n && sum > p->budget; i++) {
		uint64_t floor = vm_min(p, &vms[i]), cut;

		if (vm_fixed(&vms[i]) || alloc[i] <= floor)
			continue;
		cut = min_u64(alloc[i] - floor, sum - p->budget);
		alloc[i] -= cut;
		sum -= cut;
		vms[i].out.reason = "cut to fit the budget";
	}
}

/* --- 4. levers ----------------------------------------------------------- */

/*
 * Whether the guest's balloon driver follows: innocent until it has sat
 * on a request for the grace periods, then let go and asked again after
 * the retry periods (a guest may have been too busy, or have loaded its
 * driver late).
 */
static void track_balloon(const struct balancer_params *p,
			  struct balancer_vm *vm)
{
	uint64_t actual = vm->in.balloon_actual;
	bool settled = actual == vm->in.balloon_target;
	bool moved = vm->prev.seen && actual != vm->prev.balloon_actual;

	if (!vm->in.has_balloon || !vm->in.balloon_driver) {
		vm->prev.balloon_cooperates = false;
		vm->prev.balloon_stuck = p->balloon_retry_periods;
		return;
	}
	if (!vm->prev.seen) {
		vm->prev.balloon_cooperates = true;
		vm->prev.balloon_stuck = 0;
		return;
	}
	if (!vm->prev.balloon_cooperates) {
		if (++vm->prev.balloon_stuck >= p->balloon_retry_periods) {
			vm->prev.balloon_cooperates = true;
			vm->prev.balloon_stuck = 0;
		}
		return;
	}
	if (settled || moved) {
		vm->prev.balloon_stuck = 0;
	} else if (++vm->prev.balloon_stuck >= p->balloon_grace_periods) {
		vm->prev.balloon_cooperates = false;
		vm->prev.balloon_stuck = 0;
	}
}

static void choose_levers(const struct balancer_params *p,
			  struct balancer_vm *vm)
{
	uint64_t ram = vm->in.ram, target = vm->out.target;
	enum balancer_policy pol = vm->policy;
	bool balloon = vm->in.has_balloon &&
		       (pol == BALANCER_BOTH || pol == BALANCER_BALLOON);
	bool paging = vm->in.has_pager &&
		      (pol == BALANCER_BOTH || pol == BALANCER_PAGING ||
		       pol == BALANCER_STATIC);

	(void)p;
	vm->out.use_balloon = false;
	vm->out.use_paging = false;
	vm->out.balloon_target = vm->in.balloon_target;
	vm->out.mem_local = vm->in.mem_local;
	if (vm_fixed(vm))
		return;
	if (balloon && (vm->prev.balloon_cooperates || pol == BALANCER_BALLOON)) {
		vm->out.use_balloon = true;
		vm->out.balloon_target = ram - target;
	} else if (vm->in.has_balloon && pol != BALANCER_BALLOON) {
		/* A balloon that does not follow is let go: what it holds
		 * would only be counted twice. */
		vm->out.balloon_target = 0;
	}
	if (paging) {
		vm->out.use_paging = true;
		vm->out.mem_local = target;
	}
}

/* --- the decision ----------------------------------------------------------- */

static int static_split(const struct balancer_params *p,
			struct balancer_vm *vms, size_t n)
{
	size_t movable = 0;
	uint64_t left = p->budget;

	for (size_t i = 0; i < n; i++) {
		if (vm_fixed(&vms[i]))
			left -= min_u64(left, fixed_usage(&vms[i]));
		else
			movable++;
	}
	for (size_t i = 0; i < n; i++) {
		if (vm_fixed(&vms[i])) {
			vms[i].out.target = fixed_usage(&vms[i]);
			continue;
		}
		vms[i].out.target = min_u64(vm_max(&vms[i]), left / movable);
		vms[i].out.reason = "static: an equal split of the budget";
	}
	return 0;
}

/* Why a target the greedy and the stability rules left alone is what
 * it is. */
static const char *why(const struct balancer_params *p,
		       const struct balancer_vm *vm)
{
	uint64_t t = vm->out.target;

	if (vm->prev.seen && t == vm->prev.target && t != vm_max(vm))
		return "held: the change would be under the hysteresis";
	if (t >= vm_max(vm))
		return "all it may have: the budget allows it";
	if (t <= vm_min(p, vm))
		return "its min: others need the memory more";
	if (t >= vm->out.active)
		return "idle tax: idle memory reclaimed";
	return "idle tax: short of its active memory, by shares";
}

int balancer_decide(const struct balancer_params *p,
		    struct balancer_vm *vms, size_t n, double now)
{
	uint64_t alloc[n ? n : 1], mins = 0, over;
	bool all_static = n > 0;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		struct balancer_vm *vm = &vms[i];

		vm->out.reason = NULL;
		vm->out.active_from = NULL;
		vm->out.fault_rate = fault_rate(vm, now);
		track_balloon(p, vm);
		if (vm_fixed(vm)) {
			vm->out.active = vm->in.resident;
			vm->out.active_from = "resident";
			vm->out.reason = vm->in.responsive ?
					 "policy none: left alone" :
					 "unresponsive: left alone";
		} else {
			estimate_active(p, vm);
			mins += vm_min(p, vm);
		}
		if (vm->policy != BALANCER_STATIC && !vm_fixed(vm))
			all_static = false;
	}
	if (all_static) {
		static_split(p, vms, n);
	} else {
		over = ideal_targets(p, vms, n, alloc);
		if (over || mins > p->budget)
			ret = -ENOSPC;
		stabilise(p, vms, n, alloc);
		for (size_t i = 0; i < n; i++) {
			vms[i].out.target = alloc[i];
			if (!vms[i].out.reason)
				vms[i].out.reason = why(p, &vms[i]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct balancer_vm *vm = &vms[i];

		choose_levers(p, vm);
		if (!vm->in.responsive && vm->prev.seen)
			continue;	/* its memory of last period stays */
		vm->prev.seen = true;
		vm->prev.target = vm->out.target;
		vm->prev.paged_in = vm->in.paged_in;
		vm->prev.t = now;
		vm->prev.balloon_actual = vm->in.balloon_actual;
		if (vm->out.use_balloon)
			vm->prev.balloon_asked = vm->out.balloon_target;
	}
	return ret;
}
