// SPDX-License-Identifier: MIT
/*
 * The MSR part of a vCPU's state (kvm_state_internal.h).
 *
 * Which MSRs: those KVM lists in KVM_GET_MSR_INDEX_LIST (what it keeps
 * for a vCPU beyond the register ioctls: TSC, TSC_DEADLINE, PAT, the
 * SYSCALL and SYSENTER MSRs, kvmclock's, ...), plus a few it serves but
 * does not list (the MTRRs; APIC_BASE and EFER, also in SREGS).  The
 * list depends on the host CPU and on KVM's version, and KVM_GET_MSRS
 * stops at the first MSR of a batch it cannot read (a PMU counter this
 * vCPU lacks, Intel PT on AMD), so each is read alone and only those
 * read are kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "migrate/kvm_state_internal.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define MSR_IA32_APIC_BASE 0x1bu
#define MSR_MTRR_PHYS_FIRST 0x200u	/* 8 base/mask pairs to 0x20f */
#define MSR_MTRR_PHYS_LAST 0x20fu
#define MSR_MTRR_FIX_64K_00000 0x250u
#define MSR_MTRR_FIX_16K_80000 0x258u
#define MSR_MTRR_FIX_16K_A0000 0x259u
#define MSR_MTRR_FIX_4K_FIRST 0x268u	/* to 0x26f */
#define MSR_MTRR_FIX_4K_LAST 0x26fu
#define MSR_MTRR_DEF_TYPE 0x2ffu
#define MSR_IA32_VMX_FIRST 0x480u	/* VMX capability MSRs */
#define MSR_IA32_VMX_LAST 0x492u
#define MSR_IA32_TSC_DEADLINE 0x6e0u
#define MSR_EFER 0xc0000080u

/* KVM reports its list's length with E2BIG; more than this is not a
 * list from a sane kernel. */
#define MAX_INDEX_LIST 4096u
#define MSR_ENTRY_BYTES 12u	/* u32 index, u64 value */

static const uint32_t unlisted_msrs[] = {
	MSR_IA32_APIC_BASE, MSR_EFER, MSR_MTRR_DEF_TYPE,
	MSR_MTRR_FIX_64K_00000, MSR_MTRR_FIX_16K_80000, MSR_MTRR_FIX_16K_A0000,
};

bool kvm_state_msr_is_tsc_deadline(uint32_t index)
{
	return index == MSR_IA32_TSC_DEADLINE;
}

/*
 * MSRs KVM may refuse to set although it read them, by design, skipped
 * on load: the VMX capability MSRs (Intel with nested VMX).  They are
 * read-only to the guest, and KVM derives them from the vCPU's CPUID,
 * which a VM built from the same config gets again; KVM never accepts
 * some of them from userspace (the "non-true" controls 0x481-0x484 and
 * CR0/CR4_FIXED1 0x487/0x489 are computed from others; older kernels
 * also VMFUNC 0x491), and none while the guest is in VMX operation.
 */
static bool refused_by_design(uint32_t index)
{
	return index >= MSR_IA32_VMX_FIRST && index <= MSR_IA32_VMX_LAST;
}

static bool in_list(const struct kvm_msr_list *list, uint32_t index)
{
	for (uint32_t i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

static void add_unlisted(struct kvm_msr_list *list, uint32_t index)
{
	if (!in_list(list, index))
		list->indices[list->nmsrs++] = index;
}

#define NR_UNLISTED_FIXED (sizeof(unlisted_msrs) / sizeof(unlisted_msrs[0]))
#define NR_UNLISTED (NR_UNLISTED_FIXED +				\
		     (MSR_MTRR_PHYS_LAST - MSR_MTRR_PHYS_FIRST + 1) +	\
		     (MSR_MTRR_FIX_4K_LAST - MSR_MTRR_FIX_4K_FIRST + 1))

/* KVM's list from /dev/kvm with the unlisted ones appended. */
static int msr_candidates(struct vcpu *vcpu, struct kvm_msr_list **out,
			  struct errmsg *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	uint32_t n;

	if (ioctl(vcpu->vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 &&
	    errno != E2BIG)
		return errmsg_set(err, -errno, "KVM_GET_MSR_INDEX_LIST: %s",
				  strerror(errno));
	n = probe.nmsrs;
	if (n > MAX_INDEX_LIST)
		return errmsg_set(err, -EIO, "KVM_GET_MSR_INDEX_LIST: %u MSRs",
				  n);
	list = calloc(1, sizeof(*list) + (n + NR_UNLISTED) * sizeof(uint32_t));
	if (!list)
		return errmsg_set(err, -ENOMEM, "out of memory");
	list->nmsrs = n;
	if (ioctl(vcpu->vm->kvm.fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int ret = -errno;

		free(list);
		return errmsg_set(err, ret, "KVM_GET_MSR_INDEX_LIST: %s",
				  strerror(-ret));
	}
	for (size_t i = 0; i < NR_UNLISTED_FIXED; i++)
		add_unlisted(list, unlisted_msrs[i]);
	for (uint32_t i = MSR_MTRR_PHYS_FIRST; i <= MSR_MTRR_PHYS_LAST; i++)
		add_unlisted(list, i);
	for (uint32_t i = MSR_MTRR_FIX_4K_FIRST; i <= MSR_MTRR_FIX_4K_LAST; i++)
		add_unlisted(list, i);
	*out = list;
	return 0;
}

/* 1 and the value if this vCPU's KVM can read @index, 0 if not. */
static int read_msr(struct vcpu *vcpu, uint32_t index, uint64_t *value)
{
	/* struct kvm_msrs ends in a flexible array: one entry after it */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) +
			      sizeof(struct kvm_msr_entry)];
	} m;
	struct kvm_msr_entry *entry = m.hdr.entries;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	entry->index = index;
	ret = ioctl(vcpu->fd, KVM_GET_MSRS, &m);
	if (ret < 0)
		return -errno;
	*value = entry->data;
	return ret == 1;
}

