/* SPDX-License-Identifier: MIT */
/*
 * Application processor bring-up: INIT-SIPI-SIPI through the xAPIC to a
 * real-mode trampoline at AP_TRAMPOLINE_BASE.  Each AP switches to long
 * mode, records its APIC ID, counts itself in ap_online and halts.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>

#include "guest/arch.h"

/* Written by the APs (guest/arch/trampoline.S). */
extern volatile uint32_t ap_online;
extern volatile uint32_t ap_apic_ids[MAX_CPUS];

/* Starts all APs and waits until @expected of them are online or
 * @timeout_ns passed; returns the number of APs online. */
uint32_t smp_start_aps(uint32_t expected, uint64_t timeout_ns);

/* APIC ID of the calling CPU (CPUID leaf 1; rackvm gives vCPU i ID i). */
uint32_t this_cpu_apic_id(void);

#endif
