// SPDX-License-Identifier: MIT
/*
 * The one owner of a VM's dirty log, its readers, and migration's write
 * tracking (vm_dirty.h).
 */
#include "vm/vm_dirty.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "util/page.h"
#include "vm/vcpu.h"
#include "vm/vm.h"
#include "vm/vm_dirty_fanout.h"

struct vm_dirty_owner {
	struct vm *vm;
	enum vm_dirty_log mode;		/* RING, BITMAP, or OFF: ours */
	pthread_mutex_t lock;		/* guards everything below */
	struct dirty_fanout readers;
	struct dirty_reader *migration;	/* vm_track_writes_*()'s */
	/* RING, per vCPU: the next entry to read, and ring-full exits in
	 * a row that found nothing to harvest */
	uint32_t *fetch;
	unsigned *empty_full;
	uint64_t *slot_bitmap;		/* BITMAP, OFF: one memslot's */
};

/* The handle vm_dirty.h hands out is a fanout reader (never dereferenced
 * as a struct vm_dirty_reader); its owner field is the VM's owner. */
#define AS_READER(r) ((struct vm_dirty_reader *)(r))
#define FROM_READER(r) ((struct dirty_reader *)(r))

/* vm->dirty_lock guards creating, finding and freeing the owner
 * (vm->dirty_owner) and the reader counts that decide it; it is never
 * held while harvesting. */

/* ---- harvesting: KVM's log into every reader's pending pages ---------- */

/* The entry's slot (as_id << 16 | id; we only use address space 0) and
 * page offset within it, as a page index; false if KVM reports something
 * that is not our RAM. */
static bool entry_page(const struct vm *vm, uint32_t slot, uint64_t offset,
		       uint64_t *page)
{
	const struct guest_region *r;

	if (slot >= vm->mem.nregions)
		return false;
	r = &vm->mem.regions[slot];
	if (offset >= r->size >> PAGE_SHIFT)
		return false;
	*page = (r->memfd_offset >> PAGE_SHIFT) + offset;
	return true;
}

/* Reads one vCPU's ring from its fetch index up to the first entry KVM has
 * not published.  Protocol (KVM api.rst, dirty ring): an entry is ours
 * once flags has DIRTY (acquire, pairs with KVM's release); we hand it
 * back by setting RESET (release), and KVM recycles it (re-protecting
 * the page) at KVM_RESET_DIRTY_RINGS.  Caller holds o->lock. */
static unsigned harvest_ring_locked(struct vm_dirty_owner *o,
				    struct vcpu *vcpu)
{
	uint32_t mask = o->vm->dirty_ring_entries - 1;
	uint32_t *fetch = &o->fetch[vcpu->id];
	unsigned n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &vcpu->dirty_ring[*fetch & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		uint64_t page;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (entry_page(o->vm, e->slot, e->offset, &page))
			dirty_fanout_mark(&o->readers, page);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
		(*fetch)++;
		n++;
	}
	return n;
}

static int harvest_rings_locked(struct vm_dirty_owner *o, unsigned *harvested)
{
	unsigned n = 0;

	for (unsigned i = 0; i < o->vm->ncpus; i++)
		if (o->vm->vcpus[i].dirty_ring)
			n += harvest_ring_locked(o, &o->vm->vcpus[i]);
	if (harvested)
		*harvested = n;
	/* KVM_RESET_DIRTY_RINGS answers how many entries it recycled and
	 * may stop early (it yields on long runs), so it is called until
	 * it has nothing left; also when we harvested nothing now, so
	 * entries handed back earlier are never left pending */
	for (int i = 0; i < 1024; i++) {
		int ret = ioctl(o->vm->fd, KVM_RESET_DIRTY_RINGS, 0);

		if (ret < 0)
			return errno == EINTR ? 0 : -errno;
		if (ret == 0)
			break;
	}
	return 0;
}

/* KVM_EXIT_DIRTY_RING_FULL, on the vCPU's thread: empty the rings into
 * the readers' pending pages so the vCPU can run again at once. */
