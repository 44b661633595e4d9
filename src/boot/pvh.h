/* SPDX-License-Identifier: MIT */
/*
 * PVH boot (Xen's direct boot ABI, also used by Linux, FreeBSD and
 * others under KVM): an ELF kernel announces a 32-bit physical entry in
 * the XEN_ELFNOTE_PHYS32_ENTRY note and is started in flat protected
 * mode with %ebx pointing at struct hvm_start_info.
 */
#ifndef RACKVM_BOOT_PVH_H
#define RACKVM_BOOT_PVH_H

#include <stdint.h>

#include "boot/elf.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_NOTE_NAME "Xen"

#define HVM_START_MAGIC 0x336ec578u
#define HVM_START_VERSION 1
#define HVM_MEMMAP_TYPE_RAM 1
#define HVM_MEMMAP_TYPE_RESERVED 2

/* Guest ABI layouts (little-endian, naturally aligned). */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;	/* version 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist ABI");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap ABI");

/* Finds the PVH entry note of a parsed ELF.  Returns 1 with @entry set,
 * 0 if the note is absent, negative if it (or its segment) is malformed. */
int pvh_find_entry(const struct elf_file *f, uint64_t *entry,
		   struct errmsg *err);

#endif
