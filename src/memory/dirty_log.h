/* SPDX-License-Identifier: MIT */
/*
 * Write tracking: which 4 KiB pages of guest RAM the guest wrote since the
 * last collection, read from KVM (on Intel, KVM drives PML underneath).
 *
 * The VM must have been created with vm_config.dirty_log != OFF.  This
 * is one reader of the VM's dirty log (vm/vm_dirty.h): the log's owner
 * harvests KVM's dirty rings or bitmaps for every reader, so a live
 * migration may read the same log meanwhile and neither loses pages to
 * the other.  With the RING mechanism the owner handles
 * KVM_EXIT_DIRTY_RING_FULL on the vCPU threads, so call
 * dirty_log_create() before vm_start().
 *
 * Page numbering everywhere in src/memory/: page index = memfd offset /
 * 4096, i.e. guest RAM pages in order, the MMIO hole left out.  Bitmaps are
 * arrays of uint64_t, bit i of word i / 64 for page i.
 *
 * Concurrency: dirty_log_collect() may be called from one thread at a
 * time (the WSS sampler); other readers of the VM's log may collect
 * concurrently.
 *
 * Teardown: dirty_log_destroy() after the vCPU threads stopped (vm_own()
 * gives that order) and before the vCPUs are destroyed (their rings are
 * unmapped there).
 */
#ifndef RACKVM_MEMORY_DIRTY_LOG_H
#define RACKVM_MEMORY_DIRTY_LOG_H

#include <stdint.h>

#include "util/errmsg.h"
#include "vm/vm.h"

struct dirty_log;

int dirty_log_create(struct vm *vm, struct dirty_log **out, struct errmsg *err);
void dirty_log_destroy(struct dirty_log *dl);

/* ORs every page written since the previous call into @bitmap (covering
 * guest_mem.size / 4096 bits) and returns how many pages were newly set
 * in it, or -errno. */
int64_t dirty_log_collect(struct dirty_log *dl, uint64_t *bitmap,
			  struct errmsg *err);

/* "ring", "bitmap" or "off". */
const char *dirty_log_mode_name(enum vm_dirty_log mode);

/* Bitmap helpers shared by the memory subsystem. */
static inline uint64_t bitmap_words(uint64_t bits)
{
	return (bits + 63) / 64;
}

static inline int bitmap_test(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static inline void bitmap_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ull << (i % 64);
}

#endif
