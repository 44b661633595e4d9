// SPDX-License-Identifier: MIT
/*
 * hostd's balancer policy (src/host/balancer.c) as the pure function it
 * is: made-up VMs in, targets and levers out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "host/balancer.h"

#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)

/* A responsive VM with pager and balloon, @wss_mib active (error 0). */
static void vm_init(struct balancer_vm *vm, const char *name, uint64_t ram,
		    uint64_t wss_mib)
{
	memset(vm, 0, sizeof(*vm));
	vm->name = name;
	vm->shares = 1000;
	vm->policy = BALANCER_BOTH;
	vm->in.ram = ram;
	vm->in.responsive = true;
	vm->in.has_pager = true;
	vm->in.has_balloon = true;
	vm->in.balloon_driver = true;
	vm->in.wss_valid = true;
	vm->in.wss_estimate = wss_mib * MIB;
	vm->in.mem_local = ram;
	vm->in.resident = ram / 2;
}

static void params(struct balancer_params *p, uint64_t budget)
{
	balancer_params_init(p);
	p->budget = budget;
}

static uint64_t sum_targets(const struct balancer_vm *vms, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += vms[i].out.target;
	return s;
}

/* The VM's next period: its levers are where the balancer put them. */
static void follow(struct balancer_vm *vm)
{
	if (vm->out.use_paging)
		vm->in.mem_local = vm->out.mem_local;
	if (vm->out.use_balloon) {
		vm->in.balloon_target = vm->out.balloon_target;
		vm->in.balloon_actual = vm->out.balloon_target;
	}
}

TEST(balancer_everyone_gets_all_when_the_budget_allows)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	params(&p, 4 * GIB);
	vm_init(&v[0], "a", GIB, 100);
	vm_init(&v[1], "b", GIB, 900);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK_EQ(v[0].out.target, GIB);
	CHECK_EQ(v[1].out.target, GIB);
	CHECK(v[0].out.use_balloon && v[0].out.use_paging);
	CHECK_EQ(v[0].out.balloon_target, 0);
	CHECK_EQ(v[0].out.mem_local, GIB);
}

TEST(balancer_idle_memory_is_taxed_first)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	uint64_t active_busy;

	/* Equal shares; a idles (100 MiB active), b is busy (800 MiB). */
	params(&p, GIB + GIB / 2);
	vm_init(&v[0], "idle", GIB, 100);
	vm_init(&v[1], "busy", GIB, 800);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK(sum_targets(v, 2) <= p.budget);
	active_busy = v[1].out.active;
	/* The busy VM keeps its whole active memory; the idle one pays. */
	CHECK(v[1].out.target >= active_busy);
	CHECK(v[0].out.target < v[1].out.target);
	CHECK(v[0].out.target >= v[0].out.active);
	CHECK_EQ(sum_targets(v, 2), p.budget);
}

TEST(balancer_tau_zero_is_plain_shares)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	/* Without the tax, equal shares split the budget equally, however
	 * idle one of them is. */
	params(&p, GIB);
	p.tau = 0;
	vm_init(&v[0], "idle", GIB, 50);
	vm_init(&v[1], "busy", GIB, 900);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK(v[0].out.target + 2 * MIB >= GIB / 2 &&
	      v[0].out.target <= GIB / 2 + 2 * MIB);
	CHECK(v[1].out.target + 2 * MIB >= GIB / 2);
}

TEST(balancer_shares_order_the_active_memory)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	/* Both wholly active and more than fits: 3:1 shares, ~3:1 memory. */
	params(&p, GIB);
	vm_init(&v[0], "gold", GIB, 1024);
	vm_init(&v[1], "bronze", GIB, 1024);
	v[0].shares = 3000;
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK_EQ(sum_targets(v, 2), GIB);
	CHECK(v[0].out.target > 2 * v[1].out.target);
	CHECK(v[0].out.target < 4 * v[1].out.target);
}

