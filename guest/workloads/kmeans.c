// SPDX-License-Identifier: MIT
/*
 * kmeans: Lloyd's k-means over a dataset generated in guest memory, the
 * far-memory benchmark's application workload: the dataset is read in
 * full on every iteration, so with less local memory than the dataset
 * every iteration pages it back in.
 *
 *   points=N  points in the dataset (default: as many as fill 64 MiB)
 *   dims=D    coordinates per point (default 16, at most 64)
 *   k=K       clusters (default 8, at most 64)
 *   iters=I   Lloyd iterations, all of them run (no convergence test, so
 *             the work is the same whatever the data; default 10)
 *   seed=S    the dataset's seed (default 1)
 *
 * Integers only: ring 3 may not touch SSE/x87 state (guest.mk builds
 * with -mgeneral-regs-only, and the exception path saves general
 * registers only).  Coordinates are Q16.16 fixed point in int32, squared
 * distances and sums are int64, means round to nearest.  The result is
 * thus bit-exact for given parameters, whatever runs the guest: the
 * checksum of the final centroids must be the same under rackvm (paged
 * or not) and under QEMU.
 *
 * The dataset: K hidden centres uniform in [-64, 64) per coordinate,
 * each point one of them (picked at random) plus noise, the sum of four
 * uniform draws in [-2, 2).  Every coordinate stays within +-72.0, i.e.
 * below 2^23 in Q16.16, so a squared difference is below 2^48 and a
 * point's squared distance (D <= 64 terms) below 2^54; a coordinate sum
 * over up to 2^40 points stays below 2^63.  The initial centroids are K
 * points evenly spaced through the dataset.
 *
 * The dataset is one contiguous run of free RAM (its guest-physical
 * address is reported); apart from it the workload uses its own few
 * pages (centroids and sums: under 64 KiB), so the dataset is what gets
 * paged.
 *
 * Output:
 *   result: kmeans dataset points=N dims=D bytes=B gpa=0x... seconds=S
 *     (generation: writing the dataset, first touches included)
 *   result: kmeans points=N dims=D k=K iters=I bytes=B seconds=S
 *           checksum=0x...
 *     (seconds: the Lloyd iterations only; checksum: FNV-1a over the
 *     final centroids' coordinates)
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define KMEANS_MAX_DIMS 64
#define KMEANS_MAX_K 64
#define KMEANS_MAX_ITERS 100000
#define DEFAULT_DATASET_BYTES (64ull << 20)
#define DEFAULT_DIMS 16
#define DEFAULT_K 8
#define DEFAULT_ITERS 10

#define FIX_ONE (1 << 16)		/* Q16.16 */
#define CENTRE_SPAN (128 * FIX_ONE)	/* centres in [-64, 64) */
#define NOISE_SPAN (4 * FIX_ONE)	/* each noise draw in [-2, 2) */
#define NOISE_DRAWS 4

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct kmeans {
	uint64_t points;
	unsigned int dims, k, iters;
	int32_t *data;			/* points * dims, identity mapped */
	int32_t centroid[KMEANS_MAX_K][KMEANS_MAX_DIMS];
	int64_t sum[KMEANS_MAX_K][KMEANS_MAX_DIMS];
	uint64_t count[KMEANS_MAX_K];
};

static struct kmeans km;

/* splitmix64: tiny, and every seed (0 included) gives a good stream. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) for n <= 2^32, by the high bits (no modulo bias
 * worth speaking of, no division). */
