/* SPDX-License-Identifier: MIT */
/*
 * CPU tables the loaders write for the boot CPU: a flat GDT and identity
 * page tables for a 64-bit entry; and the code at the real-mode reset
 * vector.
 */
#ifndef RACKVM_BOOT_X86_TABLES_H
#define RACKVM_BOOT_X86_TABLES_H

#include <stdbool.h>
#include <stdint.h>

#include "boot/boot.h"

/* Descriptor values (flat, base 0, limit 4 GiB with G=1). */
#define GDT_CODE32 0x00CF9B000000FFFFull	/* D=1, execute/read */
#define GDT_CODE64 0x00AF9B000000FFFFull	/* L=1, execute/read */
#define GDT_DATA 0x00CF93000000FFFFull		/* read/write */
#define GDT_TSS 0x00008B0000000067ull		/* busy TSS at 0, 104 bytes */
#define GDT_ENTRIES 6	/* null, null, code, data, TSS (2 slots) */

/* Identity map of the first 4 GiB in 2 MiB pages. */
#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_LARGE 0x80ull

/* Writes the GDT at BOOT_GDT_ADDR and sets gdt_base/limit and the code
 * and data selectors in @cpu.  @long_mode picks a 64-bit code segment. */
int boot_write_gdt(const struct guest_mem *m, bool long_mode,
		   struct vcpu_entry *cpu, struct errmsg *err);

/* Writes PML4/PDPT/PDs at BOOT_PML4/PDPT/PD_ADDR and sets cpu->cr3. */
int boot_write_identity_map(const struct guest_mem *m, struct vcpu_entry *cpu,
			    struct errmsg *err);

/*
 * F000:FFF0 (BOOT_RESET_VECTOR_ADDR) is where a PC's firmware starts, and
 * where kernels jump in real mode to reboot "through the BIOS".  Linux
 * does so by default on a hardware-reduced ACPI machine: it tries EFI
 * first, which it never gets to without EFI, and then the BIOS, without
 * ever trying the FADT's reset register.  rackvm has no firmware, so the
 * vector holds a stub that pulses the reset line through the i8042.
 */
int boot_write_reset_vector(const struct guest_mem *m, struct errmsg *err);

#endif
