// SPDX-License-Identifier: MIT
/*
 * The memd server's storage (see memd_server_internal.h): namespaces, the
 * pages they hold, and the capacity that bounds them.
 *
 * Pages live in slots of slabs mapped SLAB_PAGES at a time (data first,
 * page-aligned, then the checksums); a free slot keeps the number of the
 * next free one in its checksum field, so free slots cost nothing.  Each
 * namespace maps page numbers to slots with an open-addressing hash
 * table (linear probing, backward-shift deletion, at most 3/4 full).
 *
 * A PUT is checked against the capacity as a whole first (new slots it
 * needs beyond the free ones, rounded up to slabs, plus the index table
 * it would grow to, which exists beside the old one while rehashing), the
 * memory is then reserved, and only then is any page written: a PUT is
 * stored entirely or not at all, and the writing cannot fail.
 *
 * Threads: the loop thread only; of what it changes, other threads read
 * just the counters (memd_server_stats()).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <xxhash.h>

#include "remote/memd_server_internal.h"

#define SLAB_PAGES 512u
#define SLAB_BYTES ((size_t)SLAB_PAGES * (PAGE_STORE_PAGE + 8))
#define NO_SLOT UINT32_MAX
#define EMPTY_PAGE UINT64_MAX		/* never a page number (< 2^52) */
#define INDEX_MIN_SIZE 256u

struct index_entry {
	uint64_t page;			/* EMPTY_PAGE: unused */
	uint32_t slot;
};

struct page_index {
	struct index_entry *e;
	uint64_t size;			/* a power of two */
	uint64_t count;
};

struct namespace {
	struct namespace *next;
	char name[MEMD_NAME_MAX + 1];
	/* what its clients prove they know, never their secret (see
	 * memd_server_auth.c) */
	uint8_t verifier[MEMD_KEY_SIZE];
	struct page_index index;
};

/* ---- budget ------------------------------------------------------------ */

static bool budget_allows(struct memd_server *s, uint64_t bytes)
{
	return bytes <= s->capacity - counter_get(&s->c.used);
}

/* ---- slabs -------------------------------------------------------------- */

static uint8_t *slot_data(const struct slabs *sl, uint32_t slot)
{
	return sl->slab[slot / SLAB_PAGES] +
	       (size_t)(slot % SLAB_PAGES) * PAGE_STORE_PAGE;
}

static uint64_t *slot_sum(const struct slabs *sl, uint32_t slot)
{
	uint8_t *sums = sl->slab[slot / SLAB_PAGES] +
			(size_t)SLAB_PAGES * PAGE_STORE_PAGE;

	return (uint64_t *)sums + slot % SLAB_PAGES;
}

static void slot_free(struct slabs *sl, uint32_t slot)
{
	*slot_sum(sl, slot) = sl->free_head;
	sl->free_head = slot;
	sl->nfree++;
}

