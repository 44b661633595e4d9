// SPDX-License-Identifier: MIT
/*
 * pagestress: the data-integrity workload for paging guest memory out
 * and back in (rackvm run --mem-local): every page of a region gets a
 * pattern that names the page, the pass that wrote it and the seed;
 * then, pass after pass, part of the region is rewritten and all of it
 * is checked.  A page the host lost, mixed up with another page, served
 * from an older pass or failed to zero reads back wrong.
 *
 *   mib=M         region size in MiB (default 192); it may span several
 *                 free RAM ranges
 *   passes=P      verify passes after the initial fill (default 3)
 *   write_pct=W   per pass, the share of non-zero pages rewritten with
 *                 that pass's pattern before the check (default 25)
 *   zero_pct=Z    share of pages never written (default 10): they must
 *                 read back as zeros, the pager's zero-page path
 *   order=seq|random  the order pages are written and checked in
 *                 (random: a different permutation each pass)
 *   seed=S        (default 1)
 *   corrupt=N     test hook: flips a bit in region page N before the
 *                 last check, which must then find exactly one bad page
 *
 * Which pages are zero and which a pass rewrites follow from hashes of
 * (page, pass, seed), so the expected content of any page after any pass
 * is computed, not stored: the workload keeps no per-page state in
 * memory that could itself be paged.
 *
 * A written page's 512 words are pattern(page, generation) XOR a
 * per-word constant, generation being the last pass that wrote it (0:
 * the fill).  Random order walks a pseudo-random permutation of the
 * pages (a keyed Feistel network over the next power of two, cycle
 * walking down to the page count), also computed rather than stored.
 *
 * Fresh guest RAM is zero under rackvm and QEMU alike, which is what the
 * zero pages rely on.
 *
 * Output: a line "pagestress: pages=N zero=Z order=O ..." first, up to
 * MAX_REPORTED bad pages as "pagestress: bad page ..." lines, then
 *   result: pagestress mib=M passes=P bad=B seconds=S
 * (B: pages found bad, counted once per pass that found them; S: fill
 * and passes), and a guest failure if B > 0.
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define PAGES_PER_MIB 256ull
#define MAX_MIB (1ull << 20)
#define MAX_PASSES 1000
#define MAX_REPORTED 8
#define FEISTEL_ROUNDS 4

enum order { ORDER_SEQ, ORDER_RANDOM };

/* A free RAM range and where it starts in region page numbers. */
struct region_part {
	uint64_t start;		/* address */
	uint64_t first;		/* region page number of its first page */
	uint64_t pages;
};

struct pagestress {
	uint64_t pages, seed;
	unsigned int passes, write_pct, zero_pct;
	enum order order;
	struct region_part part[MAX_FREE_RANGES];
	unsigned int nr_parts;
	uint64_t bad, reported;
	/* the permutation of the current pass (order=random) */
	unsigned int half_bits;
	uint64_t half_mask, key;
};

static struct pagestress ps;

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	return mix64(a ^ mix64(b ^ mix64(c + 0x7061676573747273ull)));
}

/* Salts that keep the per-page decisions independent of each other. */
enum { SALT_ZERO = 1, SALT_WRITE = 2, SALT_PATTERN = 3, SALT_ORDER = 4 };

static bool pct_hit(uint64_t h, unsigned int pct)
{
	return h % 100 < pct;
}

static bool is_zero_page(uint64_t page)
{
	return pct_hit(hash3(SALT_ZERO, ps.seed, page), ps.zero_pct);
}

static bool rewritten_in(uint64_t page, unsigned int pass)
{
	return pct_hit(hash3(SALT_WRITE, ps.seed ^ ((uint64_t)pass << 32),
			     page), ps.write_pct);
}

/* The last pass up to @pass that wrote @page (0: the fill). */
static unsigned int generation(uint64_t page, unsigned int pass)
{
	for (; pass > 0; pass--) {
		if (rewritten_in(page, pass))
			return pass;
	}
	return 0;
}

static uint64_t page_pattern(uint64_t page, unsigned int gen)
{
	return hash3(SALT_PATTERN, ps.seed ^ ((uint64_t)gen << 32), page);
}

/* Word i of a page: distinct per word, so a shifted or torn copy shows. */
static uint64_t word_value(uint64_t base, unsigned int i)
{
	return base ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
}

