/* SPDX-License-Identifier: MIT */
/*
 * The memcached page store's insides, shared by its two files and by
 * nothing else (the design is in store_memcached.c):
 *   store_memcached.c       the page_store ops: keys, values, batches
 *   store_memcached_pool.c  libmemcached: the handle configured from the
 *                           spec, the pool of its clones the ops use, and
 *                           what its return codes mean for a page
 *
 * Contract: struct mc_store is filled by store_memcached_open() and then
 * read-only, but for the pool (idle, n_idle, n_made, under lock).  An op
 * takes a handle with mc_handle_take() and gives it back with
 * mc_handle_give() before it returns, whatever happened; a handle serves
 * one thread at a time.
 */
#ifndef RACKVM_REMOTE_STORE_MEMCACHED_INTERNAL_H
#define RACKVM_REMOTE_STORE_MEMCACHED_INTERNAL_H

#include <libmemcached/memcached.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/store_backends.h"
#include "util/errmsg.h"

#define MAX_HANDLES 16
#define MAX_HOST 255
#define NAMESPACE_MAX 64		/* page_store.h's bound */
#define PAGE_TAG_BYTES 16		/* a page's keyed hash */
/* "<namespace>:<page tag in hex>" and a NUL */
#define KEY_MAX (NAMESPACE_MAX + 1 + 2 * PAGE_TAG_BYTES + 1)

struct mc_store {
	struct page_store base;
	memcached_st *proto;	/* configured once, only ever cloned */
	pthread_mutex_t lock;
	pthread_cond_t handle_free;
	memcached_st *idle[MAX_HANDLES];
	unsigned n_idle, n_made;
	uint64_t ram_pages;
	char prefix[KEY_MAX];	/* "<namespace>:" */
	/* what page numbers are hashed with: derived from the secret */
	uint8_t page_key[crypto_generichash_KEYBYTES];
	char *servers;		/* the spec, for describe */
	char *namespace_name;
};

/* One page of a batch: where it comes from or goes to, and its key. */
struct mc_page {
	uint64_t page;
	uint8_t *data;
	uint8_t *tag;			/* PAGE_TAG_SIZE bytes */
	bool done;		/* fetched (get) or verified stored (put) */
	char key[KEY_MAX];
	size_t key_len;
};

/* ---- store_memcached_pool.c ---------------------------------------------- */

/* A handle for this thread's op; waits while all MAX_HANDLES are busy. */
memcached_st *handle_take(struct mc_store *ms, struct errmsg *err);
void handle_give(struct mc_store *ms, memcached_st *h);

/* Setting up ms->proto when the store opens: the spec's servers, then
 * the behaviours every clone inherits. */
int add_servers(struct mc_store *ms, const char *args, struct errmsg *err);
int mc_configure(memcached_st *h, struct errmsg *err);

/* A return code that means the server cannot be reached. */
bool mc_unreachable(memcached_return_t rc);
/* -EAGAIN, -ENOENT, -ENOSPC, -EACCES or -EIO. */
int mc_errno(memcached_return_t rc);
void server_of(memcached_st *h, const struct mc_page *p, char *buf,
	       size_t len);
int page_error(memcached_st *h, const struct mc_page *p, const char *what,
	       memcached_return_t rc, struct errmsg *err);

#endif
