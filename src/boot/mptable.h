/* SPDX-License-Identifier: MIT */
/*
 * Intel MultiProcessor Specification 1.4 tables in the BIOS area, so a
 * guest without ACPI (or one that looks for both) finds every vCPU, the
 * IOAPIC and how ISA interrupts are routed to it.
 */
#ifndef RACKVM_BOOT_MPTABLE_H
#define RACKVM_BOOT_MPTABLE_H

#include <stdint.h>

#include "boot/layout.h"
#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* the MP table describes every vCPU a loader accepts */
#define MPTABLE_MAX_CPUS BOOT_MAX_CPUS
#define MPTABLE_IOAPIC_ADDR 0xFEC00000u
#define MPTABLE_LAPIC_ADDR 0xFEE00000u
#define MPTABLE_IOAPIC_VERSION 0x11
#define MPTABLE_LAPIC_VERSION 0x14

/* Writes the floating pointer at BOOT_BIOS_START and the configuration
 * table right after it. */
int mptable_write(const struct guest_mem *m, unsigned ncpus,
		  struct errmsg *err);

#endif
