/* SPDX-License-Identifier: MIT */
/*
 * KVM's dirty log has one owner per VM, and any number of readers: each
 * reader (the working-set monitor through memory/dirty_log.h, a live
 * migration through vm_track_writes_*()) gets every page written since
 * it last collected, from harvests shared by all (vm_dirty_fanout.h),
 * so they can run at once and none loses pages to another.
 *
 * The owner drives whichever log vm_create() set up:
 *  - RING: per-vCPU dirty rings, harvested at every collect and, when a
 *    ring fills, by the vCPU itself on KVM_EXIT_DIRTY_RING_FULL.  The
 *    owner installs that handler: open the first reader before
 *    vm_start(), and close the last only once the vCPU threads stopped
 *    (a full ring without the handler ends the VM).
 *  - BITMAP: KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG per memslot (manual
 *    protect: only the pages reported are write-protected again).
 *  - OFF (the VM was created without a log): the first reader sets
 *    KVM_MEM_LOG_DIRTY_PAGES on the memslots (KVM write-protects all of
 *    RAM, so every page starts clean) and the last one clears it;
 *    KVM_GET_DIRTY_LOG then clears what it returns.
 * A new reader sees pages written after it opened (and possibly some
 * written just before: a superset is safe for every reader).  The
 * owner lives while it has readers; it is vm->dirty_owner.
 *
 * Page numbering and bitmaps as in memory/dirty_log.h.
 *
 * Threads: open and close from any thread; one thread at a time per
 * reader for collect; readers of one VM may collect concurrently (the
 * owner serialises harvests).  Errors: -errno and @err.
 */
#ifndef RACKVM_VM_VM_DIRTY_H
#define RACKVM_VM_VM_DIRTY_H

#include <stdint.h>

#include "util/errmsg.h"

struct vm;
struct vm_dirty_reader;

int vm_dirty_open(struct vm *vm, struct vm_dirty_reader **out,
		  struct errmsg *err);
/* ORs every page written since this reader's previous collect (or its
 * open) into @bitmap (guest RAM's pages); returns how many bits it set
 * that were clear, or -errno (pages harvested meanwhile are kept for
 * the next call). */
int64_t vm_dirty_collect(struct vm_dirty_reader *r, uint64_t *bitmap,
			 struct errmsg *err);
/* NULL is a no-op. */
void vm_dirty_close(struct vm_dirty_reader *r);

/*
 * Write tracking for live migration: a reader of its own, plus the
 * writes of rackvm's device threads, which do not go through KVM: the
 * devices note them (guest_mem_note_device_write(): every buffer a
 * driver gives a device to write, every used ring, every page the
 * balloon discards) into a bitmap that only grows while tracking is on,
 * because a device may write a buffer after a collect saw it clean; a
 * migration sends those pages once more after the devices quiesced.
 * One migration tracker per VM at a time (-EALREADY), beside any other
 * readers; any one thread.
 */
int vm_track_writes_begin(struct vm *vm, struct errmsg *err);
/* vm_dirty_collect() for the migration's reader. */
int64_t vm_track_writes_collect(struct vm *vm, uint64_t *bitmap,
				struct errmsg *err);
/* ORs every page a device wrote since the begin into @bitmap. */
void vm_track_device_writes(struct vm *vm, uint64_t *bitmap);
/* Tracking off again; idempotent. */
void vm_track_writes_end(struct vm *vm);

#endif