static void ring_full(void *opaque, struct vcpu *vcpu)
{
	struct vm_dirty_owner *o = opaque;
	unsigned n = 0, empty;
	int ret;

	pthread_mutex_lock(&o->lock);
	ret = harvest_rings_locked(o, &n);
	empty = n ? 0 : ++o->empty_full[vcpu->id];
	if (n)
		o->empty_full[vcpu->id] = 0;
	pthread_mutex_unlock(&o->lock);
	if (ret)
		vm_request_exit(o->vm, VM_EXIT_HOST_ERROR, ret, vcpu->id,
				"KVM_RESET_DIRTY_RINGS: %s", strerror(-ret));
	/* Seen on this kernel: one KVM_RUN that dirties more pages than the
	 * ring's slack (an emulated rep stos over megabytes, when ring-0 code
	 * is emulated) overflows the ring (KVM warns in kvm_dirty_ring_push)
	 * and it then reports full forever with nothing in it.  End the VM
	 * with a reason rather than spin. */
	else if (empty >= 10000)
		vm_request_exit(o->vm, VM_EXIT_HOST_ERROR, -EOVERFLOW, vcpu->id,
				"vCPU %u: KVM's dirty ring overflowed and stays full "
				"(a single exit dirtied more pages than it holds); "
				"use the dirty bitmap (--wss-log bitmap)", vcpu->id);
}

/* BITMAP (manual protect: GET, then CLEAR exactly what GET reported) or
 * OFF (our own logging: GET clears by itself). */
static int harvest_bitmaps_locked(struct vm_dirty_owner *o,
				  struct errmsg *err)
{
	struct vm *vm = o->vm;

	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		uint64_t npages = r->size >> PAGE_SHIFT;
		uint64_t words = (npages + 63) / 64;
		struct kvm_dirty_log get = { .slot = i,
					     .dirty_bitmap = o->slot_bitmap };
		struct kvm_clear_dirty_log clear = {
			.slot = i, .first_page = 0, .num_pages = (uint32_t)npages,
			.dirty_bitmap = o->slot_bitmap,
		};

		memset(o->slot_bitmap, 0, words * 8);
		if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &get) < 0)
			return errmsg_set(err, -errno, "KVM_GET_DIRTY_LOG slot %u: %s",
					  i, strerror(errno));
		/* re-arms exactly the pages we are about to report: a write
		 * after GET and before CLEAR shows up next time, because
		 * CLEAR write-protects before we could miss it */
		if (o->mode == VM_DIRTY_LOG_BITMAP &&
		    ioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			return errmsg_set(err, -errno, "KVM_CLEAR_DIRTY_LOG slot %u: %s",
					  i, strerror(errno));
		/* memfd offsets of regions are multiples of 3 GiB: word
		 * aligned, so the slot's words go straight in */
		dirty_fanout_mark_words(&o->readers,
					(r->memfd_offset >> PAGE_SHIFT) / 64,
					o->slot_bitmap, words);
	}
	return 0;
}

static int harvest_locked(struct vm_dirty_owner *o, struct errmsg *err)
{
	int ret;

	if (o->mode != VM_DIRTY_LOG_RING)
		return harvest_bitmaps_locked(o, err);
	/* Entries still in a hardware PML buffer reach the ring at the
	 * vCPU's next exit, so they land in a later collect. */
	ret = harvest_rings_locked(o, NULL);
	if (ret)
		return errmsg_set(err, ret, "KVM_RESET_DIRTY_RINGS: %s",
				  strerror(-ret));
	return 0;
}

/* ---- the owner ---------------------------------------------------------- */

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

