// SPDX-License-Identifier: MIT
/*
 * smp: start every application processor and check that the CPUs that
 * come online are exactly the ones fw_cfg and CPUID describe.
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/platform.h"
#include "guest/smp.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

/* Ring 0 is emulated on some hosts: the APs' mode switches are slow. */
#define AP_TIMEOUT_NS (20 * NSEC_PER_SEC)

#define CPUID_TOPOLOGY_LEAF 0xb
#define TOPOLOGY_LEVEL_CORE 2

/* Logical processors per package from CPUID leaf 0xB at the core level,
 * or 0 if the leaf is missing. */
static uint32_t cpuid_core_count(void)
{
	struct cpuid_regs r;
	uint32_t level;

	if (cpuid(0, 0).eax < CPUID_TOPOLOGY_LEAF)
		return 0;
	for (level = 0; level < 8; level++) {
		r = cpuid(CPUID_TOPOLOGY_LEAF, level);
		if (((r.ecx >> 8) & 0xff) == 0)
			break;
		if (((r.ecx >> 8) & 0xff) == TOPOLOGY_LEVEL_CORE)
			return r.ebx & 0xffff;
	}
	return 0;
}

static void check_apic_ids_unique(uint32_t aps)
{
	uint32_t bsp = this_cpu_apic_id(), i, j;

	for (i = 0; i < aps && i < MAX_CPUS; i++) {
		GUEST_ASSERT_MSG(ap_apic_ids[i] != bsp,
				 "smp: an AP reports the BSP's APIC ID %u", bsp);
		for (j = 0; j < i; j++)
			GUEST_ASSERT_MSG(ap_apic_ids[i] != ap_apic_ids[j],
					 "smp: two APs report APIC ID %u",
					 ap_apic_ids[i]);
	}
}

static void smp_run(const struct cmdline *c)
{
	uint32_t expected_aps = platform.nb_cpus - 1, aps, online, cores;

	(void)c;
	GUEST_ASSERT_MSG(platform.nb_cpus <= MAX_CPUS,
			 "smp: %u CPUs, the runtime supports %u",
			 platform.nb_cpus, MAX_CPUS);
	aps = smp_start_aps(expected_aps, AP_TIMEOUT_NS);
	online = aps + 1;
	cores = cpuid_core_count();
	guest_result("smp cpus_online=%u nb_cpus=%u cpuid_cpus=%u", online,
		     platform.nb_cpus, cores);
	GUEST_ASSERT_MSG(online == platform.nb_cpus,
			 "smp: %u CPUs online, fw_cfg NB_CPUS says %u",
			 online, platform.nb_cpus);
	if (cores)
		GUEST_ASSERT_MSG(online == cores,
				 "smp: %u CPUs online, CPUID leaf 0xB core level says %u",
				 online, cores);
	check_apic_ids_unique(aps);
	guest_done(0);
}

const struct workload workload_smp = {
	.name = "smp",
	.usage = "(no parameters) starts all APs, checks the count",
	.run = smp_run,
};
