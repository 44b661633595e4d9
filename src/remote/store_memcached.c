// SPDX-License-Identifier: MIT
/*
 * The memcached page store (memcached:HOST:PORT[,HOST:PORT...]), through
 * libmemcached: binary protocol, TCP_NODELAY, keys spread over the
 * servers by consistent hashing (ketama), so adding a server moves only
 * its share of the pages.
 *
 * memcached is a cache: a server started without -M evicts the least
 * recently used items under memory pressure, and a page evicted is a page
 * of guest memory lost (get says -ENOENT, naming the page and server);
 * so is every page of a server that restarts.
 * Run lending servers with -M: memcached then refuses a set when full,
 * which the pager sees as -ENOSPC and answers by keeping the page.
 * memcached is also unauthenticated: it belongs on a trusted rack
 * network.
 *
 * Keys are "<namespace>:<tag>", the tag being a page number's keyed
 * hash: BLAKE2b-128 (crypto_generichash) of the page number (8 bytes,
 * little-endian) under a 32-byte key derived from the namespace secret
 * by Argon2id (crypto_pwhash: 2 passes over 19 MiB, salted with a
 * BLAKE2b of the namespace name), in lowercase hex.  That keeps two VMs
 * that share a namespace name but not a secret apart, as before; and as
 * anyone who can talk to a server can list its keys (lru_crawler
 * metadump), the keys now give away neither page numbers nor a fast
 * hash of the secret to test guesses against: each guess costs an
 * Argon2id run.  It is still not access control: such a client can
 * delete or overwrite values, which the page's seal (page_seal.h: it
 * covers page number, generation and namespace) turns into a failed
 * get, never into wrong data.
 * Values are the page's tag (16 bytes) then its 4096 bytes, sealed
 * unless seal=off; a value of any other length comes back as -EBADMSG.
 *
 * Batches:
 *   get   one multi-get over all the batch's keys: every server involved
 *         gets its keys in one go and all answer in parallel, one round
 *         trip.  Keys missing from the answers are asked again one by one
 *         for the exact reason (evicted: -ENOENT; server down: -EAGAIN).
 *   put   quiet sets (the server answers only on failure) streamed to
 *         every server, then a multi-get of the batch to check that each
 *         page is stored as sent.  A page that is not is set again with a
 *         reply, which says why (full: -ENOSPC; down: -EAGAIN).  Reading
 *         back costs the bytes once more but not a round trip per page;
 *         libmemcached's buffered requests would be cheaper but drop the
 *         sets' answers, and with the binary protocol they desynchronised
 *         the connection in our tests.
 *   drop  one delete per page, with a reply: a quiet delete of a missing
 *         key gets an answer libmemcached would take for the next
 *         request's.  So a drop costs a round trip per page.
 *
 * A server that cannot be reached makes every op touching its pages fail
 * with -EAGAIN; libmemcached retries its connection after
 * RETRY_TIMEOUT_S, so a server that comes back is used again.  Failed
 * servers are never ejected from the ring: their keys would move to
 * another server, where the pages are not.
 *
 * Threads: a libmemcached handle serves one thread at a time, so the
 * store keeps a pool of clones of one configured handle, made on demand,
 * at most MAX_HANDLES (an op waits when all are busy).
 *
 * This file holds the ops; setting up libmemcached, the pool and its
 * errors are store_memcached_pool.c's (store_memcached_internal.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/store_memcached_internal.h"
#include "util/le.h"

#define TAG_BYTES PAGE_TAG_SIZE	/* the page's tag (page_seal.h) */
#define VALUE_BYTES (TAG_BYTES + PAGE_STORE_PAGE)

/* A batch's pages sorted by page number, with the key arrays mget
 * takes. */
struct mc_batch {
	struct mc_page *pages;
	const char **keys;
	size_t *key_lens;
	size_t n;
};

static struct mc_store *to_mc(struct page_store *s)
{
	return (struct mc_store *)s;
}

/* --- values ------------------------------------------------------------ */

static void value_pack(uint8_t *v, const uint8_t *tag, const uint8_t *data)
{
	memcpy(v, tag, TAG_BYTES);
	memcpy(v + TAG_BYTES, data, PAGE_STORE_PAGE);
}

/* Checks a value's length (it comes from the network), then hands the
 * page back. */
