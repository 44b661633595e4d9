/* SPDX-License-Identifier: MIT */
/*
 * Page stores: where the pager (memory/pager.h) keeps guest pages it has
 * evicted.  One contract, several backends, one file each:
 *   file:PATH                          local swap file (store_file.c)
 *   memd:HOST:PORT[,HOST:PORT...][,replicas=N][,min_replicas=K]
 *        [,down_after=DURATION|never]  rackvm memd servers (store_memd.c);
 *                                      a server unreachable for
 *                                      down_after (default 30s) has its
 *                                      copies written off and placed on
 *                                      other servers
 *   memcached:HOST:PORT[,HOST:PORT...] a memcached pool (store_memcached.c)
 *
 * Pages are named by their page number: the byte offset in guest RAM's
 * memfd divided by 4096 (memfd order, the same numbering as the
 * working-set monitor's bitmaps), and each put of a page carries a
 * generation, larger than that of any earlier put of the page (the
 * pager counts them per page).
 *
 * Pages are sealed (page_seal.h): page_store_put() encrypts each page
 * in place under the VM's own key, with its number, generation and the
 * namespace as associated data, and passes the backend the ciphertext
 * and a 16-byte tag; page_store_get() takes the generation the caller
 * expects and opens what the backend brought back, so a page that is
 * not exactly what this VM last put there (another page, another VM's,
 * an older version, a forgery, a bit flip) is -EBADMSG, never data.
 * Backends store the ciphertext and tag as they are and hand them back
 * unchanged; replicating backends open each copy themselves (to fall
 * back to another copy) and say so in struct page_store's opens.  With
 * seal=off (trusted racks) pages travel in clear and the tag is a
 * keyless XXH3-128 over the page seeded by number, generation and
 * namespace: the same checks against accidents, none against an
 * attacker.
 *
 * Zero pages never reach a store: the pager remembers them locally.
 *
 * Requests come in batches of runs; a run is one or more contiguous
 * pages that a backend should move as one request where its protocol
 * allows (merging is the pager's job, batching the backend's).
 *
 * A store that can leave its pages in place when the VM migrates (memd)
 * sets ops->handover: remote/store_handover.h.
 *
 * Thread safety: every op may be called from several threads at once
 * (the pager's fault threads and its evictor).
 *
 * Errors (returned as -errno, reason in @err):
 *   -EAGAIN  no server holding a copy can be reached right now; nothing
 *            was lost, the caller may retry later (the pager pauses the
 *            VM meanwhile);
 *   -ENOSPC  the store refused a put because it is full;
 *   -ENOENT  a get asked for a page the store does not hold;
 *   -EBADMSG no copy of a page opened (page_seal.h): every one was
 *            damaged, forged, another page's or an older version;
 *   -EACCES  the server refused our namespace secret (memd: at open, or
 *            when every server that may hold a page refused us);
 *   other    fatal for this store.
 * A failed put leaves the pages' previous stored copies (if any) as they
 * were or makes them unreadable (-ENOENT), never silently replaced by
 * part of the new data.
 */
#ifndef RACKVM_REMOTE_PAGE_STORE_H
#define RACKVM_REMOTE_PAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "remote/page_seal.h"
#include "util/page.h"

#define PAGE_STORE_PAGE ((unsigned)PAGE_SIZE)

struct page_run {
	uint64_t first;		/* page number of the run's first page */
	uint32_t count;		/* pages in the run, >= 1 */
	uint8_t *data;		/* count * PAGE_STORE_PAGE bytes */
	uint8_t *tags;		/* count * PAGE_TAG_SIZE bytes */
	const uint32_t *gens;	/* count generations (put and get) */
};

struct page_store;
struct page_store_handover_ops;

/* What a replicating store says of its copies. */
struct page_store_stats {
	uint64_t under_replicated;	/* stored with fewer copies than asked
					 * for; being put back */
	uint64_t lost;			/* no copy left anywhere (the pager
					 * fails on them when they are needed) */
	uint64_t stored;		/* pages it holds (0: not counted) */
};

struct page_store_ops {
	/* Stores every page of every run (replacing older copies): data
	 * and tags as given (sealed already), gens to open copies with. */
	int (*put)(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);
	/* Fills data and tags of every run; a backend with opens set
	 * opens them too (page_seal_open() with gens). */
	int (*get)(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);
	/* Forgets the pages (data, tags and gens unused); dropping a page the
	 * store does not hold is not an error. */
	int (*drop)(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err);
	/* One line for humans: "memd 10.0.0.2:7070,10.0.0.3:7070 replicas=2". */
	void (*describe)(struct page_store *s, char *buf, size_t len);
	/* Its counters; NULL for a store that has none (all zero). */
	void (*stats)(struct page_store *s, struct page_store_stats *out);
	void (*destroy)(struct page_store *s);
	/* Handing the pages over to another process (store_handover.h);
	 * NULL for a store whose pages cannot stay in place (file,
	 * memcached: the migration sends them). */
	const struct page_store_handover_ops *handover;
};

/* Backends embed this first and fill ops (and opens); page_store_open()
 * sets seal once the backend is open, and destroys it after the
 * backend. */
struct page_store {
	const struct page_store_ops *ops;
	struct page_seal *seal;
	bool opens;		/* get hands back pages opened already */
};

/* Who the pages belong to: a memd namespace (and the prefix of
 * memcached keys).  The secret guards a memd namespace: only a client
 * that registers with the same secret can read its pages. */
struct page_store_params {
	const char *namespace_name;	/* [A-Za-z0-9._-]{1,64} */
	const uint8_t *secret;
	size_t secret_len;		/* 1..64 bytes */
	uint64_t ram_pages;		/* guest RAM size in pages: the page
					 * numbers a store will see are below */
};

/* Opens the store a --mem-backend SPEC names.  Every kind takes the
 * option seal=on|off (default on) as one of its comma-separated items;
 * page_store_open() takes it out before the backend sees the spec. */
int page_store_open(const char *spec, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err);

/* Seals every page in place (the buffers hold ciphertext afterwards),
 * then stores them.  Every page's generation must be new for it. */
int page_store_put(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);

/* Gets every page in clear into data, or -EBADMSG naming a page that
 * did not open at the generation in gens (tags is scratch). */
int page_store_get(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);

static inline int page_store_drop(struct page_store *s,
				  const struct page_run *runs, size_t n,
				  struct errmsg *err)
{
	return s->ops->drop(s, runs, n, err);
}

static inline void page_store_stats(struct page_store *s,
				    struct page_store_stats *out)
{
	*out = (struct page_store_stats){ 0 };
	if (s->ops->stats)
		s->ops->stats(s, out);
}

void page_store_destroy(struct page_store *s);

/* The backend's line for humans, then " seal=off" if pages go in clear
 * (sealed is the default and says nothing). */
void page_store_describe(struct page_store *s, char *buf, size_t len);

#endif