static uint64_t *page_addr(uint64_t page)
{
	const struct region_part *p;
	unsigned int i;

	for (i = 0; i < ps.nr_parts; i++) {
		p = &ps.part[i];
		if (page - p->first < p->pages)
			return (uint64_t *)(uintptr_t)(p->start +
				(page - p->first) * PAGE_SIZE);
	}
	guest_assert_fail(__FILE__, __LINE__,
			  "pagestress: page %llu outside the region",
			  (unsigned long long)page);
}

static void place_region(uint64_t pages)
{
	static struct mem_range ranges[MAX_FREE_RANGES];
	unsigned int i, nr = free_ram_ranges(ranges);
	struct region_part *p;
	uint64_t have = 0, n;

	for (i = 0; i < nr && have < pages; i++) {
		n = (ranges[i].end - ranges[i].start) / PAGE_SIZE;
		if (n > pages - have)
			n = pages - have;
		p = &ps.part[ps.nr_parts++];
		p->start = ranges[i].start;
		p->first = have;
		p->pages = n;
		have += n;
	}
	GUEST_ASSERT_MSG(have == pages,
			 "pagestress: mib=%llu but only %llu MiB of free RAM (more --mem?)",
			 (unsigned long long)(pages / PAGES_PER_MIB),
			 (unsigned long long)(have / PAGES_PER_MIB));
}

/* Keys the permutation for @pass: both halves of a Feistel network over
 * 2 * half_bits >= log2(pages) bits. */
static void order_init(unsigned int pass)
{
	unsigned int bits = 0;

	while ((1ull << bits) < ps.pages)
		bits++;
	ps.half_bits = (bits + 1) / 2;
	if (!ps.half_bits)
		ps.half_bits = 1;
	ps.half_mask = (1ull << ps.half_bits) - 1;
	ps.key = hash3(SALT_ORDER, ps.seed, pass);
}

static uint64_t feistel(uint64_t x)
{
	uint64_t left = x >> ps.half_bits, right = x & ps.half_mask, t;
	unsigned int r;

	for (r = 0; r < FEISTEL_ROUNDS; r++) {
		t = right;
		right = left ^ (mix64(right ^ ps.key ^ r) & ps.half_mask);
		left = t;
	}
	return (left << ps.half_bits) | right;
}

/* The @i-th page of the pass's order.  Cycle walking: the network
 * permutes [0, 2^(2*half_bits)), at most 4x the page count, so a few
 * steps land back inside [0, pages). */
static uint64_t nth_page(uint64_t i)
{
	uint64_t x = i;

	if (ps.order == ORDER_SEQ)
		return i;
	do {
		x = feistel(x);
	} while (x >= ps.pages);
	return x;
}

static void write_page(uint64_t page, unsigned int gen)
{
	uint64_t *w = page_addr(page), base = page_pattern(page, gen);
	unsigned int i;

	for (i = 0; i < WORDS_PER_PAGE; i++)
		w[i] = word_value(base, i);
}

static void report_bad(uint64_t page, unsigned int pass, bool zero,
		       unsigned int word, uint64_t got, uint64_t want)
{
	ps.bad++;
	if (ps.reported++ >= MAX_REPORTED)
		return;
	uart_printf("pagestress: bad page %llu (gpa 0x%llx) pass %u: word %u is 0x%016llx, expected 0x%016llx%s\n",
		    (unsigned long long)page,
		    (unsigned long long)(uintptr_t)page_addr(page), pass,
		    word, (unsigned long long)got, (unsigned long long)want,
		    zero ? " (a zero page)" : "");
}

static void check_page(uint64_t page, unsigned int pass)
{
	const volatile uint64_t *w = page_addr(page);
	uint64_t base = 0, want, got;
	bool zero = is_zero_page(page);
	unsigned int i;

	if (!zero)
		base = page_pattern(page, generation(page, pass));
	for (i = 0; i < WORDS_PER_PAGE; i++) {
		want = zero ? 0 : word_value(base, i);
		got = w[i];
		if (got != want) {
			report_bad(page, pass, zero, i, got, want);
			return;
		}
	}
}

static void fill(void)
{
	uint64_t i, page;

	order_init(0);
	for (i = 0; i < ps.pages; i++) {
		page = nth_page(i);
		if (!is_zero_page(page))
			write_page(page, 0);
	}
}