static int value_unpack(memcached_st *h, struct mc_page *p, const void *v,
			size_t len, struct errmsg *err)
{
	char server[MAX_HOST + 8];

	if (len != VALUE_BYTES) {
		server_of(h, p, server, sizeof(server));
		return errmsg_set(err, -EBADMSG,
				  "memcached: %s returned %zu bytes for page 0x%llx, "
				  "expected %u",
				  server, len, (unsigned long long)p->page,
				  VALUE_BYTES);
	}
	memcpy(p->tag, v, TAG_BYTES);
	memcpy(p->data, (const uint8_t *)v + TAG_BYTES, PAGE_STORE_PAGE);
	return 0;
}

/* --- keys ---------------------------------------------------------------- */

#define KDF_OPSLIMIT 2
#define KDF_MEMLIMIT (19u << 20)
/* BLAKE2b's key for the salt: the salt is the namespace's, in this use */
#define SALT_DOMAIN "rackvm memcached page keys, v1"

/* ms->prefix and ms->page_key for the namespace @p names. */
static int keys_init(struct mc_store *ms, const struct page_store_params *p,
		     struct errmsg *err)
{
	uint8_t salt[crypto_pwhash_SALTBYTES];

	if (sodium_init() < 0)
		return errmsg_set(err, -EIO, "memcached: libsodium cannot start");
	snprintf(ms->prefix, sizeof(ms->prefix), "%s:", p->namespace_name);
	crypto_generichash(salt, sizeof(salt), (const uint8_t *)p->namespace_name,
			   strlen(p->namespace_name), (const uint8_t *)SALT_DOMAIN,
			   strlen(SALT_DOMAIN));
	if (crypto_pwhash(ms->page_key, sizeof(ms->page_key),
			  (const char *)p->secret, p->secret_len, salt,
			  KDF_OPSLIMIT, KDF_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13))
		return errmsg_set(err, -ENOMEM, "memcached: out of memory for "
				  "the key derivation");
	return 0;
}

/* Page @page's key into @key (KEY_MAX bytes); its length. */
static size_t page_key(const struct mc_store *ms, uint64_t page, char *key)
{
	uint8_t in[8], tag[PAGE_TAG_BYTES];
	size_t plen = strlen(ms->prefix);

	put_le64(in, page);
	crypto_generichash(tag, sizeof(tag), in, sizeof(in), ms->page_key,
			   sizeof(ms->page_key));
	memcpy(key, ms->prefix, plen);
	sodium_bin2hex(key + plen, KEY_MAX - plen, tag, sizeof(tag));
	return plen + 2 * sizeof(tag);
}

/* --- batches ------------------------------------------------------------ */

static int check_runs(const struct mc_store *ms, const struct page_run *runs,
		      size_t n, bool need_buffers, size_t *pages,
		      struct errmsg *err)
{
	int ret = page_runs_check("memcached", runs, n, ms->ram_pages,
				  need_buffers, err);

	*pages = 0;
	for (size_t i = 0; !ret && i < n; i++)
		*pages += runs[i].count;
	return ret;
}

