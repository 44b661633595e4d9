/* SPDX-License-Identifier: MIT */
/*
 * TSC frequency, calibrated against PIT channel 2 from ring 3 on first
 * use so that figures are in real seconds under rackvm and QEMU alike.
 */
#ifndef GUEST_TSC_H
#define GUEST_TSC_H

#include <stdint.h>

uint64_t tsc_hz(void);
uint64_t tsc_to_ns(uint64_t cycles);
uint64_t ns_to_tsc(uint64_t ns);
void tsc_delay_ns(uint64_t ns);

/* @count per second over @ns, saturating. */
uint64_t rate_per_sec(uint64_t count, uint64_t ns);

#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_MSEC 1000000ull
#define NSEC_PER_USEC 1000ull

/* Seconds with microsecond digits from nanoseconds, for printf. */
#define SECONDS_FMT "%llu.%06llu"
#define SECONDS_ARGS(ns)						\
	(unsigned long long)((ns) / NSEC_PER_SEC),			\
	(unsigned long long)((ns) % NSEC_PER_SEC / NSEC_PER_USEC)

#endif
