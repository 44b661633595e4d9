/* SPDX-License-Identifier: MIT */
/*
 * The backends' constructors, for page_store_open() only.  @args is the
 * part of the --mem-backend spec after "file:", "memd:" or "memcached:".
 */
#ifndef RACKVM_REMOTE_STORE_BACKENDS_H
#define RACKVM_REMOTE_STORE_BACKENDS_H

#include <stdbool.h>

#include "remote/page_store.h"

int store_file_open(const char *args, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err);
int store_memd_open(const char *args, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err);
int store_memcached_open(const char *args, const struct page_store_params *p,
			 struct page_store **out, struct errmsg *err);
/* The destination's end of a handover (store_handover.h). */
struct page_store_creds;
int store_memd_import(const struct page_store_creds *c, uint64_t ram_pages,
		      const uint32_t *where, struct page_store **out,
		      struct errmsg *err);

/* Every run non-empty and inside guest RAM (@ram_pages), with data and
 * tags and gens when @need_buffers (put and get; drop needs none).  @who names
 * the store in the message. */
int page_runs_check(const char *who, const struct page_run *runs, size_t n,
		    uint64_t ram_pages, bool need_buffers, struct errmsg *err);

/* -EBADMSG: page @page did not open at generation @gen (the message for
 * @err). */
int page_store_refused(struct page_store *s, uint64_t page, uint32_t gen,
		       struct errmsg *err);

#endif
