// SPDX-License-Identifier: MIT
/*
 * A vCPU's KVM state (migrate/kvm_state.h): read in the order KVM's side
 * effects require, checked in full, then applied in the order KVM needs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "migrate/kvm_state_internal.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/* An XSAVE area larger than this is not one (AMX makes it ~11 KiB). */
#define XSAVE_MAX_BYTES (1u << 20)

#define EVENT_FLAGS_KNOWN (KVM_VCPUEVENT_VALID_NMI_PENDING |		\
			   KVM_VCPUEVENT_VALID_SIPI_VECTOR |		\
			   KVM_VCPUEVENT_VALID_SHADOW |			\
			   KVM_VCPUEVENT_VALID_SMM |			\
			   KVM_VCPUEVENT_VALID_PAYLOAD |			\
			   KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

struct cpu_image {
	struct kvm_mp_state mp_state;
	struct kvm_vcpu_events events;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_xsave *xsave;
	size_t xsave_size;
	struct kvm_msrs *msrs;	/* load only */
	uint32_t tsc_khz;	/* 0: not known */
};

#define EXACT(name, type) { name, sizeof(type), 0, false }

static const struct kvm_state_part_spec cpu_parts[KVM_STATE_CPU_TAGS] = {
	[KVM_STATE_CPU_MP_STATE] = EXACT("MP_STATE", uint32_t),
	[KVM_STATE_CPU_EVENTS] = EXACT("VCPU_EVENTS", struct kvm_vcpu_events),
	[KVM_STATE_CPU_REGS] = EXACT("REGS", struct kvm_regs),
	[KVM_STATE_CPU_SREGS] = EXACT("SREGS", struct kvm_sregs),
	[KVM_STATE_CPU_XCRS] = EXACT("XCRS", struct kvm_xcrs),
	[KVM_STATE_CPU_XSAVE] = { "XSAVE", 0, XSAVE_MAX_BYTES, false },
	[KVM_STATE_CPU_DEBUGREGS] = EXACT("DEBUGREGS", struct kvm_debugregs),
	[KVM_STATE_CPU_LAPIC] = EXACT("LAPIC", struct kvm_lapic_state),
	[KVM_STATE_CPU_MSRS] = { "MSRS", 0, 4 + KVM_STATE_MAX_MSRS * 12u, false },
	[KVM_STATE_CPU_TSC_KHZ] = { "TSC_KHZ", sizeof(uint32_t), 0, true },
};

/* Parts every save writes: all tags but TSC_KHZ, which it may not. */
#define ALWAYS_SAVED (KVM_STATE_CPU_TAGS - 2)

static struct cpu_image *image_new(void)
{
	return calloc(1, sizeof(struct cpu_image));
}

static void image_free(struct cpu_image *img)
{
	if (!img)
		return;
	free(img->xsave);
	free(img->msrs);
	free(img);
}

/* The size of this host's XSAVE area for the VM: KVM_CAP_XSAVE2 says
 * when it exceeds the 4 KiB of struct kvm_xsave (AMX). */
static int xsave_size(struct vm *vm, size_t *size, bool *xsave2,
		      struct errmsg *err)
{
	int ret;

	if (ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
		return errmsg_set(err, -ENOTSUP, "KVM lacks KVM_CAP_XSAVE");
	ret = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	*xsave2 = ret > 0;
	*size = ret > (int)sizeof(struct kvm_xsave) ? (size_t)ret :
						       sizeof(struct kvm_xsave);
	return 0;
}

static int vcpu_ioctl(struct vcpu *vcpu, unsigned long req, void *arg,
		      const char *name, struct errmsg *err)
{
	int e;

	if (ioctl(vcpu->fd, req, arg) >= 0)
		return 0;
	e = errno;
	return errmsg_set(err, -e, "vCPU %u: %s: %s", vcpu->id, name,
			  strerror(e));
}

/* The ioctl named as it is spelt, for the message. */
#define VCPU_IOCTL(vcpu, req, arg, err) vcpu_ioctl(vcpu, req, arg, #req, err)

/* TSC kHz of this vCPU, 0 where KVM does not say. */
static uint32_t vcpu_tsc_khz(struct vcpu *vcpu)
{
	int khz;

	if (ioctl(vcpu->vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) <= 0)
		return 0;
	khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
	return khz > 0 ? (uint32_t)khz : 0;
}

/*
 * Read order: KVM_GET_MP_STATE first, since it makes KVM act on an INIT
 * or SIPI the local APIC latched (resetting the vCPU, or starting it at
 * the SIPI vector), which changes the registers read after it.  Then
 * VCPU_EVENTS: without KVM_CAP_EXCEPTION_PAYLOAD, reading them delivers
 * a pending exception's payload into CR2 or DR6, read after it.
 */
static int read_image(struct vcpu *vcpu, struct cpu_image *img,
		      struct errmsg *err)
{
	bool xsave2;
	int ret;

