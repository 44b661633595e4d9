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
 * working-set monitor's bitmaps).  Every page travels with a 64-bit
 * checksum (page_checksum()), computed by the pager when it evicts the
 * page and stored beside it by the backend, which hands it back
 * unchanged with the page; the pager checks it before the guest can see
 * the page, so a backend bug or a bit flip on the wire is an error,
 * never silent corruption.  Replicating backends check it too, to fall
 * back to another copy.
 *
 * Zero pages never reach a store: the pager remembers them locally.
 *
 * Requests come in batches of runs; a run is one or more contiguous
 * pages that a backend should move as one request where its protocol
 * allows (merging is the pager's job, batching the backend's).
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
 *   -EBADMSG a page came back with a bad checksum from every copy;
 *   -EACCES  the server refused our namespace secret (memd: at open, or
 *            when every server that may hold a page refused us);
 *   other    fatal for this store.
 * A failed put leaves the pages' previous stored copies (if any) as they
 * were or makes them unreadable (-ENOENT), never silently replaced by
 * part of the new data.
 */
#ifndef RACKVM_REMOTE_PAGE_STORE_H
#define RACKVM_REMOTE_PAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/page.h"

#define PAGE_STORE_PAGE ((unsigned)PAGE_SIZE)

struct page_run {
	uint64_t first;		/* page number of the run's first page */
	uint32_t count;		/* pages in the run, >= 1 */
	uint8_t *data;		/* count * PAGE_STORE_PAGE bytes */
	uint64_t *sums;		/* count checksums */
};

struct page_store;

/* What a replicating store says of its copies. */
struct page_store_stats {
	uint64_t under_replicated;	/* stored with fewer copies than asked
					 * for; being put back */
	uint64_t lost;			/* no copy left anywhere (the pager
					 * fails on them when they are needed) */
	uint64_t stored;		/* pages it holds (0: not counted) */
};

struct page_store_ops {
	/* Stores every page of every run (replacing older copies). */
	int (*put)(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);
	/* Fills data and sums of every run. */
	int (*get)(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err);
	/* Forgets the pages (data and sums unused); dropping a page the
	 * store does not hold is not an error. */
	int (*drop)(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err);
	/* One line for humans: "memd 10.0.0.2:7070,10.0.0.3:7070 replicas=2". */
	void (*describe)(struct page_store *s, char *buf, size_t len);
	/* Its counters; NULL for a store that has none (all zero). */
	void (*stats)(struct page_store *s, struct page_store_stats *out);
	void (*destroy)(struct page_store *s);
};

/* Backends embed this first and fill ops. */
struct page_store {
	const struct page_store_ops *ops;
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

/* Opens the store a --mem-backend SPEC names. */
int page_store_open(const char *spec, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err);

static inline int page_store_put(struct page_store *s,
				 const struct page_run *runs, size_t n,
				 struct errmsg *err)
{
	return s->ops->put(s, runs, n, err);
}

static inline int page_store_get(struct page_store *s,
				 const struct page_run *runs, size_t n,
				 struct errmsg *err)
{
	return s->ops->get(s, runs, n, err);
}

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

static inline void page_store_destroy(struct page_store *s)
{
	if (s)
		s->ops->destroy(s);
}

/* XXH64 of the page, seeded with its page number: a page handed back
 * under the wrong number fails the check as well as a corrupted one. */
uint64_t page_checksum(uint64_t page, const void *data);

#endif
