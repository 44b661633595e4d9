/* SPDX-License-Identifier: MIT */
/*
 * Write tracking switched on for a while, for live migration: which
 * pages of guest RAM changed since the last look, whoever wrote them.
 *
 * vCPU writes come from KVM's dirty log: vm_track_writes_begin() sets
 * KVM_MEM_LOG_DIRTY_PAGES on the memslots (KVM write-protects all of
 * RAM, so every page starts clean) and each collect returns the pages
 * written since the previous one (KVM_GET_DIRTY_LOG, which clears what
 * it returns).  Writes by rackvm's own device threads do not go through
 * KVM: the devices note them (guest_mem_note_device_write(): every
 * buffer a driver gives a device to write, every used ring, every page
 * the balloon discards) into a bitmap that only grows while tracking is
 * on, because a device may write a buffer after a collect saw it clean;
 * a migration sends those pages once more after the devices quiesced.
 *
 * Only for a VM created without a dirty log of its own (vm_config.
 * dirty_log OFF: --wss with write logging owns KVM's log): -EBUSY.
 * Page numbering and bitmaps as in memory/dirty_log.h.  One tracker at
 * a time (-EALREADY); any one thread.
 */
#ifndef RACKVM_VM_VM_DIRTY_H
#define RACKVM_VM_VM_DIRTY_H

#include <stdint.h>

#include "util/errmsg.h"

struct vm;

int vm_track_writes_begin(struct vm *vm, struct errmsg *err);
/* ORs the pages the vCPUs wrote since the previous call (or the begin)
 * into @bitmap (guest RAM's pages); returns how many bits it set that
 * were clear, or -errno. */
int64_t vm_track_writes_collect(struct vm *vm, uint64_t *bitmap,
				struct errmsg *err);
/* ORs every page a device wrote since the begin into @bitmap. */
void vm_track_device_writes(struct vm *vm, uint64_t *bitmap);
/* Tracking off again (the memslots lose the flag); idempotent. */
void vm_track_writes_end(struct vm *vm);

#endif
