// SPDX-License-Identifier: MIT
/*
 * compute: a pure CPU loop in ring 3 for a given time, reporting the
 * iteration rate.  Each step of the hash chain depends on the previous
 * one, so the rate measures latency of simple integer work and the
 * compiler cannot vectorise or drop it.
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define BATCH 65536	/* iterations between TSC reads */

static uint64_t hash_batch(uint64_t x, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		x ^= x >> 31;
		x *= 0x9e3779b97f4a7c15ull;
		x += i;
		asm volatile("" : "+r"(x));
	}
	return x;
}

static void compute_run(const struct cmdline *c)
{
	uint64_t ms = cmdline_u64(c, "ms", 0);
	uint64_t seconds = cmdline_u64(c, "seconds", 1);
	uint64_t duration_ns, t0, end, now, ns, iterations = 0;
	uint64_t x = 1;

	duration_ns = ms ? ms * NSEC_PER_MSEC : seconds * NSEC_PER_SEC;
	GUEST_ASSERT_MSG(duration_ns > 0 && duration_ns <= 3600 * NSEC_PER_SEC,
			 "compute: duration must be 1 ms .. 1 hour");
	t0 = rdtsc();
	end = t0 + ns_to_tsc(duration_ns);
	do {
		x = hash_batch(x, BATCH);
		iterations += BATCH;
		now = rdtsc();
	} while ((int64_t)(now - end) < 0);
	ns = tsc_to_ns(now - t0);
	GUEST_ASSERT(x != 0 || iterations);	/* keeps x alive */
	guest_result("compute iterations=%llu seconds=" SECONDS_FMT
		     " iter_per_sec=%llu",
		     (unsigned long long)iterations, SECONDS_ARGS(ns),
		     (unsigned long long)rate_per_sec(iterations, ns));
	guest_done(0);
}

static const char *const compute_params[] = { "seconds", "ms", NULL };

const struct workload workload_compute = {
	.name = "compute",
	.usage = "seconds=N (default 1) | ms=N",
	.params = compute_params,
	.run = compute_run,
};
