// SPDX-License-Identifier: MIT
/*
 * The working-set estimator's maths: Wilson intervals with the finite
 * population correction, the estimate of W ∪ R, adaptive sample sizes,
 * asymmetric smoothing, the bounded series and its CSV, the hot/cold map.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "memory/wss.h"

static int near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

TEST(wss_wilson_matches_textbook_values)
{
	double lo, hi;

	/* 50/100, infinite population: Wilson 95% is [0.4038, 0.5962] */
	wss_wilson(50, 100, 0, WSS_Z95, &lo, &hi);
	CHECK(near(lo, 0.4038, 0.0005));
	CHECK(near(hi, 0.5962, 0.0005));
	/* 0/100 still has an upper bound above 0 (3.7%) */
	wss_wilson(0, 100, 0, WSS_Z95, &lo, &hi);
	CHECK(lo == 0);
	CHECK(near(hi, 0.0370, 0.0005));
	/* no sample: no knowledge */
	wss_wilson(0, 0, 1000, WSS_Z95, &lo, &hi);
	CHECK(lo == 0 && hi == 1);
}

TEST(wss_wilson_shrinks_with_population_correction)
{
	double lo1, hi1, lo2, hi2, lo3, hi3;

	wss_wilson(50, 100, 0, WSS_Z95, &lo1, &hi1);
	wss_wilson(50, 100, 200, WSS_Z95, &lo2, &hi2);
	CHECK(hi2 - lo2 < hi1 - lo1);
	/* the whole population: exact */
	wss_wilson(37, 200, 200, WSS_Z95, &lo3, &hi3);
	CHECK(lo3 == hi3);
	CHECK(near(lo3, 0.185, 1e-12));
}

TEST(wss_estimate_is_written_plus_sampled_rest)
{
	struct wss_estimate e;

	/* dirty only: exact */
	e = wss_estimate(1234, 0, 0, 0, WSS_Z95);
	CHECK(near(e.pages, 1234, 1e-9));
	CHECK(e.error_pages == 0);
	/* 25 of 100 sampled pages touched (outside W) of 10000 resident */
	e = wss_estimate(500, 25, 100, 10000, WSS_Z95);
	CHECK(near(e.pages, 500 + 2500, 1e-6));
	CHECK(e.error_pages > 500 && e.error_pages < 1100);
	/* full sampling: no error */
	e = wss_estimate(10, 300, 1000, 1000, WSS_Z95);
	CHECK(near(e.pages, 310, 1e-9));
	CHECK(e.error_pages == 0);
}

TEST(wss_sample_size_grows_to_target_and_shrinks_slowly)
{
	uint64_t n;
	double lo, hi;

	/* p = 0.5, 5% relative: about 1537 draws from a huge population */
	n = wss_next_sample_size(0.5, 0.5, 1ull << 30, 0.05, WSS_Z95, 100, 100, 100000);
	CHECK(n >= 1500 && n <= 1600);
	/* and that many draws really meet the target */
	wss_wilson(n / 2, n, 1ull << 30, WSS_Z95, &lo, &hi);
	CHECK((hi - lo) / 2 <= 0.05 * 0.5 * 1.01);
	/* the written pages count toward the estimate the error is
	 * relative to: nothing referenced outside a large W needs few */
	CHECK(wss_next_sample_size(0, 0.5, 1ull << 30, 0.05, WSS_Z95, 100, 100, 100000) <= 200);
	/* an idle VM is held to the floor, not to 5% of nothing */
	n = wss_next_sample_size(0, 0, 1ull << 30, 0.05, WSS_Z95, 100, 100, 100000);
	CHECK(n > 1000 && n < 2000);
	/* capped by max and by the population */
	CHECK_EQ(wss_next_sample_size(0.5, 0.5, 1ull << 30, 0.05, WSS_Z95, 100, 100, 1000), 1000);
	CHECK(wss_next_sample_size(0.5, 0.5, 800, 0.05, WSS_Z95, 100, 100, 100000) <= 800);
	/* a quiet interval shrinks the sample by at most a quarter */
	CHECK_EQ(wss_next_sample_size(0.9, 0.9, 1ull << 30, 0.5, WSS_Z95, 4000, 100, 100000), 3000);
	/* never below min */
	CHECK_EQ(wss_next_sample_size(0.9, 0.9, 1ull << 30, 0.5, WSS_Z95, 100, 100, 100000), 100);
}

/* The sample follows what revoking it costs the guest: 1563 pages that
 * paused it 1.3 s (measured under TCG) on a 50 ms budget come down to
 * ~60; cheap pauses let it grow back a quarter at a time; the bounds
 * hold; a pause within budget but over half of it changes nothing. */
