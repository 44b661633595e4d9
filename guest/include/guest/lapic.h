/* SPDX-License-Identifier: MIT */
/*
 * The boot CPU's xAPIC at LAPIC_BASE: register offsets and bits used by
 * the runtime (AP bring-up in lib/smp.c, the sleep timer in lib/sleep.c
 * and arch/timer.c), and the two interrupt vectors it may raise.  Plain
 * #defines before the C part, so that vectors.S can include it.
 */
#ifndef GUEST_LAPIC_H
#define GUEST_LAPIC_H

#include "guest/arch.h"

#define LAPIC_EOI		0x0b0
#define LAPIC_SVR		0x0f0
#define LAPIC_ICR_LOW		0x300
#define LAPIC_ICR_HIGH		0x310
#define LAPIC_LVT_TIMER		0x320
#define LAPIC_LVT_LINT0		0x350
#define LAPIC_LVT_LINT1		0x360
#define LAPIC_TIMER_INITIAL	0x380
#define LAPIC_TIMER_CURRENT	0x390
#define LAPIC_TIMER_DIVIDE	0x3e0

#define LAPIC_SVR_ENABLE	0x100
#define LAPIC_LVT_MASKED	(1u << 16)
#define LAPIC_LVT_ONE_SHOT	(0u << 17)
#define LAPIC_LVT_TSC_DEADLINE	(2u << 17)
#define LAPIC_DIVIDE_BY_16	0x3

/* The sleep timer's vector (its handler only EOIs) and the spurious
 * vector, which needs no EOI. */
#define LAPIC_TIMER_VECTOR	0xf0
#define LAPIC_SPURIOUS_VECTOR	0xff

#define MSR_TSC_DEADLINE	0x6e0
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)

#ifndef __ASSEMBLER__
#include <stdint.h>

#include "guest/io.h"

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static inline uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}
#endif

#endif
