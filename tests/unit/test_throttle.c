// SPDX-License-Identifier: MIT
/*
 * The VM throttle (sched/throttle.h) on a real VM: the bundled guest's
 * compute workload, a CPU-bound loop that counts its iterations for a
 * time it measures with the TSC, makes proportionally less progress per
 * second of host time at 50% and 80% than unthrottled.  Progress is
 * iterations / the host's time from start to end: where the guest's TSC
 * runs on while its vCPUs are paused, fewer iterations fit in the time;
 * where KVM holds it back (an unstable host TSC, as on the nested test
 * host), the same iterations take longer; either way the rate falls.  The
 * throttle's pauses nest with another pauser's; and throttle_destroy()
 * leaves the VM running.  The bounds are loose: a check that the duty
 * cycle bites, not a benchmark.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_machine.h"
#include "harness.h"
#include "sched/throttle.h"
#include "util/clock.h"
#include "vm/vm.h"

#define RUN_MS 2500

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* "result: compute iterations=N ..." from the console file; 0 if absent */
static unsigned long long iterations_in(const char *path)
{
	char line[512];
	unsigned long long n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		static const char key[] = "compute iterations=";
		const char *p = strstr(line, key);

		if (p)
			n = strtoull(p + sizeof(key) - 1, NULL, 10);
	}
	fclose(f);
	return n;
}

/* Runs compute for RUN_MS under @percent throttle; its iterations per
 * second of host time, 0 on failure (with *@why), or *@skip set. */
static double run_throttled(unsigned percent, const char **skip,
			    const char **why)
{
	unsigned long long n;
	uint64_t t0, ns;
	char console[512], workload[64];
	struct throttle_stats st;
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct throttle *t = NULL;
	struct vm_exit exit;
	struct machine *m;
	int ret = 0;

	snprintf(workload, sizeof(workload), "compute ms=%u", RUN_MS);
	snprintf(console, sizeof(console), "%s/console-%u.txt",
		 harness_tmpdir(), percent);
	*skip = guest_machine_config(&cfg, workload, 16ull << 20);
	if (*skip)
		return 0;
	cfg.console = console;
	*skip = guest_machine_create(&cfg, &m, &ret);
	if (*skip)
		return 0;
	if (ret) {
		*why = "machine_create failed";
		return 0;
	}
	t0 = monotonic_ns();
	if (throttle_create(machine_vm(m), 0, &t, &err) ||
	    throttle_set(t, percent) || machine_start(m, &err)) {
		*why = "throttle_create, throttle_set or machine_start failed";
		throttle_destroy(t);
		machine_destroy(m);
		return 0;
	}
	machine_wait(m, &exit);
	ns = monotonic_ns() - t0;
	throttle_stats(t, &st);
	throttle_destroy(t);
	machine_destroy(m);
	printf("throttle %u%%: held %llu periods (%llu ms), skipped %llu\n",
	       percent, (unsigned long long)st.held,
	       (unsigned long long)(st.held_ns / 1000000),
	       (unsigned long long)st.skipped);
	if (exit.reason != VM_EXIT_GUEST_DONE) {
		*why = "the guest did not finish";
		return 0;
	}
	if (percent && !st.held) {
		*why = "the throttle never held the vCPUs";
		return 0;
	}
	n = iterations_in(console);
	printf("throttle %u%%: %llu iterations in %llu ms\n", percent, n,
	       (unsigned long long)(ns / 1000000));
	return ns ? (double)n * 1e9 / (double)ns : 0;
}

TEST(throttle_slows_a_cpu_bound_guest_in_proportion)
{
	/* unthrottled first and last: the host's other load slowing one
	 * of them must not make the throttled runs look fast */
	static const unsigned percents[] = { 0, 50, 80, 0 };
	double rate[4], full;
	const char *skip = NULL, *why = "no result line on the console";

	for (unsigned i = 0; i < 4; i++) {
		rate[i] = run_throttled(percents[i], &skip, &why);
		if (skip)
			SKIP(skip);
		if (rate[i] <= 0)
			printf("throttle %u%%: %s\n", percents[i], why);
		CHECK(rate[i] > 0);
	}
	full = rate[0] > rate[3] ? rate[0] : rate[3];
	for (unsigned i = 0; i < 4; i++)
		printf("throttle %u%%: %.0f iterations/s, %.2fx unthrottled\n",
		       percents[i], rate[i], rate[i] / full);
	/* expected about 0.5x and 0.2x */
	CHECK(rate[1] < full * 0.75);
	CHECK(rate[2] < full * 0.4);
	CHECK(rate[2] < rate[1]);
}

TEST(throttle_nests_with_other_pauses_and_destroy_leaves_the_vm_running)
{
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct throttle_stats st;
	struct throttle *t;
	struct vm_exit exit;
	struct machine *m;
	struct vm *vm;
	const char *skip;
	unsigned depth;
	int ret = 0;

	skip = guest_machine_config(&cfg, "compute ms=300", 16ull << 20);
	if (!skip)
		skip = guest_machine_create(&cfg, &m, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	vm = machine_vm(m);
	CHECK_EQ(throttle_create(vm, 20000000, &t, &err), 0);
	CHECK_EQ(throttle_set(t, 100), -EINVAL);
	CHECK_EQ(throttle_set(t, 90), 0);
	CHECK_EQ(throttle_get(t), 90);
	CHECK_EQ(machine_start(m, &err), 0);
	/* another pauser: the throttle's resumes must not undo it, so 300 ms
	 * of guest work cannot finish while it holds */
	CHECK_EQ(vm_pause(vm), 0);
	sleep_ms(1000);
	CHECK(!machine_exit_peek(m, &exit));
	CHECK_EQ(vm_resume(vm), 0);
	sleep_ms(200);
	throttle_stats(t, &st);
	CHECK(st.held > 0);
	/* destroyed mid-cycle: nothing stays paused, the guest finishes */
	throttle_destroy(t);
	pthread_mutex_lock(&vm->lock);
	depth = vm->pause_depth;
	pthread_mutex_unlock(&vm->lock);
	CHECK_EQ(depth, 0);
	machine_wait(m, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_GUEST_DONE);
	machine_destroy(m);
}

TEST(throttle_stops_quietly_when_the_vm_ends)
{
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct throttle_stats st;
	struct throttle *t;
	struct vm_exit exit;
	struct machine *m;
	const char *skip;
	int ret = 0;

	skip = guest_machine_config(&cfg, "compute ms=100", 16ull << 20);
	if (!skip)
		skip = guest_machine_create(&cfg, &m, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	CHECK_EQ(throttle_create(machine_vm(m), 5000000, &t, &err), 0);
	CHECK_EQ(throttle_set(t, 50), 0);
	CHECK_EQ(machine_start(m, &err), 0);
	machine_wait(m, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_GUEST_DONE);
	sleep_ms(100);
	throttle_stats(t, &st);
	CHECK(st.vm_ended);
	CHECK_EQ(throttle_set(t, 70), 0);
	throttle_destroy(t);
	machine_destroy(m);
}
