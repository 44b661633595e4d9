/* SPDX-License-Identifier: MIT */
/*
 * The memd server's page index: one namespace's map from page numbers to
 * slots.  Page numbers come from the network, so the table is built to
 * stay fast whatever numbers a client picks, and no single request pays
 * for growing it:
 *
 *   - Open addressing with linear probing, at most 3/4 full, homes picked
 *     by SipHash-2-4 (libsodium's crypto_shorthash) under the server's
 *     random key.  Without the key nobody can choose pages that share a
 *     home, so probe sequences stay short (about 2.5 buckets per lookup
 *     at 3/4 full) for every pattern; an unkeyed mix, however good,
 *     can be inverted and flooded.
 *   - Growing is incremental: the table that must grow becomes the "old"
 *     one, a new one twice as large (or more) takes every insert, and
 *     each call of memd_index_migrate() moves a bounded number of the old
 *     table's buckets over.  Lookups and removals look in both tables
 *     while that goes on.  The caller migrates a few buckets per page it
 *     inserts (MEMD_INDEX_MIGRATE_PER_PAGE), which finishes the old table
 *     long before the new one could need to grow, and more when it has
 *     time.  New tables come from calloc(): an empty bucket is all zeros
 *     (entries hold page + 1), so even a table of millions of buckets is
 *     not written when it is made.
 *
 * Not thread-safe: the server's loop thread owns every index.  Page
 * numbers must be below MEMD_PAGE_LIMIT (the protocol's bound).
 */
#ifndef RACKVM_REMOTE_MEMD_SERVER_INDEX_H
#define RACKVM_REMOTE_MEMD_SERVER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMD_INDEX_KEY_SIZE 16		/* crypto_shorthash_KEYBYTES */
#define MEMD_INDEX_MIN_SIZE 256u	/* buckets of a new index */
/* Old buckets to migrate per page inserted: with tables that at least
 * double, 2 would do; 4 leaves room for PUTs that replace pages. */
#define MEMD_INDEX_MIGRATE_PER_PAGE 4u

struct memd_index_entry {
	uint64_t key;			/* page + 1; 0: empty */
	uint32_t slot;
};

struct memd_index_table {
	struct memd_index_entry *e;	/* NULL: no table */
	uint64_t size;			/* a power of two */
	uint64_t live;			/* entries in it */
};

struct memd_index {
	struct memd_index_table cur;	/* where inserts go */
	struct memd_index_table old;	/* being migrated into cur */
	uint64_t moved;			/* old's buckets already migrated */
	const uint8_t *key;		/* MEMD_INDEX_KEY_SIZE bytes */
	uint64_t probes;		/* buckets looked at, ever */
};

/* An empty index of MEMD_INDEX_MIN_SIZE buckets hashing under @key (which
 * must outlive it); -ENOMEM. */
int memd_index_init(struct memd_index *ix, const uint8_t *key);
void memd_index_free(struct memd_index *ix);

/* The bytes of a table of @size buckets. */
uint64_t memd_index_table_bytes(uint64_t size);
/* Pages in the index; bytes of its tables now. */
uint64_t memd_index_count(const struct memd_index *ix);
uint64_t memd_index_bytes(const struct memd_index *ix);

/*
 * Room for @fresh more pages.  memd_index_reserve_bytes() is what
 * memd_index_reserve() would allocate (0: nothing); memd_index_reserve()
 * allocates it (-ENOMEM) and starts migrating into it.
 */
uint64_t memd_index_reserve_bytes(const struct memd_index *ix, uint64_t fresh);
int memd_index_reserve(struct memd_index *ix, uint64_t fresh);

/* Migrates up to @buckets old buckets; true while some remain. */
bool memd_index_migrate(struct memd_index *ix, uint64_t buckets);
static inline bool memd_index_resizing(const struct memd_index *ix)
{
	return ix->old.e != NULL;
}

/* The page's slot into *@slot; false if it is not in the index. */
bool memd_index_find(struct memd_index *ix, uint64_t page, uint32_t *slot);
/* @page must be absent and room reserved. */
void memd_index_insert(struct memd_index *ix, uint64_t page, uint32_t slot);
/* Takes @page out, its slot into *@slot; false if it was not there. */
bool memd_index_remove(struct memd_index *ix, uint64_t page, uint32_t *slot);

/*
 * Takes up to @buckets buckets' pages out of an index that is going away,
 * calling @fn with each page's slot, so that freeing a large namespace
 * is spread over many calls too; true while some remain.  Only
 * memd_index_free() may follow, once it says false, or at any time.
 */
bool memd_index_drain(struct memd_index *ix, uint64_t buckets,
		      void (*fn)(void *opaque, uint32_t slot), void *opaque);

#endif