int kvm_state_save_msrs(struct vcpu *vcpu, struct state_buf *out,
			struct errmsg *err)
{
	struct kvm_msr_list *list = NULL;
	struct state_buf part;
	uint32_t count = 0;
	uint64_t value = 0;
	int ret;

	ret = msr_candidates(vcpu, &list, err);
	if (ret)
		return ret;
	state_buf_init(&part);
	state_put_u32(&part, 0);	/* the count, filled in below */
	for (uint32_t i = 0; i < list->nmsrs && !ret; i++) {
		ret = read_msr(vcpu, list->indices[i], &value);
		if (ret < 0) {
			errmsg_set(err, ret, "vCPU %u: KVM_GET_MSRS 0x%x: %s",
				   vcpu->id, list->indices[i], strerror(-ret));
		} else if (ret == 1) {
			state_put_u32(&part, list->indices[i]);
			state_put_u64(&part, value);
			count++;
			ret = 0;
		}
	}
	free(list);
	if (!ret && count > KVM_STATE_MAX_MSRS)
		ret = errmsg_set(err, -E2BIG, "vCPU %u: %u readable MSRs, a state holds %u",
				 vcpu->id, count, KVM_STATE_MAX_MSRS);
	if (!ret && state_buf_error(&part))
		ret = errmsg_set(err, state_buf_error(&part), "out of memory");
	if (!ret) {
		memcpy(part.data, &count, sizeof(count));	/* x86: LE */
		kvm_state_put_part(out, KVM_STATE_CPU_MSRS, part.data, part.len);
	}
	state_buf_release(&part);
	return ret;
}

int kvm_state_parse_msrs(const struct kvm_state_part *part, const char *who,
			 struct kvm_msrs **out, struct errmsg *err)
{
	struct state_reader r;
	struct kvm_msrs *msrs;
	uint32_t count;

	state_reader_init(&r, part->data, part->len);
	if (state_get_u32(&r, &count))
		return errmsg_set(err, -EBADMSG, "%s state: MSRS part without a count",
				  who);
	if (count > KVM_STATE_MAX_MSRS)
		return errmsg_set(err, -EBADMSG, "%s state: %u MSRs (at most %u)",
				  who, count, KVM_STATE_MAX_MSRS);
	if (state_reader_left(&r) != (size_t)count * MSR_ENTRY_BYTES)
		return errmsg_set(err, -EBADMSG,
				  "%s state: MSRS part of %zu bytes for %u MSRs",
				  who, part->len, count);
	msrs = calloc(1, sizeof(*msrs) + count * sizeof(msrs->entries[0]));
	if (!msrs)
		return errmsg_set(err, -ENOMEM, "out of memory");
	msrs->nmsrs = count;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t value;

		state_get_u32(&r, &msrs->entries[i].index);
		state_get_u64(&r, &value);
		msrs->entries[i].data = value;
	}
	*out = msrs;
	return 0;
}

/* KVM_SET_MSRS sets entries in order and stops at the first it refuses,
 * returning how many it set: go on past those refused by design. */
static int set_all(struct vcpu *vcpu, struct kvm_msrs *batch,
		   const struct kvm_msr_entry *entries, uint32_t n,
		   struct errmsg *err)
{
	uint32_t done = 0;
	int ret;

	while (done < n) {
		batch->nmsrs = n - done;
		memcpy(batch->entries, entries + done,
		       (n - done) * sizeof(entries[0]));
		ret = ioctl(vcpu->fd, KVM_SET_MSRS, batch);
		if (ret < 0)
			return errmsg_set(err, -errno, "vCPU %u: KVM_SET_MSRS: %s",
					  vcpu->id, strerror(errno));
		done += (uint32_t)ret;
		if (done >= n)
			break;
		if (!refused_by_design(entries[done].index))
			return errmsg_set(err, -EINVAL,
					  "vCPU %u: KVM_SET_MSRS: KVM refused MSR 0x%x = 0x%llx",
					  vcpu->id, entries[done].index,
					  (unsigned long long)entries[done].data);
		done++;
	}
	return 0;
}

int kvm_state_set_msrs(struct vcpu *vcpu, const struct kvm_msrs *msrs,
		       bool (*filter)(uint32_t index), bool want,
		       struct errmsg *err)
{
	size_t bytes = sizeof(struct kvm_msrs) +
		       msrs->nmsrs * sizeof(struct kvm_msr_entry);
	struct kvm_msr_entry *picked;
	struct kvm_msrs *batch;
	uint32_t n = 0;
	int ret;

	picked = calloc(msrs->nmsrs + 1, sizeof(*picked));
	batch = calloc(1, bytes);
	if (!picked || !batch) {
		free(picked);
		free(batch);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < msrs->nmsrs; i++)
		if (filter(msrs->entries[i].index) == want)
			picked[n++] = msrs->entries[i];
	ret = set_all(vcpu, batch, picked, n, err);
	free(picked);
	free(batch);
	return ret;
}
