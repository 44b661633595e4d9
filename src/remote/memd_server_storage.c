// SPDX-License-Identifier: MIT
/*
 * The memd server's storage (see memd_server_internal.h): the pages
 * namespaces hold, and the capacity and quota that bound them (the
 * namespaces themselves are memd_server_namespace.c's).
 *
 * Pages live in slots of slabs mapped SLAB_PAGES at a time (data first,
 * page-aligned, then the 16-byte tags: MEMD_TAG_SIZE, page_seal.h); a
 * free slot keeps the number of the next free one in its tag field, so
 * free slots cost nothing.  The server never looks into data or tag:
 * pages arrive sealed by their VM (or in clear with seal=off).  Each
 * namespace maps page numbers to slots with its page index
 * (memd_server_index.h: keyed hashing, incremental growth), whose tables
 * count against the capacity, both of them while it grows.
 *
 * A PUT is checked against the capacity as a whole first (new slots it
 * needs beyond the free ones, rounded up to slabs, plus the index table
 * it would grow to, which exists beside the old one while migrating), the
 * memory is then reserved, and only then is any page written: a PUT is
 * stored entirely or not at all, and the writing cannot fail.  Before
 * the capacity, the namespace's quota: the pages it would hold after the
 * PUT, against s->quota_pages.
 *
 * Threads: the loop thread only; of what it changes, other threads read
 * just the counters (memd_server_stats()).
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "remote/memd_server_index.h"
#include "remote/memd_server_internal.h"

#define SLAB_PAGES 512u
#define SLAB_BYTES ((size_t)SLAB_PAGES * (PAGE_STORE_PAGE + MEMD_TAG_SIZE))
#define NO_SLOT UINT32_MAX
/* Old index buckets a request migrates besides its pages' share: keeps
 * an index that only sees GETs and DROPs moving too. */
#define MIGRATE_PER_REQUEST 64u

/* ---- budget ------------------------------------------------------------ */

bool budget_allows(struct memd_server *s, uint64_t bytes)
{
	return bytes <= s->capacity - counter_get(&s->c.used);
}

/* ---- slabs -------------------------------------------------------------- */

static uint8_t *slot_data(const struct slabs *sl, uint32_t slot)
{
	return sl->slab[slot / SLAB_PAGES] +
	       (size_t)(slot % SLAB_PAGES) * PAGE_STORE_PAGE;
}

static uint8_t *slot_tag(const struct slabs *sl, uint32_t slot)
{
	uint8_t *tags = sl->slab[slot / SLAB_PAGES] +
			(size_t)SLAB_PAGES * PAGE_STORE_PAGE;

	return tags + (size_t)(slot % SLAB_PAGES) * MEMD_TAG_SIZE;
}

static void slot_free(struct slabs *sl, uint32_t slot)
{
	memcpy(slot_tag(sl, slot), &sl->free_head, sizeof(sl->free_head));
	sl->free_head = slot;
	sl->nfree++;
}

static uint32_t slot_alloc(struct slabs *sl)
{
	uint32_t slot = sl->free_head;

	memcpy(&sl->free_head, slot_tag(sl, slot), sizeof(sl->free_head));
	sl->nfree--;
	return slot;
}

void slot_release(struct memd_server *s, uint32_t slot)
{
	slot_free(&s->slabs, slot);
	counter_add(&s->c.pages, -1);
}

/* Maps @n more slabs (the caller checked the budget and max_slabs). */
static int slabs_grow(struct memd_server *s, uint32_t n)
{
	struct slabs *sl = &s->slabs;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t base = sl->nslabs * SLAB_PAGES;
		void *p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -errno;
		sl->slab[sl->nslabs++] = p;
		counter_add(&s->c.used, SLAB_BYTES);
		/* pushed backwards, so slots are handed out in address order */
		for (uint32_t j = SLAB_PAGES; j-- > 0;)
			slot_free(sl, base + j);
	}
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

void index_bytes_changed(struct memd_server *s, const struct memd_index *ix,
			 uint64_t before)
{
	counter_add(&s->c.used, (int64_t)memd_index_bytes(ix) - (int64_t)before);
}

static int refuse_full(struct memd_server *s, const struct namespace *ns,
		       const char *peer, uint32_t pages)
{
	counter_add(&s->c.full_refusals, 1);
	if (!s->full_logged)
		say(s, MEMD_LOG_INFO, "capacity reached: refusing %u pages for "
		    "namespace '%s' of %s (%llu of %llu bytes used)", pages,
		    ns->name, peer,
		    (unsigned long long)counter_get(&s->c.used),
		    (unsigned long long)s->capacity);
	s->full_logged = true;
	return MEMD_ST_FULL;
}

/* A namespace at its quota is refused like a full server: either way
 * this server takes no more of its pages, and the client places them
 * elsewhere.  Said once until the namespace stores again. */
static int refuse_quota(struct memd_server *s, struct namespace *ns,
			const char *peer, uint32_t pages)
{
	counter_add(&s->c.full_refusals, 1);
	if (!ns->quota_logged)
		say(s, MEMD_LOG_INFO, "quota reached: refusing %u pages for "
		    "namespace '%s' of %s (%llu of %llu pages stored)", pages,
		    ns->name, peer, (unsigned long long)namespace_pages(ns),
		    (unsigned long long)s->quota_pages);
	ns->quota_logged = true;
	return MEMD_ST_FULL;
}

