// SPDX-License-Identifier: MIT
/*
 * The pager's clean evictions: a page fetched back from the store and
 * not changed since is evicted again without a put (its stored copy
 * still holds it), and a page that changed is put again, so that what
 * the guest reads back is always what it wrote last.
 */
#include <pthread.h>
#include <stdint.h>

#include "harness.h"
#include "pager_rig.h"

/* Pages the store was sent so far. */
static uint64_t pages_put(struct mem_store *m)
{
	uint64_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nlog; i++)
		if (m->log[i].op == 'p')
			n += m->log[i].count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

TEST(pager_evicts_pages_unchanged_since_fetched_without_a_put)
{
	uint64_t n = 3072, put1, put2, put3;
	struct pager_stats st1, st2, st3;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, n, 1));
	CHECK(settle_below(&r, LIMIT));
	wait_still(&r, &st1);
	put1 = pages_put(r.store);
	CHECK(put1 > 0);
	CHECK_EQ(st1.clean_evictions, 0);

	/* read-only passes: every page comes back and goes out again */
	for (int pass = 0; pass < 2; pass++) {
		CHECK_EQ(verify_pages(&r, 0, n, 1), UINT64_MAX);
		CHECK(settle_below(&r, LIMIT));
	}
	wait_still(&r, &st2);
	put2 = pages_put(r.store);
	CHECK(st2.fetched_pages > 0);
	CHECK(st2.clean_evictions > 0);
	/* the only pages put again are ones first evicted while still
	 * resident from the writes; none that came from the store */
	if (put2 - put1 > LIMIT)
		harness_fail(__FILE__, __LINE__, "%llu pages put again by reads alone "
			     "(%llu clean evictions)",
			     (unsigned long long)(put2 - put1),
			     (unsigned long long)st2.clean_evictions);
	CHECK(st2.bytes_out < st2.evictions * PAGE);
	CHECK(accounted(&r, &st2, 0, n, 0));

	/* new contents: every changed page is put again and reads back new */
	CHECK(write_pages(&r, 0, n, 2));
	CHECK(settle_below(&r, LIMIT));
	CHECK_EQ(verify_pages(&r, 0, n, 2), UINT64_MAX);
	CHECK(settle_below(&r, LIMIT));
	CHECK_EQ(verify_pages(&r, 0, n, 2), UINT64_MAX);
	quiesce(&r, &st3);
	put3 = pages_put(r.store);
	/* at least the non-zero pages evicted since, less the resident */
	CHECK(put3 - put2 >= (n - n / 7 - 1) - LIMIT);
	CHECK_EQ(st3.failed, 0);
	CHECK(accounted(&r, &st3, 0, n, 0));
	rig_destroy(&r);
}

/* Half the pages change between two reads, the others do not: each
 * reads back its own last content, whichever way it was evicted. */
TEST(pager_clean_and_changed_pages_both_read_back_their_last_content)
{
	uint64_t n = 3072;
	struct pager_stats st;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 8, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, n, 1));
	CHECK(settle_below(&r, LIMIT));
	CHECK_EQ(verify_pages(&r, 0, n, 1), UINT64_MAX);
	for (uint64_t p = 0; p < n; p += 2)
		CHECK(write_pages(&r, p, 1, 3));
	CHECK(settle_below(&r, LIMIT));
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t p = 0; p < n; p++)
			if (verify_pages(&r, p, 1, p % 2 ? 1 : 3) != UINT64_MAX)
				harness_fail(__FILE__, __LINE__, "pass %d: page %llu",
					     pass, (unsigned long long)p);
		CHECK(settle_below(&r, LIMIT));
	}
	quiesce(&r, &st);
	CHECK(st.clean_evictions > 0);
	CHECK_EQ(st.failed, 0);
	/* a fault's window (8) and the scan's read-ahead after it (8) may
	 * have reached past the range */
	CHECK(accounted(&r, &st, 0, n, 16));
	rig_destroy(&r);
}
