// SPDX-License-Identifier: MIT
/*
 * memd's page index on its own: what it costs, counted in buckets looked
 * at (deterministic, unlike time), for page numbers an attacker picks,
 * and that growing it never lands on one request.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "memd_old_hash.h"
#include "remote/memd_proto.h"
#include "remote/memd_server_index.h"

#define FLOOD_PAGES 16384u

/* A random key, as every server draws one. */
static const uint8_t *test_key(void)
{
	static uint8_t key[MEMD_INDEX_KEY_SIZE];

	if (sodium_init() < 0)
		abort();
	crypto_shorthash_keygen(key);
	return key;
}

/* Inserts @page the way the server does: room first, then the
 * request's share of migrating, then the page.  The probes it took. */
static uint64_t server_insert(struct memd_index *ix, uint64_t page,
			      uint32_t slot)
{
	uint64_t before = ix->probes;

	if (memd_index_reserve(ix, 1))
		abort();
	memd_index_migrate(ix, MEMD_INDEX_MIGRATE_PER_PAGE);
	memd_index_insert(ix, page, slot);
	return ix->probes - before;
}

/* Probes to insert then find every page of @pages. */
static uint64_t probes_for(const uint64_t *pages, size_t n)
{
	struct memd_index ix;
	uint64_t probes;
	uint32_t slot;

	if (memd_index_init(&ix, test_key()))
		abort();
	for (size_t i = 0; i < n; i++)
		server_insert(&ix, pages[i], (uint32_t)i);
	for (size_t i = 0; i < n; i++)
		if (!memd_index_find(&ix, pages[i], &slot) || slot != i)
			abort();
	probes = ix.probes;
	memd_index_free(&ix);
	return probes;
}

TEST(memd_index_crafted_pages_cost_what_sequential_ones_do)
{
	static uint64_t pages[FLOOD_PAGES];
	uint64_t seq, crafted, strided, high;

	for (uint32_t i = 0; i < FLOOD_PAGES; i++)
		pages[i] = i;
	seq = probes_for(pages, FLOOD_PAGES);
	old_hash_collisions(pages, FLOOD_PAGES, 16);
	crafted = probes_for(pages, FLOOD_PAGES);
	/* strides that defeat a hash of the low bits, or of the high ones */
	for (uint32_t i = 0; i < FLOOD_PAGES; i++)
		pages[i] = (uint64_t)i << 20;
	strided = probes_for(pages, FLOOD_PAGES);
	for (uint32_t i = 0; i < FLOOD_PAGES; i++)
		pages[i] = MEMD_PAGE_LIMIT - 1 - ((uint64_t)i << 32) % MEMD_PAGE_LIMIT;
	high = probes_for(pages, FLOOD_PAGES);

	/* about 2.5 buckets per lookup at 3/4 full, and a few for moving
	 * entries on growth: ~10 per page for insert and find; the old
	 * index took ~FLOOD_PAGES / 2 per crafted page */
	CHECK(seq < 12ull * FLOOD_PAGES);
	CHECK(crafted < 2 * seq);
	CHECK(strided < 2 * seq);
	CHECK(high < 2 * seq);
}

TEST(memd_index_growth_is_spread_over_inserts)
{
	struct memd_index ix;
	uint64_t worst = 0, grows = 0;
	uint64_t n = 200000;

	CHECK_EQ(memd_index_init(&ix, test_key()), 0);
	for (uint64_t page = 0; page < n; page++) {
		uint64_t size = ix.cur.size, probes;

		/* the migration keeps ahead: never a second growth while
		 * one is still going on */
		CHECK(!(memd_index_resizing(&ix) && memd_index_reserve_bytes(&ix, 1)));
		probes = server_insert(&ix, page * 7919, (uint32_t)page);
		grows += ix.cur.size != size;
		if (probes > worst)
			worst = probes;
	}
	CHECK(grows >= 9);		/* 256 -> 262144 buckets */
	CHECK_EQ(memd_index_count(&ix), n);
	/* a full rehash would look at >= 98304 buckets in one insert: here
	 * the worst is a few migrated entries and their probes */
	CHECK(worst < 1000);
	/* an idle index finishes on its own calls; memory goes back */
	while (memd_index_migrate(&ix, 1000))
		;
	CHECK(!memd_index_resizing(&ix));
	CHECK_EQ(memd_index_bytes(&ix), memd_index_table_bytes(ix.cur.size));
	memd_index_free(&ix);
}

/* Counts the slots a drain hands back. */
static void count_slot(void *opaque, uint32_t slot)
{
	uint8_t *seen = opaque;

	seen[slot]++;
}

/* A model check: random inserts, replaces and removes over several
 * growths, every answer compared with a plain array. */
TEST(memd_index_agrees_with_a_model_while_it_grows)
{
	enum { RANGE = 50000 };
	static uint32_t model[RANGE];		/* slot + 1; 0: absent */
	static uint8_t seen[RANGE + 1];
	struct memd_index ix;
	uint64_t x = 88172645463325252ull, live = 0;
	uint32_t slot, next_slot = 1;

	CHECK_EQ(memd_index_init(&ix, test_key()), 0);
	for (int step = 0; step < 400000; step++) {
		uint64_t page;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* pages spread far apart, 0 and the limit's edge included */
		page = (x % RANGE) * (MEMD_PAGE_LIMIT / RANGE);
		if (x >> 62) {
			if (memd_index_find(&ix, page, &slot)) {
				CHECK_EQ(slot + 1, model[x % RANGE]);
			} else {
				CHECK_EQ(model[x % RANGE], 0);
				if (next_slot > RANGE)
					continue;
				CHECK_EQ(memd_index_reserve(&ix, 1), 0);
				memd_index_insert(&ix, page, next_slot - 1);
				model[x % RANGE] = next_slot++;
				live++;
			}
		} else {
			bool had = memd_index_remove(&ix, page, &slot);

			CHECK_EQ(had, model[x % RANGE] != 0);
			if (had)
				CHECK_EQ(slot + 1, model[x % RANGE]);
			live -= had;
			model[x % RANGE] = 0;
		}
		memd_index_migrate(&ix, 2);
		CHECK_EQ(memd_index_count(&ix), live);
	}
	/* draining hands every live slot back exactly once */
	while (memd_index_drain(&ix, 777, count_slot, seen))
		;
	for (uint32_t i = 0; i < RANGE; i++)
		if (model[i])
			CHECK_EQ(seen[model[i] - 1], 1);
	CHECK_EQ(memd_index_count(&ix), 0);
	memd_index_free(&ix);
}