/* By key: an answer carries only its key. */
static int key_cmp(const void *a, const void *b)
{
	const struct mc_page *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static void batch_free(struct mc_batch *b)
{
	free(b->pages);
	free(b->keys);
	free(b->key_lens);
}

static int batch_build(const struct mc_store *ms, const struct page_run *runs,
		       size_t n, bool need_buffers, struct mc_batch *b,
		       struct errmsg *err)
{
	size_t total, k = 0;
	int ret = check_runs(ms, runs, n, need_buffers, &total, err);

	memset(b, 0, sizeof(*b));
	if (ret)
		return ret;
	b->n = total;
	if (!total)
		return 0;
	b->pages = calloc(total, sizeof(*b->pages));
	b->keys = calloc(total, sizeof(*b->keys));
	b->key_lens = calloc(total, sizeof(*b->key_lens));
	if (!b->pages || !b->keys || !b->key_lens) {
		batch_free(b);
		return errmsg_set(err, -ENOMEM, "memcached: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < runs[i].count; j++, k++) {
			struct mc_page *p = &b->pages[k];

			p->page = runs[i].first + j;
			if (need_buffers) {
				p->data = runs[i].data + (size_t)j * PAGE_STORE_PAGE;
				p->tag = runs[i].tags + (size_t)j * TAG_BYTES;
			}
			p->key_len = page_key(ms, p->page, p->key);
		}
	}
	/* sorted, so that an answer's key finds its page by bsearch */
	qsort(b->pages, total, sizeof(*b->pages), key_cmp);
	for (k = 0; k < total; k++) {
		b->keys[k] = b->pages[k].key;
		b->key_lens[k] = b->pages[k].key_len;
	}
	return 0;
}

/* The page an answer's key names, if this batch asked for it.  The key
 * comes from the network: only one of exactly a key's length is looked
 * up. */
static struct mc_page *batch_find(const struct mc_store *ms,
				  struct mc_batch *b, const char *key,
				  size_t len)
{
	struct mc_page probe;

	if (len != strlen(ms->prefix) + 2 * PAGE_TAG_BYTES)
		return NULL;
	memcpy(probe.key, key, len);
	probe.key[len] = 0;
	return bsearch(&probe, b->pages, b->n, sizeof(*b->pages), key_cmp);
}

/* --- multi-get ------------------------------------------------------------ */

/* What to do with each answer of a multi-get. */
typedef int (*answer_fn)(memcached_st *h, struct mc_page *p, const void *v,
			 size_t len, struct errmsg *err);

/*
 * One multi-get of the whole batch; @answer marks the pages it accepts
 * done.  Answers are read to the end whatever they say, so the
 * connections stay in step.  Pages left undone are the caller's to chase:
 * a server that is down simply does not answer here.
 */
static int multi_get(struct mc_store *ms, memcached_st *h, struct mc_batch *b,
		     answer_fn answer, struct errmsg *err)
{
	memcached_result_st storage, *res;
	memcached_return_t rc;
	bool stray = false;
	int ret = 0;

	rc = memcached_mget(h, b->keys, b->key_lens, b->n);
	if (memcached_failed(rc) && !mc_unreachable(rc) && rc != MEMCACHED_NOTFOUND)
		return errmsg_set(err, mc_errno(rc), "memcached: multi-get: %s",
				  memcached_strerror(h, rc));
	res = memcached_result_create(h, &storage);
	if (!res)
		return errmsg_set(err, -ENOMEM, "memcached: out of memory");
	while (memcached_fetch_result(h, res, &rc)) {
		struct mc_page *p = batch_find(ms, b, memcached_result_key_value(res),
					       memcached_result_key_length(res));
		int r;

		if (!p) {
			stray = true;
			continue;
		}
		if (p->done)
			continue;
		r = answer(h, p, memcached_result_value(res),
			   memcached_result_length(res), err);
		if (r && !ret)
			ret = r;
	}
	memcached_result_free(res);
	if (stray || (memcached_failed(rc) && rc != MEMCACHED_END &&
		      rc != MEMCACHED_NOTFOUND && !mc_unreachable(rc))) {
		/* out of step with a server: start the connections afresh */
		memcached_quit(h);
		if (!ret)
			ret = errmsg_set(err, -EIO,
					 "memcached: multi-get answered %s",
					 stray ? "a key we did not ask for" :
						 memcached_strerror(h, rc));
	}
	return ret;
}

/* --- ops ------------------------------------------------------------------ */

static int answer_get(memcached_st *h, struct mc_page *p, const void *v,
		      size_t len, struct errmsg *err)
{
	int ret = value_unpack(h, p, v, len, err);

	p->done = !ret;
	return ret;
}

/* One page the multi-get did not bring: ask alone, for the reason. */
static int get_one(memcached_st *h, struct mc_page *p, struct errmsg *err)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t len = 0;
	char *v = memcached_get(h, p->key, p->key_len, &len, &flags, &rc);
	int ret;

	if (!v && rc == MEMCACHED_SUCCESS)	/* an empty value */
		return value_unpack(h, p, "", 0, err);
	if (!v)
		return page_error(h, p, "get", rc, err);
	ret = value_unpack(h, p, v, len, err);
	free(v);
	return ret;
}

static int mc_get(struct page_store *s, const struct page_run *runs,
		  size_t n, struct errmsg *err)
{
	struct mc_store *ms = to_mc(s);
	struct mc_batch b;
	memcached_st *h;
	int ret = batch_build(ms, runs, n, true, &b, err);

	if (ret || !b.n)
		return ret;
	h = handle_take(ms, err);
	if (!h) {
		batch_free(&b);
		return -ENOMEM;
	}
	ret = multi_get(ms, h, &b, answer_get, err);
	for (size_t i = 0; i < b.n && !ret; i++)
		if (!b.pages[i].done)
			ret = get_one(h, &b.pages[i], err);
	handle_give(ms, h);
	batch_free(&b);
	return ret;
}

/* Accepts a stored value only if it is exactly what we sent. */
static int answer_put(memcached_st *h, struct mc_page *p, const void *v,
		      size_t len, struct errmsg *err)
{
	const uint8_t *stored = v;

	(void)h;
	(void)err;
	p->done = len == VALUE_BYTES && !memcmp(stored, p->tag, TAG_BYTES) &&
		  !memcmp(stored + TAG_BYTES, p->data, PAGE_STORE_PAGE);
	return 0;
}

