// SPDX-License-Identifier: MIT
/*
 * wsswork: phases with a known working set and access kind, the ground
 * truth for rackvm's working-set estimator (--wss).
 *
 *   phases=LIST   comma-separated phases, each KIND[SIZE][@OFFSET]:
 *                   KIND   r (read), w (write), m (mixed: even pages of
 *                          the arena written, odd pages read), i (idle)
 *                   SIZE   MiB, or KiB with a 'k' suffix (a page multiple)
 *                   OFFSET where the set starts in the arena, same units
 *                 default "w16,r64,r64@64,w16@64,m32,i": a read phase
 *                 right after a write phase over the same pages (where
 *                 write logging alone sees nothing), read-read-write-write,
 *                 a mixed phase over both halves, then idle
 *   phase_s=N     seconds per phase (default 3); phase_ms=N overrides it
 *   arena=N       arena size in MiB (default: the end of the furthest set)
 *   corrupt=N     test hook: flips a bit in arena page N before the final
 *                 check, which must then fail (proves the check works)
 *
 * The arena is one contiguous range of free RAM (its guest-physical
 * address is reported), filled once before the first phase so that no
 * phase pays first-touch faults.  Each phase's set is a contiguous run of
 * arena pages; during the phase every page of the set is touched once per
 * pass, passes repeating until the phase ends:
 *   read   one 8-byte load per page, at a cache line that moves each pass
 *   write  one 8-byte read-modify-write per page (word 0: the page's
 *          generation, see below)
 *   mixed  write on even arena pages, read on odd ones
 *   idle   the CPU halts until the phase's end (guest/sleep.h), so an
 *          idle VM costs its host no CPU; only the runtime's own few
 *          pages are touched
 * All of it runs in ring 3 at native speed; the deadline is checked every
 * CHUNK_PAGES pages, so a phase can end in the middle of a pass (counted
 * exactly, see struct phase).
 *
 * A phase's true working set is its set's pages (the "pages=" figure)
 * plus the runtime's baseline: code, stack, data and page-table pages,
 * a handful (4 to 6 as --wss-sample full measures them).
 *
 * Checksums: word i of arena page a holds pattern(a, i), except word 0,
 * which holds pattern(a, 0) + the page's generation, the number of
 * writes the page has had.  That number follows from the phase table, so
 * at the end every word of every arena page is checked: a page the host
 * lost or corrupted while sampling references fails the guest with the
 * first bad page.
 *
 * Output: a plain UART line "wsswork: phase=N start ..." the moment a
 * phase starts (for the host to timestamp on arrival), and at its end
 *   result: wsswork phase=N kind=K pages=P first_page=F start_s=S end_s=E
 *           passes=N touches=N touch_rate=N max_pass_us=N
 * with times in seconds since the workload started, by the TSC (the
 * guest's TSC does not start at 0 at boot under nested KVM, so there is
 * no "since boot"; the fill line gives the origin as origin_tsc_s, raw
 * TSC seconds).  touches counts page touches, the unfinished last pass
 * included; max_pass_us is the slowest complete pass (0: none completed).
 * Then "result: wsswork verify pages=N bad=0".
 *
 * The set is touched in full within every estimator interval only while
 * a pass takes well under an interval, and trapping slows passes down:
 * each write-protect fault of write logging costs tens of microseconds
 * on nested KVM, so write sets are kept small (16 MiB by default).
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/printf.h"
#include "guest/sleep.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define WORDS_PER_PAGE (PAGE_SIZE / sizeof(uint64_t))
#define LINES_PER_PAGE (PAGE_SIZE / 64)
#define WORDS_PER_LINE (64 / sizeof(uint64_t))
#define PAGES_PER_MIB 256ull
#define CHUNK_PAGES 256		/* 1 MiB between deadline checks */
#define MAX_PHASES 16
#define DEFAULT_PHASES "w16,r64,r64@64,w16@64,m32,i"

struct phase {
	char kind;		/* 'r', 'w', 'm', 'i' */
	uint64_t first;		/* first arena page of the set */
	uint64_t pages;		/* pages in the set */
	/* Measured.  Pages [first, first + partial) had one pass more. */
	uint64_t passes;	/* complete passes */
	uint64_t partial;	/* pages into the unfinished last pass */
	uint64_t start_tsc, end_tsc;
	uint64_t max_pass_tsc;	/* the slowest complete pass */
};

