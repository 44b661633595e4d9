// SPDX-License-Identifier: MIT
/*
 * The working-set estimator's history in a snapshot or migration stream
 * (memory/wss.h, wss_history.c): it makes the round trip whole, wrapped
 * series and cold map included, and a stream that does not fit this VM
 * or is damaged is refused with the reason, leaving the history as it
 * was.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "harness.h"
#include "memory/wss.h"

#define PAGES (64ull << 8)	/* 64 MiB: 32 regions */
#define KEEP 8

struct hist {
	struct wss_series series;
	struct wss_heatmap heat;
	struct wss_history h;
};

static void hist_init(struct hist *x, uint64_t keep)
{
	CHECK_EQ(wss_series_init(&x->series, keep), 0);
	CHECK_EQ(wss_heatmap_init(&x->heat, PAGES * PAGE_SIZE), 0);
	x->h = (struct wss_history){ .series = &x->series, .heat = &x->heat,
				     .npages = PAGES, .sample_n = 100,
				     .sample_ceiling = 4096 };
}

static void hist_release(struct hist *x)
{
	wss_series_destroy(&x->series);
	wss_heatmap_destroy(&x->heat);
}

/* @n points a second apart (more than KEEP: the ring wrapped), regions
 * 0..n-1 seen at their point's time. */
static void hist_fill(struct hist *x, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct wss_point p = { .t = 1.0 + i, .wss_pages = 1000 + i,
				       .error_pages = i, .written_pages = 7 * i,
				       .smoothed_pages = 900 + i,
				       .arm_stall_ns = 1234, .paged_in_pages = 3 };

		wss_series_push(&x->series, &p);
		wss_heatmap_mark_page(&x->heat, (uint64_t)i * WSS_REGION_PAGES,
				      p.t);
	}
	x->h.smoothed = 912.5;
	x->h.sample_n = 333;
	x->h.sample_ceiling = 2048;
}

static void saved(struct hist *x, struct state_buf *b)
{
	state_buf_init(b);
	wss_history_save(&x->h, b);
	CHECK_EQ(state_buf_error(b), 0);
}

static int load(struct hist *x, const struct state_buf *b, struct errmsg *err)
{
	struct state_reader in;

	state_reader_init(&in, b->data, b->len);
	return wss_history_load(&x->h, &in, 100, 4096, err);
}

TEST(wss_history_round_trip_keeps_series_map_and_figures)
{
	struct hist a, b;
	struct errmsg err = { "" };
	struct state_buf buf;

	hist_init(&a, KEEP);
	hist_init(&b, KEEP);
	hist_fill(&a, 12);
	saved(&a, &buf);
	if (load(&b, &buf, &err))
		harness_fail(__FILE__, __LINE__, "load: %s", err.text);
	CHECK_EQ(b.series.count, 12);
	CHECK_EQ(wss_series_len(&b.series), KEEP);
	for (uint64_t i = 0; i < KEEP; i++)
		CHECK(!memcmp(wss_series_get(&a.series, i),
			      wss_series_get(&b.series, i),
			      sizeof(struct wss_point)));
	CHECK(!memcmp(a.heat.last_seen, b.heat.last_seen,
		      a.heat.nregions * sizeof(double)));
	CHECK(b.h.smoothed == 912.5 && b.h.sample_n == 333 &&
	      b.h.sample_ceiling == 2048);
	CHECK(wss_history_last_t(&b.series) == 12.0);
	/* new points go on after the restored ones */
	wss_series_push(&b.series, &(struct wss_point){ .t = 13.0 });
	CHECK(wss_series_get(&b.series, KEEP - 1)->t == 13.0 &&
	      wss_series_get(&b.series, 0)->t == 6.0);
	state_buf_release(&buf);
	hist_release(&a);
	hist_release(&b);
}

/* Rewrites the u64 at @at of a saved history. */
static void poke(struct state_buf *b, size_t at, uint64_t v)
{
	memcpy(b->data + at, &v, 8);
}

static uint64_t bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, 8);
	return u;
}

TEST(wss_history_refuses_what_does_not_fit_and_keeps_its_own)
{
	/* offsets: version 0, pages 4, regions 12, smoothed 20, sample 28,
	 * ceiling 36, count 44, held 52, points from 60 (88 bytes each) */
	static const struct {
		size_t at;
		uint64_t v;
		const char *why;
	} bad[] = {
		{ 4, PAGES * 2, "pages in 32 regions, not this VM's" },
		{ 44, 3, "points held of 3" },
		{ 52, 7, "7 points held" },
		{ 20, 0x7ff8000000000000ull, "out of range" },	/* NaN */
		{ 28, 99, "sample 99" },
		{ 36, 5000, "ceiling of 5000" },
		{ 60 + 88, 0, "point 1 at time 0" },	/* before point 0 */
		{ 60 + 3 * 88, 0x7ff0000000000000ull, "point 3 at time inf" },
		{ 60 + 8 * 88 + 8, 0, "region 1 last seen at 0" },	/* ok... */
	};
	struct hist a, b;
	struct state_buf buf;

	hist_init(&a, KEEP);
	hist_init(&b, KEEP);
	hist_fill(&a, 12);
	hist_fill(&b, 2);	/* what b holds must survive every refusal */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct errmsg err = { "" };
		int ret;

		saved(&a, &buf);
		poke(&buf, bad[i].at, bad[i].v);
		ret = load(&b, &buf, &err);
		if (i == 8) {	/* 0 is a fine time for a region: accepted */
			CHECK_EQ(ret, 0);
			state_buf_release(&buf);
			continue;
		}
		CHECK_EQ(ret, -EBADMSG);
		if (!strstr(err.text, bad[i].why))
			harness_fail(__FILE__, __LINE__, "case %zu: '%s' lacks "
				     "'%s'", i, err.text, bad[i].why);
		CHECK_EQ(b.series.count, 2);
		CHECK(b.h.sample_n == 333 && b.heat.last_seen[5] == -1);
		state_buf_release(&buf);
	}
	hist_release(&b);
	hist_init(&b, KEEP);
	{
		struct errmsg err = { "" };

		/* a region seen after the last point */
		saved(&a, &buf);
		poke(&buf, 60 + 8 * 88 + 2 * 8, bits(99.0));
		CHECK_EQ(load(&b, &buf, &err), -EBADMSG);
		CHECK(strstr(err.text, "region 2 last seen at 99") != NULL);
		/* cut short, one byte over, another layout version */
		poke(&buf, 60 + 8 * 88 + 2 * 8, bits(3.0));
		buf.len--;
		CHECK_EQ(load(&b, &buf, &err), -EBADMSG);
		buf.len += 2;
		CHECK_EQ(load(&b, &buf, &err), -EBADMSG);
		buf.len--;
		buf.data[0] = 2;
		CHECK_EQ(load(&b, &buf, &err), -EPROTONOSUPPORT);
		CHECK_EQ(b.series.count, 0);
		state_buf_release(&buf);
	}
	/* a VM that keeps fewer points than the source held */
	{
		struct hist c;
		struct errmsg err = { "" };

		hist_init(&c, KEEP / 2);
		saved(&a, &buf);
		CHECK_EQ(load(&c, &buf, &err), -EBADMSG);
		CHECK(strstr(err.text, "8 points held of 12") != NULL);
		state_buf_release(&buf);
		hist_release(&c);
	}
	hist_release(&a);
	hist_release(&b);
}
