// SPDX-License-Identifier: MIT
/*
 * TSC calibration against the PIT (guest/tsc.h), from ring 3, on first
 * use, so that figures are real seconds under rackvm and QEMU alike.
 *
 * Preferred: channel 0, latched and read back.  Its gate is always open
 * and every latch gives the exact PIT count at that instant, so the
 * elapsed PIT ticks between two latches are known exactly and the only
 * error is where inside the latching OUT the latch happened (taken as
 * the middle; OUTs that took unusually long are not used as end points).
 * A slow or delayed PIO exit in between costs nothing, which matters
 * where a ring-3 PIO exit takes ~100 µs.
 *
 * Fallback: channel 2 in mode 0, gated by port 0x61 bit 0, polling its
 * output in port 0x61 bit 5 until the count runs out; every poll's
 * latency adds to the error.  Port 0x61 is not always there (KVM's
 * in-kernel PIT serves it only with KVM_PIT_SPEAKER_DUMMY; QEMU's microvm
 * has no PC speaker).  CPUID frequency leaves are the last resort.
 */
#include "guest/io.h"
#include "guest/tsc.h"
#include "guest/ucall.h"

#define PIT_HZ 1193182ull
#define PIT_CH0_DATA 0x40
#define PIT_CH2_DATA 0x42
#define PIT_MODE 0x43
#define PIT_CH0_MODE2_LOHI 0x34	/* rate generator, free running */
#define PIT_CH0_LATCH 0x00
#define PIT_CH2_MODE0_LOHI 0xb0
#define PORT_SPEAKER 0x61
#define SPEAKER_GATE2 0x01
#define SPEAKER_DATA 0x02
#define SPEAKER_OUT2 0x20

#define CALIBRATE_MS 10
#define CALIBRATE_MAX_POLLS 1000000

static uint64_t tsc_frequency;

static uint64_t calibrate_with_pit_channel2(void)
{
	uint32_t latch = PIT_HZ * CALIBRATE_MS / 1000;
	uint64_t t0, t1;
	uint32_t polls = 0;
	uint8_t v;

	v = inb(PORT_SPEAKER);
	outb(PORT_SPEAKER, (v & ~SPEAKER_DATA) | SPEAKER_GATE2);
	if (v == 0xff || !(inb(PORT_SPEAKER) & SPEAKER_GATE2))
		return 0;	/* no port 0x61 */
	outb(PIT_MODE, PIT_CH2_MODE0_LOHI);
	outb(PIT_CH2_DATA, latch & 0xff);
	outb(PIT_CH2_DATA, latch >> 8);
	t0 = rdtsc();
	while (!(inb(PORT_SPEAKER) & SPEAKER_OUT2)) {
		if (++polls > CALIBRATE_MAX_POLLS)
			return 0;
	}
	t1 = rdtsc();
	/* An output that is high at once means no working PIT. */
	if (polls == 0)
		return 0;
	return mul_div_u64(t1 - t0, PIT_HZ, latch);
}

struct pit_sample {
	uint16_t count;
	uint64_t tsc;		/* TSC at the latch */
	uint64_t span;		/* TSC cycles the latching OUT took */
};

static struct pit_sample pit_channel0_sample(void)
{
	struct pit_sample s;
	uint64_t before = rdtsc();
	uint8_t lo, hi;

	outb(PIT_MODE, PIT_CH0_LATCH);
	s.span = rdtsc() - before;
	s.tsc = before + s.span / 2;
	lo = inb(PIT_CH0_DATA);
	hi = inb(PIT_CH0_DATA);
	s.count = lo | (uint16_t)hi << 8;
	return s;
}

static uint64_t calibrate_with_pit_channel0(void)
{
	uint32_t target = PIT_HZ * CALIBRATE_MS / 1000;
	uint32_t elapsed = 0, polls = 0, i;
	struct pit_sample first, prev, cur;
	uint64_t tight = UINT64_MAX;

	outb(PIT_MODE, PIT_CH0_MODE2_LOHI);
	outb(PIT_CH0_DATA, 0);		/* count 65536: 55 ms per wrap */
	outb(PIT_CH0_DATA, 0);
	/* What a latching OUT normally costs here; twice that is "tight". */
	for (i = 0; i < 4; i++) {
		first = pit_channel0_sample();
		if (first.span < tight)
			tight = first.span;
	}
	tight *= 2;
	for (i = 0; i < 16 && first.span > tight; i++)
		first = pit_channel0_sample();

	prev = first;
	do {
		/* A missing PIT reads 0xffff for ever. */
		if (++polls > CALIBRATE_MAX_POLLS / 10 ||
		    (polls > 1000 && elapsed == 0))
			return 0;
		cur = pit_channel0_sample();
		elapsed += (uint16_t)(prev.count - cur.count); /* counts down */
		prev = cur;
	} while (elapsed < target ||
		 (cur.span > tight && elapsed < 4 * target));
	return mul_div_u64(cur.tsc - first.tsc, PIT_HZ, elapsed);
}

/* Fallbacks: CPUID leaf 0x15 (TSC/crystal ratio) or the hypervisor
 * timing leaf 0x40000010 (kHz) that KVM and VMware expose. */
static uint64_t frequency_from_cpuid(void)
{
	struct cpuid_regs r = cpuid(0, 0);

	if (r.eax >= 0x15) {
		r = cpuid(0x15, 0);
		if (r.eax && r.ebx && r.ecx)
			return (uint64_t)r.ecx * r.ebx / r.eax;
	}
	r = cpuid(0x40000000, 0);
	if (r.eax >= 0x40000010) {
		r = cpuid(0x40000010, 0);
		if (r.eax)
			return (uint64_t)r.eax * 1000;
	}
	return 0;
}

uint64_t tsc_hz(void)
{
	if (!tsc_frequency)
		tsc_frequency = calibrate_with_pit_channel0();
	if (!tsc_frequency)
		tsc_frequency = calibrate_with_pit_channel2();
	if (!tsc_frequency)
		tsc_frequency = frequency_from_cpuid();
	GUEST_ASSERT_MSG(tsc_frequency,
			 "cannot calibrate the TSC: no PIT and no CPUID frequency leaf");
	return tsc_frequency;
}

uint64_t tsc_to_ns(uint64_t cycles)
{
	return mul_div_u64(cycles, NSEC_PER_SEC, tsc_hz());
}

uint64_t ns_to_tsc(uint64_t ns)
{
	return mul_div_u64(ns, tsc_hz(), NSEC_PER_SEC);
}

void tsc_delay_ns(uint64_t ns)
{
	uint64_t end = rdtsc() + ns_to_tsc(ns);

	while ((int64_t)(rdtsc() - end) < 0)
		cpu_relax();
}

uint64_t rate_per_sec(uint64_t count, uint64_t ns)
{
	return ns ? mul_div_u64(count, NSEC_PER_SEC, ns) : 0;
}
