// SPDX-License-Identifier: MIT
/*
 * The VM-wide in-kernel state (migrate/kvm_state.h): the two PICs and
 * the IOAPIC (KVM_GET_IRQCHIP), the PIT (KVM_GET_PIT2) and kvmclock
 * (KVM_GET_CLOCK).
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "migrate/kvm_state_internal.h"
#include "vm/vm.h"

#define CHIP_BYTES sizeof(((struct kvm_irqchip *)0)->chip)
#define PIT_FLAGS_KNOWN (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)

static const struct kvm_state_part_spec vm_parts[KVM_STATE_VM_TAGS] = {
	[KVM_STATE_VM_PIC_MASTER] = { "PIC_MASTER", CHIP_BYTES, 0, false },
	[KVM_STATE_VM_PIC_SLAVE] = { "PIC_SLAVE", CHIP_BYTES, 0, false },
	[KVM_STATE_VM_IOAPIC] = { "IOAPIC", CHIP_BYTES, 0, false },
	[KVM_STATE_VM_PIT] = { "PIT2", sizeof(struct kvm_pit_state2), 0, false },
	[KVM_STATE_VM_CLOCK] = { "CLOCK", sizeof(struct kvm_clock_data), 0, false },
};

/* The irqchip parts in tag order, with KVM's chip ids. */
static const struct {
	uint32_t tag;
	uint32_t chip_id;
	const char *name;
} chips[] = {
	{ KVM_STATE_VM_PIC_MASTER, KVM_IRQCHIP_PIC_MASTER, "PIC master" },
	{ KVM_STATE_VM_PIC_SLAVE, KVM_IRQCHIP_PIC_SLAVE, "PIC slave" },
	{ KVM_STATE_VM_IOAPIC, KVM_IRQCHIP_IOAPIC, "IOAPIC" },
};

#define NR_CHIPS (sizeof(chips) / sizeof(chips[0]))

struct vm_image {
	struct kvm_irqchip chip[NR_CHIPS];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg,
		    const char *name, const char *what, struct errmsg *err)
{
	int e;

	if (ioctl(vm->fd, req, arg) >= 0)
		return 0;
	e = errno;
	return errmsg_set(err, -e, "VM: %s (%s): %s", name, what, strerror(e));
}

static int read_image(struct vm *vm, struct vm_image *img, struct errmsg *err)
{
	int ret = 0;

	memset(img, 0, sizeof(*img));
	for (unsigned i = 0; i < NR_CHIPS && !ret; i++) {
		img->chip[i].chip_id = chips[i].chip_id;
		ret = vm_ioctl(vm, KVM_GET_IRQCHIP, &img->chip[i],
			       "KVM_GET_IRQCHIP", chips[i].name, err);
	}
	if (!ret)
		ret = vm_ioctl(vm, KVM_GET_PIT2, &img->pit, "KVM_GET_PIT2",
			       "PIT", err);
	if (!ret)
		ret = vm_ioctl(vm, KVM_GET_CLOCK, &img->clock, "KVM_GET_CLOCK",
			       "kvmclock", err);
	return ret;
}

int kvm_state_save_vm(struct vm *vm, struct state_buf *out,
		      struct errmsg *err)
{
	struct vm_image img;
	struct state_buf b;
	int ret;

	ret = read_image(vm, &img, err);
	if (ret)
		return ret;
	state_buf_init(&b);
	state_put_u32(&b, KVM_STATE_VM_VERSION);
	state_put_u32(&b, NR_CHIPS + 2);	/* parts */
	for (unsigned i = 0; i < NR_CHIPS; i++)
		kvm_state_put_part(&b, chips[i].tag, &img.chip[i].chip, CHIP_BYTES);
	kvm_state_put_part(&b, KVM_STATE_VM_PIT, &img.pit, sizeof(img.pit));
	kvm_state_put_part(&b, KVM_STATE_VM_CLOCK, &img.clock, sizeof(img.clock));
	ret = state_buf_error(&b);
	if (!ret)
		state_put_bytes(out, b.data, b.len);
	if (!ret)
		ret = state_buf_error(out);
	if (ret)
		errmsg_set(err, ret, "VM: out of memory");
	state_buf_release(&b);
	return ret;
}

static int parse_image(const struct kvm_state_part *parts,
		       struct vm_image *img, struct errmsg *err)
{
	memset(img, 0, sizeof(*img));
	for (unsigned i = 0; i < NR_CHIPS; i++) {
		img->chip[i].chip_id = chips[i].chip_id;
		memcpy(&img->chip[i].chip, parts[chips[i].tag].data, CHIP_BYTES);
	}
	memcpy(&img->pit, parts[KVM_STATE_VM_PIT].data, sizeof(img->pit));
	memcpy(&img->clock, parts[KVM_STATE_VM_CLOCK].data, sizeof(img->clock));
	if (img->pit.flags & ~PIT_FLAGS_KNOWN)
		return errmsg_set(err, -EINVAL, "VM state: unknown PIT flags 0x%x",
				  img->pit.flags & ~PIT_FLAGS_KNOWN);
	/*
	 * Only the clock's value is set: with KVM_CLOCK_REALTIME KVM would
	 * add the wall time since the save, but the TSC restarts from its
	 * saved value, so the guest's clocks stay in step as they are.
	 */
	img->clock.flags = 0;
	img->clock.realtime = 0;
	img->clock.host_tsc = 0;
	return 0;
}

int kvm_state_load_vm(struct vm *vm, struct state_reader *in,
		      struct errmsg *err)
{
	struct kvm_state_part parts[KVM_STATE_VM_TAGS];
	struct vm_image img;
	uint32_t version;
	int ret;

	if (state_get_u32(in, &version))
		return errmsg_set(err, -EBADMSG, "VM state: truncated header");
	if (version != KVM_STATE_VM_VERSION)
		return errmsg_set(err, -EBADMSG,
				  "VM state: layout version %u, this rackvm reads %u",
				  version, KVM_STATE_VM_VERSION);
	ret = kvm_state_read_parts(in, "VM", vm_parts, KVM_STATE_VM_TAGS, parts,
				   err);
	if (!ret)
		ret = parse_image(parts, &img, err);
	for (unsigned i = 0; i < NR_CHIPS && !ret; i++)
		ret = vm_ioctl(vm, KVM_SET_IRQCHIP, &img.chip[i], "KVM_SET_IRQCHIP",
			       chips[i].name, err);
	if (!ret)
		ret = vm_ioctl(vm, KVM_SET_PIT2, &img.pit, "KVM_SET_PIT2",
			       "PIT", err);
	if (!ret)
		ret = vm_ioctl(vm, KVM_SET_CLOCK, &img.clock, "KVM_SET_CLOCK",
			       "kvmclock", err);
	return ret;
}