TEST(balancer_min_and_max_hold)
{
	struct balancer_params p;
	struct balancer_vm v[3];

	params(&p, GIB);
	vm_init(&v[0], "small-max", GIB, 1024);
	vm_init(&v[1], "big-min", GIB, 10);
	vm_init(&v[2], "other", GIB, 1024);
	v[0].max = 200 * MIB;
	v[1].min = 300 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 3, 1), 0);
	CHECK(v[0].out.target <= 200 * MIB);
	CHECK(v[1].out.target >= 300 * MIB);
	CHECK(v[2].out.target >= p.min_default);
	CHECK(sum_targets(v, 3) <= GIB);
}

TEST(balancer_minimums_over_budget_is_enospc)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	params(&p, 512 * MIB);
	vm_init(&v[0], "a", GIB, 1024);
	vm_init(&v[1], "b", GIB, 1024);
	v[0].min = 400 * MIB;
	v[1].min = 400 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 2, 1), -ENOSPC);
	CHECK_EQ(v[0].out.target, 400 * MIB);
	CHECK_EQ(v[1].out.target, 400 * MIB);
}

TEST(balancer_no_estimate_means_all_active)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	/* A booting VM (no WSS yet) is not taxed like an idle one. */
	params(&p, GIB + GIB / 2);
	vm_init(&v[0], "booting", GIB, 0);
	v[0].in.wss_valid = false;
	vm_init(&v[1], "idle", GIB, 50);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK_EQ(v[0].out.active, GIB);
	CHECK_EQ(v[0].out.target, GIB);
	CHECK_EQ(v[1].out.target, GIB / 2);
}

TEST(balancer_budget_never_exceeded)
{
	struct balancer_params p;
	struct balancer_vm v[6];
	unsigned seed = 1;

	/* Random inputs over many periods, with VMs following or not. */
	params(&p, 3 * GIB);
	for (size_t i = 0; i < 6; i++)
		vm_init(&v[i], "r", GIB, 100);
	for (int period = 1; period < 400; period++) {
		for (size_t i = 0; i < 6; i++) {
			v[i].in.wss_estimate = (uint64_t)(rand_r(&seed) % 1100) * MIB;
			v[i].in.wss_error = (uint64_t)(rand_r(&seed) % 50) * MIB;
			v[i].in.wss_valid = rand_r(&seed) % 10 != 0;
			v[i].in.responsive = rand_r(&seed) % 20 != 0;
			v[i].in.paged_in += (uint64_t)(rand_r(&seed) % 3000);
			v[i].in.resident = (uint64_t)(rand_r(&seed) % 1024) * MIB;
			if (!v[i].in.responsive)
				v[i].in.resident = v[i].prev.target;
			if (rand_r(&seed) % 2)
				follow(&v[i]);
		}
		balancer_decide(&p, v, 6, period);
		CHECK(sum_targets(v, 6) <= p.budget);
		for (size_t i = 0; i < 6; i++)
			CHECK(v[i].out.target <= GIB);
	}
}

TEST(balancer_steady_input_does_not_oscillate)
{
	struct balancer_params p;
	struct balancer_vm v[4];
	uint64_t t[4];
	const uint64_t wss[4] = { 700, 300, 60, 20 };

	params(&p, 2 * GIB);
	for (size_t i = 0; i < 4; i++)
		vm_init(&v[i], "s", GIB, wss[i]);
	/* Converge (slow-down takes a few periods), then nothing moves. */
	for (int period = 1; period <= 20; period++) {
		CHECK_EQ(balancer_decide(&p, v, 4, period), 0);
		for (size_t i = 0; i < 4; i++)
			follow(&v[i]);
	}
	for (size_t i = 0; i < 4; i++)
		t[i] = v[i].out.target;
	for (int period = 21; period <= 120; period++) {
		/* +-1% estimator noise must not move anything */
		for (size_t i = 0; i < 4; i++)
			v[i].in.wss_estimate = (wss[i] + (period % 2 ?
						wss[i] / 100 : 0)) * MIB;
		CHECK_EQ(balancer_decide(&p, v, 4, period), 0);
		for (size_t i = 0; i < 4; i++) {
			CHECK_EQ(v[i].out.target, t[i]);
			follow(&v[i]);
		}
	}
	CHECK(v[0].out.target >= v[0].out.active);
	CHECK(sum_targets(v, 4) <= p.budget);
}

