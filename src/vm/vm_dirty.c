// SPDX-License-Identifier: MIT
/*
 * Write tracking for migration (vm_dirty.h).
 */
#include "vm/vm_dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "util/page.h"
#include "vm/vm.h"

static uint64_t words_for(uint64_t pages)
{
	return (pages + 63) / 64;
}

static int set_slot_flags(struct vm *vm, uint32_t flags, struct errmsg *err)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i, .flags = flags,
			.guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return errmsg_set(err, -errno, "KVM_SET_USER_MEMORY_REGION "
					  "slot %u (dirty logging %s): %s", i,
					  flags ? "on" : "off", strerror(errno));
	}
	return 0;
}

int vm_track_writes_begin(struct vm *vm, struct errmsg *err)
{
	uint64_t words = words_for(vm->mem.size / PAGE_SIZE);
	int ret;

	if (vm->dirty_log != VM_DIRTY_LOG_OFF)
		return errmsg_set(err, -EBUSY, "KVM's dirty log is the working-"
				  "set monitor's (--wss with write logging)");
	if (vm->tracking_writes)
		return errmsg_set(err, -EALREADY, "writes are tracked already");
	if (!vm->mem.device_written)
		vm->mem.device_written = calloc(words ? words : 1, 8);
	if (!vm->track_slot_bitmap)
		vm->track_slot_bitmap = calloc(words ? words : 1, 8);
	if (!vm->mem.device_written || !vm->track_slot_bitmap)
		return errmsg_set(err, -ENOMEM, "out of memory for the bitmaps");
	memset(vm->mem.device_written, 0, words * 8);
	__atomic_store_n(&vm->mem.device_tracking, true, __ATOMIC_RELEASE);
	ret = set_slot_flags(vm, KVM_MEM_LOG_DIRTY_PAGES, err);
	if (ret) {
		__atomic_store_n(&vm->mem.device_tracking, false, __ATOMIC_RELEASE);
		set_slot_flags(vm, 0, NULL);
		return ret;
	}
	vm->tracking_writes = true;
	return 0;
}

int64_t vm_track_writes_collect(struct vm *vm, uint64_t *bitmap,
				struct errmsg *err)
{
	int64_t added = 0;

	if (!vm->tracking_writes)
		return errmsg_set(err, -EINVAL, "writes are not tracked");
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		uint64_t pages = r->size / PAGE_SIZE, words = words_for(pages);
		/* memfd offsets of regions are multiples of 3 GiB: whole words */
		uint64_t *dst = bitmap + (r->memfd_offset / PAGE_SIZE) / 64;
		struct kvm_dirty_log get = {
			.slot = i, .dirty_bitmap = vm->track_slot_bitmap,
		};

		memset(vm->track_slot_bitmap, 0, words * 8);
		if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &get) < 0)
			return errmsg_set(err, -errno, "KVM_GET_DIRTY_LOG slot %u: "
					  "%s", i, strerror(errno));
		for (uint64_t w = 0; w < words; w++) {
			uint64_t fresh = vm->track_slot_bitmap[w] & ~dst[w];

			added += __builtin_popcountll(fresh);
			dst[w] |= vm->track_slot_bitmap[w];
		}
	}
	return added;
}

void vm_track_device_writes(struct vm *vm, uint64_t *bitmap)
{
	uint64_t words = words_for(vm->mem.size / PAGE_SIZE);

	if (!vm->mem.device_written)
		return;
	for (uint64_t w = 0; w < words; w++)
		bitmap[w] |= __atomic_load_n(&vm->mem.device_written[w],
					     __ATOMIC_RELAXED);
}

void vm_track_writes_end(struct vm *vm)
{
	if (!vm->tracking_writes)
		return;
	__atomic_store_n(&vm->mem.device_tracking, false, __ATOMIC_RELEASE);
	set_slot_flags(vm, 0, NULL);
	vm->tracking_writes = false;
}
