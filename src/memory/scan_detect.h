/* SPDX-License-Identifier: MIT */
/*
 * Scan detection for the pager: finds sequential and cyclic access in
 * the stream of page faults (and the working-set sampler's touches), and
 * says what that means for eviction and prefetch.
 *
 * Why: a loop over more pages than stay resident defeats CLOCK and LRU
 * alike: each page is evicted just before the loop comes back to it, so
 * every pass faults in every page.  Evicting the page the loop will need
 * last (the one it used most recently: MRU) keeps a stable part of the
 * loop resident and faults only the rest, once per pass.
 *
 * Streams: a small table of them (SCAN_STREAMS), each a direction (+1,
 * -1), a stride in pages (1 .. SCAN_MAX_STRIDE), the last fault (at),
 * how far its fetches reached (reach), and its extent [lo, hi].  A fault
 * continues a stream when it lies ahead of the stream's reach, on its
 * stride, within SCAN_REGION_PAGES (2 MiB, the sampler's region) times
 * the stride.  A fault that continues none is remembered; when the last
 * SCAN_HISTORY such faults agree on a delta (the majority trend of Leap,
 * ATC 2020: the delta that more than half of them share, measured from
 * where the previous fault's fetch ended) a new stream starts with that
 * delta's sign and size.  A fault that jumps back into a stream's extent,
 * behind it, after the stream ran SCAN_MIN_HITS faults is a new pass of
 * the same scan: the stream is a loop from then on.
 *
 * Answers: the prefetch step of a fault (its stream's direction times
 * stride: backward scans prefetch backward), and the pages to evict
 * first: for each live stream, most recent first, the pages behind its
 * last fault, nearest first, on its stride, down to its extent's start
 * (scan_detect_victims()).  Pages ahead of the last fault (the window
 * being read) are never offered.  A stream is live while one of the last
 * SCAN_LIVE_FAULTS faults, or a sampler touch in its extent since, was
 * its own.
 *
 * Pure mechanism: no locks, no threads, no I/O; the caller serialises
 * (the pager holds its scan lock around every call).
 */
#ifndef RACKVM_MEMORY_SCAN_DETECT_H
#define RACKVM_MEMORY_SCAN_DETECT_H

#include <stdbool.h>
#include <stdint.h>

#define SCAN_REGION_PAGES 512	/* 2 MiB */
#define SCAN_STREAMS 8
#define SCAN_HISTORY 8
#define SCAN_MAX_STRIDE 64
#define SCAN_MIN_HITS 4
#define SCAN_LIVE_FAULTS 1024

struct scan_stream {
	bool used;
	int dir;		/* +1 or -1 */
	uint64_t stride;	/* pages */
	uint64_t at;		/* the last fault */
	uint64_t reach;		/* the furthest page its fetches covered */
	uint64_t lo, hi;	/* extent, all passes */
	uint64_t hits;		/* faults that continued it */
	uint64_t run;		/* of those, since its start or last pass */
	uint64_t passes;	/* jumps back to an earlier part: a loop */
	uint64_t last_seq;	/* fault count when it was last used */
};

struct scan_detect {
	uint64_t npages;
	uint64_t seq;		/* faults seen */
	struct scan_stream s[SCAN_STREAMS];
	int64_t delta[SCAN_HISTORY];	/* unmatched faults' deltas */
	unsigned ndelta, delta_pos;
	bool have_prev;
	uint64_t prev_lo, prev_hi;	/* what the last fault's fetch covered */
};

/* What a region or a fault belongs to. */
struct scan_info {
	int stream;		/* -1: none */
	bool loop;
	int dir;		/* 0 if none */
	uint64_t stride;
	int64_t step;		/* prefetch step: dir * stride, 0 if none */
	uint64_t lo, hi;	/* the stream's extent */
};

/* A run of victims: pages first, first + step, ... (count of them). */
struct scan_victims {
	uint64_t first;
	int64_t step;
	uint64_t count;
};

void scan_detect_init(struct scan_detect *d, uint64_t npages);

/* A fault on @page: which stream it belongs to now (@out, may be NULL).
 * Returns the stream's index or -1. */
int scan_detect_fault(struct scan_detect *d, uint64_t page,
		      struct scan_info *out);
/* The fault on @page (stream @stream, -1 for none) also fetched the
 * pages up to @last along its step (@last == @page: none). */
void scan_detect_fetched(struct scan_detect *d, int stream, uint64_t page,
			 uint64_t last);
/* The sampler saw @page touched: keeps the stream over it live. */
void scan_detect_touched(struct scan_detect *d, uint64_t page);

/* Region @region (SCAN_REGION_PAGES pages each) in a live stream? */
bool scan_detect_region(const struct scan_detect *d, uint64_t region,
			struct scan_info *out);

/* The pages to evict first, as up to @max runs, in order (see above);
 * returns how many. */
unsigned scan_detect_victims(const struct scan_detect *d,
			     struct scan_victims *out, unsigned max);

#endif