TEST(balancer_falls_slowly_rises_at_once)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	uint64_t before;

	params(&p, GIB + GIB / 2);
	vm_init(&v[0], "a", GIB, 900);
	vm_init(&v[1], "b", GIB, 100);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	follow(&v[0]);
	follow(&v[1]);
	/* a goes idle: its target falls by at most 10% of RAM a period */
	before = v[0].out.target;
	v[0].in.wss_estimate = 10 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 2, 2), 0);
	CHECK(v[0].out.target < before);
	CHECK(before - v[0].out.target <= GIB / 10);
	/* a wakes: back up in one period */
	v[0].in.wss_estimate = 900 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 2, 3), 0);
	CHECK(v[0].out.target >= 900 * MIB);
	CHECK(sum_targets(v, 2) <= p.budget);
}

TEST(balancer_fault_feedback_gives_memory_back)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	uint64_t before;

	params(&p, GIB + GIB / 2);
	vm_init(&v[0], "a", GIB, 200);
	vm_init(&v[1], "b", GIB, 100);
	for (int period = 1; period <= 10; period++) {
		CHECK_EQ(balancer_decide(&p, v, 2, period), 0);
		follow(&v[0]);
		follow(&v[1]);
	}
	before = v[0].out.target;
	/* The estimate lags; the fault rate says 20k pages (78 MiB) a
	 * second are coming back in. */
	v[0].in.paged_in += 20000;
	CHECK_EQ(balancer_decide(&p, v, 2, 11), 0);
	CHECK(v[0].out.fault_rate > 19999);
	CHECK(v[0].out.target > before);
	CHECK(v[0].out.active >= before + 100 * MIB);
	CHECK(strstr(v[0].out.active_from, "fault") != NULL);
}

/* A VM squeezed to its min while idle wakes into a large working set:
 * its faults are slow, so its rate is low (here 1 MiB/s, just over the
 * threshold) and its WSS estimate lags; it must still get its memory
 * within a few periods, not 2 MiB a period. */
TEST(balancer_fault_bound_vm_gets_memory_in_few_periods)
{
	struct balancer_params p;
	struct balancer_vm v[3];
	int period, woke;

	params(&p, GIB + GIB / 4);
	vm_init(&v[0], "sleeper", GIB, 0);
	vm_init(&v[1], "b", GIB, 700);
	vm_init(&v[2], "c", GIB, 700);
	for (period = 1; period <= 30; period++) {
		CHECK_EQ(balancer_decide(&p, v, 3, period), 0);
		for (size_t i = 0; i < 3; i++)
			follow(&v[i]);
	}
	CHECK(v[0].out.target <= 200 * MIB);
	woke = period;
	for (; period < woke + 5; period++) {
		v[0].in.paged_in += 256;		/* 1 MiB/s */
		v[0].in.wss_estimate = 4 * MIB;		/* what it got to touch */
		CHECK_EQ(balancer_decide(&p, v, 3, period), 0);
		for (size_t i = 0; i < 3; i++)
			follow(&v[i]);
		CHECK(sum_targets(v, 3) <= p.budget);
	}
	/* three VMs short of memory with equal shares: a third each */
	CHECK(v[0].out.target >= 400 * MIB);
	CHECK(v[1].out.target >= 400 * MIB);
}

