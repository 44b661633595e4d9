/* SPDX-License-Identifier: MIT */
/*
 * Working-set estimation: the maths (pure functions, unit-tested), the
 * bounded time series with its CSV export, and the hot/cold map.  No
 * threads, no KVM: memory/wss_monitor.h drives these once per interval.
 *
 * Estimate per interval (pages are 4 KiB guest RAM pages):
 *   W = pages written (exact, from the dirty log)
 *   a uniform sample of n of the N resident pages had its access revoked;
 *   k of them were touched in the interval and are not in W.
 *   WSS = |W| + N * k / n, error = N * (CI half-width of k/n)
 * i.e. W ∪ R, with the sample only estimating the part of R outside W.
 * The interval is Wilson's at 95%, with the finite population correction
 * (sampling without replacement: n == N gives an exact answer).
 */
#ifndef RACKVM_MEMORY_WSS_H
#define RACKVM_MEMORY_WSS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/errmsg.h"
#include "util/page.h"
#include "util/state_buf.h"

#define WSS_Z95 1.959963984540054

/* Wilson score interval for k successes in n draws without replacement
 * from N (N == 0: no correction).  n == 0 gives [0, 1]. */
void wss_wilson(uint64_t k, uint64_t n, uint64_t N, double z, double *lo,
		double *hi);

struct wss_estimate {
	double pages;		/* point estimate */
	double error_pages;	/* half-width of the confidence interval */
};

struct wss_estimate wss_estimate(uint64_t written, uint64_t touched_unwritten,
				 uint64_t sampled, uint64_t population, double z);

/* Sample size for the next interval.  @p is the sampled fraction found
 * referenced (outside W), @est_frac the whole estimate as a fraction of
 * the N resident pages.  Enough draws that the CI half-width is at most
 * @rel_error of the estimate, or of WSS_SIZE_FLOOR of N for small
 * estimates (an idle VM would otherwise ask for the whole population),
 * between @min and @max and at most N.  Grows at once; shrinks at most by
 * a quarter per interval, so one quiet interval does not throw away the
 * precision we had. */
#define WSS_SIZE_FLOOR 0.10
uint64_t wss_next_sample_size(double p, double est_frac, uint64_t N,
			      double rel_error, double z, uint64_t current,
			      uint64_t min, uint64_t max);

/* The most pages a sample may have so that the vCPUs' pause to revoke it
 * stays within @budget_ns, after an interval whose @armed pages took
 * @stall_ns: lowered in proportion when over budget, raised by a quarter
 * (up to @max) when under half of it, never below @min.  The pause grows
 * with the pages revoked (each a TLB shootdown in the guest's page
 * tables): ~2 us a page on hardware, ~1 ms under TCG, where an unbounded
 * sample paused the guest for most of every interval and it made almost
 * no progress.  Precision gives way to the guest. */
uint64_t wss_stall_ceiling(uint64_t ceiling, uint64_t armed,
			   uint64_t stall_ns, uint64_t budget_ns,
			   uint64_t min, uint64_t max);

/* Asymmetric exponential smoothing: weight @up on a rising value, @down
 * on a falling one (fast up, slow down: the idle-memory-tax style, a VM
 * gets memory quickly and gives it back only when idle for a while). */
double wss_smooth(double prev, double raw, double up, double down);

#define WSS_SMOOTH_UP 0.7
#define WSS_SMOOTH_DOWN 0.1

/* One interval's record. */
struct wss_point {
	double t;			/* seconds since tracking started */
	uint64_t wss_pages;
	uint64_t error_pages;
	uint64_t written_pages;
	uint64_t sampled;
	uint64_t touched_sampled;
	uint64_t estimator_cpu_ns;	/* sampler + fault thread CPU */
	uint64_t smoothed_pages;
	uint64_t population;		/* resident pages sampled from */
	uint64_t arm_stall_ns;		/* vCPUs paused to revoke the sample */
	uint64_t paged_in_pages;	/* referenced, not written: brought in
					 * by the pager (wss_config) */
};

/* A ring buffer of the last @capacity points. */
struct wss_series {
	struct wss_point *points;
	uint64_t capacity;
	uint64_t count;		/* ever pushed */
};

int wss_series_init(struct wss_series *s, uint64_t capacity);
void wss_series_destroy(struct wss_series *s);
void wss_series_push(struct wss_series *s, const struct wss_point *p);
/* Points held (min(count, capacity)); index 0 is the oldest held. */
uint64_t wss_series_len(const struct wss_series *s);
const struct wss_point *wss_series_get(const struct wss_series *s, uint64_t i);
/* Header line then one line per held point; -errno on a write error. */
int wss_series_write_csv(const struct wss_series *s, FILE *out);

/* Hot/cold map: per 2 MiB region of guest RAM (memfd order), the last
 * time (seconds) a page in it was seen written or referenced; regions
 * never seen have time -1 (coldest).  Sampling sees only a sample of
 * the references, so "not seen" means "not observed", not "unused". */
#define WSS_REGION_SHIFT 21
#define WSS_REGION_PAGES (1u << (WSS_REGION_SHIFT - PAGE_SHIFT))

struct wss_heatmap {
	double *last_seen;
	uint64_t nregions;
};

struct wss_cold_region {
	uint64_t index;		/* region number: memfd offset >> 21 */
	double idle_seconds;	/* now - last seen; now + 1 if never seen */
};

int wss_heatmap_init(struct wss_heatmap *h, uint64_t ram_bytes);
void wss_heatmap_destroy(struct wss_heatmap *h);
void wss_heatmap_mark_page(struct wss_heatmap *h, uint64_t page, double now);
/* Marks the region of every page set in @bitmap (@npages bits). */
void wss_heatmap_mark_bitmap(struct wss_heatmap *h, const uint64_t *bitmap,
			     uint64_t npages, double now);
/* Fills up to @n coldest regions, coldest first (ties: lower index
 * first); returns how many. */
/*
 * The estimator's history as a snapshot or a migration carries it
 * (wss_history.c): the series' held points, how many were ever pushed,
 * the hot/cold map and the monitor's own figures, so that a VM that
 * moves goes on with its working set known instead of learning it anew
 * (and the pager's cold regions with it).  Times stay in the source's
 * base: the destination's monitor goes on from the last point's.
 */
struct wss_history {
	struct wss_series *series;
	struct wss_heatmap *heat;
	uint64_t npages;		/* guest RAM pages */
	double smoothed;
	uint64_t sample_n, sample_ceiling;
};

void wss_history_save(const struct wss_history *h, struct state_buf *out);
/*
 * Into @h (a series and map already sized for this VM) from @in, an
 * untrusted stream: the RAM size and region count must be this VM's,
 * the points no more than the series holds, times finite, never
 * negative, in order and no map region seen after the last point,
 * sample sizes within [@sample_min, @sample_max].  Nothing changes on
 * an error (-EBADMSG, -EPROTONOSUPPORT, -ENOMEM), which @err explains.
 */
int wss_history_load(struct wss_history *h, struct state_reader *in,
		     uint64_t sample_min, uint64_t sample_max,
		     struct errmsg *err);
/* The last point's time, 0 without any. */
double wss_history_last_t(const struct wss_series *s);

uint64_t wss_heatmap_coldest(const struct wss_heatmap *h, double now,
			     struct wss_cold_region *out, uint64_t n);

#endif
