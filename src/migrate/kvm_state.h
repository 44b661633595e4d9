/* SPDX-License-Identifier: MIT */
/*
 * What KVM itself holds for a VM, as bytes (util/state_buf.h), for
 * snapshots and migration: per vCPU the registers, FPU/SSE/AVX state,
 * pending events, run state (running, halted, waiting for SIPI), local
 * APIC and MSRs; per VM the in-kernel PICs, IOAPIC, PIT and kvmclock.
 * Guest RAM and rackvm's own devices are saved by others (vm_state.h).
 *
 * Saving: the vCPU must be paused (vm_pause_settled()) or never
 * started; the calls run KVM ioctls on its fd from the caller's thread.
 * The state is whole only if KVM has finished the vCPU's last I/O or
 * MMIO exit (an IN's value into RAX, RIP past the instruction), which
 * it does in the next KVM_RUN: vm_pause_settled() sees to that
 * (finish_exit() in vm/vcpu.c).
 *
 * Loading: into a VM built from the same config, before its vCPUs ever
 * ran (then vm_start(vm, NULL, ...)) or while it is paused.  Every vCPU's
 * kvm_state_load_cpu() first, then kvm_state_load_vm(): the IOAPIC hands
 * its pending interrupts to local APICs that are loaded by then.  A load
 * checks every length, count and value it can in the bytes (untrusted
 * input) before its first ioctl, so bad bytes change nothing; a failing
 * ioctl is reported naming the vCPU and the part
 * ("vCPU 1: KVM_SET_SREGS: Invalid argument"), and leaves the parts
 * applied before it applied.
 *
 * Time: the guest's TSC and kvmclock go on from the values saved, so no
 * guest time passes between save and load (as in a paused VM).  One
 * exception is KVM's: older kernels take a TSC written within a second
 * of the one they expect as "keep the vCPUs in step" and keep their own,
 * so there the guest may see up to a second pass (or come back).
 * Loading the kvmclock MSRs with an address makes KVM write the guest's
 * wall clock into guest RAM at once: load guest RAM first.
 *
 * Layout (little-endian):
 *   vCPU: u32 KVM_STATE_CPU_VERSION, u32 vCPU id, u32 part count, parts
 *   VM:   u32 KVM_STATE_VM_VERSION, u32 part count, parts
 *   part: u32 tag, u32 length, length bytes
 * Tags are the enums below; each appears at most once, in any order, and
 * a load requires all but the optional ones.  KVM's own structures are
 * kept in KVM's layout (its x86-64 uapi structs, whose sizes never
 * change); the MSR part is u32 count, then count x (u32 index, u64 value).
 *
 * Errors: -EBADMSG for bytes that are not a state of this layout
 * (truncated, unknown version or tag, a length or count out of bounds),
 * -EINVAL for a state this vCPU or host cannot take (another vCPU's id,
 * another XSAVE size, an unknown run state), -ENOTSUP for a KVM without
 * what is needed, -ENOMEM, or KVM's -errno; @err always says what.
 */
#ifndef RACKVM_MIGRATE_KVM_STATE_H
#define RACKVM_MIGRATE_KVM_STATE_H

#include "util/errmsg.h"
#include "util/state_buf.h"

struct vcpu;
struct vm;

#define KVM_STATE_CPU_VERSION 1u
#define KVM_STATE_VM_VERSION 1u
/* More MSRs than this in a saved state is a corrupt state (KVM lists a
 * few hundred at most). */
#define KVM_STATE_MAX_MSRS 1024u

enum kvm_state_cpu_tag {
	KVM_STATE_CPU_MP_STATE = 1,	/* u32 KVM_MP_STATE_* */
	KVM_STATE_CPU_EVENTS,		/* struct kvm_vcpu_events */
	KVM_STATE_CPU_REGS,		/* struct kvm_regs */
	KVM_STATE_CPU_SREGS,		/* struct kvm_sregs */
	KVM_STATE_CPU_XCRS,		/* struct kvm_xcrs */
	KVM_STATE_CPU_XSAVE,		/* KVM_GET_XSAVE(2) area, host's size */
	KVM_STATE_CPU_DEBUGREGS,	/* struct kvm_debugregs */
	KVM_STATE_CPU_LAPIC,		/* struct kvm_lapic_state (1 KiB) */
	KVM_STATE_CPU_MSRS,		/* u32 count, (u32 index, u64 value)... */
	KVM_STATE_CPU_TSC_KHZ,		/* u32; optional (KVM_CAP_GET_TSC_KHZ) */
	KVM_STATE_CPU_TAGS		/* one past the last */
};

enum kvm_state_vm_tag {
	KVM_STATE_VM_PIC_MASTER = 1,	/* struct kvm_irqchip's 512-byte chip */
	KVM_STATE_VM_PIC_SLAVE,		/* likewise */
	KVM_STATE_VM_IOAPIC,		/* likewise */
	KVM_STATE_VM_PIT,		/* struct kvm_pit_state2 */
	KVM_STATE_VM_CLOCK,		/* struct kvm_clock_data */
	KVM_STATE_VM_TAGS
};

/* Appends vCPU @vcpu's state to @out. */
int kvm_state_save_cpu(struct vcpu *vcpu, struct state_buf *out,
		       struct errmsg *err);
/* Reads one vCPU state from @in (exactly its bytes) and applies it to
 * @vcpu, which must have the id it was saved from. */
int kvm_state_load_cpu(struct vcpu *vcpu, struct state_reader *in,
		       struct errmsg *err);

/* The VM-wide in-kernel state: PIC master and slave, IOAPIC, PIT and
 * kvmclock.  Same rules as the vCPU calls. */
int kvm_state_save_vm(struct vm *vm, struct state_buf *out,
		      struct errmsg *err);
int kvm_state_load_vm(struct vm *vm, struct state_reader *in,
		      struct errmsg *err);

#endif
