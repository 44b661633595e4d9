/* SPDX-License-Identifier: MIT */
/*
 * Minimal ACPI tables in the BIOS area (RSDP, XSDT, FADT, DSDT, MADT),
 * describing rackvm as a legacy-free "hardware-reduced" ACPI machine: no
 * PM timer, SCI or fixed-feature hardware, only the CPUs, the IOAPIC, the
 * ISA serial port and the virtio-mmio devices.  Kernels built without an
 * MP-table parser (Debian's cloud kernel, for one) find their vCPUs only
 * through the MADT; kernels built without VIRTIO_MMIO_CMDLINE_DEVICES
 * (Debian's, for one) find virtio-mmio devices only through the DSDT.
 */
#ifndef RACKVM_BOOT_ACPI_H
#define RACKVM_BOOT_ACPI_H

#include <stdint.h>

#include "boot/boot.h"
#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* Processor Local APIC entries carry 8-bit APIC IDs and the IOAPIC takes
 * the ID after the last CPU, as in the MP table. */
#define ACPI_MAX_CPUS 254
/* Inputs of KVM's in-kernel IOAPIC, GSI 0-23: the only GSIs the DSDT
 * may give a device. */
#define ACPI_IOAPIC_PINS 24

#define ACPI_OEM_ID "RACKVM"		/* exactly 6 characters */
#define ACPI_OEM_TABLE_ID "RACKVM  "	/* exactly 8 characters */

/* Common table header (ACPI 6.5, 5.2.6) and RSDP (5.2.5.3) offsets */
#define ACPI_HDR_LENGTH 4
#define ACPI_HDR_REVISION 8
#define ACPI_HDR_CHECKSUM 9
#define ACPI_HDR_OEM_ID 10
#define ACPI_HDR_SIZE 36

#define ACPI_RSDP_SIZE 36
#define ACPI_RSDP_V1_SIZE 20	/* what the first checksum covers */
#define ACPI_RSDP_CHECKSUM 8
#define ACPI_RSDP_REVISION 15
#define ACPI_RSDP_LENGTH 20
#define ACPI_RSDP_XSDT 24
#define ACPI_RSDP_EXT_CHECKSUM 32

/* FADT (5.2.9) fields rackvm sets; the table is the 6.x length */
#define ACPI_FADT_SIZE 276
#define ACPI_FADT_DSDT 40
#define ACPI_FADT_IAPC_BOOT_ARCH 109
#define ACPI_FADT_FLAGS 112
#define ACPI_FADT_RESET_REG 116		/* generic address, 12 bytes */
#define ACPI_FADT_RESET_VALUE 128
#define ACPI_FADT_MINOR_VERSION 131
#define ACPI_FADT_SLEEP_CONTROL_REG 244	/* generic address, 12 bytes */
#define ACPI_FADT_SLEEP_STATUS_REG 256
#define ACPI_FADT_X_DSDT 140

#define ACPI_FADT_F_PWR_BUTTON (1u << 4)	/* no fixed power button */
#define ACPI_FADT_F_SLP_BUTTON (1u << 5)	/* no fixed sleep button */
#define ACPI_FADT_F_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_F_HW_REDUCED (1u << 20)

#define ACPI_IAPC_LEGACY_DEVICES (1u << 0)
#define ACPI_IAPC_8042 (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1u << 2)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* MADT (5.2.12) header fields and the entry types rackvm emits */
#define ACPI_MADT_LAPIC_ADDR 36
#define ACPI_MADT_FLAGS 40
#define ACPI_MADT_ENTRIES 44
#define ACPI_MADT_PCAT_COMPAT (1u << 0)

#define ACPI_MADT_TYPE_LAPIC 0
#define ACPI_MADT_TYPE_IOAPIC 1
#define ACPI_MADT_TYPE_ISO 2
#define ACPI_MADT_TYPE_LAPIC_NMI 4
#define ACPI_MADT_LAPIC_SIZE 8
#define ACPI_MADT_IOAPIC_SIZE 12
#define ACPI_MADT_ISO_SIZE 10
#define ACPI_MADT_LAPIC_NMI_SIZE 6
#define ACPI_MADT_LAPIC_ENABLED (1u << 0)

int acpi_check_ncpus(unsigned ncpus, struct errmsg *err);
/* Each of @cfg's virtio-mmio devices must be a non-empty range below
 * 4 GiB on an IOAPIC input; at most BOOT_MAX_VIRTIO_MMIO of them. */
int acpi_check_virtio_mmio(const struct boot_config *cfg, struct errmsg *err);

/* Writes all tables for @cfg's vCPUs and virtio-mmio devices at the
 * BOOT_ACPI_* addresses of layout.h and returns the RSDP's guest physical
 * address in @rsdp (for boot protocols that pass it; a guest can also
 * find it by scanning 0xE0000-0xFFFFF). */
int acpi_write(const struct guest_mem *m, const struct boot_config *cfg,
	       uint64_t *rsdp, struct errmsg *err);

#endif
