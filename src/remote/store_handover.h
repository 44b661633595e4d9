/* SPDX-License-Identifier: MIT */
/*
 * Handing a page store's pages over to another process, so that a VM
 * that migrates leaves its evicted pages where they are (issue 16): the
 * destination reads them from the same memd namespace instead of having
 * them copied.
 *
 * What crosses over (struct page_store_creds): the servers as the spec
 * named them (their order and labels decide placement), the replica
 * settings, the namespace name and its key K (memd_proto.h: derived from
 * the secret; the secret itself is never kept), the page seal's key
 * (page_seal.h) and what the source knew of each server (its identity,
 * so that a server that restarted or lost the namespace in between is
 * seen as having lost its copies).  And per stored page, where its
 * current copies may be (page_store_where()).  These keys open every
 * page of the VM: they travel in the migration stream, which carries
 * the VM's RAM in clear anyway; whoever may read that stream may read
 * the pages, nobody else.
 *
 * The namespace changes hands in steps:
 *   source       BEGIN    no background work on the namespace any more
 *                         (memd: its maintenance thread stopped: no
 *                         repair, recovery or upkeep); the pager has
 *                         stopped its own requests; now export
 *   destination  page_store_import(): opens the same namespace with K
 *                         (the servers' handshake proves K; a client
 *                         without the secret is refused), its placement
 *                         as exported, and in ADOPTING mode: it gets
 *                         pages but does no background work but keeping
 *                         its connections alive, and its destruction
 *                         does not drop the namespace
 *   source       CANCEL   (the migration failed before GO) back to
 *                         normal, as if nothing happened; or
 *                RELEASE  (GO was sent) it lets go: destroying it no
 *                         longer drops the namespace, and it does
 *                         nothing on it any more
 *   destination  COMMIT   (GO came) the namespace is its own: background
 *                         work resumes, destroying it drops it.
 * The two ends never write to the namespace at the same time: the
 * source writes nothing between BEGIN and CANCEL, the destination
 * nothing (the pager puts and drops nothing) before COMMIT.
 *
 * Threads: the steps are called with no op in flight on the store.
 */
#ifndef RACKVM_REMOTE_STORE_HANDOVER_H
#define RACKVM_REMOTE_STORE_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "remote/page_store.h"
#include "util/errmsg.h"

#define PAGE_STORE_MAX_SERVERS 16
#define PAGE_STORE_LABEL_MAX 264	/* HOST:PORT with its NUL */
#define PAGE_STORE_KEY_SIZE 32
#define PAGE_STORE_ID_SIZE 16
/* page_store_where(): bits 0..15 the servers that may hold a current
 * copy; this bit: the page has fewer copies than asked for. */
#define PAGE_STORE_WHERE_SHORT (1u << 16)

enum page_store_kind {
	PAGE_STORE_KIND_MEMD = 1,
};

struct page_store_server {
	char label[PAGE_STORE_LABEL_MAX];	/* as in the spec */
	bool identified;			/* identity is known */
	uint8_t identity[PAGE_STORE_ID_SIZE];
};

struct page_store_creds {
	enum page_store_kind kind;
	char namespace_name[65];
	uint8_t ns_key[PAGE_STORE_KEY_SIZE];	/* memd: K */
	bool sealed;
	uint8_t seal_key[PAGE_STORE_KEY_SIZE];	/* when sealed */
	unsigned nservers;			/* 1..16 */
	unsigned replicas;			/* 1..nservers */
	unsigned min_replicas;			/* 1..replicas */
	int64_t down_after_ms;			/* 0: never */
	struct page_store_server server[PAGE_STORE_MAX_SERVERS];
};

enum page_store_step {
	PAGE_STORE_BEGIN,
	PAGE_STORE_CANCEL,
	PAGE_STORE_RELEASE,
	PAGE_STORE_COMMIT,
};

/* A backend's part (page_store_ops.handover). */
struct page_store_handover_ops {
	int (*step)(struct page_store *s, enum page_store_step step,
		    struct errmsg *err);
	void (*creds)(struct page_store *s, struct page_store_creds *out);
	uint32_t (*where)(struct page_store *s, uint64_t page);
};

/* True if @s can leave its pages in place for another process. */
static inline bool page_store_can_hand_over(const struct page_store *s)
{
	return s->ops->handover != NULL;
}

/* One step as above: 0, -ENOTSUP for a store that cannot hand over,
 * -EINVAL for a step out of order. */
int page_store_handover(struct page_store *s, enum page_store_step step,
			struct errmsg *err);
/* After BEGIN: what the destination needs (seal key included; wipe it
 * with page_store_creds_wipe()).  -ENOTSUP as above. */
int page_store_export(struct page_store *s, struct page_store_creds *out,
		      struct errmsg *err);
/* After BEGIN: where the current copies of stored page @page may be
 * (0: the store does not hold it). */
uint32_t page_store_where(struct page_store *s, uint64_t page);

/* The destination: the store @c describes, for @ram_pages of guest RAM,
 * with the pages @where says stored (where[page], as exported; 0 for a
 * page the store does not hold), in ADOPTING mode.  0 or -errno (-EACCES:
 * a server refused K). */
int page_store_import(const struct page_store_creds *c, uint64_t ram_pages,
		      const uint32_t *where, struct page_store **out,
		      struct errmsg *err);

void page_store_creds_wipe(struct page_store_creds *c);

#endif