static uint32_t slot_alloc(struct slabs *sl)
{
	uint32_t slot = sl->free_head;

	sl->free_head = (uint32_t)*slot_sum(sl, slot);
	sl->nfree--;
	return slot;
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

/* ---- page index --------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t index_bytes(uint64_t size)
{
	return size * sizeof(struct index_entry);
}

/* The table size that holds @count pages at most 3/4 full. */
static uint64_t index_size_for(uint64_t count)
{
	uint64_t size = INDEX_MIN_SIZE;

	while (count > size / 4 * 3)
		size *= 2;
	return size;
}

static struct index_entry *index_alloc(uint64_t size)
{
	struct index_entry *e = malloc(index_bytes(size));

	if (e)
		for (uint64_t i = 0; i < size; i++)
			e[i].page = EMPTY_PAGE;
	return e;
}

static struct index_entry *index_find(const struct page_index *ix,
				      uint64_t page)
{
	uint64_t mask = ix->size - 1;

	for (uint64_t i = mix64(page) & mask;; i = (i + 1) & mask) {
		if (ix->e[i].page == page)
			return &ix->e[i];
		if (ix->e[i].page == EMPTY_PAGE)
			return NULL;
	}
}

/* @page is absent and the table has room. */
static void index_insert(struct page_index *ix, uint64_t page, uint32_t slot)
{
	uint64_t mask = ix->size - 1, i = mix64(page) & mask;

	while (ix->e[i].page != EMPTY_PAGE)
		i = (i + 1) & mask;
	ix->e[i] = (struct index_entry){ page, slot };
	ix->count++;
}

/* Returns the page's slot, or NO_SLOT if it was not there. */
static uint32_t index_remove(struct page_index *ix, uint64_t page)
{
	struct index_entry *hole = index_find(ix, page);
	uint64_t mask = ix->size - 1, i, j;
	uint32_t slot;

	if (!hole)
		return NO_SLOT;
	slot = hole->slot;
	i = (uint64_t)(hole - ix->e);
	/* shift back every entry whose probe sequence crosses the hole */
	for (j = (i + 1) & mask; ix->e[j].page != EMPTY_PAGE; j = (j + 1) & mask) {
		uint64_t home = mix64(ix->e[j].page) & mask;
		bool crosses = i <= j ? (home <= i || home > j) :
					(home <= i && home > j);

		if (crosses) {
			ix->e[i] = ix->e[j];
			i = j;
		}
	}
	ix->e[i].page = EMPTY_PAGE;
	ix->count--;
	return slot;
}

/* The budget for the new table was checked; old and new coexist here. */
static int index_resize(struct memd_server *s, struct page_index *ix,
			uint64_t size)
{
	struct page_index bigger = { index_alloc(size), size, 0 };

	if (!bigger.e)
		return -ENOMEM;
	counter_add(&s->c.used, (int64_t)index_bytes(size));
	for (uint64_t i = 0; i < ix->size; i++)
		if (ix->e[i].page != EMPTY_PAGE)
			index_insert(&bigger, ix->e[i].page, ix->e[i].slot);
	free(ix->e);
	counter_add(&s->c.used, -(int64_t)index_bytes(ix->size));
	*ix = bigger;
	return 0;
}

/* ---- namespaces ---------------------------------------------------------- */

static uint64_t namespace_bytes(void)
{
	return sizeof(struct namespace) + index_bytes(INDEX_MIN_SIZE);
}

struct namespace *namespace_find(struct memd_server *s, const char *name,
				 size_t len)
{
	for (struct namespace *ns = s->namespaces; ns; ns = ns->next)
		if (strlen(ns->name) == len && !memcmp(ns->name, name, len))
			return ns;
	return NULL;
}

const uint8_t *namespace_verifier(const struct namespace *ns)
{
	return ns->verifier;
}

static void namespace_free(struct memd_server *s, struct namespace *ns)
{
	explicit_bzero(ns->verifier, sizeof(ns->verifier));
	free(ns->index.e);
	counter_add(&s->c.used, -(int64_t)namespace_bytes());
	free(ns);
}

/* ---- requests ------------------------------------------------------------ */

int namespace_create(struct memd_server *s, const char *name, size_t len,
		     const uint8_t *verifier, const char *peer,
		     struct namespace **out)
{
	struct namespace *ns;

	if (!budget_allows(s, namespace_bytes())) {
		counter_add(&s->c.full_refusals, 1);
		say(s, MEMD_LOG_INFO, "capacity reached: no room for namespace "
		    "'%.*s' of %s", (int)len, name, peer);
		return MEMD_ST_FULL;
	}
	ns = calloc(1, sizeof(*ns));
	if (ns)
		ns->index.e = index_alloc(INDEX_MIN_SIZE);
	if (!ns || !ns->index.e) {
		free(ns);
		return MEMD_ST_FULL;
	}
	ns->index.size = INDEX_MIN_SIZE;
	memcpy(ns->name, name, len);
	memcpy(ns->verifier, verifier, MEMD_KEY_SIZE);
	ns->next = s->namespaces;
	s->namespaces = ns;
	counter_add(&s->c.used, (int64_t)namespace_bytes());
	counter_add(&s->c.namespaces, 1);
	*out = ns;
	say(s, MEMD_LOG_INFO, "namespace '%s' created by %s", ns->name, peer);
	return MEMD_ST_OK;
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

/* Reserves slots and index room for @fresh new pages, or says FULL. */
static int reserve_for_put(struct memd_server *s, struct namespace *ns,
			   const char *peer, uint64_t fresh, uint32_t pages)
{
	struct slabs *sl = &s->slabs;
	struct page_index *ix = &ns->index;
	uint64_t short_slots = fresh > sl->nfree ? fresh - sl->nfree : 0;
	uint64_t new_slabs = (short_slots + SLAB_PAGES - 1) / SLAB_PAGES;
	uint64_t size = index_size_for(ix->count + fresh);
	uint64_t grow = size > ix->size ? index_bytes(size) : 0;
	int ret;

	if (new_slabs > sl->max_slabs - sl->nslabs ||
	    !budget_allows(s, new_slabs * SLAB_BYTES + grow))
		return refuse_full(s, ns, peer, pages);
	ret = slabs_grow(s, (uint32_t)new_slabs);
	if (!ret && grow)
		ret = index_resize(s, ix, size);
	if (ret) {
		say(s, MEMD_LOG_WARN, "cannot allocate memory for %u pages "
		    "within the capacity: %s", pages, strerror(-ret));
		return refuse_full(s, ns, peer, pages);
	}
	return MEMD_ST_OK;
}

int namespace_put(struct memd_server *s, struct namespace *ns,
		  const struct memd_request *req, const char *peer)
{
	struct page_index *ix = &ns->index;
	uint64_t fresh = 0;
	int status;

	for (size_t i = 0; i < req->nruns; i++)
		for (uint32_t j = 0; j < req->runs[i].count; j++)
			fresh += !index_find(ix, req->runs[i].first + j);
	status = reserve_for_put(s, ns, peer, fresh, req->npages);
	if (status != MEMD_ST_OK)
		return status;
	for (size_t i = 0; i < req->nruns; i++) {
		const struct memd_run_ref *r = &req->runs[i];

		for (uint32_t j = 0; j < r->count; j++) {
			const uint8_t *rec = r->records + (size_t)j * MEMD_RECORD;
			struct index_entry *e = index_find(ix, r->first + j);
			uint32_t slot;

			if (e) {
				slot = e->slot;
			} else {
				slot = slot_alloc(&s->slabs);
				index_insert(ix, r->first + j, slot);
				counter_add(&s->c.pages, 1);
			}
			*slot_sum(&s->slabs, slot) = memd_record_sum(rec);
			memcpy(slot_data(&s->slabs, slot), memd_record_data(rec),
			       PAGE_STORE_PAGE);
		}
	}
	counter_add(&s->c.pages_put, req->npages);
	s->full_logged = false;
	return MEMD_ST_OK;
}

int namespace_find_pages(const struct namespace *ns,
			 const struct memd_request *req, uint32_t *slots,
			 uint32_t *n)
{
	*n = 0;
	for (size_t i = 0; i < req->nruns; i++) {
		for (uint32_t j = 0; j < req->runs[i].count; j++) {
			struct index_entry *e = index_find(&ns->index,
							   req->runs[i].first + j);

			if (!e)
				return MEMD_ST_NO_PAGE;
			slots[(*n)++] = e->slot;
		}
	}
	return MEMD_ST_OK;
}

void slots_encode(const struct memd_server *s, const uint32_t *slots,
		  uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++, out += MEMD_RECORD)
		memd_record_encode(out, *slot_sum(&s->slabs, slots[i]),
				   slot_data(&s->slabs, slots[i]));
}

int namespace_drop(struct memd_server *s, struct namespace *ns,
		   const struct memd_request *req)
{
	for (size_t i = 0; i < req->nruns; i++) {
		for (uint32_t j = 0; j < req->runs[i].count; j++) {
			uint32_t slot = index_remove(&ns->index,
						     req->runs[i].first + j);

			if (slot == NO_SLOT)
				continue;
			slot_free(&s->slabs, slot);
			counter_add(&s->c.pages, -1);
			counter_add(&s->c.pages_dropped, 1);
		}
	}
	return MEMD_ST_OK;
}

uint64_t namespace_pages(const struct namespace *ns)
{
	return ns->index.count;
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
	if (getrandom(s->key, sizeof(s->key), 0) != sizeof(s->key))
		return errmsg_set(err, -EIO, "getrandom: %s", strerror(errno));
	return 0;
}

void storage_free(struct memd_server *s)
{
	while (s->namespaces) {
		struct namespace *ns = s->namespaces;

		s->namespaces = ns->next;
		namespace_free(s, ns);
	}
	for (uint32_t i = 0; i < s->slabs.nslabs; i++)
		munmap(s->slabs.slab[i], SLAB_BYTES);
	free(s->slabs.slab);
	explicit_bzero(s->key, sizeof(s->key));
}
