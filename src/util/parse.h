/* SPDX-License-Identifier: MIT */
/*
 * Parsing of user-supplied numbers (command-line flags, configs).
 */
#ifndef RACKVM_UTIL_PARSE_H
#define RACKVM_UTIL_PARSE_H

#include <stdint.h>

/*
 * A byte size: a decimal number with an optional binary suffix K, M, G or
 * T (case-insensitive, optionally followed by "B" or "iB"): "512M",
 * "4g", "65536", "1GiB".  No suffix means bytes.  -EINVAL for anything
 * else (empty, negative, fractions, trailing garbage), -ERANGE on overflow.
 */
int parse_size(const char *text, uint64_t *out);

/* A decimal unsigned integer in [min, max]; -EINVAL or -ERANGE. */
int parse_uint(const char *text, unsigned min, unsigned max, unsigned *out);

/* A duration: a decimal number (fractions allowed) with an optional unit
 * s, ms or us (no unit: seconds): "1", "500ms", "2s", "1.5s".  -EINVAL
 * or -ERANGE. */
int parse_duration_ns(const char *text, uint64_t *out);

#endif