static uint32_t rng_below(uint64_t *state, uint32_t n)
{
	return (uint32_t)(((rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [-span / 2, span / 2). */
static int32_t rng_centred(uint64_t *state, uint32_t span)
{
	return (int32_t)rng_below(state, span) - (int32_t)(span / 2);
}

static int32_t *point(uint64_t p)
{
	return km.data + p * km.dims;
}

/* The first free range that holds @bytes. */
static void place_dataset(uint64_t bytes)
{
	static struct mem_range ranges[MAX_FREE_RANGES];
	unsigned int i, nr = free_ram_ranges(ranges);
	uint64_t largest = 0, size;

	for (i = 0; i < nr; i++) {
		size = ranges[i].end - ranges[i].start;
		if (size >= bytes) {
			km.data = (int32_t *)(uintptr_t)ranges[i].start;
			return;
		}
		if (size > largest)
			largest = size;
	}
	guest_assert_fail(__FILE__, __LINE__,
			  "kmeans: the dataset needs %llu KiB; the largest free range is %llu KiB (more --mem?)",
			  (unsigned long long)(bytes >> 10),
			  (unsigned long long)(largest >> 10));
}

static void generate(uint64_t seed)
{
	static int32_t centre[KMEANS_MAX_K][KMEANS_MAX_DIMS];
	uint64_t rng = seed, p;
	unsigned int c, d, j;
	int32_t *x, v;

	for (c = 0; c < km.k; c++)
		for (d = 0; d < km.dims; d++)
			centre[c][d] = rng_centred(&rng, CENTRE_SPAN);
	for (p = 0; p < km.points; p++) {
		x = point(p);
		c = rng_below(&rng, km.k);
		for (d = 0; d < km.dims; d++) {
			v = centre[c][d];
			for (j = 0; j < NOISE_DRAWS; j++)
				v += rng_centred(&rng, NOISE_SPAN);
			x[d] = v;
		}
	}
}

static void init_centroids(void)
{
	uint64_t stride = km.points / km.k;
	unsigned int c;

	for (c = 0; c < km.k; c++)
		memcpy(km.centroid[c], point(c * stride),
		       km.dims * sizeof(int32_t));
}

static uint64_t distance2(const int32_t *x, const int32_t *y,
			  unsigned int dims)
{
	uint64_t sum = 0;
	int64_t diff;
	unsigned int d;

	for (d = 0; d < dims; d++) {
		diff = (int64_t)x[d] - y[d];
		sum += (uint64_t)(diff * diff);
	}
	return sum;
}

static unsigned int nearest(const int32_t *x)
{
	uint64_t best_d = UINT64_MAX, dist;
	unsigned int c, best = 0;

	for (c = 0; c < km.k; c++) {
		dist = distance2(x, km.centroid[c], km.dims);
		if (dist < best_d) {
			best_d = dist;
			best = c;
		}
	}
	return best;
}

/* Rounds to nearest, halves away from zero: symmetric, so that mirrored
 * data gives mirrored centroids. */
static int32_t mean(int64_t sum, uint64_t n)
{
	if (sum >= 0)
		return (int32_t)(((uint64_t)sum + n / 2) / n);
	return -(int32_t)(((uint64_t)-sum + n / 2) / n);
}

/* One Lloyd step: assign every point to its nearest centroid, move each
 * centroid to the mean of its points.  A centroid that lost all its
 * points stays where it was. */
static void lloyd_step(void)
{
	unsigned int c, d;
	const int32_t *x;
	uint64_t p;

	memset(km.sum, 0, sizeof(km.sum));
	memset(km.count, 0, sizeof(km.count));
	for (p = 0; p < km.points; p++) {
		x = point(p);
		c = nearest(x);
		km.count[c]++;
		for (d = 0; d < km.dims; d++)
			km.sum[c][d] += x[d];
	}
	for (c = 0; c < km.k; c++) {
		if (!km.count[c])
			continue;
		for (d = 0; d < km.dims; d++)
			km.centroid[c][d] = mean(km.sum[c][d], km.count[c]);
	}
}

static uint64_t centroid_checksum(void)
{
	uint64_t h = FNV_OFFSET;
	unsigned int c, d, b;
	uint32_t v;

	for (c = 0; c < km.k; c++) {
		for (d = 0; d < km.dims; d++) {
			v = (uint32_t)km.centroid[c][d];
			for (b = 0; b < 4; b++) {
				h ^= (v >> (8 * b)) & 0xff;
				h *= FNV_PRIME;
			}
		}
	}
	return h;
}

static unsigned int param_in(const struct cmdline *c, const char *key,
			     uint64_t def, uint64_t max)
{
	uint64_t v = cmdline_u64(c, key, def);

	GUEST_ASSERT_MSG(v >= 1 && v <= max, "kmeans: %s=%llu, expected 1..%llu",
			 key, (unsigned long long)v, (unsigned long long)max);
	return (unsigned int)v;
}

static void kmeans_run(const struct cmdline *c)
{
	uint64_t seed, bytes, t0, gen_ns, ns;
	unsigned int i;

	km.dims = param_in(c, "dims", DEFAULT_DIMS, KMEANS_MAX_DIMS);
	km.k = param_in(c, "k", DEFAULT_K, KMEANS_MAX_K);
	km.iters = param_in(c, "iters", DEFAULT_ITERS, KMEANS_MAX_ITERS);
	seed = cmdline_u64(c, "seed", 1);
	km.points = cmdline_u64(c, "points",
				DEFAULT_DATASET_BYTES /
				(km.dims * sizeof(int32_t)));
	/* 2^40 points keeps the coordinate sums in int64 (see above) and
	 * the byte count far from overflow. */
	GUEST_ASSERT_MSG(km.points >= km.k && km.points <= (1ull << 40),
			 "kmeans: points=%llu, expected k (%u) .. 2^40",
			 (unsigned long long)km.points, km.k);
	bytes = km.points * km.dims * sizeof(int32_t);
	place_dataset(bytes);
	tsc_hz();		/* calibrate outside the timed parts */

	t0 = rdtsc();
	generate(seed);
	gen_ns = tsc_to_ns(rdtsc() - t0);
	guest_result("kmeans dataset points=%llu dims=%u bytes=%llu gpa=0x%llx seconds=" SECONDS_FMT,
		     (unsigned long long)km.points, km.dims,
		     (unsigned long long)bytes,
		     (unsigned long long)(uintptr_t)km.data,
		     SECONDS_ARGS(gen_ns));

	t0 = rdtsc();
	init_centroids();
	for (i = 0; i < km.iters; i++)
		lloyd_step();
	ns = tsc_to_ns(rdtsc() - t0);

	guest_result("kmeans points=%llu dims=%u k=%u iters=%u bytes=%llu seconds=" SECONDS_FMT
		     " checksum=0x%016llx",
		     (unsigned long long)km.points, km.dims, km.k, km.iters,
		     (unsigned long long)bytes, SECONDS_ARGS(ns),
		     (unsigned long long)centroid_checksum());
	guest_done(0);
}

static const char *const kmeans_params[] = {
	"points", "dims", "k", "iters", "seed", NULL
};

const struct workload workload_kmeans = {
	.name = "kmeans",
	.usage = "points=N (default: 64 MiB of them) dims=D (16) k=K (8) iters=I (10) seed=S",
	.params = kmeans_params,
	.run = kmeans_run,
};
