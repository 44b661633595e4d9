// SPDX-License-Identifier: MIT
#include "memory/dirty_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "util/page.h"
#include "vm/vcpu.h"

struct dirty_log {
	struct vm *vm;
	enum vm_dirty_log mode;
	uint64_t npages;		/* guest RAM pages */
	pthread_mutex_t lock;		/* guards everything below */
	uint64_t *pending;		/* RING: harvested, not yet collected */
	uint32_t *fetch;		/* RING: next entry to read, per vCPU */
	unsigned *empty_full;		/* RING: ring-full exits in a row that
					 * found nothing to harvest, per vCPU */
	uint64_t *slot_bitmap;		/* BITMAP: scratch for one memslot */
};

const char *dirty_log_mode_name(enum vm_dirty_log mode)
{
	switch (mode) {
	case VM_DIRTY_LOG_RING: return "ring";
	case VM_DIRTY_LOG_BITMAP: return "bitmap";
	case VM_DIRTY_LOG_AUTO: return "auto";
	case VM_DIRTY_LOG_OFF: break;
	}
	return "off";
}

/* The entry's slot (as_id << 16 | id; we only use address space 0) and
 * page offset within it, as a page index; false if KVM reports something
 * that is not our RAM. */
static bool entry_page(const struct dirty_log *dl, uint32_t slot,
		       uint64_t offset, uint64_t *page)
{
	const struct guest_region *r;

	if (slot >= dl->vm->mem.nregions)
		return false;
	r = &dl->vm->mem.regions[slot];
	if (offset >= r->size >> PAGE_SHIFT)
		return false;
	*page = (r->memfd_offset >> PAGE_SHIFT) + offset;
	return true;
}

/* Reads one vCPU's ring from its fetch index up to the first entry KVM has
 * not published, marking each for reset.  Protocol (KVM api.rst, dirty
 * ring): an entry is ours once flags has DIRTY (acquire, pairs with
 * KVM's release); we hand it back by setting RESET (release), and KVM
 * recycles it (re-protecting the page) at KVM_RESET_DIRTY_RINGS.
 * Caller holds dl->lock. */
static unsigned harvest_ring_locked(struct dirty_log *dl, struct vcpu *vcpu)
{
	uint32_t mask = dl->vm->dirty_ring_entries - 1;
	uint32_t *fetch = &dl->fetch[vcpu->id];
	unsigned n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &vcpu->dirty_ring[*fetch & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		uint64_t page;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (entry_page(dl, e->slot, e->offset, &page))
			bitmap_set(dl->pending, page);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
		(*fetch)++;
		n++;
	}
	return n;
}

static int harvest_all_locked(struct dirty_log *dl, unsigned *harvested)
{
	unsigned n = 0;

	for (unsigned i = 0; i < dl->vm->ncpus; i++)
		if (dl->vm->vcpus[i].dirty_ring)
			n += harvest_ring_locked(dl, &dl->vm->vcpus[i]);
	if (harvested)
		*harvested = n;
	/* KVM_RESET_DIRTY_RINGS answers how many entries it recycled and
	 * may stop early (it yields on long runs), so it is called until
	 * it has nothing left; also when we harvested nothing now, so
	 * entries handed back earlier are never left pending */
	for (int i = 0; i < 1024; i++) {
		int ret = ioctl(dl->vm->fd, KVM_RESET_DIRTY_RINGS, 0);

		if (ret < 0)
			return errno == EINTR ? 0 : -errno;
		if (ret == 0)
			break;
	}
	return 0;
}

/* KVM_EXIT_DIRTY_RING_FULL, on the vCPU's thread: empty the rings into
 * the pending bitmap so the vCPU can run again at once, instead of
 * waiting for the next interval. */
static void ring_full(void *opaque, struct vcpu *vcpu)
{
	struct dirty_log *dl = opaque;
	unsigned n = 0, empty;
	int ret;

	pthread_mutex_lock(&dl->lock);
	ret = harvest_all_locked(dl, &n);
	empty = n ? 0 : ++dl->empty_full[vcpu->id];
	if (n)
		dl->empty_full[vcpu->id] = 0;
	pthread_mutex_unlock(&dl->lock);
	if (ret)
		vm_request_exit(dl->vm, VM_EXIT_HOST_ERROR, ret, vcpu->id,
				"KVM_RESET_DIRTY_RINGS: %s", strerror(-ret));
	/* Seen on this kernel: one KVM_RUN that dirties more pages than the
	 * ring's slack (an emulated rep stos over megabytes, when ring-0 code
	 * is emulated) overflows the ring (KVM warns in kvm_dirty_ring_push)
	 * and it then reports full forever with nothing in it.  End the VM
	 * with a reason rather than spin. */
	else if (empty >= 10000)
		vm_request_exit(dl->vm, VM_EXIT_HOST_ERROR, -EOVERFLOW, vcpu->id,
				"vCPU %u: KVM's dirty ring overflowed and stays full "
				"(a single exit dirtied more pages than it holds); "
				"use the dirty bitmap (--wss-log bitmap)", vcpu->id);
}

