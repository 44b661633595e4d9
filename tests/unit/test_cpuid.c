// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "vm/cpuid.h"

/* A small host CPUID table shaped like what KVM_GET_SUPPORTED_CPUID gives
 * on an Intel machine. */
static struct kvm_cpuid2 *fake_supported(void)
{
	struct kvm_cpuid2 *c = cpuid_alloc();
	unsigned n = 0;

	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xd,
		.ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 };
	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = 1,
		.eax = 0x806f8, .ebx = 0xff010800, .ecx = 0x0008 | 0x1, .edx = 0 };
	/* leaf 4: L1d (level 1, type 1) and L3 (level 3, type 3) */
	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 0,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = (1 << 5) | 1 | (0x3fu << 26) | (0xfffu << 14) };
	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 1,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = (3 << 5) | 3 };
	c->entries[n++] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 1, .ebx = 2,
		.ecx = 0x100, .edx = 9 };
	c->nent = n;
	return c;
}

TEST(cpuid_sets_hypervisor_bit_and_apic_ids)
{
	struct kvm_cpuid2 *sup = fake_supported(), *out = cpuid_alloc();
	struct kvm_cpuid_entry2 *e;

	CHECK_EQ(cpuid_build(sup, 2, 4, out), 0);
	e = cpuid_find(out, 1, 0);
	CHECK(e != NULL);
	CHECK(e->ecx & (1u << 31));
	CHECK(!(e->ecx & (1u << 3)));	/* MONITOR hidden */
	CHECK_EQ(e->ebx >> 24, 2);	/* initial APIC ID */
	CHECK_EQ((e->ebx >> 16) & 0xff, 4);
	CHECK(e->edx & (1u << 28));	/* HTT: more than one logical CPU */
	free(sup);
	free(out);
}

TEST(cpuid_topology_leaves_describe_n_cores)
{
	struct kvm_cpuid2 *sup = fake_supported(), *out = cpuid_alloc();
	struct kvm_cpuid_entry2 *smt, *core, *l1, *l3;

	CHECK_EQ(cpuid_build(sup, 1, 3, out), 0);
	smt = cpuid_find(out, 0xb, 0);
	core = cpuid_find(out, 0xb, 1);	/* added: the host table lacked it */
	CHECK(smt && core);
	CHECK_EQ(smt->ebx, 1);
	CHECK_EQ((smt->ecx >> 8) & 0xff, 1);
	CHECK_EQ(core->ebx, 3);
	CHECK_EQ((core->ecx >> 8) & 0xff, 2);
	CHECK_EQ(core->eax, 2);		/* 3 cores need 2 APIC ID bits */
	CHECK_EQ(core->edx, 1);
	CHECK_EQ(smt->edx, 1);
	l1 = cpuid_find(out, 4, 0);
	l3 = cpuid_find(out, 4, 1);
	CHECK_EQ(l1->eax >> 26, 2);		/* cores per package - 1 */
	CHECK_EQ((l1->eax >> 14) & 0xfff, 0);	/* L1 private */
	CHECK_EQ((l3->eax >> 14) & 0xfff, 2);	/* L3 shared by all 3 */
	free(sup);
	free(out);
}

TEST(cpuid_single_cpu_has_no_htt)
{
	struct kvm_cpuid2 *sup = fake_supported(), *out = cpuid_alloc();
	struct kvm_cpuid_entry2 *e;

	CHECK_EQ(cpuid_build(sup, 0, 1, out), 0);
	e = cpuid_find(out, 1, 0);
	CHECK(!(e->edx & (1u << 28)));
	CHECK_EQ((e->ebx >> 16) & 0xff, 1);
	free(sup);
	free(out);
}

TEST(cpuid_rejects_bad_arguments)
{
	struct kvm_cpuid2 *sup = fake_supported(), *out = cpuid_alloc();

	CHECK_EQ(cpuid_build(sup, 4, 4, out), -EINVAL);
	CHECK_EQ(cpuid_build(sup, 0, 0, out), -EINVAL);
	CHECK_EQ(cpuid_build(sup, 0, 256, out), -EINVAL);
	free(sup);
	free(out);
}
