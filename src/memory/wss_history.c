// SPDX-License-Identifier: MIT
/*
 * The working-set estimator's history in a snapshot or migration stream
 * (wss.h).  Layout, after the u32 layout version: u64 RAM pages, u64
 * map regions, u64 the smoothed estimate's bits (an IEEE double), u64
 * next sample size, u64 its ceiling, u64 points ever pushed, u64 points
 * held, each point (u64 time bits, then its ten u64 counts), then each
 * region's last-seen time (u64 bits; -1: never).  Every value is from
 * an untrusted stream: it is checked in full before any is applied.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memory/wss.h"

#define WSS_HISTORY_VERSION 1
#define POINT_U64S 11

static uint64_t bits_of(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double double_of(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static void put_point(struct state_buf *out, const struct wss_point *p)
{
	state_put_u64(out, bits_of(p->t));
	state_put_u64(out, p->wss_pages);
	state_put_u64(out, p->error_pages);
	state_put_u64(out, p->written_pages);
	state_put_u64(out, p->sampled);
	state_put_u64(out, p->touched_sampled);
	state_put_u64(out, p->estimator_cpu_ns);
	state_put_u64(out, p->smoothed_pages);
	state_put_u64(out, p->population);
	state_put_u64(out, p->arm_stall_ns);
	state_put_u64(out, p->paged_in_pages);
}

static void get_point(struct state_reader *in, struct wss_point *p)
{
	uint64_t v[POINT_U64S] = { 0 };

	for (unsigned i = 0; i < POINT_U64S; i++)
		(void)state_get_u64(in, &v[i]);	/* state_check_end() tells */
	*p = (struct wss_point){
		.t = double_of(v[0]), .wss_pages = v[1], .error_pages = v[2],
		.written_pages = v[3], .sampled = v[4],
		.touched_sampled = v[5], .estimator_cpu_ns = v[6],
		.smoothed_pages = v[7], .population = v[8],
		.arm_stall_ns = v[9], .paged_in_pages = v[10],
	};
}

double wss_history_last_t(const struct wss_series *s)
{
	uint64_t n = wss_series_len(s);

	return n ? wss_series_get(s, n - 1)->t : 0;
}

void wss_history_save(const struct wss_history *h, struct state_buf *out)
{
	uint64_t held = wss_series_len(h->series);

	state_put_u32(out, WSS_HISTORY_VERSION);
	state_put_u64(out, h->npages);
	state_put_u64(out, h->heat->nregions);
	state_put_u64(out, bits_of(h->smoothed));
	state_put_u64(out, h->sample_n);
	state_put_u64(out, h->sample_ceiling);
	state_put_u64(out, h->series->count);
	state_put_u64(out, held);
	for (uint64_t i = 0; i < held; i++)
		put_point(out, wss_series_get(h->series, i));
	for (uint64_t r = 0; r < h->heat->nregions; r++)
		state_put_u64(out, bits_of(h->heat->last_seen[r]));
}

/* The points: finite times, from 0 on, in order. */
static int check_points(const struct wss_point *p, uint64_t n,
			struct errmsg *err)
{
	for (uint64_t i = 0; i < n; i++)
		if (!isfinite(p[i].t) || p[i].t < 0 ||
		    (i && p[i].t < p[i - 1].t))
			return errmsg_set(err, -EBADMSG, "wss: point %llu at "
					  "time %g, not after the one before",
					  (unsigned long long)i, p[i].t);
	return 0;
}

static int check_regions(const double *seen, uint64_t n, double last,
			 struct errmsg *err)
{
	for (uint64_t r = 0; r < n; r++)
		if (seen[r] != -1 && (!isfinite(seen[r]) || seen[r] < 0 ||
				      seen[r] > last))
			return errmsg_set(err, -EBADMSG, "wss: region %llu last "
					  "seen at %g, not -1 or 0..%g",
					  (unsigned long long)r, seen[r], last);
	return 0;
}