static struct phase phases[MAX_PHASES];
static unsigned int nr_phases;
static volatile uint64_t *arena;	/* identity mapped: VA == GPA */
static uint64_t arena_pages;
static volatile uint64_t sink;		/* keeps the loads alive */
static uint64_t origin_tsc;		/* times are reported from here */

static const char *kind_name(char kind)
{
	switch (kind) {
	case 'r':
		return "read";
	case 'w':
		return "write";
	case 'm':
		return "mixed";
	default:
		return "idle";
	}
}

static uint64_t pattern(uint64_t page, uint64_t word)
{
	uint64_t x = page * 0x9e3779b97f4a7c15ull ^ word * 0xbf58476d1ce4e5b9ull;

	return x ^ (x >> 29) ^ 0x5753537761726bull;	/* "WSSwark" */
}

/* Parses a size in MiB or, with a 'k' suffix, KiB, into pages; advances
 * @s past it.  No digits: @def. */
static uint64_t parse_size(const char **s, uint64_t def, const char *spec)
{
	const char *p = *s;
	uint64_t v = 0;
	bool digits = false;

	while (*p >= '0' && *p <= '9') {
		GUEST_ASSERT_MSG(v < (1ull << 40),
				 "wsswork: size too large in '%s'", spec);
		v = v * 10 + (uint64_t)(*p++ - '0');
		digits = true;
	}
	if (!digits) {
		*s = p;
		return def;
	}
	if (*p == 'k' || *p == 'K') {
		p++;
		GUEST_ASSERT_MSG(v % 4 == 0,
				 "wsswork: %lluk in '%s' is not a multiple of 4k",
				 (unsigned long long)v, spec);
		v /= 4;
	} else {
		v *= PAGES_PER_MIB;
	}
	*s = p;
	return v;
}

static void parse_phases(const char *spec)
{
	const char *p = spec;
	struct phase *ph;

	nr_phases = 0;
	while (*p) {
		GUEST_ASSERT_MSG(nr_phases < MAX_PHASES,
				 "wsswork: more than %d phases in '%s'",
				 MAX_PHASES, spec);
		ph = &phases[nr_phases++];
		memset(ph, 0, sizeof(*ph));
		ph->kind = *p;
		GUEST_ASSERT_MSG(ph->kind == 'r' || ph->kind == 'w' ||
				 ph->kind == 'm' || ph->kind == 'i',
				 "wsswork: phase %u of '%s' is not r, w, m or i",
				 nr_phases, spec);
		p++;
		ph->pages = parse_size(&p, 0, spec);
		if (*p == '@') {
			p++;
			ph->first = parse_size(&p, 0, spec);
		}
		GUEST_ASSERT_MSG(*p == ',' || !*p,
				 "wsswork: bad phase %u in '%s' (want KIND[MiB][@MiB])",
				 nr_phases, spec);
		if (ph->kind == 'i')
			ph->pages = 0;
		else
			GUEST_ASSERT_MSG(ph->pages > 0,
					 "wsswork: phase %u of '%s' has no size",
					 nr_phases, spec);
		if (*p == ',')
			p++;
	}
	GUEST_ASSERT_MSG(nr_phases > 0, "wsswork: phases= is empty");
}

/* The arena: the first free range that holds @pages pages. */
static void place_arena(uint64_t pages)
{
	static struct mem_range ranges[MAX_FREE_RANGES];
	uint64_t largest = 0, n;
	unsigned int i, nr = free_ram_ranges(ranges);

	for (i = 0; i < nr; i++) {
		n = (ranges[i].end - ranges[i].start) / PAGE_SIZE;
		if (n >= pages) {
			arena = (volatile uint64_t *)(uintptr_t)ranges[i].start;
			arena_pages = pages;
			return;
		}
		if (n > largest)
			largest = n;
	}
	guest_assert_fail(__FILE__, __LINE__,
			  "wsswork: arena of %llu MiB does not fit; the largest free range is %llu MiB",
			  (unsigned long long)(pages / PAGES_PER_MIB),
			  (unsigned long long)(largest / PAGES_PER_MIB));
}

static inline volatile uint64_t *page_ptr(uint64_t page)
{
	return arena + page * WORDS_PER_PAGE;
}

