// SPDX-License-Identifier: MIT
/*
 * The dirty log's readers (vm/vm_dirty_fanout.h), without KVM: every
 * reader sees every page marked since it last took, however the takes
 * of the readers interleave; a reader added later sees only what came
 * after; pages past the end are ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vm/vm_dirty_fanout.h"

#define NPAGES 1000u	/* not a multiple of 64: a partial last word */
#define WORDS ((NPAGES + 63) / 64)

static int count(const uint64_t *b)
{
	int n = 0;

	for (unsigned w = 0; w < WORDS; w++)
		n += __builtin_popcountll(b[w]);
	return n;
}

static int has(const uint64_t *b, uint64_t page)
{
	return (b[page / 64] >> (page % 64)) & 1;
}

TEST(dirty_fanout_each_reader_sees_every_page_once_taken_its_own)
{
	struct dirty_fanout f;
	struct dirty_reader *a, *b;
	uint64_t ga[WORDS] = { 0 }, gb[WORDS] = { 0 };

	dirty_fanout_init(&f, NPAGES);
	CHECK_EQ(f.words, WORDS);
	CHECK_EQ(dirty_fanout_add(&f, &a), 0);
	CHECK_EQ(dirty_fanout_add(&f, &b), 0);
	CHECK_EQ(f.nreaders, 2);
	dirty_fanout_mark(&f, 3);
	dirty_fanout_mark(&f, 999);
	/* a takes: both pages new to its bitmap */
	CHECK_EQ(dirty_fanout_take(&f, a, ga), 2);
	CHECK_EQ(dirty_fanout_take(&f, a, ga), 0);
	dirty_fanout_mark(&f, 64);
	dirty_fanout_mark(&f, 3);	/* again: counted once per bitmap */
	/* b took nothing yet: it still has all three */
	CHECK_EQ(dirty_fanout_take(&f, b, gb), 3);
	CHECK(has(gb, 3) && has(gb, 64) && has(gb, 999));
	/* a gets the later two; 3 was already in its bitmap */
	CHECK_EQ(dirty_fanout_take(&f, a, ga), 1);
	CHECK(has(ga, 3) && has(ga, 64) && has(ga, 999));
	CHECK_EQ(count(ga), 3);
	CHECK_EQ(count(gb), 3);
	/* a caller's bitmap keeps what it had: take only ORs in */
	memset(gb, 0, sizeof(gb));
	gb[0] = 1;
	dirty_fanout_mark(&f, 0);
	dirty_fanout_mark(&f, 1);
	CHECK_EQ(dirty_fanout_take(&f, b, gb), 1);
	CHECK_EQ(gb[0], 3);
	dirty_fanout_remove(&f, a);
	dirty_fanout_remove(&f, b);
	CHECK_EQ(f.nreaders, 0);
	CHECK(f.readers == NULL);
}

TEST(dirty_fanout_words_late_readers_and_the_end)
{
	struct dirty_fanout f;
	struct dirty_reader *a, *late;
	uint64_t ga[WORDS] = { 0 }, gl[WORDS] = { 0 };
	uint64_t slot[4] = { 0x5, 0, ~0ull, ~0ull };

	dirty_fanout_init(&f, NPAGES);
	CHECK_EQ(dirty_fanout_add(&f, &a), 0);
	/* a slot's words at word 2: pages 128, 130 and 256..383 */
	dirty_fanout_mark_words(&f, 2, slot, 4);
	CHECK_EQ(dirty_fanout_add(&f, &late), 0);
	dirty_fanout_mark(&f, 500);
	/* past the end: a page, a word start, and the bits of the last
	 * word beyond NPAGES */
	dirty_fanout_mark(&f, NPAGES);
	dirty_fanout_mark(&f, UINT64_MAX);
	dirty_fanout_mark_words(&f, WORDS, slot, 4);
	dirty_fanout_mark_words(&f, UINT64_MAX, slot, 4);
	dirty_fanout_mark_words(&f, WORDS - 2, slot + 2, 2);
	CHECK_EQ(dirty_fanout_take(&f, a, ga), 2 + 128 + 1 + 64 + NPAGES % 64);
	CHECK(has(ga, 128) && has(ga, 130) && !has(ga, 129));
	CHECK(has(ga, 256) && has(ga, 383) && !has(ga, 384));
	CHECK(has(ga, 500) && has(ga, NPAGES - 1));
	CHECK_EQ(ga[WORDS - 1] >> (NPAGES % 64), 0);
	/* the late reader: only what came after it was added */
	CHECK_EQ(dirty_fanout_take(&f, late, gl), 1 + 64 + NPAGES % 64);
	CHECK(!has(gl, 128) && has(gl, 500));
	dirty_fanout_remove(&f, late);
	/* removal leaves the other reader working */
	dirty_fanout_mark(&f, 7);
	CHECK_EQ(dirty_fanout_take(&f, a, ga), 1);
	dirty_fanout_remove(&f, a);
}
