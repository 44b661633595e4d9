/* SPDX-License-Identifier: MIT */
/*
 * Multiboot v1 (the GRUB legacy spec): a kernel carries a header in its
 * first 8 KiB and is started in flat protected mode with %eax = 0x2BADB002
 * and %ebx pointing at the Multiboot information structure.
 */
#ifndef RACKVM_BOOT_MULTIBOOT_H
#define RACKVM_BOOT_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_SEARCH_LIMIT 8192
#define MULTIBOOT_LOADER_NAME "rackvm"

/* Header flags: bits 0-15 are requirements, 16-31 optional. */
#define MB_HDR_PAGE_ALIGN (1u << 0)	/* modules page-aligned: always */
#define MB_HDR_MEMORY_INFO (1u << 1)	/* mem_* and mmap: always */
#define MB_HDR_VIDEO_MODE (1u << 2)	/* not supported */
#define MB_HDR_AOUT_KLUDGE (1u << 16)	/* address fields are valid */
#define MB_HDR_REQUIRED_MASK 0x0000FFFFu
#define MB_HDR_SUPPORTED (MB_HDR_PAGE_ALIGN | MB_HDR_MEMORY_INFO)

/* Information structure flags */
#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MMAP (1u << 6)
#define MB_INFO_LOADER_NAME (1u << 9)

/* Field offsets in the information structure */
#define MBI_FLAGS 0
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_LOADER_NAME 64
#define MBI_SIZE 120		/* through the framebuffer fields, zeroed */

#define MB_MMAP_ENTRY_SIZE 24	/* its size field says 20: itself excluded */
#define MB_MODULE_SIZE 16

struct multiboot_header {
	size_t offset;		/* in the file */
	uint32_t flags;
	/* valid with MB_HDR_AOUT_KLUDGE */
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;
	uint32_t bss_end_addr;
	uint32_t entry_addr;
};

/* Finds and checks the header.  Returns 1 if found, 0 if there is none,
 * negative if a header with a valid checksum is truncated. */
int multiboot_find_header(const uint8_t *buf, size_t size,
			  struct multiboot_header *h, struct errmsg *err);

#endif
