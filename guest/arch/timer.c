// SPDX-License-Identifier: MIT
/*
 * Ring-0 side of SYS_SLEEP_UNTIL (guest/sleep.h): arm the LAPIC timer,
 * halt with interrupts enabled until it (or anything else) fires, and
 * return.  One arm and one halt per call: ring 0 is emulated slowly on
 * the target machines, so checking the deadline again and re-arming is
 * left to ring 3, where rdtsc is native.
 */
#include <stdint.h>

#include "guest/lapic.h"
#include "guest/syscall.h"

static void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
		     "d"((uint32_t)(v >> 32)));
}

/* The count for a one-shot timer that runs out at @deadline, at
 * @ticks_per_2_32 LAPIC ticks per 2^32 TSC cycles; at least 1 (a count
 * of 0 stops the timer), at most what the 32-bit register holds (the
 * caller sleeps again for the rest). */
static uint32_t one_shot_count(uint64_t deadline, uint64_t ticks_per_2_32)
{
	uint64_t now = rdtsc(), cycles, lo, hi, count;

	if ((int64_t)(deadline - now) <= 0)
		return 1;
	cycles = deadline - now;
	asm("mulq %3" : "=a"(lo), "=d"(hi) : "a"(cycles), "rm"(ticks_per_2_32));
	count = (hi << 32) | (lo >> 32);
	if (hi >> 32 || count > UINT32_MAX)
		return UINT32_MAX;
	return count ? count : 1;
}

uint64_t sleep_until_syscall(uint64_t deadline, uint64_t ticks_per_2_32)
{
	if (ticks_per_2_32) {
		lapic_write(LAPIC_LVT_TIMER,
			    LAPIC_LVT_ONE_SHOT | LAPIC_TIMER_VECTOR);
		lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
		lapic_write(LAPIC_TIMER_INITIAL,
			    one_shot_count(deadline, ticks_per_2_32));
	} else {
		lapic_write(LAPIC_LVT_TIMER,
			    LAPIC_LVT_TSC_DEADLINE | LAPIC_TIMER_VECTOR);
		/* the SDM's order: the LVT write lands before the WRMSR */
		asm volatile("mfence" : : : "memory");
		wrmsr(MSR_TSC_DEADLINE, deadline);
	}
	/* sti's one-instruction shadow makes "sti; hlt" atomic: a timer
	 * that already fired wakes the hlt instead of being taken before it */
	asm volatile("sti; hlt; cli" : : : "memory");
	return 0;
}