TEST(balancer_uncooperative_balloon_falls_back_to_paging)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	params(&p, GIB);
	vm_init(&v[0], "deaf", GIB, 100);
	vm_init(&v[1], "b", GIB, 800);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	CHECK(v[0].out.use_balloon);
	CHECK(v[0].out.balloon_target > 0);
	/* The guest never moves its balloon. */
	for (int period = 2; period <= 2 + (int)p.balloon_grace_periods; period++) {
		v[0].in.balloon_target = v[0].out.balloon_target;
		v[0].in.mem_local = v[0].out.mem_local;
		CHECK_EQ(balancer_decide(&p, v, 2, period), 0);
	}
	CHECK(!v[0].out.use_balloon);
	CHECK_EQ(v[0].out.balloon_target, 0);
	CHECK(v[0].out.use_paging);
	CHECK_EQ(v[0].out.mem_local, v[0].out.target);
}

TEST(balancer_policies_pick_their_levers)
{
	struct balancer_params p;
	struct balancer_vm v[3];

	params(&p, GIB);
	vm_init(&v[0], "balloon", GIB, 100);
	vm_init(&v[1], "paging", GIB, 100);
	vm_init(&v[2], "none", GIB, 100);
	v[0].policy = BALANCER_BALLOON;
	v[1].policy = BALANCER_PAGING;
	v[2].policy = BALANCER_NONE;
	balancer_decide(&p, v, 3, 1);
	CHECK(v[0].out.use_balloon && !v[0].out.use_paging);
	CHECK_EQ(v[0].out.balloon_target, GIB - v[0].out.target);
	CHECK(!v[1].out.use_balloon && v[1].out.use_paging);
	CHECK_EQ(v[1].out.mem_local, v[1].out.target);
	CHECK(!v[2].out.use_balloon && !v[2].out.use_paging);
	CHECK_EQ(v[2].out.target, GIB);
}

TEST(balancer_static_splits_equally)
{
	struct balancer_params p;
	struct balancer_vm v[4];

	params(&p, 2 * GIB);
	for (size_t i = 0; i < 4; i++) {
		vm_init(&v[i], "st", GIB, 10 + 300 * i);
		v[i].policy = BALANCER_STATIC;
	}
	CHECK_EQ(balancer_decide(&p, v, 4, 1), 0);
	for (size_t i = 0; i < 4; i++) {
		CHECK_EQ(v[i].out.target, GIB / 2);
		CHECK(v[i].out.use_paging && !v[i].out.use_balloon);
	}
}

TEST(balancer_unresponsive_vm_is_left_alone)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	uint64_t held;

	params(&p, GIB + GIB / 2);
	vm_init(&v[0], "stuck", GIB, 100);
	vm_init(&v[1], "b", GIB, 1000);
	CHECK_EQ(balancer_decide(&p, v, 2, 1), 0);
	follow(&v[0]);
	held = v[0].out.target;
	v[0].in.responsive = false;
	v[0].in.wss_estimate = 1000 * MIB;	/* stale: must not matter */
	for (int period = 2; period < 6; period++) {
		CHECK_EQ(balancer_decide(&p, v, 2, period), 0);
		CHECK_EQ(v[0].out.target, held);
		CHECK(!v[0].out.use_balloon && !v[0].out.use_paging);
		CHECK(sum_targets(v, 2) <= p.budget);
	}
}

TEST(balancer_log_line_is_json_with_every_vm)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	char *line;

	params(&p, GIB);
	vm_init(&v[0], "a", GIB, 100);
	vm_init(&v[1], "b", GIB, 600);
	balancer_decide(&p, v, 2, 1.5);
	line = balancer_log_line(&p, v, 2, 1.5);
	CHECK(line != NULL);
	CHECK(strstr(line, "\"vm\":\"a\"") && strstr(line, "\"vm\":\"b\""));
	CHECK(strstr(line, "\"budget\":1073741824") != NULL);
	CHECK(strstr(line, "\"reason\":") != NULL);
	CHECK(!strchr(line, '\n'));
	free(line);
}

