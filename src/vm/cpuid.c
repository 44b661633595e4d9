// SPDX-License-Identifier: MIT
#include "vm/cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CPUID_1_ECX_MONITOR (1u << 3)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define TOPOLOGY_LEVEL_SMT 1u
#define TOPOLOGY_LEVEL_CORE 2u

struct kvm_cpuid2 *cpuid_alloc(void)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) +
			      CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (c)
		c->nent = CPUID_MAX_ENTRIES;
	return c;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned function,
				    unsigned index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

/* Bits needed to hold ids 0..n-1: the APIC ID shift of the core level. */
static unsigned id_bits(unsigned n)
{
	unsigned bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

static bool vendor_is_amd(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 0, 0);

	/* "AuthenticAMD" / "HygonGenuine" both use the AMD core-count leaf */
	return e && (e->ebx == 0x68747541 || e->ebx == 0x6f677948);
}

static void set_leaf1(struct kvm_cpuid_entry2 *e, unsigned apic_id,
		      unsigned ncpus)
{
	e->ecx |= CPUID_1_ECX_HYPERVISOR;
	/* MONITOR/MWAIT would let an idle guest spin in a way we do not
	 * account for; Linux then falls back to HLT, which KVM handles. */
	e->ecx &= ~CPUID_1_ECX_MONITOR;
	e->ebx &= 0x0000ffffu;
	e->ebx |= apic_id << 24;
	e->ebx |= (1u << id_bits(ncpus)) << 16;
	if (ncpus > 1)
		e->edx |= CPUID_1_EDX_HTT;
	else
		e->edx &= ~CPUID_1_EDX_HTT;
}

/* Deterministic cache parameters: every core of the one socket shares the
 * last level, lower levels are private to a core. */
static void set_leaf4(struct kvm_cpuid_entry2 *e, unsigned ncpus)
{
	unsigned level = (e->eax >> 5) & 7;
	unsigned sharing = level >= 3 ? ncpus - 1 : 0;

	if ((e->eax & 0x1f) == 0)
		return; /* no cache at this index */
	e->eax &= 0x00003fffu;
	e->eax |= (ncpus - 1) << 26;
	e->eax |= sharing << 14;
}

/* x2APIC topology (leaf 0xB, and 0x1F when present): one thread per core,
 * ncpus cores in one package. */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e, unsigned apic_id,
			      unsigned ncpus)
{
	e->edx = apic_id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (TOPOLOGY_LEVEL_SMT << 8) | 0;
		break;
	case 1:
		e->eax = id_bits(ncpus);
		e->ebx = ncpus;
		e->ecx = (TOPOLOGY_LEVEL_CORE << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

static void ensure_topology_subleaves(struct kvm_cpuid2 *c, unsigned function)
{
	struct kvm_cpuid_entry2 *leaf0 = cpuid_find(c, 0, 0);

	if (!leaf0 || leaf0->eax < function)
		return;
	for (unsigned index = 0; index < 2; index++) {
		if (cpuid_find(c, function, index) || c->nent >= CPUID_MAX_ENTRIES)
			continue;
		c->entries[c->nent++] = (struct kvm_cpuid_entry2){
			.function = function,
			.index = index,
			.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		};
	}
}

int cpuid_build(const struct kvm_cpuid2 *supported, unsigned vcpu_id,
		unsigned ncpus, struct kvm_cpuid2 *out)
{
	bool amd;

	if (!ncpus || vcpu_id >= ncpus || ncpus > 255)
		return -EINVAL;
	if (supported->nent > CPUID_MAX_ENTRIES)
		return -E2BIG;
	out->nent = supported->nent;
	memcpy(out->entries, supported->entries,
	       supported->nent * sizeof(supported->entries[0]));
	/* leaf 0xB must exist for Linux to read the topology; 0x1F only if
	 * the CPU has it (then it is authoritative and must agree) */
	ensure_topology_subleaves(out, 0xb);
	amd = vendor_is_amd(out);

	for (unsigned i = 0; i < out->nent; i++) {
		struct kvm_cpuid_entry2 *e = &out->entries[i];

		switch (e->function) {
		case 1:
			set_leaf1(e, vcpu_id, ncpus);
			break;
		case 4:
			set_leaf4(e, ncpus);
			break;
		case 0xb:
		case 0x1f:
			set_topology_leaf(e, vcpu_id, ncpus);
			break;
		case 0x80000008:
			if (amd)
				e->ecx = (e->ecx & ~0xffu) | (ncpus - 1);
			break;
		}
	}
	return 0;
}