	ret = xsave_size(vcpu->vm, &img->xsave_size, &xsave2, err);
	if (ret)
		return ret;
	img->xsave = calloc(1, img->xsave_size);
	if (!img->xsave)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = VCPU_IOCTL(vcpu, KVM_GET_MP_STATE, &img->mp_state, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_VCPU_EVENTS, &img->events, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_REGS, &img->regs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_SREGS, &img->sregs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_XCRS, &img->xcrs, err);
	if (!ret && xsave2)
		ret = VCPU_IOCTL(vcpu, KVM_GET_XSAVE2, img->xsave, err);
	else if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_XSAVE, img->xsave, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_DEBUGREGS, &img->debugregs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_GET_LAPIC, &img->lapic, err);
	img->tsc_khz = vcpu_tsc_khz(vcpu);
	return ret;
}

int kvm_state_save_cpu(struct vcpu *vcpu, struct state_buf *out,
		       struct errmsg *err)
{
	struct cpu_image *img = image_new();
	struct state_buf b;
	int ret;

	if (!img)
		return errmsg_set(err, -ENOMEM, "out of memory");
	state_buf_init(&b);
	ret = read_image(vcpu, img, err);
	if (ret)
		goto out;
	state_put_u32(&b, KVM_STATE_CPU_VERSION);
	state_put_u32(&b, vcpu->id);
	state_put_u32(&b, ALWAYS_SAVED + (img->tsc_khz ? 1 : 0));
	kvm_state_put_part(&b, KVM_STATE_CPU_MP_STATE, &img->mp_state.mp_state,
			   sizeof(uint32_t));
#define PUT(tag, field) kvm_state_put_part(&b, tag, &img->field, sizeof(img->field))
	PUT(KVM_STATE_CPU_EVENTS, events);
	PUT(KVM_STATE_CPU_REGS, regs);
	PUT(KVM_STATE_CPU_SREGS, sregs);
	PUT(KVM_STATE_CPU_XCRS, xcrs);
	kvm_state_put_part(&b, KVM_STATE_CPU_XSAVE, img->xsave, img->xsave_size);
	PUT(KVM_STATE_CPU_DEBUGREGS, debugregs);
	PUT(KVM_STATE_CPU_LAPIC, lapic);
#undef PUT
	ret = kvm_state_save_msrs(vcpu, &b, err);
	if (ret)
		goto out;
	if (img->tsc_khz)
		kvm_state_put_part(&b, KVM_STATE_CPU_TSC_KHZ, &img->tsc_khz,
				   sizeof(img->tsc_khz));
	ret = state_buf_error(&b);
	if (!ret)
		state_put_bytes(out, b.data, b.len);
	if (!ret)
		ret = state_buf_error(out);
	if (ret)
		errmsg_set(err, ret, "vCPU %u: out of memory", vcpu->id);
out:
	state_buf_release(&b);
	image_free(img);
	return ret;
}

static bool mp_state_known(uint32_t s)
{
	switch (s) {
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_INIT_RECEIVED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_SIPI_RECEIVED:
	case KVM_MP_STATE_AP_RESET_HOLD:
	case KVM_MP_STATE_SUSPENDED:
		return true;
	}
	return false;
}

/* The parts' values into @img, checked as far as rackvm can. */
static int parse_image(struct vcpu *vcpu, const char *who,
		       const struct kvm_state_part *parts,
		       struct cpu_image *img, struct errmsg *err)
{
	const struct kvm_state_part *xsave = &parts[KVM_STATE_CPU_XSAVE];
	bool xsave2;
	int ret;