static void fill_arena(void)
{
	volatile uint64_t *w;
	uint64_t a;
	unsigned int i;

	for (a = 0; a < arena_pages; a++) {
		w = page_ptr(a);
		for (i = 0; i < WORDS_PER_PAGE; i++)
			w[i] = pattern(a, i);
	}
}

/* One touch each of arena pages [from, from + n), in the phase's way;
 * @line picks the cache line reads go to. */
static void touch_pages(char kind, uint64_t from, uint64_t n,
			unsigned int line)
{
	unsigned int off = line * WORDS_PER_LINE;
	uint64_t a, end = from + n, sum = 0;

	switch (kind) {
	case 'r':
		for (a = from; a < end; a++)
			sum += page_ptr(a)[off];
		break;
	case 'w':
		for (a = from; a < end; a++)
			page_ptr(a)[0]++;
		break;
	case 'm':
		for (a = from; a < end; a++) {
			if (a & 1)
				sum += page_ptr(a)[off];
			else
				page_ptr(a)[0]++;
		}
		break;
	}
	sink += sum;
}

/* Nanoseconds since the workload started. */
static uint64_t since_origin_ns(uint64_t tsc)
{
	return tsc_to_ns(tsc - origin_tsc);
}

static uint64_t now_ns(void)
{
	return since_origin_ns(rdtsc());
}

static void run_phase(unsigned int idx, uint64_t duration_tsc)
{
	struct phase *ph = &phases[idx];
	uint64_t done = 0, n, deadline, pass_start, now;
	unsigned int line = 0;

	uart_printf("wsswork: phase=%u start kind=%s pages=%llu first_page=%llu t=" SECONDS_FMT "\n",
		    idx + 1, kind_name(ph->kind),
		    (unsigned long long)ph->pages,
		    (unsigned long long)ph->first, SECONDS_ARGS(now_ns()));
	ph->start_tsc = rdtsc();
	deadline = ph->start_tsc + duration_tsc;
	if (ph->kind == 'i') {
		sleep_until_tsc(deadline);
		ph->end_tsc = rdtsc();
		return;
	}
	pass_start = ph->start_tsc;
	for (;;) {
		n = ph->pages - done;
		if (n > CHUNK_PAGES)
			n = CHUNK_PAGES;
		touch_pages(ph->kind, ph->first + done, n, line);
		done += n;
		now = rdtsc();
		if (done == ph->pages) {
			ph->passes++;
			done = 0;
			line = (line + 1) % LINES_PER_PAGE;
			if (now - pass_start > ph->max_pass_tsc)
				ph->max_pass_tsc = now - pass_start;
			pass_start = now;
		}
		if ((int64_t)(now - deadline) >= 0)
			break;
	}
	ph->end_tsc = now;
	ph->partial = done;
}

static void report_phase(unsigned int idx)
{
	const struct phase *ph = &phases[idx];
	uint64_t touches = ph->passes * ph->pages + ph->partial;
	uint64_t ns = tsc_to_ns(ph->end_tsc - ph->start_tsc);

	guest_result("wsswork phase=%u kind=%s pages=%llu first_page=%llu start_s=" SECONDS_FMT
		     " end_s=" SECONDS_FMT " passes=%llu touches=%llu touch_rate=%llu max_pass_us=%llu",
		     idx + 1, kind_name(ph->kind),
		     (unsigned long long)ph->pages,
		     (unsigned long long)ph->first,
		     SECONDS_ARGS(since_origin_ns(ph->start_tsc)),
		     SECONDS_ARGS(since_origin_ns(ph->end_tsc)),
		     (unsigned long long)ph->passes,
		     (unsigned long long)touches,
		     (unsigned long long)rate_per_sec(touches, ns),
		     (unsigned long long)(tsc_to_ns(ph->max_pass_tsc) /
					  NSEC_PER_USEC));
}

/* How many times the phases wrote arena page @a. */
static uint64_t writes_to(uint64_t a)
{
	const struct phase *ph;
	uint64_t n = 0, i;
	unsigned int p;

	for (p = 0; p < nr_phases; p++) {
		ph = &phases[p];
		if (ph->kind == 'r' || ph->kind == 'i')
			continue;
		if (a < ph->first || a >= ph->first + ph->pages)
			continue;
		if (ph->kind == 'm' && (a & 1))
			continue;
		i = a - ph->first;
		n += ph->passes + (i < ph->partial ? 1 : 0);
	}
	return n;
}

