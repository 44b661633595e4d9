// SPDX-License-Identifier: MIT
/*
 * Latency histogram (postcopy_latency.h).
 */
#include "migrate/postcopy_latency.h"

/* Microseconds: 0..15 exactly, then 8 buckets per power of two. */
static unsigned bucket_of(uint64_t us)
{
	unsigned e;

	if (us < 16)
		return (unsigned)us;
	e = 63u - (unsigned)__builtin_clzll(us);	/* 4.. */
	if (e > 43)
		return LATENCY_BUCKETS - 1;
	return 16 + (e - 4) * 8 + (unsigned)((us >> (e - 3)) & 7);
}

/* The bucket's middle, in microseconds. */
static double bucket_mid(unsigned b)
{
	unsigned e, sub;
	double lo;

	if (b < 16)
		return b;
	e = (b - 16) / 8 + 4;
	sub = (b - 16) % 8;
	lo = (double)(1ull << e) * (1.0 + sub / 8.0);
	return lo + (double)(1ull << e) / 16.0;
}

void latency_add(struct latency_hist *h, uint64_t ns)
{
	h->bucket[bucket_of(ns / 1000)]++;
	h->count++;
}

double latency_percentile_ms(const struct latency_hist *h, double pct)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)((double)h->count * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < LATENCY_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= want)
			return bucket_mid(b) / 1000.0;
	}
	return bucket_mid(LATENCY_BUCKETS - 1) / 1000.0;
}