/* The scalars before the points: what must match this VM. */
static int get_head(struct wss_history *h, struct state_reader *in,
		    uint64_t sample_min, uint64_t sample_max,
		    struct wss_history *got, uint64_t *count, uint64_t *held,
		    struct errmsg *err)
{
	uint64_t regions = 0, smoothed = 0;
	int ret = state_check_version(in, "wss", WSS_HISTORY_VERSION, err);

	if (ret)
		return ret;
	(void)(state_get_u64(in, &got->npages) ||
	       state_get_u64(in, &regions) || state_get_u64(in, &smoothed) ||
	       state_get_u64(in, &got->sample_n) ||
	       state_get_u64(in, &got->sample_ceiling) ||
	       state_get_u64(in, count) || state_get_u64(in, held));
	if (state_reader_error(in))
		return errmsg_set(err, -EBADMSG, "wss: the state ends early");
	got->smoothed = double_of(smoothed);
	if (got->npages != h->npages || regions != h->heat->nregions)
		return errmsg_set(err, -EBADMSG, "wss: %llu pages in %llu "
				  "regions, not this VM's %llu in %llu",
				  (unsigned long long)got->npages,
				  (unsigned long long)regions,
				  (unsigned long long)h->npages,
				  (unsigned long long)h->heat->nregions);
	/* as many as this VM's series would hold of them */
	if (*held != (*count < h->series->capacity ? *count :
		      h->series->capacity) ||
	    *held > state_reader_left(in) / (POINT_U64S * 8))
		return errmsg_set(err, -EBADMSG, "wss: %llu points held of "
				  "%llu, not what the %llu this VM keeps hold, "
				  "or over the state's length",
				  (unsigned long long)*held,
				  (unsigned long long)*count,
				  (unsigned long long)h->series->capacity);
	if (!isfinite(got->smoothed) || got->smoothed < 0 ||
	    got->smoothed > (double)h->npages ||
	    got->sample_n < sample_min || got->sample_n > sample_max ||
	    got->sample_ceiling < sample_min ||
	    got->sample_ceiling > sample_max)
		return errmsg_set(err, -EBADMSG, "wss: estimate %g pages, "
				  "sample %llu under a ceiling of %llu: out of "
				  "range", got->smoothed,
				  (unsigned long long)got->sample_n,
				  (unsigned long long)got->sample_ceiling);
	return 0;
}

int wss_history_load(struct wss_history *h, struct state_reader *in,
		     uint64_t sample_min, uint64_t sample_max,
		     struct errmsg *err)
{
	struct wss_history got = { 0 };
	uint64_t count = 0, held = 0, n = h->heat->nregions;
	struct wss_point *points;
	double *seen;
	int ret;

	ret = get_head(h, in, sample_min, sample_max, &got, &count, &held,
		       err);
	if (ret)
		return ret;
	points = calloc(held ? held : 1, sizeof(*points));
	seen = calloc(n ? n : 1, sizeof(*seen));
	if (!points || !seen) {
		free(points);
		free(seen);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < held; i++)
		get_point(in, &points[i]);
	for (uint64_t r = 0; r < n; r++) {
		uint64_t v = 0;

		(void)state_get_u64(in, &v);
		seen[r] = double_of(v);
	}
	ret = state_check_end(in, "wss", err);
	if (!ret)
		ret = check_points(points, held, err);
	if (!ret)
		ret = check_regions(seen, n, held ? points[held - 1].t : 0, err);
	if (!ret) {
		/* the held points end the series at their place in it */
		h->series->count = count - held;
		for (uint64_t i = 0; i < held; i++)
			wss_series_push(h->series, &points[i]);
		memcpy(h->heat->last_seen, seen, n * sizeof(*seen));
		h->smoothed = got.smoothed;
		h->sample_n = got.sample_n;
		h->sample_ceiling = got.sample_ceiling;
	}
	free(points);
	free(seen);
	return ret;
}
