/* SPDX-License-Identifier: MIT */
/*
 * The guest's physical memory map, shared by all loaders (e820 for Linux,
 * hvm_memmap_table_entry for PVH, the Multiboot mmap).  It is derived only
 * from struct guest_mem, so every protocol reports the same map:
 *
 *   [0, 0x9FC00)         RAM        (low memory the boot data lives in)
 *   [0x9FC00, 1 MiB)     reserved   (EBDA, VGA hole, BIOS area + MP table)
 *   [1 MiB, low_top)     RAM        (low_top <= 3 GiB, the MMIO hole start)
 *   [4 GiB, top)         RAM        (only when RAM extends past the hole)
 */
#ifndef RACKVM_BOOT_E820_H
#define RACKVM_BOOT_E820_H

#include <stdint.h>

#include "vm/guest_mem.h"

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2
#define E820_MAX_ENTRIES 4

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fills @map in ascending address order; returns the number of entries. */
unsigned e820_build(const struct guest_mem *m,
		    struct e820_entry map[E820_MAX_ENTRIES]);

#endif