/* Reserves slots and index room for @fresh new pages, or says FULL. */
static int reserve_for_put(struct memd_server *s, struct namespace *ns,
			   const char *peer, uint64_t fresh, uint32_t pages)
{
	struct slabs *sl = &s->slabs;
	struct memd_index *ix = &ns->index;
	uint64_t short_slots = fresh > sl->nfree ? fresh - sl->nfree : 0;
	uint64_t new_slabs = (short_slots + SLAB_PAGES - 1) / SLAB_PAGES;
	uint64_t grow = memd_index_reserve_bytes(ix, fresh);
	int ret;

	if (new_slabs > sl->max_slabs - sl->nslabs ||
	    !budget_allows(s, new_slabs * SLAB_BYTES + grow))
		return refuse_full(s, ns, peer, pages);
	ret = slabs_grow(s, (uint32_t)new_slabs);
	if (!ret) {
		uint64_t before = memd_index_bytes(ix);

		ret = memd_index_reserve(ix, fresh);
		index_bytes_changed(s, ix, before);
	}
	if (ret) {
		say(s, MEMD_LOG_WARN, "cannot allocate memory for %u pages "
		    "within the capacity: %s", pages, strerror(-ret));
		return refuse_full(s, ns, peer, pages);
	}
	return MEMD_ST_OK;
}

/* A request's share of moving a growing index into its new table. */
static void index_migrate_some(struct memd_server *s, struct memd_index *ix,
			       uint32_t pages)
{
	uint64_t buckets = MIGRATE_PER_REQUEST +
			   (uint64_t)pages * MEMD_INDEX_MIGRATE_PER_PAGE;
	uint64_t before = memd_index_bytes(ix);

	if (memd_index_resizing(ix)) {
		memd_index_migrate(ix, buckets);
		index_bytes_changed(s, ix, before);
	}
}

int namespace_put(struct memd_server *s, struct namespace *ns,
		  const struct memd_request *req, const char *peer)
{
	struct memd_index *ix = &ns->index;
	uint64_t fresh = 0;
	uint32_t slot;
	int status;

	for (size_t i = 0; i < req->nruns; i++)
		for (uint32_t j = 0; j < req->runs[i].count; j++)
			fresh += !memd_index_find(ix, req->runs[i].first + j, &slot);
	if (s->quota_pages && memd_index_count(ix) + fresh > s->quota_pages)
		return refuse_quota(s, ns, peer, req->npages);
	status = reserve_for_put(s, ns, peer, fresh, req->npages);
	if (status != MEMD_ST_OK)
		return status;
	index_migrate_some(s, ix, req->npages);
	if (memd_index_resizing(ix))
		namespace_queue(s, ns);
	for (size_t i = 0; i < req->nruns; i++) {
		const struct memd_run_ref *r = &req->runs[i];

		for (uint32_t j = 0; j < r->count; j++) {
			const uint8_t *rec = r->records + (size_t)j * MEMD_RECORD;

			if (!memd_index_find(ix, r->first + j, &slot)) {
				slot = slot_alloc(&s->slabs);
				memd_index_insert(ix, r->first + j, slot);
				counter_add(&s->c.pages, 1);
			}
			memcpy(slot_tag(&s->slabs, slot), memd_record_tag(rec),
			       MEMD_TAG_SIZE);
			memcpy(slot_data(&s->slabs, slot), memd_record_data(rec),
			       PAGE_STORE_PAGE);
		}
	}
	counter_add(&s->c.pages_put, req->npages);
	s->full_logged = false;
	ns->quota_logged = false;
	return MEMD_ST_OK;
}

int namespace_find_pages(struct namespace *ns, const struct memd_request *req,
			 uint32_t *slots, uint32_t *n)
{
	*n = 0;
	for (size_t i = 0; i < req->nruns; i++)
		for (uint32_t j = 0; j < req->runs[i].count; j++)
			if (!memd_index_find(&ns->index, req->runs[i].first + j,
					     &slots[(*n)++]))
				return MEMD_ST_NO_PAGE;
	return MEMD_ST_OK;
}

void slots_encode(const struct memd_server *s, const uint32_t *slots,
		  uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++, out += MEMD_RECORD)
		memd_record_encode(out, slot_tag(&s->slabs, slots[i]),
				   slot_data(&s->slabs, slots[i]));
}

int namespace_drop(struct memd_server *s, struct namespace *ns,
		   const struct memd_request *req)
{
	for (size_t i = 0; i < req->nruns; i++) {
		for (uint32_t j = 0; j < req->runs[i].count; j++) {
			uint32_t slot;

			if (!memd_index_remove(&ns->index, req->runs[i].first + j,
					       &slot))
				continue;
			slot_release(s, slot);
			counter_add(&s->c.pages_dropped, 1);
		}
	}
	index_migrate_some(s, &ns->index, 0);
	return MEMD_ST_OK;
}

uint64_t namespace_pages(const struct namespace *ns)
{
	return memd_index_count(&ns->index);
}

/* ---- the whole store ------------------------------------------------------ */

int storage_init(struct memd_server *s, struct errmsg *err)
{
	s->slabs.free_head = NO_SLOT;
	s->slabs.max_slabs = (uint32_t)(s->capacity / SLAB_BYTES);
	s->slabs.slab = calloc(s->slabs.max_slabs, sizeof(uint8_t *));
	if (!s->slabs.slab)
		return errmsg_set(err, -ENOMEM, "out of memory");
	counter_add(&s->c.used, (int64_t)(s->slabs.max_slabs * sizeof(uint8_t *)));
	crypto_shorthash_keygen(s->index_key);
	return 0;
}

void storage_free(struct memd_server *s)
{
	namespaces_free(s);
	for (uint32_t i = 0; i < s->slabs.nslabs; i++)
		munmap(s->slabs.slab[i], SLAB_BYTES);
	free(s->slabs.slab);
	explicit_bzero(s->index_key, sizeof(s->index_key));
}
