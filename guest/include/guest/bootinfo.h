/* SPDX-License-Identifier: MIT */
/*
 * What the runtime keeps from the PVH boot information.
 *
 * The loader's struct hvm_start_info, memory map and command line live in
 * low memory that the runtime later reuses (AP trampoline), so they are
 * copied into the image before anything else runs in ring 3.
 */
#ifndef GUEST_BOOTINFO_H
#define GUEST_BOOTINFO_H

#include <stdbool.h>
#include <stdint.h>

/* struct hvm_start_info, as the PVH boot ABI defines it (version 1). */
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
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
	uint32_t type;		/* E820 types: 1 = RAM */
	uint32_t reserved;
};

#define E820_RAM 1

#define BOOT_CMDLINE_LEN 4096
#define BOOT_MAX_RANGES 64
#define BOOT_MAX_MODULES 8

struct mem_range {
	uint64_t start;
	uint64_t end;		/* exclusive */
};

struct boot_info {
	bool valid;		/* the start info had the PVH magic */
	bool have_memmap;	/* version >= 1 with entries */
	char cmdline[BOOT_CMDLINE_LEN];
	unsigned int nr_ram;
	struct mem_range ram[BOOT_MAX_RANGES];	/* E820_RAM only, sorted */
	unsigned int nr_modules;
	struct mem_range modules[BOOT_MAX_MODULES];
};

extern struct boot_info boot_info;

/* Physical address of the start info, saved by the PVH entry code. */
extern uint32_t pvh_start_info_paddr;

/* Copies the start info into boot_info (ring 3, first thing). */
void bootinfo_copy(void);

/* Without a memory map: the usual PC layout for @bytes of RAM (below
 * 640 KiB, 1 MiB to 3 GiB, the rest from 4 GiB). */
void bootinfo_assume_ram(uint64_t bytes);

/* Sum of the RAM ranges, in bytes. */
uint64_t bootinfo_ram_bytes(void);

#endif
