// SPDX-License-Identifier: MIT
/*
 * Whether an eviction batch revokes its pages with the vCPUs running or
 * paused, by what each way cost lately for batches of its size.
 *
 * Every write protection and every punch of a run of pages is an MMU
 * notifier invalidation: each vCPU in guest mode gets a TLB-flush IPI
 * and retries its faults while the invalidation is in flight, so the
 * cost grows with the number of runs, and on nested KVM steeply (the
 * reference sampler measured 4096 scattered pages revoked in 350 ms with
 * a vCPU running, 9 ms with it paused).  Pausing costs a round trip to
 * every vCPU thread instead, whatever the batch.  So: runs of a batch in
 * size classes (1, 2-7, 8-63, 64 and more), per class the moving average
 * of the wall time of the batch's invalidating phases (pause and resume
 * included) each way, and the cheaper way taken; every EXPLORE_EVERY-th
 * batch of a class, or while a way has no figure yet, the other way, so
 * that the figures follow the machine.
 *
 * Never paused: without a VM (tests), while a fault waits for room (its
 * vCPU cannot pause until served, and would make the pause time out),
 * or when the pause does not come within PAUSE_WAIT_NS (then the batch
 * runs with the vCPUs running, correct as ever).
 * The evictor thread's alone, like the rest of the batch state.
 */
#include "memory/pager_internal.h"
#include "vm/vm.h"

#define EXPLORE_EVERY 64
#define PAUSE_WAIT_NS 2000000ull

static unsigned size_class(unsigned runs)
{
	return runs <= 1 ? 0 : runs < 8 ? 1 : runs < 64 ? 2 : 3;
}

bool pager_evict_choose_paused(struct pager *p, unsigned runs)
{
	struct evict_cost *c = &p->cost[size_class(runs)];

	if (!p->vm || __atomic_load_n(&p->room_waiters, __ATOMIC_RELAXED))
		return false;
	c->batches++;
	if (!c->paused_ns)
		return true;
	if (!c->running_ns)
		return false;
	if (c->batches % EXPLORE_EVERY == 0)
		return c->paused_ns >= c->running_ns;	/* the other way */
	return c->paused_ns < c->running_ns;
}

bool pager_evict_pause(struct pager *p)
{
	return vm_pause_within(p->vm, PAUSE_WAIT_NS) == 0;
}

void pager_evict_resume(struct pager *p, bool paused)
{
	if (paused)
		vm_resume(p->vm);
}

/* A batch of @runs runs spent @ns in its invalidating phases, @paused
 * or not: into the class's average (7/8 old, 1/8 new). */
void pager_evict_cost_note(struct pager *p, unsigned runs, bool paused,
			   uint64_t ns)
{
	struct evict_cost *c = &p->cost[size_class(runs)];
	uint64_t *avg = paused ? &c->paused_ns : &c->running_ns;

	*avg = *avg ? (*avg * 7 + ns) / 8 : ns;
	if (paused) {
		add(&p->c.stall_ns, ns);
		add(&p->c.paused_batches, 1);
	}
}
