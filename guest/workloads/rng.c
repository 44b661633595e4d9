// SPDX-License-Identifier: MIT
/*
 * rng: reads bytes=N from the virtio entropy device twice.  Neither read
 * may be all zeroes and the two must differ (a device that hands back
 * the untouched buffer, or a constant, fails).
 */
#include "guest/io.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_rng.h"
#include "guest/workload.h"

#define RNG_MAX_BYTES 65536

static struct virtio_rng rng;
static uint8_t a[RNG_MAX_BYTES], b[RNG_MAX_BYTES];

static bool all_zero(const uint8_t *p, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static void rng_run(const struct cmdline *c)
{
	uint64_t n = cmdline_u64(c, "bytes", 64), t0, ns;
	int err;

	GUEST_ASSERT_MSG(n >= 16 && n <= RNG_MAX_BYTES,
			 "rng: bytes must be 16..%d", RNG_MAX_BYTES);
	err = virtio_rng_init(&rng, c);
	GUEST_ASSERT_MSG(err == 0, "rng: virtio-rng: %s", virtio_strerror(err));
	tsc_hz();
	t0 = rdtsc();
	err = virtio_rng_read(&rng, a, n);
	GUEST_ASSERT_MSG(err == 0, "rng: read: %s", virtio_strerror(err));
	err = virtio_rng_read(&rng, b, n);
	GUEST_ASSERT_MSG(err == 0, "rng: read: %s", virtio_strerror(err));
	ns = tsc_to_ns(rdtsc() - t0);
	GUEST_ASSERT_MSG(!all_zero(a, n) && !all_zero(b, n),
			 "rng: the device returned only zero bytes");
	GUEST_ASSERT_MSG(memcmp(a, b, n), "rng: two reads returned the same "
			 "%llu bytes", (unsigned long long)n);
	guest_result("rng bytes=%llu reads=2 requests=%llu seconds="
		     SECONDS_FMT " first=%02x%02x%02x%02x",
		     (unsigned long long)n, (unsigned long long)rng.requests,
		     SECONDS_ARGS(ns), a[0], a[1], a[2], a[3]);
	guest_done(0);
}

static const char *const rng_params[] = { "bytes", NULL };

const struct workload workload_rng = {
	.name = "rng",
	.usage = "bytes=N (default 64): reads the virtio entropy device",
	.params = rng_params,
	.run = rng_run,
};
