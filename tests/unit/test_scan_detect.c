// SPDX-License-Identifier: MIT
/* The pager's scan detector (src/memory/scan_detect.h), on its own:
 * fault streams in, detected streams, prefetch steps and victims out. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "memory/scan_detect.h"

#define NPAGES 65536

/* A small resident set driven by the detector's victims (CLOCK-less
 * fallback: the lowest resident page), no prefetch. */
struct sim {
	struct scan_detect d;
	uint8_t resident[NPAGES];
	uint64_t nresident, limit, faults;
};

static void sim_init(struct sim *s, uint64_t limit)
{
	memset(s, 0, sizeof(*s));
	scan_detect_init(&s->d, NPAGES);
	s->limit = limit;
}

static bool evict_one(struct sim *s, uint64_t keep)
{
	struct scan_victims v[SCAN_STREAMS];
	unsigned n = scan_detect_victims(&s->d, v, SCAN_STREAMS);

	for (unsigned i = 0; i < n; i++) {
		uint64_t page = v[i].first;

		for (uint64_t k = 0; k < v[i].count; k++, page += v[i].step) {
			if (s->resident[page] && page != keep) {
				s->resident[page] = 0;
				return true;
			}
		}
	}
	for (uint64_t page = 0; page < NPAGES; page++) {
		if (s->resident[page] && page != keep) {
			s->resident[page] = 0;
			return false;
		}
	}
	return false;
}

static void sim_touch(struct sim *s, uint64_t page)
{
	int i;

	if (s->resident[page])
		return;
	s->faults++;
	i = scan_detect_fault(&s->d, page, NULL);
	scan_detect_fetched(&s->d, i, page, page);
	s->resident[page] = 1;
	if (++s->nresident > s->limit) {
		evict_one(s, page);
		s->nresident--;
	}
}

TEST(scan_detect_finds_a_cyclic_sweep)
{
	struct sim *s = malloc(sizeof(*s));
	struct scan_info info;

	sim_init(s, 1024);
	for (int pass = 0; pass < 2; pass++)
		for (uint64_t p = 1000; p < 5096; p++)
			sim_touch(s, p);
	CHECK(scan_detect_region(&s->d, 3000 / SCAN_REGION_PAGES, &info));
	CHECK(info.loop);
	CHECK_EQ(info.dir, 1);
	CHECK_EQ(info.stride, 1);
	CHECK_EQ(info.step, 1);
	CHECK(info.lo <= 1100 && info.hi >= 5000);
	/* far away from the loop: nothing */
	CHECK(!scan_detect_region(&s->d, 40000 / SCAN_REGION_PAGES, &info));
	free(s);
}

TEST(scan_detect_ignores_random_access)
{
	struct scan_detect d;
	struct scan_victims v[SCAN_STREAMS];
	struct scan_info info;
	uint64_t x = 12345, streams = 0;

	scan_detect_init(&d, NPAGES);
	for (int i = 0; i < 20000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (scan_detect_fault(&d, (x >> 33) % NPAGES, &info) >= 0)
			streams++;
		scan_detect_fetched(&d, info.stream, (x >> 33) % NPAGES,
				    (x >> 33) % NPAGES);
	}
	/* a chance pair of equal deltas may start one; it never lives */
	CHECK(streams < 20);
	CHECK_EQ(scan_detect_victims(&d, v, SCAN_STREAMS), 0);
	for (uint64_t r = 0; r < NPAGES / SCAN_REGION_PAGES; r++)
		CHECK(!scan_detect_region(&d, r, &info));
}

TEST(scan_detect_prefetches_backward_for_a_reverse_sweep)
{
	struct scan_detect d;
	struct scan_info info = { 0 };
	uint64_t page = 30000;

	scan_detect_init(&d, NPAGES);
	/* each fault fetches 8 more pages backward once the trend shows */
	for (int i = 0; i < 10; i++) {
		uint64_t last = page;

		scan_detect_fault(&d, page, &info);
		if (info.step)
			last = page + (uint64_t)(info.step * 8);
		scan_detect_fetched(&d, info.stream, page, last);
		page = last - 1;
	}
	CHECK(info.stream >= 0);
	CHECK_EQ(info.dir, -1);
	CHECK_EQ(info.step, -1);
	/* the victims are behind the scan: above it */
	{
		struct scan_victims v[SCAN_STREAMS];

		CHECK_EQ(scan_detect_victims(&d, v, SCAN_STREAMS), 1);
		CHECK(v[0].first > page);
		CHECK_EQ(v[0].step, 1);
	}
}

TEST(scan_detect_follows_a_stride)
{
	struct scan_detect d;
	struct scan_info info = { 0 };
	struct scan_victims v[SCAN_STREAMS];
	uint64_t page = 100;

	scan_detect_init(&d, NPAGES);
	/* one page in every 4, then 4 prefetched along the stride */
	for (int i = 0; i < 12; i++) {
		uint64_t last = page;

		scan_detect_fault(&d, page, &info);
		if (info.step)
			last = page + (uint64_t)(info.step * 4);
		scan_detect_fetched(&d, info.stream, page, last);
		page = last + 4;
	}
	CHECK(info.stream >= 0);
	CHECK_EQ(info.dir, 1);
	CHECK_EQ(info.stride, 4);
	CHECK_EQ(info.step, 4);
	CHECK_EQ(scan_detect_victims(&d, v, SCAN_STREAMS), 1);
	CHECK_EQ(v[0].step, -4);
	CHECK_EQ(v[0].first % 4, 100 % 4);
}

TEST(scan_detect_mru_on_a_loop_keeps_a_stable_set)
{
	struct sim *s = malloc(sizeof(*s));
	uint64_t loop = 4096, limit = 1024, faults[5];
	uint8_t *before = malloc(NPAGES);
	uint64_t kept = 0;

	sim_init(s, limit);
	for (int pass = 0; pass < 5; pass++) {
		uint64_t f0 = s->faults;

		if (pass == 4)
			memcpy(before, s->resident, NPAGES);
		for (uint64_t p = 2000; p < 2000 + loop; p++)
			sim_touch(s, p);
		faults[pass] = s->faults - f0;
	}
	CHECK_EQ(faults[0], loop);
	/* CLOCK or LRU would fault all 4096 every pass */
	for (int pass = 2; pass < 5; pass++)
		CHECK(faults[pass] <= loop - limit + 64);
	/* the part kept from one pass to the next stays the same */
	for (uint64_t p = 0; p < NPAGES; p++)
		kept += before[p] && s->resident[p];
	CHECK(kept >= limit - 64);
	free(before);
	free(s);
}
