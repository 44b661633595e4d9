// SPDX-License-Identifier: MIT
/*
 * ticker: a console line and a memory update per tick, for the tests of
 * snapshots and migration: a VM saved and resumed, or moved, in the
 * middle must print every tick exactly once, in order, and end with the
 * same checksum as a VM never stopped.
 *
 *   ticks=N   ticks (default 20)
 *   ms=T      idle wait before each tick (default 100): the LAPIC timer
 *             and HLT, so the timer's state must survive too
 *   mib=M     memory region (default 8 MiB of free RAM)
 *   seed=S    (default 1)
 *   stamp=1   end each tick line with " us=U": the guest's own TSC time,
 *             in microseconds, when the line before had been written out
 *             (its newline's OUT done; for tick 0, the fill's end).  Set
 *             against the time that line reached the host, it tells how
 *             long the guest stood still, without the time a line takes
 *             to print (bench/migrate).  Off by default: the tests
 *             compare tick lines across runs
 *
 * The region is filled first; at tick t each page p with h(p, t) % 8 == 0
 * is rewritten with pattern(p, t), and "tick t/N sum=0x..." printed, the
 * sum a hash of the words written so far.  At the end every page is
 * checked against the pattern of the last tick that wrote it (computed,
 * not stored), then
 *   result: ticker ticks=N mib=M bad=B checksum=0x...
 * where the checksum depends on the parameters only, never on timing.
 * A bad page fails the guest.
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/printf.h"
#include "guest/sleep.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define FILL_TICK UINT64_MAX	/* the fill, before tick 0 */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t pattern(uint64_t seed, uint64_t page, uint64_t tick)
{
	return mix(seed ^ mix(page * 0x9e3779b97f4a7c15ull ^ tick));
}

static int rewritten(uint64_t seed, uint64_t page, uint64_t tick)
{
	return mix(seed + page * 0x100000001b3ull + tick * 0x7f4a7c15ull) % 8 == 0;
}

static void fill(uint64_t *p, uint64_t pat)
{
	for (unsigned i = 0; i < WORDS_PER_PAGE; i++)
		p[i] = pat ^ i;
}

static int matches(const uint64_t *p, uint64_t pat)
{
	for (unsigned i = 0; i < WORDS_PER_PAGE; i++)
		if (p[i] != (pat ^ i))
			return 0;
	return 1;
}

/* The pattern page @page holds after ticks [0, @ticks). */
static uint64_t expected(uint64_t seed, uint64_t page, uint64_t ticks)
{
	for (uint64_t t = ticks; t-- > 0; )
		if (rewritten(seed, page, t))
			return pattern(seed, page, t);
	return pattern(seed, page, FILL_TICK);
}

static void ticker_run(const struct cmdline *c)
{
	static struct mem_range ranges[MAX_FREE_RANGES];
	uint64_t ticks = cmdline_u64(c, "ticks", 20);
	uint64_t ms = cmdline_u64(c, "ms", 100);
	uint64_t mib = cmdline_u64(c, "mib", 8);
	uint64_t seed = cmdline_u64(c, "seed", 1);
	uint64_t stamp = cmdline_u64(c, "stamp", 0);
	uint64_t pages = mib * 256, sum = seed, bad = 0, written_us;
	unsigned nr = free_ram_ranges(ranges);
	uint64_t *region;

	GUEST_ASSERT_MSG(ticks > 0 && ticks <= 100000 && ms <= 60000,
			 "ticker: ticks=1..100000, ms=0..60000");
	GUEST_ASSERT_MSG(nr > 0 && pages > 0 &&
			 ranges[0].end - ranges[0].start >= pages * PAGE_SIZE,
			 "ticker: mib=%llu does not fit the first free range",
			 (unsigned long long)mib);
	region = (uint64_t *)(uintptr_t)ranges[0].start;
	for (uint64_t p = 0; p < pages; p++)
		fill(region + p * WORDS_PER_PAGE, pattern(seed, p, FILL_TICK));
	written_us = tsc_to_ns(rdtsc()) / NSEC_PER_USEC;
	for (uint64_t t = 0; t < ticks; t++) {
		sleep_until_tsc(rdtsc() + ns_to_tsc(ms * NSEC_PER_MSEC));
		for (uint64_t p = 0; p < pages; p++) {
			if (!rewritten(seed, p, t))
				continue;
			fill(region + p * WORDS_PER_PAGE, pattern(seed, p, t));
			sum = mix(sum ^ pattern(seed, p, t));
		}
		if (stamp) {
			uart_printf("tick %llu/%llu sum=0x%016llx us=%llu\n",
				    (unsigned long long)t,
				    (unsigned long long)ticks,
				    (unsigned long long)sum,
				    (unsigned long long)written_us);
			written_us = tsc_to_ns(rdtsc()) / NSEC_PER_USEC;
		} else {
			uart_printf("tick %llu/%llu sum=0x%016llx\n",
				    (unsigned long long)t,
				    (unsigned long long)ticks,
				    (unsigned long long)sum);
		}
	}
	for (uint64_t p = 0; p < pages; p++) {
		uint64_t want = expected(seed, p, ticks);

		if (!matches(region + p * WORDS_PER_PAGE, want))
			bad++;
		sum = mix(sum ^ want);
	}
	guest_result("ticker ticks=%llu mib=%llu bad=%llu checksum=0x%016llx",
		     (unsigned long long)ticks, (unsigned long long)mib,
		     (unsigned long long)bad, (unsigned long long)sum);
	GUEST_ASSERT_MSG(bad == 0, "ticker: %llu bad pages",
			 (unsigned long long)bad);
	guest_done(0);
}

static const char *const ticker_params[] = { "ticks", "ms", "mib", "seed",
					      "stamp", NULL };

const struct workload workload_ticker = {
	.name = "ticker",
	.usage = "ticks=N ms=T mib=M seed=S stamp=0|1",
	.params = ticker_params,
	.run = ticker_run,
};
