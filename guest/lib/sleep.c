// SPDX-License-Identifier: MIT
/*
 * Ring-3 side of the idle sleep (guest/sleep.h): picks the LAPIC timer
 * mode once, then asks ring 0 to arm it and halt until the deadline.
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/lapic.h"
#include "guest/printf.h"
#include "guest/sleep.h"
#include "guest/syscall.h"
#include "guest/tsc.h"

#define CALIBRATE_NS (10 * NSEC_PER_MSEC)
#define SPIN_BELOW_NS (200 * NSEC_PER_USEC)
#define LAPIC_VERSION 0x030

enum sleep_mode { SLEEP_UNSET, SLEEP_TSC_DEADLINE, SLEEP_ONE_SHOT, SLEEP_SPIN };

static enum sleep_mode mode;
/* One-shot mode: LAPIC ticks (divided by 16) per 2^32 TSC cycles. */
static uint64_t ticks_per_2_32;

/*
 * LAPIC ticks per 2^32 TSC cycles, 0 if the timer does not count.  The
 * MMIO exits around the measurement (tens of µs each on nested KVM) can
 * only make it read low, and the result is lowered by 1/64 more: a timer
 * that fires early costs one more syscall, one that fires late overruns
 * the caller's deadline.
 */
static uint64_t calibrate_one_shot(void)
{
	uint64_t t0, t1, ticks;
	uint32_t left;

	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | LAPIC_LVT_ONE_SHOT |
				     LAPIC_TIMER_VECTOR);
	lapic_write(LAPIC_TIMER_DIVIDE, LAPIC_DIVIDE_BY_16);
	t0 = rdtsc();
	lapic_write(LAPIC_TIMER_INITIAL, UINT32_MAX);
	tsc_delay_ns(CALIBRATE_NS);
	left = lapic_read(LAPIC_TIMER_CURRENT);
	t1 = rdtsc();
	lapic_write(LAPIC_TIMER_INITIAL, 0);
	if (left == 0 || left == UINT32_MAX)
		return 0;
	ticks = mul_div_u64(UINT32_MAX - left, 1ull << 32, t1 - t0);
	return ticks - ticks / 64;
}

static void sleep_init(void)
{
	uint32_t version = lapic_read(LAPIC_VERSION);

	if (version == 0 || version == UINT32_MAX) {
		uart_printf("sleep: no LAPIC (version register 0x%x); idle waits spin\n",
			    version);
		mode = SLEEP_SPIN;
		return;
	}
	/*
	 * Interrupts are enabled at the sleep's hlt only, and only the timer
	 * is meant to come.  LINT0 is ExtINT (the PIC) after KVM's reset of
	 * the boot CPU, and the PIC's vectors would land on exception vectors.
	 */
	lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
	if (cpuid(1, 0).ecx & CPUID_1_ECX_TSC_DEADLINE) {
		mode = SLEEP_TSC_DEADLINE;
		return;
	}
	ticks_per_2_32 = calibrate_one_shot();
	if (!ticks_per_2_32) {
		uart_printf("sleep: the LAPIC timer does not count; idle waits spin\n");
		mode = SLEEP_SPIN;
		return;
	}
	mode = SLEEP_ONE_SHOT;
}

void sleep_until_tsc(uint64_t deadline)
{
	int64_t spin_below;

	if (mode == SLEEP_UNSET)
		sleep_init();
	spin_below = (int64_t)ns_to_tsc(SPIN_BELOW_NS);
	while (mode != SLEEP_SPIN &&
	       (int64_t)(deadline - rdtsc()) > spin_below)
		syscall3(SYS_SLEEP_UNTIL, deadline,
			 mode == SLEEP_ONE_SHOT ? ticks_per_2_32 : 0, 0);
	while ((int64_t)(rdtsc() - deadline) < 0)
		cpu_relax();
}