static int64_t or_into(uint64_t *dst, uint64_t *src, uint64_t words,
		       bool clear_src)
{
	int64_t added = 0;

	for (uint64_t w = 0; w < words; w++) {
		if (!src[w])
			continue;
		added += __builtin_popcountll(src[w] & ~dst[w]);
		dst[w] |= src[w];
		if (clear_src)
			src[w] = 0;
	}
	return added;
}

static int64_t collect_bitmap_locked(struct dirty_log *dl, uint64_t *bitmap,
				     struct errmsg *err)
{
	int64_t added = 0;

	for (unsigned i = 0; i < dl->vm->mem.nregions; i++) {
		const struct guest_region *r = &dl->vm->mem.regions[i];
		uint64_t npages = r->size >> PAGE_SHIFT;
		uint64_t words = bitmap_words(npages);
		struct kvm_dirty_log get = { .slot = i,
					     .dirty_bitmap = dl->slot_bitmap };
		struct kvm_clear_dirty_log clear = {
			.slot = i, .first_page = 0, .num_pages = (uint32_t)npages,
			.dirty_bitmap = dl->slot_bitmap,
		};

		memset(dl->slot_bitmap, 0, words * 8);
		if (ioctl(dl->vm->fd, KVM_GET_DIRTY_LOG, &get) < 0)
			return errmsg_set(err, -errno, "KVM_GET_DIRTY_LOG slot %u: %s",
					  i, strerror(errno));
		/* re-arms exactly the pages we are about to report: a write
		 * after GET and before CLEAR shows up next time, because
		 * CLEAR write-protects before we could miss it */
		if (ioctl(dl->vm->fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			return errmsg_set(err, -errno, "KVM_CLEAR_DIRTY_LOG slot %u: %s",
					  i, strerror(errno));
		/* memfd offsets of regions are multiples of 3 GiB: word
		 * aligned, so the slot's words OR straight in */
		added += or_into(bitmap + (r->memfd_offset >> PAGE_SHIFT) / 64,
				 dl->slot_bitmap, words, false);
	}
	return added;
}

int64_t dirty_log_collect(struct dirty_log *dl, uint64_t *bitmap,
			  struct errmsg *err)
{
	int64_t ret;

	pthread_mutex_lock(&dl->lock);
	if (dl->mode == VM_DIRTY_LOG_RING) {
		/* Entries still in a hardware PML buffer reach the ring at
		 * the vCPU's next exit, so they land in the next interval. */
		ret = harvest_all_locked(dl, NULL);
		if (ret)
			errmsg_set(err, (int)ret, "KVM_RESET_DIRTY_RINGS: %s",
				   strerror((int)-ret));
		else
			ret = or_into(bitmap, dl->pending,
				      bitmap_words(dl->npages), true);
	} else {
		ret = collect_bitmap_locked(dl, bitmap, err);
	}
	pthread_mutex_unlock(&dl->lock);
	return ret;
}

int dirty_log_create(struct vm *vm, struct dirty_log **out, struct errmsg *err)
{
	struct dirty_log *dl;
	uint64_t slot_pages = 0;

	if (vm->dirty_log != VM_DIRTY_LOG_RING &&
	    vm->dirty_log != VM_DIRTY_LOG_BITMAP)
		return errmsg_set(err, -EINVAL,
				  "the VM was created without dirty logging");
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return -ENOMEM;
	dl->vm = vm;
	dl->mode = vm->dirty_log;
	dl->npages = vm->mem.size >> PAGE_SHIFT;
	pthread_mutex_init(&dl->lock, NULL);
	if (dl->mode == VM_DIRTY_LOG_RING) {
		dl->pending = calloc(bitmap_words(dl->npages), 8);
		dl->fetch = calloc(vm->ncpus, sizeof(*dl->fetch));
		dl->empty_full = calloc(vm->ncpus, sizeof(*dl->empty_full));
		if (!dl->pending || !dl->fetch || !dl->empty_full)
			goto nomem;
		vm->dirty_ring_opaque = dl;
		vm->dirty_ring_full = ring_full;
	} else {
		for (unsigned i = 0; i < vm->mem.nregions; i++)
			if (vm->mem.regions[i].size >> PAGE_SHIFT > slot_pages)
				slot_pages = vm->mem.regions[i].size >> PAGE_SHIFT;
		dl->slot_bitmap = calloc(bitmap_words(slot_pages), 8);
		if (!dl->slot_bitmap)
			goto nomem;
	}
	*out = dl;
	return 0;
nomem:
	dirty_log_destroy(dl);
	return errmsg_set(err, -ENOMEM, "dirty log bitmaps: out of memory");
}

void dirty_log_destroy(struct dirty_log *dl)
{
	if (!dl)
		return;
	if (dl->vm->dirty_ring_opaque == dl) {
		dl->vm->dirty_ring_full = NULL;
		dl->vm->dirty_ring_opaque = NULL;
	}
	free(dl->pending);
	free(dl->fetch);
	free(dl->empty_full);
	free(dl->slot_bitmap);
	pthread_mutex_destroy(&dl->lock);
	free(dl);
}
