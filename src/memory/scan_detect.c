// SPDX-License-Identifier: MIT
/*
 * Scan detection (scan_detect.h): a stream table fed with faults, a
 * short history of the deltas of faults no stream explained, and the
 * answers the pager asks for (prefetch step, victims first).
 */
#include "memory/scan_detect.h"

#include <string.h>

void scan_detect_init(struct scan_detect *d, uint64_t npages)
{
	memset(d, 0, sizeof(*d));
	d->npages = npages;
}

/* Signed distance from @from to @to along @dir. */
static int64_t ahead(int dir, uint64_t from, uint64_t to)
{
	return dir > 0 ? (int64_t)(to - from) : (int64_t)(from - to);
}

static bool live(const struct scan_detect *d, const struct scan_stream *s)
{
	return s->used && d->seq - s->last_seq <= SCAN_LIVE_FAULTS &&
	       s->run >= 2 && (s->passes || s->hits >= SCAN_MIN_HITS);
}

static void widen(struct scan_stream *s, uint64_t page)
{
	if (page < s->lo)
		s->lo = page;
	if (page > s->hi)
		s->hi = page;
}

static void info_of(const struct scan_detect *d, int i, struct scan_info *out)
{
	const struct scan_stream *s;

	if (!out)
		return;
	*out = (struct scan_info){ .stream = -1 };
	if (i < 0 || !d->s[i].used)
		return;
	s = &d->s[i];
	*out = (struct scan_info){
		.stream = i, .loop = s->passes > 0 && s->run >= 2,
		.dir = s->dir, .stride = s->stride,
		.step = s->dir * (int64_t)s->stride, .lo = s->lo, .hi = s->hi,
	};
}

/* The stream this fault continues: ahead of its last fault, on its
 * stride, not further past its reach than a region's worth of strides;
 * the nearest such.  -1 if none. */
static int continued(const struct scan_detect *d, uint64_t page)
{
	int best = -1;
	int64_t best_dist = 0;

	for (int i = 0; i < SCAN_STREAMS; i++) {
		const struct scan_stream *s = &d->s[i];
		int64_t from_at, past_reach;

		if (!s->used)
			continue;
		from_at = ahead(s->dir, s->at, page);
		past_reach = ahead(s->dir, s->reach, page);
		if (from_at <= 0 || from_at % (int64_t)s->stride ||
		    past_reach > (int64_t)(s->stride * SCAN_REGION_PAGES))
			continue;
		if (best < 0 || from_at < best_dist) {
			best = i;
			best_dist = from_at;
		}
	}
	return best;
}

/* A fault back inside an established stream's extent, behind its last
 * fault: the scan started another pass. */
static int wrapped(const struct scan_detect *d, uint64_t page)
{
	int best = -1;

	for (int i = 0; i < SCAN_STREAMS; i++) {
		const struct scan_stream *s = &d->s[i];

		if (!s->used || s->hits < SCAN_MIN_HITS || page < s->lo ||
		    page > s->hi || ahead(s->dir, s->at, page) >= 0)
			continue;
		if (best < 0 || s->last_seq > d->s[best].last_seq)
			best = i;
	}
	return best;
}

/* The delta that more than half of the newest @w deltas share, if any
 * (Boyer-Moore majority vote). */
static bool majority(const struct scan_detect *d, unsigned w, int64_t *out)
{
	int64_t cand = 0;
	unsigned votes = 0, count = 0;

	if (d->ndelta < w)
		return false;
	for (unsigned k = 0; k < w; k++) {
		int64_t v = d->delta[(d->delta_pos + SCAN_HISTORY - 1 - k) %
				     SCAN_HISTORY];

		if (!votes)
			cand = v;
		if (v == cand)
			votes++;
		else
			votes--;
	}
	for (unsigned k = 0; k < w; k++)
		count += d->delta[(d->delta_pos + SCAN_HISTORY - 1 - k) %
				  SCAN_HISTORY] == cand;
	*out = cand;
	return count * 2 > w;
}

static int new_stream(struct scan_detect *d, uint64_t page, int64_t delta)
{
	int slot = 0;

	for (int i = 0; i < SCAN_STREAMS; i++) {
		if (!d->s[i].used) {
			slot = i;
			break;
		}
		if (d->s[i].last_seq < d->s[slot].last_seq)
			slot = i;
	}
	d->s[slot] = (struct scan_stream){
		.used = true, .dir = delta > 0 ? 1 : -1,
		.stride = (uint64_t)(delta > 0 ? delta : -delta),
		.at = page, .reach = page, .lo = page, .hi = page,
		.hits = 2, .run = 2, .last_seq = d->seq,
	};
	d->ndelta = 0;
	return slot;
}