static void owner_free(struct vm_dirty_owner *o)
{
	struct vm *vm = o->vm;

	if (o->mode == VM_DIRTY_LOG_OFF)
		set_slot_flags(vm, 0, NULL);
	if (vm->dirty_owner == o) {
		__atomic_store_n(&vm->dirty_ring_full, NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&vm->dirty_ring_opaque, NULL, __ATOMIC_RELEASE);
		vm->dirty_owner = NULL;
	}
	free(o->fetch);
	free(o->empty_full);
	free(o->slot_bitmap);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static int owner_alloc(struct vm *vm, struct vm_dirty_owner *o)
{
	uint64_t slot_pages = 0;

	if (o->mode == VM_DIRTY_LOG_RING) {
		o->fetch = calloc(vm->ncpus, sizeof(*o->fetch));
		o->empty_full = calloc(vm->ncpus, sizeof(*o->empty_full));
		return o->fetch && o->empty_full ? 0 : -ENOMEM;
	}
	for (unsigned i = 0; i < vm->mem.nregions; i++)
		if (vm->mem.regions[i].size >> PAGE_SHIFT > slot_pages)
			slot_pages = vm->mem.regions[i].size >> PAGE_SHIFT;
	o->slot_bitmap = calloc((slot_pages + 63) / 64 + 1, 8);
	return o->slot_bitmap ? 0 : -ENOMEM;
}

/* Caller holds vm->dirty_lock. */
static int owner_create(struct vm *vm, struct vm_dirty_owner **out,
			struct errmsg *err)
{
	struct vm_dirty_owner *o;
	int ret;

	if (vm->dirty_log != VM_DIRTY_LOG_OFF &&
	    vm->dirty_log != VM_DIRTY_LOG_RING &&
	    vm->dirty_log != VM_DIRTY_LOG_BITMAP)
		return errmsg_set(err, -EINVAL, "dirty log mode %d is not one "
				  "vm_create() sets up", (int)vm->dirty_log);
	o = calloc(1, sizeof(*o));
	if (!o)
		return errmsg_set(err, -ENOMEM, "dirty log: out of memory");
	o->vm = vm;
	o->mode = vm->dirty_log;
	pthread_mutex_init(&o->lock, NULL);
	dirty_fanout_init(&o->readers, vm->mem.size >> PAGE_SHIFT);
	ret = owner_alloc(vm, o);
	if (ret) {
		errmsg_set(err, ret, "dirty log: out of memory");
		goto fail;
	}
	if (o->mode == VM_DIRTY_LOG_OFF) {
		ret = set_slot_flags(vm, KVM_MEM_LOG_DIRTY_PAGES, err);
		if (ret)
			goto fail;
	}
	vm->dirty_owner = o;
	/* the opaque first: a vCPU that sees the handler finds it set */
	__atomic_store_n(&vm->dirty_ring_opaque, o, __ATOMIC_RELEASE);
	if (o->mode == VM_DIRTY_LOG_RING)
		__atomic_store_n(&vm->dirty_ring_full, ring_full,
				 __ATOMIC_RELEASE);
	*out = o;
	return 0;
fail:
	owner_free(o);
	return ret;
}

/* ---- readers ------------------------------------------------------------ */

/* Caller holds vm->dirty_lock. */
static int open_locked(struct vm *vm, struct dirty_reader **out,
		       struct errmsg *err)
{
	struct vm_dirty_owner *o = vm->dirty_owner;
	int ret;

	if (!o) {
		ret = owner_create(vm, &o, err);
		if (ret)
			return ret;
	}
	pthread_mutex_lock(&o->lock);
	ret = dirty_fanout_add(&o->readers, out);
	if (!ret)
		(*out)->owner = o;
	pthread_mutex_unlock(&o->lock);
	if (ret && !o->readers.nreaders)
		owner_free(o);
	if (ret)
		return errmsg_set(err, ret, "dirty log reader: out of memory");
	return 0;
}

/* Caller holds vm->dirty_lock. */
static void close_locked(struct dirty_reader *r)
{
	struct vm_dirty_owner *o = r->owner;
	unsigned left;

	pthread_mutex_lock(&o->lock);
	if (o->migration == r)
		o->migration = NULL;
	dirty_fanout_remove(&o->readers, r);
	left = o->readers.nreaders;
	pthread_mutex_unlock(&o->lock);
	if (!left)
		owner_free(o);
}

int vm_dirty_open(struct vm *vm, struct vm_dirty_reader **out,
		  struct errmsg *err)
{
	struct dirty_reader *r;
	int ret;

	pthread_mutex_lock(&vm->dirty_lock);
	ret = open_locked(vm, &r, err);
	pthread_mutex_unlock(&vm->dirty_lock);
	if (!ret)
		*out = AS_READER(r);
	return ret;
}

int64_t vm_dirty_collect(struct vm_dirty_reader *reader, uint64_t *bitmap,
			 struct errmsg *err)
{
	struct dirty_reader *r = FROM_READER(reader);
	struct vm_dirty_owner *o = r->owner;
	int64_t ret;

	pthread_mutex_lock(&o->lock);
	ret = harvest_locked(o, err);
	/* a failed harvest hands out nothing: what it did harvest stays
	 * pending, the rest in KVM's log, both for the next call */
	if (!ret)
		ret = dirty_fanout_take(&o->readers, r, bitmap);
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void vm_dirty_close(struct vm_dirty_reader *reader)
{
	struct vm *vm;

	if (!reader)
		return;
	vm = ((struct vm_dirty_owner *)FROM_READER(reader)->owner)->vm;
	pthread_mutex_lock(&vm->dirty_lock);
	close_locked(FROM_READER(reader));
	pthread_mutex_unlock(&vm->dirty_lock);
}

/* ---- migration's write tracking ----------------------------------------- */

int vm_track_writes_begin(struct vm *vm, struct errmsg *err)
{
	uint64_t words = (vm->mem.size / PAGE_SIZE + 63) / 64;
	struct vm_dirty_owner *o;
	struct dirty_reader *r;
	int ret;

	pthread_mutex_lock(&vm->dirty_lock);
	o = vm->dirty_owner;
	if (vm->tracking_writes || (o && o->migration)) {
		ret = errmsg_set(err, -EALREADY, "writes are tracked already");
		goto out;
	}
	if (!vm->mem.device_written)
		vm->mem.device_written = calloc(words ? words : 1, 8);
	if (!vm->mem.device_written) {
		ret = errmsg_set(err, -ENOMEM, "out of memory for the bitmaps");
		goto out;
	}
	memset(vm->mem.device_written, 0, words * 8);
	/* devices note before the vCPUs' log starts: a page written in
	 * between is only sent twice */
	__atomic_store_n(&vm->mem.device_tracking, true, __ATOMIC_RELEASE);
	ret = open_locked(vm, &r, err);
	if (ret) {
		__atomic_store_n(&vm->mem.device_tracking, false,
				 __ATOMIC_RELEASE);
		goto out;
	}
	o = r->owner;
	pthread_mutex_lock(&o->lock);
	o->migration = r;
	pthread_mutex_unlock(&o->lock);
	vm->tracking_writes = true;
out:
	pthread_mutex_unlock(&vm->dirty_lock);
	return ret;
}

/* The migration's reader, or NULL when no migration tracks writes. */
static struct dirty_reader *migration_reader(struct vm *vm)
{
	struct vm_dirty_owner *o;
	struct dirty_reader *r = NULL;

	pthread_mutex_lock(&vm->dirty_lock);
	o = vm->dirty_owner;
	if (vm->tracking_writes && o)
		r = o->migration;
	pthread_mutex_unlock(&vm->dirty_lock);
	return r;
}

int64_t vm_track_writes_collect(struct vm *vm, uint64_t *bitmap,
				struct errmsg *err)
{
	struct dirty_reader *r = migration_reader(vm);

	if (!r)
		return errmsg_set(err, -EINVAL, "writes are not tracked");
	return vm_dirty_collect(AS_READER(r), bitmap, err);
}

void vm_track_device_writes(struct vm *vm, uint64_t *bitmap)
{
	uint64_t words = (vm->mem.size / PAGE_SIZE + 63) / 64;

	if (!vm->mem.device_written)
		return;
	for (uint64_t w = 0; w < words; w++)
		bitmap[w] |= __atomic_load_n(&vm->mem.device_written[w],
					     __ATOMIC_RELAXED);
}

void vm_track_writes_end(struct vm *vm)
{
	struct vm_dirty_owner *o;

	pthread_mutex_lock(&vm->dirty_lock);
	o = vm->dirty_owner;
	if (vm->tracking_writes) {
		__atomic_store_n(&vm->mem.device_tracking, false,
				 __ATOMIC_RELEASE);
		if (o && o->migration)
			close_locked(o->migration);
		vm->tracking_writes = false;
	}
	pthread_mutex_unlock(&vm->dirty_lock);
}