TEST(balancer_policy_names_round_trip)
{
	enum balancer_policy pol;

	for (int i = BALANCER_BOTH; i <= BALANCER_NONE; i++) {
		CHECK_EQ(balancer_policy_parse(balancer_policy_name(i), &pol), 0);
		CHECK_EQ((int)pol, i);
	}
	CHECK_EQ(balancer_policy_parse("greedy", &pol), -EINVAL);
	CHECK_EQ(balancer_policy_parse(NULL, &pol), -EINVAL);
}

TEST(balancer_lowered_max_holds_at_once)
{
	struct balancer_params p;
	struct balancer_vm v[1];

	params(&p, 4 * GIB);
	vm_init(&v[0], "a", GIB, 900);
	CHECK_EQ(balancer_decide(&p, v, 1, 1), 0);
	CHECK_EQ(v[0].out.target, GIB);
	follow(&v[0]);
	v[0].max = 256 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 1, 2), 0);
	CHECK_EQ(v[0].out.target, 256 * MIB);
	CHECK_EQ(v[0].out.mem_local, 256 * MIB);
}

TEST(balancer_balloon_waits_for_the_driver_and_retries)
{
	struct balancer_params p;
	struct balancer_vm v[2];
	int period = 1;

	params(&p, GIB);
	vm_init(&v[0], "booting", GIB, 100);
	vm_init(&v[1], "b", GIB, 800);
	v[0].in.balloon_driver = false;
	/* no driver yet: paging does it all, the balloon is not asked */
	for (; period <= 5; period++) {
		CHECK_EQ(balancer_decide(&p, v, 2, period), 0);
		CHECK(!v[0].out.use_balloon && v[0].out.use_paging);
		CHECK_EQ(v[0].out.balloon_target, 0);
		follow(&v[0]);
	}
	/* the driver comes up: asked at once */
	v[0].in.balloon_driver = true;
	CHECK_EQ(balancer_decide(&p, v, 2, period++), 0);
	CHECK(v[0].out.use_balloon);
	CHECK(v[0].out.balloon_target > 0);
	/* it sits on the request: let go after the grace, asked again after
	 * the retry periods */
	for (unsigned i = 0; i < p.balloon_grace_periods; i++) {
		v[0].in.balloon_target = v[0].out.balloon_target;
		CHECK_EQ(balancer_decide(&p, v, 2, period++), 0);
	}
	CHECK(!v[0].out.use_balloon);
	v[0].in.balloon_target = 0;
	for (unsigned i = 0; i + 1 < p.balloon_retry_periods; i++) {
		CHECK_EQ(balancer_decide(&p, v, 2, period++), 0);
		CHECK(!v[0].out.use_balloon);
	}
	CHECK_EQ(balancer_decide(&p, v, 2, period++), 0);
	CHECK(v[0].out.use_balloon);
}

TEST(balancer_waking_vm_does_not_wait_for_slow_falls)
{
	struct balancer_params p;
	struct balancer_vm v[2];

	/* a is busy, b idle; then they swap: b must get its memory in the
	 * very period its WSS shows, a's fall is not slowed for it */
	params(&p, GIB);
	vm_init(&v[0], "a", GIB, 700);
	vm_init(&v[1], "b", GIB, 10);
	for (int period = 1; period <= 10; period++) {
		CHECK_EQ(balancer_decide(&p, v, 2, period), 0);
		follow(&v[0]);
		follow(&v[1]);
	}
	CHECK(v[0].out.target >= 770 * MIB);
	v[0].in.wss_estimate = 10 * MIB;
	v[1].in.wss_estimate = 700 * MIB;
	CHECK_EQ(balancer_decide(&p, v, 2, 11), 0);
	CHECK(v[1].out.target >= v[1].out.active);
	CHECK(sum_targets(v, 2) <= p.budget);
	CHECK(strstr(v[0].out.reason, "released") != NULL);
}
