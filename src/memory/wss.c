// SPDX-License-Identifier: MIT
#include "memory/wss.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void wss_wilson(uint64_t k, uint64_t n, uint64_t N, double z, double *lo,
		double *hi)
{
	double p, neff, z2, denom, centre, half;

	if (n == 0 || k > n) {
		*lo = 0;
		*hi = 1;
		return;
	}
	p = (double)k / (double)n;
	if (N && n >= N) {
		/* the whole population: no sampling error */
		*lo = *hi = p;
		return;
	}
	/* finite population correction folded into an effective sample
	 * size: Var(p) = p(1-p)/n * (N-n)/(N-1) */
	neff = (double)n;
	if (N > 1)
		neff = (double)n * (double)(N - 1) / (double)(N - n);
	z2 = z * z;
	denom = 1 + z2 / neff;
	centre = (p + z2 / (2 * neff)) / denom;
	half = z / denom * sqrt(p * (1 - p) / neff + z2 / (4 * neff * neff));
	/* the bounds are exactly 0 and 1 at k = 0 and k = n; do not let
	 * rounding say otherwise */
	*lo = k == 0 || centre - half < 0 ? 0 : centre - half;
	*hi = k == n || centre + half > 1 ? 1 : centre + half;
}

struct wss_estimate wss_estimate(uint64_t written, uint64_t touched_unwritten,
				 uint64_t sampled, uint64_t population, double z)
{
	struct wss_estimate e = { .pages = (double)written };
	double lo, hi, p;

	if (!sampled || !population)
		return e;
	p = (double)touched_unwritten / (double)sampled;
	wss_wilson(touched_unwritten, sampled, population, z, &lo, &hi);
	e.pages += p * (double)population;
	/* Wilson is asymmetric around p; report the wider side */
	e.error_pages = (hi - p > p - lo ? hi - p : p - lo) * (double)population;
	return e;
}

uint64_t wss_stall_ceiling(uint64_t ceiling, uint64_t armed,
			   uint64_t stall_ns, uint64_t budget_ns,
			   uint64_t min, uint64_t max)
{
	if (armed && stall_ns > budget_ns)
		ceiling = (uint64_t)((double)armed * (double)budget_ns /
				     (double)stall_ns);
	else if (stall_ns < budget_ns / 2 && ceiling < max)
		ceiling += ceiling / 4 + 1;
	if (ceiling < min)
		ceiling = min;
	return ceiling > max ? max : ceiling;
}

uint64_t wss_next_sample_size(double p, double est_frac, uint64_t N,
			      double rel_error, double z, uint64_t current,
			      uint64_t min, uint64_t max)
{
	/* p = 0 has no variance to go on: plan for 1% */
	double pp = p < 0.01 ? 0.01 : p > 0.99 ? 0.99 : p;
	double h = rel_error * (est_frac > WSS_SIZE_FLOOR ? est_frac :
				WSS_SIZE_FLOOR);
	double need;
	uint64_t n, floor_n;

	if (h <= 0)
		need = (double)max;
	else
		/* normal approximation n0 = z^2 p(1-p) / h^2, then the finite
		 * population correction n = n0 / (1 + (n0 - 1) / N) */
		need = z * z * pp * (1 - pp) / (h * h);
	if (N && need > 1)
		need = need / (1 + (need - 1) / (double)N);
	n = need > 1e15 ? (uint64_t)1e15 : (uint64_t)ceil(need);
	/* the normal approximation is optimistic near p = 0 or 1, where the
	 * reported (Wilson) interval is wider: grow until Wilson agrees */
	for (int i = 0; i < 64 && n < max && (!N || n < N); i++) {
		double lo, hi;

		wss_wilson((uint64_t)(pp * (double)n + 0.5), n, N, z, &lo, &hi);
		if ((hi - lo) / 2 <= h)
			break;
		n += n / 8 + 1;
	}
	floor_n = current - current / 4;
	if (n < floor_n)
		n = floor_n;
	if (n < min)
		n = min;
	if (n > max)
		n = max;
	if (N && n > N)
		n = N;
	return n;
}

double wss_smooth(double prev, double raw, double up, double down)
{
	double w = raw > prev ? up : down;

	return prev + w * (raw - prev);
}

