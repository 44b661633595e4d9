// SPDX-License-Identifier: MIT
/*
 * memtouch: touch N 4 KiB pages of free RAM from ring 3.
 *   mode=write   fill every page with the pattern byte
 *   mode=read    read every 8-byte word
 *   mode=verify  fill all N pages, then check every byte (finds aliasing
 *                and lost writes; fails with the first bad address)
 * The first touch of a page is what a VMM sees (EPT faults, population),
 * so the page rate is the figure of interest.
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))

enum memtouch_mode { MODE_WRITE, MODE_READ, MODE_VERIFY };

static struct mem_range ranges[MAX_FREE_RANGES];
static unsigned int nr_ranges;

static void fill_page(uint64_t *p, uint64_t pattern)
{
	unsigned int i;

	for (i = 0; i < WORDS_PER_PAGE; i++)
		p[i] = pattern;
}

static uint64_t read_page(const volatile uint64_t *p)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < WORDS_PER_PAGE; i++)
		sum += p[i];
	return sum;
}

static void verify_page(const uint64_t *p, uint64_t pattern)
{
	const uint8_t *b;
	unsigned int i, j;

	for (i = 0; i < WORDS_PER_PAGE; i++) {
		if (p[i] == pattern)
			continue;
		b = (const uint8_t *)&p[i];
		for (j = 0; j < 8 && b[j] == (uint8_t)pattern; j++)
			;
		guest_assert_fail(__FILE__, __LINE__,
				  "memtouch: byte at 0x%llx is 0x%02x, wrote 0x%02x",
				  (unsigned long long)(uintptr_t)(b + j), b[j],
				  (unsigned int)(uint8_t)pattern);
	}
}

/* Writes, reads or (@check) verifies the first @pages free pages; returns
 * the sum of what was read. */
static uint64_t for_each_page(uint64_t pages, enum memtouch_mode mode,
			      uint64_t pattern, bool check)
{
	uint64_t done = 0, sum = 0, a;
	unsigned int r;

	for (r = 0; r < nr_ranges && done < pages; r++) {
		for (a = ranges[r].start; a < ranges[r].end && done < pages;
		     a += PAGE_SIZE, done++) {
			if (check)
				verify_page((const uint64_t *)a, pattern);
			else if (mode == MODE_READ)
				sum += read_page((const uint64_t *)a);
			else
				fill_page((uint64_t *)a, pattern);
		}
	}
	return sum;
}

static uint64_t free_pages(void)
{
	uint64_t total = 0;
	unsigned int r;

	for (r = 0; r < nr_ranges; r++)
		total += (ranges[r].end - ranges[r].start) / PAGE_SIZE;
	return total;
}

static enum memtouch_mode parse_mode(const char *s)
{
	if (!s || !strcmp(s, "write"))
		return MODE_WRITE;
	if (!strcmp(s, "read"))
		return MODE_READ;
	if (!strcmp(s, "verify"))
		return MODE_VERIFY;
	guest_assert_fail(__FILE__, __LINE__,
			  "memtouch: mode=%s, expected write, read or verify",
			  s);
}

static void memtouch_run(const struct cmdline *c)
{
	static const char *const mode_names[] = { "write", "read", "verify" };
	uint64_t pages = cmdline_u64(c, "pages", 1024);
	uint64_t byte = cmdline_u64(c, "pattern", 0xa5);
	enum memtouch_mode mode = parse_mode(cmdline_get(c, "mode"));
	uint64_t pattern, t0, ns, sum;

	GUEST_ASSERT_MSG(byte <= 0xff, "memtouch: pattern=0x%llx is not a byte",
			 (unsigned long long)byte);
	pattern = byte * 0x0101010101010101ull;
	nr_ranges = free_ram_ranges(ranges);
	GUEST_ASSERT_MSG(pages <= free_pages(),
			 "memtouch: pages=%llu but only %llu free pages above the image",
			 (unsigned long long)pages,
			 (unsigned long long)free_pages());
	tsc_hz();		/* calibrate outside the timed part */

	t0 = rdtsc();
	sum = for_each_page(pages, mode, pattern, false);
	if (mode == MODE_VERIFY)
		for_each_page(pages, mode, pattern, true);
	ns = tsc_to_ns(rdtsc() - t0);
	asm volatile("" : : "r"(sum));

	guest_result("memtouch pages=%llu mode=%s seconds=" SECONDS_FMT
		     " pages_per_sec=%llu",
		     (unsigned long long)pages, mode_names[mode],
		     SECONDS_ARGS(ns),
		     (unsigned long long)rate_per_sec(pages, ns));
	guest_done(0);
}

static const char *const memtouch_params[] = {
	"pages", "pattern", "mode", NULL
};

const struct workload workload_memtouch = {
	.name = "memtouch",
	.usage = "pages=N (default 1024) pattern=0xNN mode=write|read|verify",
	.params = memtouch_params,
	.run = memtouch_run,
};
