/* SPDX-License-Identifier: MIT */
/*
 * Clock readings in nanoseconds, and deadlines for condition variables
 * created with CLOCK_MONOTONIC (pthread_condattr_setclock): the one place
 * the timespec arithmetic lives.
 */
#ifndef RACKVM_UTIL_CLOCK_H
#define RACKVM_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC 1000000000ull

/* @id's time in ns; 0 if the clock cannot be read (an unknown id). */
static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* CLOCK_MONOTONIC's time @ns from now, as pthread_cond_timedwait()
 * takes it. */
static inline struct timespec monotonic_deadline(uint64_t ns)
{
	struct timespec ts;
	uint64_t nsec;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	nsec = (uint64_t)ts.tv_nsec + ns % NSEC_PER_SEC;
	ts.tv_sec += (time_t)(ns / NSEC_PER_SEC + nsec / NSEC_PER_SEC);
	ts.tv_nsec = (long)(nsec % NSEC_PER_SEC);
	return ts;
}

#endif