	memcpy(&img->mp_state.mp_state, parts[KVM_STATE_CPU_MP_STATE].data,
	       sizeof(uint32_t));
	memcpy(&img->events, parts[KVM_STATE_CPU_EVENTS].data, sizeof(img->events));
	memcpy(&img->regs, parts[KVM_STATE_CPU_REGS].data, sizeof(img->regs));
	memcpy(&img->sregs, parts[KVM_STATE_CPU_SREGS].data, sizeof(img->sregs));
	memcpy(&img->xcrs, parts[KVM_STATE_CPU_XCRS].data, sizeof(img->xcrs));
	memcpy(&img->debugregs, parts[KVM_STATE_CPU_DEBUGREGS].data,
	       sizeof(img->debugregs));
	memcpy(&img->lapic, parts[KVM_STATE_CPU_LAPIC].data, sizeof(img->lapic));
	if (parts[KVM_STATE_CPU_TSC_KHZ].present)
		memcpy(&img->tsc_khz, parts[KVM_STATE_CPU_TSC_KHZ].data,
		       sizeof(uint32_t));
	if (!mp_state_known(img->mp_state.mp_state))
		return errmsg_set(err, -EINVAL, "%s state: unknown MP state %u",
				  who, img->mp_state.mp_state);
	if (img->events.flags & ~EVENT_FLAGS_KNOWN)
		return errmsg_set(err, -EINVAL, "%s state: unknown VCPU_EVENTS flags 0x%x",
				  who, img->events.flags & ~EVENT_FLAGS_KNOWN);
	if (img->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return errmsg_set(err, -EBADMSG, "%s state: %u XCRs (at most %u)",
				  who, img->xcrs.nr_xcrs, KVM_MAX_XCRS);
	if (parts[KVM_STATE_CPU_TSC_KHZ].present && !img->tsc_khz)
		return errmsg_set(err, -EINVAL, "%s state: a TSC of 0 kHz", who);
	ret = xsave_size(vcpu->vm, &img->xsave_size, &xsave2, err);
	if (ret)
		return ret;
	if (xsave->len != img->xsave_size)
		return errmsg_set(err, -EINVAL,
				  "%s state: an XSAVE area of %zu bytes; this host's has %zu",
				  who, xsave->len, img->xsave_size);
	img->xsave = malloc(img->xsave_size);
	if (!img->xsave)
		return errmsg_set(err, -ENOMEM, "out of memory");
	memcpy(img->xsave, xsave->data, img->xsave_size);
	return kvm_state_parse_msrs(&parts[KVM_STATE_CPU_MSRS], who, &img->msrs,
				    err);
}

static int read_header(struct vcpu *vcpu, struct state_reader *in,
		       const char *who, struct errmsg *err)
{
	uint32_t version, id;

	if (state_get_u32(in, &version) || state_get_u32(in, &id))
		return errmsg_set(err, -EBADMSG, "%s state: truncated header", who);
	if (version != KVM_STATE_CPU_VERSION)
		return errmsg_set(err, -EBADMSG,
				  "%s state: layout version %u, this rackvm reads %u",
				  who, version, KVM_STATE_CPU_VERSION);
	if (id != vcpu->id)
		return errmsg_set(err, -EINVAL, "%s state: saved from vCPU %u",
				  who, id);
	return 0;
}

/* The TSC's rate as saved, where it differs from this host's (which
 * needs TSC scaling here; KVM accepts a few hundred ppm without). */
static int apply_tsc_khz(struct vcpu *vcpu, uint32_t khz, struct errmsg *err)
{
	uint32_t here = vcpu_tsc_khz(vcpu);
	int e;

	if (!khz || khz == here)
		return 0;
	if (ioctl(vcpu->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) == 0)
		return 0;
	e = errno;
	return errmsg_set(err, -e,
			  "vCPU %u: KVM_SET_TSC_KHZ %u (this host's TSC runs at %u kHz): %s",
			  vcpu->id, khz, here, strerror(e));
}

/*
 * Write order, for KVM's sake:
 *   SREGS first: CR0/CR4/EFER set the mode REGS are taken in (RFLAGS in
 *     VMX's real-mode emulation), and a new APIC base may reset the
 *     local APIC, loaded later;
 *   REGS: setting them drops a pending exception, which VCPU_EVENTS
 *     brings back later;
 *   XCRS, XSAVE, DEBUGREGS;
 *   MSRs but TSC_DEADLINE (the TSC among them);
 *   LAPIC, after SREGS and the APIC_BASE MSR;
 *   TSC_DEADLINE: KVM ignores it unless the LAPIC's timer is in
 *     TSC-deadline mode, and counts it against the TSC set before;
 *   VCPU_EVENTS: after REGS; they also set the SIPI vector and a
 *     latched INIT in the local APIC, so after the LAPIC too;
 *   MP_STATE last: KVM refuses some run states in SMM, which the
 *     events set.
 * The TSC's rate comes before all: the TSC and its deadline count in it.
 */
static int apply_image(struct vcpu *vcpu, struct cpu_image *img,
		       struct errmsg *err)
{
	int ret;

	ret = apply_tsc_khz(vcpu, img->tsc_khz, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_SREGS, &img->sregs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_REGS, &img->regs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_XCRS, &img->xcrs, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_XSAVE, img->xsave, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_DEBUGREGS, &img->debugregs, err);
	if (!ret)
		ret = kvm_state_set_msrs(vcpu, img->msrs,
					 kvm_state_msr_is_tsc_deadline, false, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_LAPIC, &img->lapic, err);
	if (!ret)
		ret = kvm_state_set_msrs(vcpu, img->msrs,
					 kvm_state_msr_is_tsc_deadline, true, err);
	/* what the saved events hold is valid; these two are only valid
	 * on a set when asked for */
	img->events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
			     KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_VCPU_EVENTS, &img->events, err);
	if (!ret)
		ret = VCPU_IOCTL(vcpu, KVM_SET_MP_STATE, &img->mp_state, err);
	return ret;
}

int kvm_state_load_cpu(struct vcpu *vcpu, struct state_reader *in,
		       struct errmsg *err)
{
	struct kvm_state_part parts[KVM_STATE_CPU_TAGS];
	struct cpu_image *img;
	char who[24];
	int ret;

	snprintf(who, sizeof(who), "vCPU %u", vcpu->id);
	ret = read_header(vcpu, in, who, err);
	if (!ret)
		ret = kvm_state_read_parts(in, who, cpu_parts, KVM_STATE_CPU_TAGS,
					   parts, err);
	if (ret)
		return ret;
	img = image_new();
	if (!img)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = parse_image(vcpu, who, parts, img, err);
	if (!ret)
		ret = apply_image(vcpu, img, err);
	image_free(img);
	return ret;
}