/* A fault no stream explains: its delta from where the last fetch
 * ended joins the history; a majority trend starts a stream. */
static int unexplained(struct scan_detect *d, uint64_t page)
{
	int64_t delta = 0;

	if (d->have_prev) {
		if (page > d->prev_hi)
			delta = (int64_t)(page - d->prev_hi);
		else if (page < d->prev_lo)
			delta = -(int64_t)(d->prev_lo - page);
	}
	d->delta[d->delta_pos] = delta;
	d->delta_pos = (d->delta_pos + 1) % SCAN_HISTORY;
	if (d->ndelta < SCAN_HISTORY)
		d->ndelta++;
	for (unsigned w = 2; w <= SCAN_HISTORY; w *= 2) {
		int64_t trend;

		if (majority(d, w, &trend) && trend &&
		    trend >= -SCAN_MAX_STRIDE && trend <= SCAN_MAX_STRIDE)
			return new_stream(d, page, trend);
	}
	return -1;
}

int scan_detect_fault(struct scan_detect *d, uint64_t page,
		      struct scan_info *out)
{
	int i;

	d->seq++;
	i = continued(d, page);
	if (i >= 0) {
		struct scan_stream *s = &d->s[i];

		s->at = page;
		if (ahead(s->dir, s->reach, page) > 0)
			s->reach = page;
		widen(s, page);
		s->hits++;
		s->run++;
		s->last_seq = d->seq;
	} else if ((i = wrapped(d, page)) >= 0) {
		struct scan_stream *s = &d->s[i];

		s->passes++;
		s->run = 1;
		s->at = s->reach = page;
		s->last_seq = d->seq;
	} else {
		i = unexplained(d, page);
	}
	d->have_prev = true;
	d->prev_lo = d->prev_hi = page;
	info_of(d, i, out);
	return i;
}

void scan_detect_fetched(struct scan_detect *d, int stream, uint64_t page,
			 uint64_t last)
{
	d->prev_lo = page < last ? page : last;
	d->prev_hi = page < last ? last : page;
	if (stream < 0 || stream >= SCAN_STREAMS || !d->s[stream].used)
		return;
	if (ahead(d->s[stream].dir, d->s[stream].reach, last) > 0)
		d->s[stream].reach = last;
	widen(&d->s[stream], last);
}

void scan_detect_touched(struct scan_detect *d, uint64_t page)
{
	for (int i = 0; i < SCAN_STREAMS; i++) {
		struct scan_stream *s = &d->s[i];

		if (s->used && page >= s->lo && page <= s->hi &&
		    d->seq - s->last_seq <= SCAN_LIVE_FAULTS)
			s->last_seq = d->seq;
	}
}

bool scan_detect_region(const struct scan_detect *d, uint64_t region,
			struct scan_info *out)
{
	uint64_t first = region * SCAN_REGION_PAGES;
	uint64_t last = first + SCAN_REGION_PAGES - 1;
	int best = -1;

	for (int i = 0; i < SCAN_STREAMS; i++) {
		const struct scan_stream *s = &d->s[i];

		if (!live(d, s) || s->hi < first || s->lo > last)
			continue;
		if (best < 0 || s->last_seq > d->s[best].last_seq)
			best = i;
	}
	info_of(d, best, out);
	return best >= 0;
}

unsigned scan_detect_victims(const struct scan_detect *d,
			     struct scan_victims *out, unsigned max)
{
	int order[SCAN_STREAMS];
	unsigned n = 0, k = 0;

	/* live streams, most recently used first (insertion sort) */
	for (int i = 0; i < SCAN_STREAMS; i++) {
		unsigned j = n;

		if (!live(d, &d->s[i]))
			continue;
		while (j && d->s[order[j - 1]].last_seq < d->s[i].last_seq) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
		n++;
	}
	for (unsigned j = 0; j < n && k < max; j++) {
		const struct scan_stream *s = &d->s[order[j]];
		uint64_t behind = s->dir > 0 ? s->at - s->lo : s->hi - s->at;
		uint64_t count = behind / s->stride;

		if (!count)
			continue;
		out[k++] = (struct scan_victims){
			.first = s->dir > 0 ? s->at - s->stride :
					      s->at + s->stride,
			.step = -s->dir * (int64_t)s->stride,
			.count = count,
		};
	}
	return k;
}
