/* SPDX-License-Identifier: MIT */
/*
 * Where the loaders put boot data in guest physical memory (all below
 * 1 MiB, all inside the first e820 RAM range unless noted).  Kernels are
 * loaded at or above 1 MiB.  The guest owns all of it once it runs.
 */
#ifndef RACKVM_BOOT_LAYOUT_H
#define RACKVM_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x0500ull		/* boot GDT, 0x100 bytes */
#define BOOT_INFO_ADDR 0x1000ull	/* hvm_start_info / mbi / boot_params */
#define BOOT_MEMMAP_ADDR 0x2000ull	/* memory map entries, module list */
#define BOOT_MODLIST_ADDR 0x2800ull	/* PVH / Multiboot module list */
#define BOOT_STRINGS_ADDR 0x2C00ull	/* module name, boot loader name */
#define BOOT_CMDLINE_ADDR 0x3000ull	/* NUL-terminated, <= 4 KiB */
#define BOOT_CMDLINE_AREA 0x1000ull
#define BOOT_STACK_TOP 0x8000ull	/* initial stack, grows down */
#define BOOT_PML4_ADDR 0x9000ull	/* identity page tables for 64-bit */
#define BOOT_PDPT_ADDR 0xA000ull
#define BOOT_PD_ADDR 0xB000ull		/* 4 pages: 4 GiB in 2 MiB pages */
#define BOOT_LOW_RAM_END 0x9FC00ull	/* e820: RAM below, reserved above */
#define BOOT_BIOS_START 0xF0000ull	/* MP table lives here (reserved) */
#define BOOT_RESET_VECTOR_ADDR 0xFFFF0ull	/* F000:FFF0, 16 bytes */
#define BOOT_HIGH_RAM 0x100000ull	/* 1 MiB: kernels load here or above */

/* ACPI tables, below the MP table in the reserved BIOS area.  The RSDP
 * sits on a 16-byte boundary inside 0xE0000-0xFFFFF, where a guest
 * without a boot-protocol pointer scans for it; each table has room for
 * its largest size (acpi.c checks this at compile time). */
#define BOOT_ACPI_RSDP_ADDR 0xE0000ull	/* 36 bytes */
#define BOOT_ACPI_XSDT_ADDR 0xE0040ull	/* header + 2 pointers */
#define BOOT_ACPI_FADT_ADDR 0xE0080ull	/* 276 bytes */
#define BOOT_ACPI_MADT_ADDR 0xE0200ull	/* grows with the vCPU count */
#define BOOT_ACPI_DSDT_ADDR 0xE1000ull	/* grows with the virtio devices */
#define BOOT_ACPI_END 0xE2000ull

/* vCPUs the firmware tables can describe: APIC IDs are 8 bits, 0xFF is
 * broadcast, and the IOAPIC takes the ID after the last CPU.  Every
 * loader checks this first (boot_check_ncpus() in loader.c). */
#define BOOT_MAX_CPUS 254

/* GDT selectors the loaders use (Linux's boot protocol wants 0x10/0x18) */
#define BOOT_CODE_SELECTOR 0x10
#define BOOT_DATA_SELECTOR 0x18
#define BOOT_TSS_SELECTOR 0x20

#endif
