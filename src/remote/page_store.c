// SPDX-License-Identifier: MIT
#include "remote/page_store.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/store_backends.h"

static bool valid_namespace(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len < 1 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._-", name[i]))
			return false;
	return true;
}

/*
 * Takes the items "seal=on" / "seal=off" out of @spec into @rest (any
 * position after the kind's prefix; the last one wins).  A file path
 * with an item ",seal=..." in it cannot be named: no real path needs it.
 */
static int take_seal_option(const char *spec, char *rest, size_t size,
			    bool *sealed, struct errmsg *err)
{
	const char *item = spec;
	size_t len = 0;

	*sealed = true;
	while (item) {
		const char *comma = strchr(item, ',');
		size_t n = comma ? (size_t)(comma - item) : strlen(item);

		if (item != spec && n > 5 && !strncmp(item, "seal=", 5)) {
			if (n == 7 && !strncmp(item + 5, "on", 2))
				*sealed = true;
			else if (n == 8 && !strncmp(item + 5, "off", 3))
				*sealed = false;
			else
				return errmsg_set(err, -EINVAL, "invalid memory "
						  "backend option '%.*s': give "
						  "seal=on or seal=off", (int)n, item);
		} else {
			if (len + (len ? 1 : 0) + n >= size)
				return errmsg_set(err, -EINVAL, "memory backend "
						  "spec too long");
			if (len)
				rest[len++] = ',';
			memcpy(rest + len, item, n);
			len += n;
		}
		item = comma ? comma + 1 : NULL;
	}
	rest[len] = 0;
	return 0;
}

int page_store_open(const char *spec, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err)
{
	static const struct {
		const char *prefix;
		int (*open)(const char *, const struct page_store_params *,
			    struct page_store **, struct errmsg *);
	} kinds[] = {
		{ "file:", store_file_open },
		{ "memd:", store_memd_open },
		{ "memcached:", store_memcached_open },
	};
	struct page_seal *seal;
	char rest[4096];
	bool sealed;
	int ret;

	if (!spec || !p || !out)
		return errmsg_set(err, -EINVAL, "no memory backend given");
	if (!valid_namespace(p->namespace_name))
		return errmsg_set(err, -EINVAL,
				  "invalid memory namespace '%s': 1-64 of A-Z a-z 0-9 . _ -",
				  p->namespace_name ? p->namespace_name : "");
	if (!p->secret || p->secret_len < 1 || p->secret_len > 64)
		return errmsg_set(err, -EINVAL, "the memory secret must be 1-64 bytes");
	ret = take_seal_option(spec, rest, sizeof(rest), &sealed, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t len = strlen(kinds[i].prefix);

		if (strncmp(rest, kinds[i].prefix, len))
			continue;
		ret = page_seal_create(p->namespace_name, sealed, &seal, err);
		if (ret)
			return ret;
		ret = kinds[i].open(rest + len, p, out, err);
		if (ret) {
			page_seal_destroy(seal);
			return ret;
		}
		(*out)->seal = seal;
		return 0;
	}
	return errmsg_set(err, -EINVAL,
			  "invalid memory backend '%s': give file:PATH, "
			  "memd:HOST:PORT[,HOST:PORT...][,replicas=N][,min_replicas=K] or "
			  "memcached:HOST:PORT[,HOST:PORT...], each with an optional "
			  ",seal=on|off", spec);
}

void page_store_destroy(struct page_store *s)
{
	struct page_seal *seal;

	if (!s)
		return;
	seal = s->seal;
	s->ops->destroy(s);
	page_seal_destroy(seal);
}

void page_store_describe(struct page_store *s, char *buf, size_t len)
{
	size_t used;

	if (!len)
		return;
	s->ops->describe(s, buf, len);
	used = strnlen(buf, len - 1);
	buf[used] = 0;
	if (s->seal && !page_seal_sealed(s->seal))
		snprintf(buf + used, len - used, " seal=off");
}

static int no_seal(struct errmsg *err)
{
	return errmsg_set(err, -EINVAL, "page store has no seal context");
}

int page_store_put(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err)
{
	if (!s->seal)
		return no_seal(err);
	for (size_t i = 0; i < n; i++) {
		const struct page_run *r = &runs[i];

		if (!r->data || !r->tags || !r->gens)
			return errmsg_set(err, -EINVAL, "page store put: run at "
					  "page 0x%llx has no buffers",
					  (unsigned long long)r->first);
		for (uint32_t k = 0; k < r->count; k++)
			page_seal_close(s->seal, r->first + k, r->gens[k],
					r->data + (size_t)k * PAGE_STORE_PAGE,
					r->tags + (size_t)k * PAGE_TAG_SIZE);
	}
	return s->ops->put(s, runs, n, err);
}

int page_store_get(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err)
{
	int ret;

	if (!s->seal)
		return no_seal(err);
	ret = s->ops->get(s, runs, n, err);
	if (ret || s->opens)
		return ret;
	for (size_t i = 0; i < n; i++) {
		const struct page_run *r = &runs[i];

		for (uint32_t k = 0; k < r->count; k++)
			if (page_seal_open(s->seal, r->first + k, r->gens[k],
					   r->data + (size_t)k * PAGE_STORE_PAGE,
					   r->tags + (size_t)k * PAGE_TAG_SIZE))
				return page_store_refused(s, r->first + k,
							  r->gens[k], err);
	}
	return 0;
}

int page_store_refused(struct page_store *s, uint64_t page, uint32_t gen,
		       struct errmsg *err)
{
	return errmsg_set(err, -EBADMSG, "page %llu (generation %u) does not "
			  "open: %s", (unsigned long long)page, gen,
			  page_seal_sealed(s->seal) ?
			  "not the copy this VM sealed (damaged, forged, "
			  "another page's or an older version)" :
			  "its tag does not match (damaged, another page's or "
			  "an older version)");
}

int page_runs_check(const char *who, const struct page_run *runs, size_t n,
		    uint64_t ram_pages, bool need_buffers, struct errmsg *err)
{
	if (n && !runs)
		return errmsg_set(err, -EINVAL, "%s: no runs given", who);
	for (size_t i = 0; i < n; i++) {
		const struct page_run *r = &runs[i];

		if (!r->count || r->first >= ram_pages ||
		    r->count > ram_pages - r->first)
			return errmsg_set(err, -EINVAL,
					  "%s: pages 0x%llx+%u empty or outside guest RAM (%llu pages)",
					  who, (unsigned long long)r->first, r->count,
					  (unsigned long long)ram_pages);
		if (need_buffers && (!r->data || !r->tags || !r->gens))
			return errmsg_set(err, -EINVAL,
					  "%s: run at page 0x%llx has no buffers",
					  who, (unsigned long long)r->first);
	}
	return 0;
}
