// SPDX-License-Identifier: MIT
/*
 * AP bring-up from ring 3 (guest/smp.h).
 *
 * The LAPIC page is mapped user-accessible and uncached, so the BSP
 * programs the ICR from ring 3 and times the INIT/SIPI delays with the
 * TSC at native speed; only reading IA32_APIC_BASE needs ring 0.  The
 * IPIs use the all-excluding-self shorthand, so no APIC IDs need to be
 * known in advance.
 */
#include "guest/io.h"
#include "guest/lapic.h"
#include "guest/smp.h"
#include "guest/string.h"
#include "guest/syscall.h"
#include "guest/tsc.h"
#include "guest/ucall.h"

#define APIC_BASE_ENABLE (1ull << 11)
#define APIC_BASE_X2APIC (1ull << 10)

#define ICR_INIT 0x00000500
#define ICR_STARTUP 0x00000600
#define ICR_ASSERT 0x00004000
#define ICR_BUSY 0x00001000
#define ICR_ALL_BUT_SELF 0x000c0000

extern const char ap_trampoline_start[], ap_trampoline_end[];

uint32_t this_cpu_apic_id(void)
{
	return cpuid(1, 0).ebx >> 24;
}

static void lapic_send_ipi(uint32_t icr_low)
{
	uint64_t deadline = rdtsc() + ns_to_tsc(100 * NSEC_PER_MSEC);

	lapic_write(LAPIC_ICR_HIGH, 0);
	lapic_write(LAPIC_ICR_LOW, icr_low);
	while (lapic_read(LAPIC_ICR_LOW) & ICR_BUSY) {
		GUEST_ASSERT_MSG((int64_t)(rdtsc() - deadline) < 0,
				 "LAPIC ICR stays busy after IPI 0x%x",
				 icr_low);
		cpu_relax();
	}
}

/* The BSP's LAPIC must be an enabled xAPIC at the default address. */
static void check_xapic(void)
{
	uint64_t base = syscall3(SYS_RDMSR, MSR_APIC_BASE, 0, 0);

	GUEST_ASSERT_MSG(base & APIC_BASE_ENABLE,
			 "LAPIC disabled (IA32_APIC_BASE=0x%llx)",
			 (unsigned long long)base);
	GUEST_ASSERT_MSG(!(base & APIC_BASE_X2APIC),
			 "LAPIC in x2APIC mode; only xAPIC is supported");
	GUEST_ASSERT_MSG((base & ~0xfffull) == LAPIC_BASE,
			 "LAPIC at 0x%llx, expected 0x%x",
			 (unsigned long long)(base & ~0xfffull), LAPIC_BASE);
}

uint32_t smp_start_aps(uint32_t expected, uint64_t timeout_ns)
{
	uint64_t deadline;

	check_xapic();
	memcpy((void *)AP_TRAMPOLINE_BASE, ap_trampoline_start,
	       ap_trampoline_end - ap_trampoline_start);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);

	lapic_send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
	tsc_delay_ns(10 * NSEC_PER_MSEC);
	lapic_send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP |
		       AP_SIPI_VECTOR);
	tsc_delay_ns(200 * NSEC_PER_USEC);
	lapic_send_ipi(ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP |
		       AP_SIPI_VECTOR);

	deadline = rdtsc() + ns_to_tsc(timeout_ns);
	while (ap_online < expected && (int64_t)(rdtsc() - deadline) < 0)
		cpu_relax();
	/* Give any unexpected extra AP a moment to show up too. */
	tsc_delay_ns(20 * NSEC_PER_MSEC);
	return ap_online;
}
