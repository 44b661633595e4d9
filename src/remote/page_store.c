// SPDX-License-Identifier: MIT
#include "remote/page_store.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <xxhash.h>

#include "remote/store_backends.h"

uint64_t page_checksum(uint64_t page, const void *data)
{
	return XXH64(data, PAGE_STORE_PAGE, page);
}

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

	if (!spec || !p || !out)
		return errmsg_set(err, -EINVAL, "no memory backend given");
	if (!valid_namespace(p->namespace_name))
		return errmsg_set(err, -EINVAL,
				  "invalid memory namespace '%s': 1-64 of A-Z a-z 0-9 . _ -",
				  p->namespace_name ? p->namespace_name : "");
	if (!p->secret || p->secret_len < 1 || p->secret_len > 64)
		return errmsg_set(err, -EINVAL, "the memory secret must be 1-64 bytes");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t len = strlen(kinds[i].prefix);

		if (!strncmp(spec, kinds[i].prefix, len))
			return kinds[i].open(spec + len, p, out, err);
	}
	return errmsg_set(err, -EINVAL,
			  "invalid memory backend '%s': give file:PATH, "
			  "memd:HOST:PORT[,HOST:PORT...][,replicas=N][,min_replicas=K] or "
			  "memcached:HOST:PORT[,HOST:PORT...]", spec);
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
		if (need_buffers && (!r->data || !r->sums))
			return errmsg_set(err, -EINVAL,
					  "%s: run at page 0x%llx has no buffers",
					  who, (unsigned long long)r->first);
	}
	return 0;
}
