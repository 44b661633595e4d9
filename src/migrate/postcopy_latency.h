/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram for post-copy's page requests: microseconds in
 * buckets of 1/8 of a power of two (12.5% wide), so p50 and p99 come
 * out within that of the truth in a fixed 3 KiB.  Not locked: its owner
 * serialises adds and reads.
 */
#ifndef RACKVM_MIGRATE_POSTCOPY_LATENCY_H
#define RACKVM_MIGRATE_POSTCOPY_LATENCY_H

#include <stdint.h>

#define LATENCY_BUCKETS (16 + 40 * 8)

struct latency_hist {
	uint64_t count;
	uint64_t bucket[LATENCY_BUCKETS];
};

void latency_add(struct latency_hist *h, uint64_t ns);
/* The @pct-th percentile (0..100) in milliseconds; 0 when empty. */
double latency_percentile_ms(const struct latency_hist *h, double pct);

#endif