int wss_series_init(struct wss_series *s, uint64_t capacity)
{
	memset(s, 0, sizeof(*s));
	if (!capacity)
		return -EINVAL;
	s->points = calloc(capacity, sizeof(*s->points));
	if (!s->points)
		return -ENOMEM;
	s->capacity = capacity;
	return 0;
}

void wss_series_destroy(struct wss_series *s)
{
	free(s->points);
	s->points = NULL;
	s->capacity = s->count = 0;
}

void wss_series_push(struct wss_series *s, const struct wss_point *p)
{
	s->points[s->count % s->capacity] = *p;
	s->count++;
}

uint64_t wss_series_len(const struct wss_series *s)
{
	return s->count < s->capacity ? s->count : s->capacity;
}

const struct wss_point *wss_series_get(const struct wss_series *s, uint64_t i)
{
	uint64_t first = s->count - wss_series_len(s);

	if (i >= wss_series_len(s))
		return NULL;
	return &s->points[(first + i) % s->capacity];
}

int wss_series_write_csv(const struct wss_series *s, FILE *out)
{
	fprintf(out, "time,wss_pages,error_pages,written_pages,sampled,"
		"touched_sampled,estimator_cpu_ns,smoothed_pages,population,"
		"arm_stall_us\n");
	for (uint64_t i = 0; i < wss_series_len(s); i++) {
		const struct wss_point *p = wss_series_get(s, i);

		fprintf(out, "%.3f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n",
			p->t, (unsigned long long)p->wss_pages,
			(unsigned long long)p->error_pages,
			(unsigned long long)p->written_pages,
			(unsigned long long)p->sampled,
			(unsigned long long)p->touched_sampled,
			(unsigned long long)p->estimator_cpu_ns,
			(unsigned long long)p->smoothed_pages,
			(unsigned long long)p->population,
			(unsigned long long)(p->arm_stall_ns / 1000));
	}
	return fflush(out) || ferror(out) ? -EIO : 0;
}

int wss_heatmap_init(struct wss_heatmap *h, uint64_t ram_bytes)
{
	h->nregions = (ram_bytes + (1ull << WSS_REGION_SHIFT) - 1) >>
		      WSS_REGION_SHIFT;
	h->last_seen = malloc(h->nregions * sizeof(*h->last_seen));
	if (!h->last_seen) {
		h->nregions = 0;
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < h->nregions; i++)
		h->last_seen[i] = -1;
	return 0;
}

void wss_heatmap_destroy(struct wss_heatmap *h)
{
	free(h->last_seen);
	h->last_seen = NULL;
	h->nregions = 0;
}

void wss_heatmap_mark_page(struct wss_heatmap *h, uint64_t page, double now)
{
	uint64_t r = page / WSS_REGION_PAGES;

	if (r < h->nregions)
		h->last_seen[r] = now;
}

void wss_heatmap_mark_bitmap(struct wss_heatmap *h, const uint64_t *bitmap,
			     uint64_t npages, double now)
{
	/* a region is 512 pages = 8 words: test words, not bits */
	uint64_t words = (npages + 63) / 64;

	for (uint64_t w = 0; w < words; w++)
		if (bitmap[w])
			wss_heatmap_mark_page(h, w * 64, now);
}

static double idle_of(const struct wss_heatmap *h, uint64_t r, double now)
{
	return h->last_seen[r] < 0 ? now + 1 : now - h->last_seen[r];
}

uint64_t wss_heatmap_coldest(const struct wss_heatmap *h, double now,
			     struct wss_cold_region *out, uint64_t n)
{
	uint64_t held = 0;

	if (n > h->nregions)
		n = h->nregions;
	/* insertion into a sorted top-n: n is small (eviction batches) */
	for (uint64_t r = 0; r < h->nregions && n; r++) {
		double idle = idle_of(h, r, now);
		uint64_t pos = held;

		if (held == n && idle <= out[n - 1].idle_seconds)
			continue;
		while (pos > 0 && out[pos - 1].idle_seconds < idle)
			pos--;
		if (held < n)
			held++;
		memmove(&out[pos + 1], &out[pos],
			(held - 1 - pos) * sizeof(*out));
		out[pos] = (struct wss_cold_region){ r, idle };
	}
	return held;
}