static int set_pages(memcached_st *h, struct mc_batch *b, bool quiet,
		     struct errmsg *err)
{
	uint8_t value[VALUE_BYTES];
	int ret = 0;

	if (quiet)
		memcached_behavior_set(h, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	for (size_t i = 0; i < b->n && !ret; i++) {
		struct mc_page *p = &b->pages[i];
		memcached_return_t rc;

		if (p->done)
			continue;
		value_pack(value, p->tag, p->data);
		rc = memcached_set(h, p->key, p->key_len, (const char *)value,
				   sizeof(value), 0, 0);
		if (memcached_failed(rc))
			ret = page_error(h, p, "set", rc, err);
		else if (!quiet)
			p->done = true;
	}
	if (quiet)
		memcached_behavior_set(h, MEMCACHED_BEHAVIOR_NOREPLY, 0);
	return ret;
}

static int mc_put(struct page_store *s, const struct page_run *runs,
		  size_t n, struct errmsg *err)
{
	struct mc_store *ms = to_mc(s);
	struct mc_batch b;
	memcached_st *h;
	int ret = batch_build(ms, runs, n, true, &b, err);

	if (ret || !b.n)
		return ret;
	h = handle_take(ms, err);
	if (!h) {
		batch_free(&b);
		return -ENOMEM;
	}
	ret = set_pages(h, &b, true, err);
	if (!ret)
		ret = multi_get(ms, h, &b, answer_put, err);
	/* what did not stick, once more with an answer: stored, or why not */
	if (!ret)
		ret = set_pages(h, &b, false, err);
	handle_give(ms, h);
	batch_free(&b);
	return ret;
}

static int mc_drop(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err)
{
	struct mc_store *ms = to_mc(s);
	struct mc_batch b;
	memcached_st *h;
	int ret = batch_build(ms, runs, n, false, &b, err);

	if (ret || !b.n)
		return ret;
	h = handle_take(ms, err);
	if (!h) {
		batch_free(&b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b.n && !ret; i++) {
		memcached_return_t rc = memcached_delete(h, b.pages[i].key,
							 b.pages[i].key_len, 0);

		if (memcached_failed(rc) && rc != MEMCACHED_NOTFOUND)
			ret = page_error(h, &b.pages[i], "delete", rc, err);
	}
	handle_give(ms, h);
	batch_free(&b);
	return ret;
}

static void mc_describe(struct page_store *s, char *buf, size_t len)
{
	struct mc_store *ms = to_mc(s);

	snprintf(buf, len, "memcached %s namespace=%s", ms->servers,
		 ms->namespace_name);
}

static void mc_destroy(struct page_store *s)
{
	struct mc_store *ms = to_mc(s);

	/* every op has returned: all handles are idle */
	for (unsigned i = 0; i < ms->n_idle; i++)
		memcached_free(ms->idle[i]);
	if (ms->proto)
		memcached_free(ms->proto);
	pthread_cond_destroy(&ms->handle_free);
	pthread_mutex_destroy(&ms->lock);
	free(ms->servers);
	free(ms->namespace_name);
	sodium_memzero(ms->page_key, sizeof(ms->page_key));
	free(ms);
}

static const struct page_store_ops mc_ops = {
	.put = mc_put,
	.get = mc_get,
	.drop = mc_drop,
	.describe = mc_describe,
	.destroy = mc_destroy,
};


int store_memcached_open(const char *args, const struct page_store_params *p,
			 struct page_store **out, struct errmsg *err)
{
	struct mc_store *ms;
	int ret;

	if (!p->ram_pages)
		return errmsg_set(err, -EINVAL, "memcached: guest RAM has no pages");
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return errmsg_set(err, -ENOMEM, "memcached: out of memory");
	ms->base.ops = &mc_ops;
	ms->ram_pages = p->ram_pages;
	pthread_mutex_init(&ms->lock, NULL);
	pthread_cond_init(&ms->handle_free, NULL);
	ms->servers = strdup(args);
	ms->namespace_name = strdup(p->namespace_name);
	ms->proto = memcached_create(NULL);
	if (!ms->servers || !ms->namespace_name || !ms->proto) {
		ret = errmsg_set(err, -ENOMEM, "memcached: out of memory");
		goto fail;
	}
	ret = add_servers(ms, args, err);
	if (!ret)
		ret = mc_configure(ms->proto, err);
	if (!ret)
		ret = keys_init(ms, p, err);
	if (ret)
		goto fail;
	*out = &ms->base;
	return 0;
fail:
	mc_destroy(&ms->base);
	return ret;
}
