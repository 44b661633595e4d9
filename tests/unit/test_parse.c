// SPDX-License-Identifier: MIT
#include <errno.h>

#include "harness.h"
#include "util/parse.h"

TEST(parse_size_accepts_suffixes)
{
	uint64_t v;

	CHECK_EQ(parse_size("65536", &v), 0);
	CHECK_EQ(v, 65536);
	CHECK_EQ(parse_size("4K", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("512M", &v), 0);
	CHECK_EQ(v, 512ull << 20);
	CHECK_EQ(parse_size("2g", &v), 0);
	CHECK_EQ(v, 2ull << 30);
	CHECK_EQ(parse_size("1GiB", &v), 0);
	CHECK_EQ(v, 1ull << 30);
	CHECK_EQ(parse_size("3TB", &v), 0);
	CHECK_EQ(v, 3ull << 40);
	CHECK_EQ(parse_size("100B", &v), 0);
	CHECK_EQ(v, 100);
}

TEST(parse_size_rejects_garbage)
{
	uint64_t v = 7;

	CHECK_EQ(parse_size("", &v), -EINVAL);
	CHECK_EQ(parse_size("M", &v), -EINVAL);
	CHECK_EQ(parse_size("-1M", &v), -EINVAL);
	CHECK_EQ(parse_size("1.5G", &v), -EINVAL);
	CHECK_EQ(parse_size("12Q", &v), -EINVAL);
	CHECK_EQ(parse_size("12MX", &v), -EINVAL);
	CHECK_EQ(parse_size(" 12M", &v), -EINVAL);
	CHECK_EQ(parse_size("99999999999999999999", &v), -ERANGE);
	CHECK_EQ(parse_size("17179869184G", &v), -ERANGE);
	CHECK_EQ(v, 7);
}

TEST(parse_uint_bounds)
{
	unsigned v;

	CHECK_EQ(parse_uint("2", 1, 255, &v), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(parse_uint("0", 1, 255, &v), -ERANGE);
	CHECK_EQ(parse_uint("256", 1, 255, &v), -ERANGE);
	CHECK_EQ(parse_uint("2x", 1, 255, &v), -EINVAL);
	CHECK_EQ(parse_uint("", 1, 255, &v), -EINVAL);
}

TEST(parse_duration_accepts_units_and_fractions)
{
	uint64_t v;

	CHECK_EQ(parse_duration_ns("1", &v), 0);
	CHECK_EQ(v, 1000000000ull);
	CHECK_EQ(parse_duration_ns("500ms", &v), 0);
	CHECK_EQ(v, 500000000ull);
	CHECK_EQ(parse_duration_ns("2s", &v), 0);
	CHECK_EQ(v, 2000000000ull);
	CHECK_EQ(parse_duration_ns("1.5s", &v), 0);
	CHECK_EQ(v, 1500000000ull);
	CHECK_EQ(parse_duration_ns("250us", &v), 0);
	CHECK_EQ(v, 250000ull);
	CHECK_EQ(parse_duration_ns("", &v), -EINVAL);
	CHECK_EQ(parse_duration_ns("1m", &v), -EINVAL);
	CHECK_EQ(parse_duration_ns("-1s", &v), -EINVAL);
	CHECK_EQ(parse_duration_ns("1.s", &v), -EINVAL);
}
