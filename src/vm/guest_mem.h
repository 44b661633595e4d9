/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM: one memfd mapped MAP_SHARED into rackvm, registered with KVM
 * as (at most) two memslots around the 32-bit MMIO hole.
 *
 * Why a memfd: later subsystems need a file behind guest RAM (userfaultfd
 * minor faults, balloon hole-punching, migration by sharing the fd).
 *
 * Guest physical layout:
 *   [0, min(size, 3 GiB))         RAM, memfd offset 0
 *   [3 GiB, 4 GiB)                MMIO hole (LAPIC, IOAPIC, virtio-mmio)
 *   [4 GiB, 4 GiB + rest)         RAM, memfd offset 3 GiB
 *
 * Every guest-supplied address goes through guest_mem_ptr(), which returns
 * NULL unless the whole [gpa, gpa+len) range is RAM inside one region.
 */
#ifndef RACKVM_VM_GUEST_MEM_H
#define RACKVM_VM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

#define GUEST_MMIO_HOLE_START 0xC0000000ull
#define GUEST_MMIO_HOLE_END 0x100000000ull
#define GUEST_MEM_MAX_REGIONS 2
#define GUEST_MEM_MIN_SIZE (2ull << 20)

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint64_t memfd_offset;
};

struct guest_mem {
	int memfd;
	uint8_t *base;		/* host mapping of the whole memfd */
	uint64_t size;		/* total RAM bytes */
	bool hugetlb;
	unsigned nregions;
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	/* Pages rackvm's own threads wrote for the guest (device DMA),
	 * one bit each, kept while a migration tracks writes
	 * (vm/vm_dirty.h); allocated once, freed with the RAM. */
	uint64_t *device_written;
	bool device_tracking;		/* atomic */
};

/* Creates and maps @size bytes (a multiple of 4 KiB, or of 2 MiB with
 * @hugetlb).  Does not talk to KVM; see vm_add_memslots(). */
int guest_mem_init(struct guest_mem *m, uint64_t size, bool hugetlb,
		   struct errmsg *err);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) or NULL if any byte is not guest RAM or
 * the range straddles two regions.  len == 0 is valid for any RAM gpa. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copies; -EFAULT if the range is not entirely RAM. */
int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
		    uint64_t len);
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
		   uint64_t len);

/* A device wrote (or is about to write, and will publish before its
 * queue quiesces) @len bytes at @hva, a pointer guest_mem_ptr() gave:
 * noted for a migration in progress, nothing otherwise.  Any thread. */
void guest_mem_note_device_write(const struct guest_mem *m, const void *hva,
				 uint64_t len);
/* Highest guest physical address + 1 that is RAM. */
uint64_t guest_mem_top(const struct guest_mem *m);
/* End of RAM below the MMIO hole. */
uint64_t guest_mem_low_top(const struct guest_mem *m);
/* Bytes of RAM the host holds now: the memfd's allocated blocks (pages
 * never touched, punched out by the balloon or evicted by the pager do
 * not count).  0 if the memfd cannot be read. */
uint64_t guest_mem_host_bytes(const struct guest_mem *m);

#endif