TEST(wss_sample_ceiling_follows_the_pause_it_costs)
{
	const uint64_t ms = 1000000;
	uint64_t c = wss_stall_ceiling(4096, 1563, 1300 * ms, 50 * ms, 100, 4096);

	CHECK_EQ(c, 100);	/* 60 by the ratio, then the floor */
	c = wss_stall_ceiling(4096, 4096, 100 * ms, 50 * ms, 16, 4096);
	CHECK_EQ(c, 2048);
	CHECK_EQ(wss_stall_ceiling(2048, 2048, 40 * ms, 50 * ms, 16, 4096), 2048);
	CHECK_EQ(wss_stall_ceiling(2048, 2048, 10 * ms, 50 * ms, 16, 4096), 2561);
	CHECK_EQ(wss_stall_ceiling(4000, 100, 1 * ms, 50 * ms, 16, 4096), 4096);
	/* nothing armed (the first interval): no pause to go on, unchanged */
	CHECK_EQ(wss_stall_ceiling(300, 0, 900 * ms, 50 * ms, 16, 4096), 300);
	/* on hardware a full sample costs ~9 ms: never capped */
	c = 4096;
	for (int i = 0; i < 10; i++)
		c = wss_stall_ceiling(c, c, 9 * ms, 50 * ms, 100, 4096);
	CHECK_EQ(c, 4096);
}

TEST(wss_smoothing_is_fast_up_slow_down)
{
	double s = 1000;

	s = wss_smooth(s, 2000, WSS_SMOOTH_UP, WSS_SMOOTH_DOWN);
	CHECK(near(s, 1700, 1e-9));
	s = wss_smooth(2000, 1000, WSS_SMOOTH_UP, WSS_SMOOTH_DOWN);
	CHECK(near(s, 1900, 1e-9));
	/* growth is followed within a few intervals, shrinkage takes many */
	s = 0;
	for (int i = 0; i < 3; i++)
		s = wss_smooth(s, 1000, WSS_SMOOTH_UP, WSS_SMOOTH_DOWN);
	CHECK(s > 970);
	for (int i = 0; i < 3; i++)
		s = wss_smooth(s, 0, WSS_SMOOTH_UP, WSS_SMOOTH_DOWN);
	CHECK(s > 700);
}

TEST(wss_series_is_bounded_and_exports_csv)
{
	static const char header[] = "time,wss_pages,error_pages,written_pages,"
				     "sampled,touched_sampled,estimator_cpu_ns";
	struct wss_series s;
	struct wss_point p = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	CHECK_EQ(wss_series_init(&s, 3), 0);
	for (int i = 1; i <= 5; i++) {
		p.t = i;
		p.wss_pages = (uint64_t)i * 100;
		p.estimator_cpu_ns = 7;
		wss_series_push(&s, &p);
	}
	CHECK_EQ(wss_series_len(&s), 3);
	CHECK(wss_series_get(&s, 0)->t == 3);
	CHECK(wss_series_get(&s, 2)->t == 5);
	CHECK(wss_series_get(&s, 3) == NULL);
	f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	CHECK_EQ(wss_series_write_csv(&s, f), 0);
	fclose(f);
	CHECK(!strncmp(buf, header, strlen(header)));
	CHECK(strstr(buf, "\n3.000,300,0,0,0,0,7,") != NULL);
	CHECK(strstr(buf, "\n5.000,500,") != NULL);
	CHECK(strstr(buf, "\n2.000,") == NULL);
	free(buf);
	wss_series_destroy(&s);
}

TEST(wss_heatmap_lists_coldest_regions_first)
{
	struct wss_heatmap h;
	struct wss_cold_region out[8];
	uint64_t bitmap[64] = { 0 };	/* 4096 pages = 8 regions */

	CHECK_EQ(wss_heatmap_init(&h, 16ull << 20), 0);
	CHECK_EQ(h.nregions, 8);
	/* regions 0..7 seen at times 7,6,...,0 except region 5: never */
	for (unsigned r = 0; r < 8; r++)
		if (r != 5)
			wss_heatmap_mark_page(&h, r * WSS_REGION_PAGES + 3, 7.0 - r);
	CHECK_EQ(wss_heatmap_coldest(&h, 10.0, out, 3), 3);
	CHECK_EQ(out[0].index, 5);		/* never seen */
	CHECK(out[0].idle_seconds > 10);
	CHECK_EQ(out[1].index, 7);		/* seen at 0 */
	CHECK(near(out[1].idle_seconds, 10, 1e-9));
	CHECK_EQ(out[2].index, 6);
	/* a written page makes its region hot */
	bitmap[(7 * WSS_REGION_PAGES + 100) / 64] |= 1ull << ((7 * WSS_REGION_PAGES + 100) % 64);
	wss_heatmap_mark_bitmap(&h, bitmap, 4096, 10.0);
	CHECK_EQ(wss_heatmap_coldest(&h, 10.0, out, 8), 8);
	CHECK_EQ(out[0].index, 5);
	CHECK_EQ(out[1].index, 6);
	CHECK_EQ(out[7].index, 7);
	CHECK(out[7].idle_seconds == 0);
	wss_heatmap_destroy(&h);
}
