/* SPDX-License-Identifier: MIT */
/*
 * Linux x86 boot protocol (Documentation/arch/x86/boot.rst): a bzImage is
 * real-mode setup sectors followed by the protected-mode kernel.  rackvm
 * uses the 64-bit entry: the kernel is started in long mode at its load
 * address + 0x200 with %rsi pointing at boot_params (the "zero page").
 */
#ifndef RACKVM_BOOT_LINUX_H
#define RACKVM_BOOT_LINUX_H

#include <stddef.h>
#include <stdint.h>

/* Setup header fields: offsets into the file and into boot_params */
#define LINUX_SETUP_SECTS 0x1f1
#define LINUX_BOOT_FLAG 0x1fe
#define LINUX_JUMP 0x200
#define LINUX_HEADER 0x202
#define LINUX_VERSION 0x206
#define LINUX_TYPE_OF_LOADER 0x210
#define LINUX_LOADFLAGS 0x211
#define LINUX_RAMDISK_IMAGE 0x218
#define LINUX_RAMDISK_SIZE 0x21c
#define LINUX_HEAP_END_PTR 0x224
#define LINUX_CMD_LINE_PTR 0x228
#define LINUX_INITRD_ADDR_MAX 0x22c
#define LINUX_KERNEL_ALIGNMENT 0x230
#define LINUX_RELOCATABLE 0x234
#define LINUX_XLOADFLAGS 0x236
#define LINUX_CMDLINE_SIZE 0x238
#define LINUX_PREF_ADDRESS 0x258
#define LINUX_INIT_SIZE 0x260

/* boot_params fields outside the setup header */
#define BP_ACPI_RSDP_ADDR 0x070		/* 64-bit, boot protocol 2.14+ */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_HEADER_END 0x290	/* where edd_mbr_sig_buffer starts */
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20
#define BP_SIZE 0x1000

#define LINUX_HDRS_MAGIC 0x53726448u	/* "HdrS" */
#define LINUX_MIN_VERSION 0x020c	/* 2.12: xloadflags, 64-bit entry */
#define LINUX_ACPI_RSDP_VERSION 0x020e	/* 2.14: acpi_rsdp_addr */
#define LINUX_DEFAULT_SETUP_SECTS 4
#define LINUX_SECTOR 512
#define LINUX_ENTRY64_OFFSET 0x200
#define LINUX_LOADER_TYPE_UNDEFINED 0xff

#define LINUX_LOADED_HIGH (1u << 0)
#define LINUX_CAN_USE_HEAP (1u << 7)
#define LINUX_XLF_KERNEL_64 (1u << 0)

#endif
