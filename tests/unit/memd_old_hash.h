/* SPDX-License-Identifier: MIT */
/*
 * The page numbers of issue 13's hash flood, for the test that checks
 * memd's index against them (test_memd_index.c) and for the benchmark
 * that times a server under them (bench/memd_flood.c).
 *
 * Before issue 13, memd's page index hashed page numbers with
 * splitmix64's finalizer: unkeyed and invertible.  Running it backwards
 * from hashes whose low @bits are clear gives pages that all share one
 * home bucket in every index of up to 2^@bits buckets, which made one
 * probe cluster of them all: inserting n of them cost O(n^2).  Against a
 * keyed hash they are pages like any other.
 */
#ifndef RACKVM_TESTS_MEMD_OLD_HASH_H
#define RACKVM_TESTS_MEMD_OLD_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "remote/memd_proto.h"

/* x * inv == 1 mod 2^64, for odd x (Newton's iteration). */
static inline uint64_t old_hash_odd_inverse(uint64_t x)
{
	uint64_t inv = x;

	for (int round = 0; round < 6; round++)
		inv *= 2 - x * inv;
	return inv;
}

/* Undoes y = x ^ (x >> s). */
static inline uint64_t old_hash_undo_xorshift(uint64_t y, unsigned s)
{
	uint64_t x = y;

	for (unsigned done = s; done < 64; done += s)
		x = y ^ (x >> s);
	return x;
}

/* @n pages below MEMD_PAGE_LIMIT whose old hash has its low @bits clear. */
static inline void old_hash_collisions(uint64_t *pages, size_t n,
				       unsigned bits)
{
	const uint64_t m1 = old_hash_odd_inverse(0xbf58476d1ce4e5b9ull);
	const uint64_t m2 = old_hash_odd_inverse(0x94d049bb133111ebull);

	for (uint64_t h = 1ull << bits; n; h += 1ull << bits) {
		uint64_t page = old_hash_undo_xorshift(h, 31) * m2;

		page = old_hash_undo_xorshift(page, 27) * m1;
		page = old_hash_undo_xorshift(page, 30);
		if (page < MEMD_PAGE_LIMIT)
			pages[--n] = page;
	}
}

#endif
