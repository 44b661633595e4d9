/* SPDX-License-Identifier: MIT */
/*
 * The page map of a VM that pages (memory/pager.h), for a migration that
 * leaves its remote pages in place (issue 16): what each guest page is
 * at the moment the source pager was quiesced, and the store's handover
 * credentials (remote/store_handover.h).  pager_handover_begin() fills
 * it on the source; the destination loads it, opens the store from it
 * (pagemap_open_store()) and gives it to pager_import().
 *
 *   SEND    the migration stream carries the page (it was resident, or
 *           its store cannot hand over: pager_read_page() gets it)
 *   ZERO    all zero: nothing is sent, the destination's first touch
 *           gets a zero page
 *   REMOTE  in the store at generation gen[page], its current copies on
 *           the servers where[page] names (page_store_where()): not
 *           sent, the destination fetches it on first touch
 *
 * The blob (util/state_buf.h, little-endian), version 1:
 *   u32 magic PAGEMAP_MAGIC, u32 version, u64 ram_pages
 *   bool has_store; with it:
 *     u8 kind (1: memd), blob namespace name (1..64, [A-Za-z0-9._-]),
 *     bytes ns_key[32], bool sealed, bytes seal_key[32] when sealed,
 *     u8 nservers (1..16), u8 replicas (1..nservers),
 *     u8 min_replicas (1..replicas), u64 down_after_ms (0: never, at
 *     most 24 h), then per server: blob label (1..263 printable bytes,
 *     no ',' nor space), bool identified, bytes identity[16]
 *   u64 nruns (1..ram_pages), then runs covering the pages in order:
 *     u8 kind (1 SEND, 2 ZERO, 3 REMOTE), u8 flags (bit 0: GENS, no
 *     other), u64 first (the previous run's end), u64 count (>= 1);
 *     with GENS, count u32 generations (each >= 1; without, every
 *     page's is 0); a REMOTE run (needs GENS and has_store) then has
 *     count u32 where (servers 0..nservers-1, at least one, and
 *     PAGE_STORE_WHERE_SHORT; no other bit); two runs in a row differ
 *     in kind or flags (a map has one encoding)
 *   nothing after the last run.
 * Every page's generation crosses over, not only a REMOTE page's: the
 * store may hold an older copy of any page under the same seal key, so
 * the destination's next put of it must take the generation after the
 * source's last (page_seal.h: a nonce is never used twice).
 * The blob is untrusted input on the destination: pagemap_load() checks
 * every field (and that ram_pages is the one the destination's config
 * says) and refuses the whole blob, naming what is wrong; its memory is
 * bounded by ram_pages (9 bytes a page), which the caller vouches for.
 *
 * Threads: a pagemap is plain data, used by one thread at a time.
 */
#ifndef RACKVM_MIGRATE_PAGEMAP_H
#define RACKVM_MIGRATE_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/store_handover.h"
#include "util/errmsg.h"
#include "util/state_buf.h"

#define PAGEMAP_MAGIC 0x504d5652u	/* "RVMP" */
#define PAGEMAP_VERSION 1u
#define PAGEMAP_RUN_GENS 1u		/* a run's flags */

enum pagemap_kind {
	PAGEMAP_SEND = 1,
	PAGEMAP_ZERO = 2,
	PAGEMAP_REMOTE = 3,
};

struct pagemap {
	uint64_t ram_pages;
	uint8_t *kind;			/* ram_pages, enum pagemap_kind */
	uint32_t *gen;			/* ram_pages: the last put's (0: none) */
	uint32_t *where;		/* ram_pages; REMOTE only, else 0 */
	bool has_store;
	struct page_store_creds store;	/* with has_store */
	uint64_t nsend, nzero, nremote;	/* pages of each kind */
};

/* Every page ZERO, no store; -ENOMEM. */
int pagemap_alloc(uint64_t ram_pages, struct pagemap **out);
/* Wipes the keys and frees; NULL is fine. */
void pagemap_free(struct pagemap *m);

/* Appends the blob to @b: 0, or -ENOMEM, or -EINVAL for a map that
 * breaks the rules above (a bug of the caller's). */
int pagemap_save(const struct pagemap *m, struct state_buf *b);
/* Parses @len bytes of @data for a VM of @ram_pages pages: 0 and a new
 * map, or -EBADMSG (-ENOMEM) with the reason in @err. */
int pagemap_load(const void *data, size_t len, uint64_t ram_pages,
		 struct pagemap **out, struct errmsg *err);

/* The destination's store, from the map's credentials (the store's
 * ADOPTING mode, store_handover.h); -EINVAL if the map has no store. */
int pagemap_open_store(const struct pagemap *m, struct page_store **out,
		       struct errmsg *err);

#endif
