// SPDX-License-Identifier: MIT
/*
 * The memd server's page index, see memd_server_index.h.
 *
 * The current table: linear probing with backward-shift deletion, so it
 * never holds tombstones.  The old table, while it is migrated: nothing
 * is inserted into it, and what leaves it (migrated or removed) becomes a
 * tombstone; its probe sequences therefore only ever get shorter, end at
 * the same empty buckets as before, and the table is freed whole when the
 * last bucket has moved.
 *
 * Threads: the loop thread's only.
 */
#include "remote/memd_server_index.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>

#include "util/le.h"

#define EMPTY 0
#define TOMBSTONE UINT64_MAX		/* in the old table only */

static uint64_t hash(const struct memd_index *ix, uint64_t page)
{
	uint8_t in[8], out[crypto_shorthash_BYTES];

	put_le64(in, page);
	crypto_shorthash(out, in, sizeof(in), ix->key);
	return get_le64(out);
}

uint64_t memd_index_table_bytes(uint64_t size)
{
	return size * sizeof(struct memd_index_entry);
}

static int table_alloc(struct memd_index_table *t, uint64_t size)
{
	/* zeroed is empty: calloc hands large tables over as untouched
	 * pages, not written here */
	t->e = calloc(size, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->size = size;
	t->live = 0;
	return 0;
}

static void table_free(struct memd_index_table *t)
{
	free(t->e);
	*t = (struct memd_index_table){ 0 };
}

int memd_index_init(struct memd_index *ix, const uint8_t *key)
{
	*ix = (struct memd_index){ .key = key };
	return table_alloc(&ix->cur, MEMD_INDEX_MIN_SIZE);
}

void memd_index_free(struct memd_index *ix)
{
	table_free(&ix->cur);
	table_free(&ix->old);
}

uint64_t memd_index_count(const struct memd_index *ix)
{
	return ix->cur.live + ix->old.live;
}

uint64_t memd_index_bytes(const struct memd_index *ix)
{
	return memd_index_table_bytes(ix->cur.size + ix->old.size);
}

/* The bucket holding @page in @t, or NULL. */
static struct memd_index_entry *table_find(struct memd_index *ix,
					   const struct memd_index_table *t,
					   uint64_t page)
{
	uint64_t mask = t->size - 1, key = page + 1;

	for (uint64_t i = hash(ix, page) & mask;; i = (i + 1) & mask) {
		ix->probes++;
		if (t->e[i].key == key)
			return &t->e[i];
		if (t->e[i].key == EMPTY)
			return NULL;
	}
}

static void table_insert(struct memd_index *ix, struct memd_index_table *t,
			 uint64_t page, uint32_t slot)
{
	uint64_t mask = t->size - 1, i = hash(ix, page) & mask;

	for (ix->probes++; t->e[i].key != EMPTY; ix->probes++)
		i = (i + 1) & mask;
	t->e[i] = (struct memd_index_entry){ page + 1, slot };
	t->live++;
}

/* Empties bucket @i of the current table, shifting back every entry
 * whose probe sequence crosses it. */
static void table_delete(struct memd_index *ix, struct memd_index_table *t,
			 uint64_t i)
{
	uint64_t mask = t->size - 1;

	for (uint64_t j = (i + 1) & mask; t->e[j].key != EMPTY; j = (j + 1) & mask) {
		uint64_t home = hash(ix, t->e[j].key - 1) & mask;
		bool crosses = i <= j ? (home <= i || home > j) :
					(home <= i && home > j);

		ix->probes++;
		if (crosses) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].key = EMPTY;
	t->live--;
}

/* The size that holds @count pages at most 3/4 full. */
static uint64_t size_for(uint64_t count)
{
	uint64_t size = MEMD_INDEX_MIN_SIZE;

	while (count > size / 4 * 3)
		size *= 2;
	return size;
}

/* The size a reserve for @fresh pages grows to, or 0 if it fits. */
static uint64_t grow_to(const struct memd_index *ix, uint64_t fresh)
{
	uint64_t size = size_for(memd_index_count(ix) + fresh);

	if (size <= ix->cur.size)
		return 0;
	/* at least double, which the migration rate relies on */
	return size < 2 * ix->cur.size ? 2 * ix->cur.size : size;
}

uint64_t memd_index_reserve_bytes(const struct memd_index *ix, uint64_t fresh)
{
	uint64_t size = grow_to(ix, fresh);

	return size ? memd_index_table_bytes(size) : 0;
}

int memd_index_reserve(struct memd_index *ix, uint64_t fresh)
{
	struct memd_index_table bigger;
	uint64_t size = grow_to(ix, fresh);
	int ret;

	if (!size)
		return 0;
	/* never reached while callers migrate MEMD_INDEX_MIGRATE_PER_PAGE
	 * buckets per insert; if it were, finish the old table first */
	if (memd_index_resizing(ix))
		memd_index_migrate(ix, UINT64_MAX);
	ret = table_alloc(&bigger, size);
	if (ret)
		return ret;
	ix->old = ix->cur;
	ix->cur = bigger;
	ix->moved = 0;
	return 0;
}

/* What to do with each entry taken out of a table that is emptied. */
typedef void (*take_fn)(struct memd_index *ix,
			const struct memd_index_entry *e, void *opaque);

/* Takes @t's entries out from bucket ix->moved on, at most *@buckets
 * buckets, and frees it after its last one; true while some remain. */
static bool table_take(struct memd_index *ix, struct memd_index_table *t,
		       uint64_t *buckets, take_fn take, void *opaque)
{
	for (; *buckets && ix->moved < t->size; (*buckets)--) {
		struct memd_index_entry *e = &t->e[ix->moved++];

		if (e->key == EMPTY || e->key == TOMBSTONE)
			continue;
		take(ix, e, opaque);
		e->key = TOMBSTONE;
		t->live--;
	}
	if (ix->moved < t->size)
		return true;
	table_free(t);
	ix->moved = 0;
	return false;
}

static void move_to_cur(struct memd_index *ix, const struct memd_index_entry *e,
			void *opaque)
{
	(void)opaque;
	table_insert(ix, &ix->cur, e->key - 1, e->slot);
}

bool memd_index_migrate(struct memd_index *ix, uint64_t buckets)
{
	return ix->old.e && table_take(ix, &ix->old, &buckets, move_to_cur, NULL);
}

bool memd_index_find(struct memd_index *ix, uint64_t page, uint32_t *slot)
{
	struct memd_index_entry *e = table_find(ix, &ix->cur, page);

	if (!e && ix->old.e)
		e = table_find(ix, &ix->old, page);
	if (e)
		*slot = e->slot;
	return e != NULL;
}

void memd_index_insert(struct memd_index *ix, uint64_t page, uint32_t slot)
{
	table_insert(ix, &ix->cur, page, slot);
}

bool memd_index_remove(struct memd_index *ix, uint64_t page, uint32_t *slot)
{
	struct memd_index_entry *e = table_find(ix, &ix->cur, page);

	if (e) {
		*slot = e->slot;
		table_delete(ix, &ix->cur, (uint64_t)(e - ix->cur.e));
		return true;
	}
	if (!ix->old.e || !(e = table_find(ix, &ix->old, page)))
		return false;
	*slot = e->slot;
	e->key = TOMBSTONE;
	ix->old.live--;
	return true;
}

struct drain_ctx {
	void (*fn)(void *opaque, uint32_t slot);
	void *opaque;
};

static void hand_back(struct memd_index *ix, const struct memd_index_entry *e,
		      void *opaque)
{
	struct drain_ctx *d = opaque;

	(void)ix;
	d->fn(d->opaque, e->slot);
}

bool memd_index_drain(struct memd_index *ix, uint64_t buckets,
		      void (*fn)(void *opaque, uint32_t slot), void *opaque)
{
	struct drain_ctx d = { fn, opaque };

	/* the old table first, from where its migration stopped; then the
	 * current one, from its start */
	if (ix->old.e && table_take(ix, &ix->old, &buckets, hand_back, &d))
		return true;
	return ix->cur.e && table_take(ix, &ix->cur, &buckets, hand_back, &d);
}
