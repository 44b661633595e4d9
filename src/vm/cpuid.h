/* SPDX-License-Identifier: MIT */
/*
 * Guest CPUID: what KVM supports, filtered for a VM of N vCPUs.  Pure
 * logic (no ioctls) so it is unit-tested.
 *
 * - sets the hypervisor bit (leaf 1 ECX[31]) so guests know they are
 *   virtualised;
 * - gives vCPU i APIC ID i and describes one socket of N single-thread
 *   cores: leaf 1 (HTT, logical count, initial APIC ID), leaf 4 (cores per
 *   package), leaf 0xB/0x1F (x2APIC topology: SMT level 1 thread, core
 *   level N), leaf 0x80000008 (AMD core count);
 * - hides what a VMM must not pass through (leaf 6 power management,
 *   perfmon leaf 0xA when there is no PMU, MONITOR/MWAIT).
 */
#ifndef RACKVM_VM_CPUID_H
#define RACKVM_VM_CPUID_H

#include <linux/kvm.h>

#define CPUID_MAX_ENTRIES 256

/* Allocates a struct kvm_cpuid2 with room for CPUID_MAX_ENTRIES. */
struct kvm_cpuid2 *cpuid_alloc(void);

/* Fills @out (from cpuid_alloc) for vCPU @vcpu_id of @ncpus; -EINVAL on
 * bad arguments, -E2BIG if @supported has too many entries. */
int cpuid_build(const struct kvm_cpuid2 *supported, unsigned vcpu_id,
		unsigned ncpus, struct kvm_cpuid2 *out);

/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function,
				    unsigned index);

#endif