/* Checks every word of the arena; fails with the first bad page. */
static void verify_arena(void)
{
	uint64_t a, bad = 0, first_bad = 0, got = 0, want = 0, expect;
	volatile uint64_t *w;
	unsigned int i, bad_word = 0;

	for (a = 0; a < arena_pages; a++) {
		w = page_ptr(a);
		for (i = 0; i < WORDS_PER_PAGE; i++) {
			expect = pattern(a, i);
			if (i == 0)
				expect += writes_to(a);
			if (w[i] == expect)
				continue;
			if (!bad++) {
				first_bad = a;
				bad_word = i;
				got = w[i];
				want = expect;
			}
			break;
		}
	}
	guest_result("wsswork verify pages=%llu bad=%llu",
		     (unsigned long long)arena_pages,
		     (unsigned long long)bad);
	GUEST_ASSERT_MSG(!bad,
			 "wsswork: %llu bad pages; first: arena page %llu (gpa 0x%llx) word %u is 0x%llx, expected 0x%llx",
			 (unsigned long long)bad,
			 (unsigned long long)first_bad,
			 (unsigned long long)(uintptr_t)page_ptr(first_bad),
			 bad_word, (unsigned long long)got,
			 (unsigned long long)want);
}

static void wsswork_run(const struct cmdline *c)
{
	const char *spec = cmdline_get(c, "phases"), *corrupt;
	uint64_t phase_ms = cmdline_u64(c, "phase_s", 3) * 1000;
	uint64_t need = 0, pages, t0, corrupt_page;
	unsigned int i;

	origin_tsc = rdtsc();
	phase_ms = cmdline_u64(c, "phase_ms", phase_ms);
	GUEST_ASSERT_MSG(phase_ms >= 1 && phase_ms <= 3600 * 1000,
			 "wsswork: a phase must last 1 ms .. 1 hour");
	parse_phases(spec && *spec ? spec : DEFAULT_PHASES);
	for (i = 0; i < nr_phases; i++) {
		if (phases[i].first + phases[i].pages > need)
			need = phases[i].first + phases[i].pages;
	}
	pages = cmdline_u64(c, "arena", 0) * PAGES_PER_MIB;
	if (!pages)
		pages = need;
	GUEST_ASSERT_MSG(pages >= need,
			 "wsswork: arena=%llu MiB but the phases reach %llu KiB",
			 (unsigned long long)(pages / PAGES_PER_MIB),
			 (unsigned long long)(need * 4));
	if (!pages)
		pages = 1;	/* idle only: still something to verify */
	place_arena(pages);
	tsc_hz();		/* calibrate before anything is timed */

	t0 = rdtsc();
	fill_arena();
	guest_result("wsswork fill pages=%llu arena_gpa=0x%llx phases=%u phase_ms=%llu seconds=" SECONDS_FMT
		     " end_s=" SECONDS_FMT " origin_tsc_s=" SECONDS_FMT,
		     (unsigned long long)arena_pages,
		     (unsigned long long)(uintptr_t)arena, nr_phases,
		     (unsigned long long)phase_ms,
		     SECONDS_ARGS(tsc_to_ns(rdtsc() - t0)),
		     SECONDS_ARGS(now_ns()), SECONDS_ARGS(tsc_to_ns(origin_tsc)));

	for (i = 0; i < nr_phases; i++) {
		run_phase(i, ns_to_tsc(phase_ms * NSEC_PER_MSEC));
		report_phase(i);
	}
	corrupt = cmdline_get(c, "corrupt");
	if (corrupt) {
		corrupt_page = cmdline_u64(c, "corrupt", 0);
		GUEST_ASSERT_MSG(corrupt_page < arena_pages,
				 "wsswork: corrupt=%llu is beyond the arena",
				 (unsigned long long)corrupt_page);
		page_ptr(corrupt_page)[WORDS_PER_PAGE - 1] ^= 1ull << 20;
	}
	verify_arena();
	guest_done(0);
}

static const char *const wsswork_params[] = {
	"phases", "phase_s", "phase_ms", "arena", "corrupt", NULL
};

const struct workload workload_wsswork = {
	.name = "wsswork",
	.usage = "phases=KIND[MiB][@MiB],... (KIND r|w|m|i; default " DEFAULT_PHASES
		 ") phase_s=N (3) | phase_ms=N arena=MiB",
	.params = wsswork_params,
	.run = wsswork_run,
};
