// SPDX-License-Identifier: MIT
/*
 * The memd server's storage (see memd_server_internal.h): namespaces, the
 * pages they hold, and the capacity that bounds them.
 *
 * Pages live in slots of slabs mapped SLAB_PAGES at a time (data first,
 * page-aligned, then the checksums); a free slot keeps the number of the
 * next free one in its checksum field, so free slots cost nothing.  Each
 * namespace maps page numbers to slots with its page index
 * (memd_server_index.h: keyed hashing, incremental growth), whose tables
 * count against the capacity, both of them while it grows.
 *
 * A PUT is checked against the capacity as a whole first (new slots it
 * needs beyond the free ones, rounded up to slabs, plus the index table
 * it would grow to, which exists beside the old one while migrating), the
 * memory is then reserved, and only then is any page written: a PUT is
 * stored entirely or not at all, and the writing cannot fail.
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
#include <sys/random.h>
#include <xxhash.h>

#include "remote/memd_server_index.h"
#include "remote/memd_server_internal.h"

#define SLAB_PAGES 512u
#define SLAB_BYTES ((size_t)SLAB_PAGES * (PAGE_STORE_PAGE + 8))
#define NO_SLOT UINT32_MAX
/* Old index buckets a request migrates besides its pages' share: keeps
 * an index that only sees GETs and DROPs moving too. */
#define MIGRATE_PER_REQUEST 64u

struct namespace {
	struct namespace *next;
	char name[MEMD_NAME_MAX + 1];
	XXH128_hash_t secret_hash;
	struct memd_index index;
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

/* ---- namespaces ---------------------------------------------------------- */

/* What a new namespace costs; it grows with its index's tables. */
static uint64_t namespace_bytes(void)
{
	return sizeof(struct namespace) +
	       memd_index_table_bytes(MEMD_INDEX_MIN_SIZE);
}

/* Keeps c.used in step with an index whose tables took @before bytes
 * before a call that may have allocated or freed one. */
static void index_bytes_changed(struct memd_server *s,
				const struct memd_index *ix, uint64_t before)
{
	counter_add(&s->c.used, (int64_t)memd_index_bytes(ix) - (int64_t)before);
}

/* Keyed, so a dump of the server's memory does not let anyone test
 * guesses of a secret offline without the key too. */
static XXH128_hash_t secret_hash(const struct memd_server *s,
				 const struct memd_request *req)
{
	uint8_t buf[2 + MEMD_NAME_MAX + MEMD_SECRET_MAX];
	XXH128_hash_t h;

	buf[0] = (uint8_t)req->name_len;
	memcpy(buf + 1, req->name, req->name_len);
	buf[1 + req->name_len] = (uint8_t)req->secret_len;
	memcpy(buf + 2 + req->name_len, req->secret, req->secret_len);
	h = XXH3_128bits_withSecret(buf, 2 + req->name_len + req->secret_len,
				    s->key, sizeof(s->key));
	explicit_bzero(buf, sizeof(buf));
	return h;
}

static bool hash_equal_ct(XXH128_hash_t a, XXH128_hash_t b)
{
	volatile uint64_t diff = (a.low64 ^ b.low64) | (a.high64 ^ b.high64);

	return diff == 0;
}

static struct namespace *namespace_find(struct memd_server *s,
					const char *name, size_t len)
{
	for (struct namespace *ns = s->namespaces; ns; ns = ns->next)
		if (strlen(ns->name) == len && !memcmp(ns->name, name, len))
			return ns;
	return NULL;
}

static void namespace_free(struct memd_server *s, struct namespace *ns)
{
	counter_add(&s->c.used, -(int64_t)(sizeof(*ns) +
					   memd_index_bytes(&ns->index)));
	memd_index_free(&ns->index);
	free(ns);
}

/* ---- requests ------------------------------------------------------------ */

int namespace_hello(struct memd_server *s, const struct memd_request *req,
		    const char *peer, struct namespace **out)
{
	XXH128_hash_t h;
	struct namespace *ns;

	h = secret_hash(s, req);
	ns = namespace_find(s, req->name, req->name_len);
	if (ns) {
		if (!hash_equal_ct(h, ns->secret_hash)) {
			counter_add(&s->c.bad_secrets, 1);
			say(s, MEMD_LOG_WARN, "refused %s: wrong secret for namespace '%s'",
			    peer, ns->name);
			return MEMD_ST_BAD_SECRET;
		}
		*out = ns;
		return MEMD_ST_OK;
	}
	if (!budget_allows(s, namespace_bytes())) {
		counter_add(&s->c.full_refusals, 1);
		say(s, MEMD_LOG_INFO, "capacity reached: no room for namespace "
		    "'%.*s' of %s", (int)req->name_len, req->name, peer);
		return MEMD_ST_FULL;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns || memd_index_init(&ns->index, s->index_key)) {
		free(ns);
		return MEMD_ST_FULL;
	}
	memcpy(ns->name, req->name, req->name_len);
	ns->secret_hash = h;
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
	status = reserve_for_put(s, ns, peer, fresh, req->npages);
	if (status != MEMD_ST_OK)
		return status;
	index_migrate_some(s, ix, req->npages);
	for (size_t i = 0; i < req->nruns; i++) {
		const struct memd_run_ref *r = &req->runs[i];

		for (uint32_t j = 0; j < r->count; j++) {
			const uint8_t *rec = r->records + (size_t)j * MEMD_RECORD;

			if (!memd_index_find(ix, r->first + j, &slot)) {
				slot = slot_alloc(&s->slabs);
				memd_index_insert(ix, r->first + j, slot);
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
		memd_record_encode(out, *slot_sum(&s->slabs, slots[i]),
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
			slot_free(&s->slabs, slot);
			counter_add(&s->c.pages, -1);
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
	if (getrandom(s->key, sizeof(s->key), 0) != sizeof(s->key))
		return errmsg_set(err, -EIO, "getrandom: %s", strerror(errno));
	if (sodium_init() < 0)
		return errmsg_set(err, -EIO, "libsodium cannot start");
	crypto_shorthash_keygen(s->index_key);
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
	explicit_bzero(s->index_key, sizeof(s->index_key));
}