static void run_pass(unsigned int pass, bool corrupt, uint64_t corrupt_page)
{
	uint64_t i, page;

	order_init(pass);
	for (i = 0; i < ps.pages; i++) {
		page = nth_page(i);
		if (!is_zero_page(page) && rewritten_in(page, pass))
			write_page(page, pass);
	}
	if (corrupt)
		page_addr(corrupt_page)[WORDS_PER_PAGE / 2] ^= 1ull << 37;
	for (i = 0; i < ps.pages; i++)
		check_page(nth_page(i), pass);
}

static uint64_t count_zero_pages(void)
{
	uint64_t page, n = 0;

	for (page = 0; page < ps.pages; page++)
		n += is_zero_page(page);
	return n;
}

static enum order parse_order(const char *s)
{
	if (!s || !strcmp(s, "seq"))
		return ORDER_SEQ;
	if (!strcmp(s, "random"))
		return ORDER_RANDOM;
	guest_assert_fail(__FILE__, __LINE__,
			  "pagestress: order=%s, expected seq or random", s);
}

static unsigned int pct_param(const struct cmdline *c, const char *key,
			      uint64_t def)
{
	uint64_t v = cmdline_u64(c, key, def);

	GUEST_ASSERT_MSG(v <= 100, "pagestress: %s=%llu is not a percentage",
			 key, (unsigned long long)v);
	return (unsigned int)v;
}

static void pagestress_run(const struct cmdline *c)
{
	uint64_t mib = cmdline_u64(c, "mib", 192), passes, corrupt_page = 0;
	bool corrupt = cmdline_get(c, "corrupt") != NULL;
	uint64_t t0, ns;
	unsigned int pass;

	passes = cmdline_u64(c, "passes", 3);
	GUEST_ASSERT_MSG(mib >= 1 && mib <= MAX_MIB,
			 "pagestress: mib=%llu, expected 1..%llu",
			 (unsigned long long)mib, (unsigned long long)MAX_MIB);
	GUEST_ASSERT_MSG(passes >= 1 && passes <= MAX_PASSES,
			 "pagestress: passes=%llu, expected 1..%u",
			 (unsigned long long)passes, MAX_PASSES);
	ps.pages = mib * PAGES_PER_MIB;
	ps.passes = (unsigned int)passes;
	ps.write_pct = pct_param(c, "write_pct", 25);
	ps.zero_pct = pct_param(c, "zero_pct", 10);
	ps.order = parse_order(cmdline_get(c, "order"));
	ps.seed = cmdline_u64(c, "seed", 1);
	if (corrupt) {
		corrupt_page = cmdline_u64(c, "corrupt", 0);
		GUEST_ASSERT_MSG(corrupt_page < ps.pages,
				 "pagestress: corrupt=%llu is beyond the region's %llu pages",
				 (unsigned long long)corrupt_page,
				 (unsigned long long)ps.pages);
	}
	place_region(ps.pages);
	uart_printf("pagestress: pages=%llu zero=%llu order=%s write_pct=%u parts=%u first_gpa=0x%llx\n",
		    (unsigned long long)ps.pages,
		    (unsigned long long)count_zero_pages(),
		    ps.order == ORDER_SEQ ? "seq" : "random", ps.write_pct,
		    ps.nr_parts, (unsigned long long)ps.part[0].start);
	tsc_hz();		/* calibrate outside the timed part */

	t0 = rdtsc();
	fill();
	for (pass = 1; pass <= ps.passes; pass++)
		run_pass(pass, corrupt && pass == ps.passes, corrupt_page);
	ns = tsc_to_ns(rdtsc() - t0);

	guest_result("pagestress mib=%llu passes=%u bad=%llu seconds=" SECONDS_FMT,
		     (unsigned long long)mib, ps.passes,
		     (unsigned long long)ps.bad, SECONDS_ARGS(ns));
	GUEST_ASSERT_MSG(!ps.bad, "pagestress: %llu bad pages",
			 (unsigned long long)ps.bad);
	guest_done(0);
}

static const char *const pagestress_params[] = {
	"mib", "passes", "write_pct", "zero_pct", "order", "seed", "corrupt",
	NULL
};

const struct workload workload_pagestress = {
	.name = "pagestress",
	.usage = "mib=M (default 192) passes=P (3) write_pct=W (25) zero_pct=Z (10) order=seq|random seed=S",
	.params = pagestress_params,
	.run = pagestress_run,
};
