// SPDX-License-Identifier: MIT
/*
 * The page map's codec (pagemap.h has the layout): saving is trusted
 * (the source's own pager), loading is not: every field is checked
 * against the rules and the destination's RAM size before anything is
 * used, and a bad blob is refused whole, with a message naming the
 * field.
 */
#include "migrate/pagemap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "remote/memd_proto.h"

#define DOWN_AFTER_MAX_MS (86400ull * 1000)

int pagemap_alloc(uint64_t ram_pages, struct pagemap **out)
{
	struct pagemap *m;

	if (!ram_pages)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ram_pages = ram_pages;
	m->kind = malloc(ram_pages);
	m->gen = calloc(ram_pages, sizeof(*m->gen));
	m->where = calloc(ram_pages, sizeof(*m->where));
	if (!m->kind || !m->gen || !m->where) {
		pagemap_free(m);
		return -ENOMEM;
	}
	memset(m->kind, PAGEMAP_ZERO, ram_pages);
	m->nzero = ram_pages;
	*out = m;
	return 0;
}

void pagemap_free(struct pagemap *m)
{
	if (!m)
		return;
	page_store_creds_wipe(&m->store);
	free(m->kind);
	free(m->gen);
	free(m->where);
	free(m);
}

/* --- checks both ends share ------------------------------------------------ */

static bool valid_label(const char *s, size_t len)
{
	if (len < 1 || len >= PAGE_STORE_LABEL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == ',')
			return false;
	return true;
}

/* A where mask for @nservers servers. */
static bool valid_where(uint32_t w, unsigned nservers)
{
	uint32_t servers = w & ~PAGE_STORE_WHERE_SHORT;

	return servers && !(servers >> nservers) &&
	       !(w & ~(PAGE_STORE_WHERE_SHORT | 0xffffu));
}

static const char *bad_creds(const struct page_store_creds *c)
{
	if (c->kind != PAGE_STORE_KIND_MEMD)
		return "store kind";
	if (!memd_valid_name(c->namespace_name,
			     strnlen(c->namespace_name, sizeof(c->namespace_name))))
		return "namespace name";
	if (c->nservers < 1 || c->nservers > PAGE_STORE_MAX_SERVERS)
		return "server count";
	if (c->replicas < 1 || c->replicas > c->nservers)
		return "replicas";
	if (c->min_replicas < 1 || c->min_replicas > c->replicas)
		return "min_replicas";
	if (c->down_after_ms < 0 || (uint64_t)c->down_after_ms > DOWN_AFTER_MAX_MS)
		return "down_after";
	for (unsigned s = 0; s < c->nservers; s++)
		if (!valid_label(c->server[s].label,
				 strnlen(c->server[s].label, PAGE_STORE_LABEL_MAX)))
			return "server label";
	return NULL;
}

/* --- save ------------------------------------------------------------------ */

static void save_creds(const struct page_store_creds *c, struct state_buf *b)
{
	state_put_u8(b, (uint8_t)c->kind);
	state_put_blob(b, c->namespace_name, strlen(c->namespace_name));
	state_put_bytes(b, c->ns_key, sizeof(c->ns_key));
	state_put_bool(b, c->sealed);
	if (c->sealed)
		state_put_bytes(b, c->seal_key, sizeof(c->seal_key));
	state_put_u8(b, (uint8_t)c->nservers);
	state_put_u8(b, (uint8_t)c->replicas);
	state_put_u8(b, (uint8_t)c->min_replicas);
	state_put_u64(b, (uint64_t)c->down_after_ms);
	for (unsigned s = 0; s < c->nservers; s++) {
		const struct page_store_server *sv = &c->server[s];

		state_put_blob(b, sv->label, strlen(sv->label));
		state_put_bool(b, sv->identified);
		state_put_bytes(b, sv->identity, sizeof(sv->identity));
	}
}

/* The end of the run of @m's pages of one kind that starts at @first. */
static uint64_t run_end(const struct pagemap *m, uint64_t first)
{
	uint64_t end = first + 1;

	while (end < m->ram_pages && m->kind[end] == m->kind[first] &&
	       !m->gen[end] == !m->gen[first])
		end++;
	return end;
}

static int check_map(const struct pagemap *m)
{
	if (m->has_store && bad_creds(&m->store))
		return -EINVAL;
	for (uint64_t p = 0; p < m->ram_pages; p++) {
		uint8_t k = m->kind[p];

		if (k < PAGEMAP_SEND || k > PAGEMAP_REMOTE)
			return -EINVAL;
		if (k == PAGEMAP_REMOTE &&
		    (!m->has_store || !m->gen[p] ||
		     !valid_where(m->where[p], m->store.nservers)))
			return -EINVAL;
		if (k != PAGEMAP_REMOTE && m->where[p])
			return -EINVAL;
	}
	return 0;
}

int pagemap_save(const struct pagemap *m, struct state_buf *b)
{
	uint64_t nruns = 0;
	int ret = check_map(m);

	if (ret)
		return ret;
	for (uint64_t p = 0; p < m->ram_pages; p = run_end(m, p))
		nruns++;
	state_put_u32(b, PAGEMAP_MAGIC);
	state_put_u32(b, PAGEMAP_VERSION);
	state_put_u64(b, m->ram_pages);
	state_put_bool(b, m->has_store);
	if (m->has_store)
		save_creds(&m->store, b);
	state_put_u64(b, nruns);
	for (uint64_t p = 0, end; p < m->ram_pages; p = end) {
		end = run_end(m, p);
		state_put_u8(b, m->kind[p]);
		state_put_u8(b, m->gen[p] ? PAGEMAP_RUN_GENS : 0);
		state_put_u64(b, p);
		state_put_u64(b, end - p);
		for (uint64_t q = p; m->gen[p] && q < end; q++)
			state_put_u32(b, m->gen[q]);
		for (uint64_t q = p; m->kind[p] == PAGEMAP_REMOTE && q < end; q++)
			state_put_u32(b, m->where[q]);
	}
	return state_buf_error(b);
}

/* --- load ------------------------------------------------------------------ */

static int bad(struct errmsg *err, const char *what)
{
	return errmsg_set(err, -EBADMSG, "page map: %s", what);
}

/* A counted string into @out (@size with its NUL). */
static int get_string(struct state_reader *r, char *out, size_t size)
{
	const uint8_t *p;
	size_t n;

	if (state_get_blob(r, &p, &n, size - 1))
		return -EBADMSG;
	memcpy(out, p, n);
	out[n] = 0;
	return memchr(out, 0, n) ? -EBADMSG : 0;
}

static int load_creds(struct state_reader *r, struct page_store_creds *c,
		      struct errmsg *err)
{
	uint8_t kind, nservers, replicas, min_replicas;
	uint64_t down_after;
	const char *what;

	state_get_u8(r, &kind);
	c->kind = kind;
	if (get_string(r, c->namespace_name, sizeof(c->namespace_name)))
		return bad(err, "the namespace name is cut short or too long");
	state_get_bytes(r, c->ns_key, sizeof(c->ns_key));
	state_get_bool(r, &c->sealed);
	if (c->sealed)
		state_get_bytes(r, c->seal_key, sizeof(c->seal_key));
	state_get_u8(r, &nservers);
	state_get_u8(r, &replicas);
	state_get_u8(r, &min_replicas);
	state_get_u64(r, &down_after);
	if (state_reader_error(r))
		return bad(err, "the store's credentials are cut short or malformed");
	if (down_after > DOWN_AFTER_MAX_MS)
		return bad(err, "down_after is out of range");
	c->nservers = nservers;
	c->replicas = replicas;
	c->min_replicas = min_replicas;
	c->down_after_ms = (int64_t)down_after;
	if (nservers > PAGE_STORE_MAX_SERVERS)
		return bad(err, "more than 16 servers");
	for (unsigned s = 0; s < nservers; s++) {
		struct page_store_server *sv = &c->server[s];

		if (get_string(r, sv->label, sizeof(sv->label)))
			return bad(err, "a server label is cut short or too long");
		state_get_bool(r, &sv->identified);
		state_get_bytes(r, sv->identity, sizeof(sv->identity));
	}
	if (state_reader_error(r))
		return bad(err, "the server list is cut short or malformed");
	what = bad_creds(c);
	if (what)
		return errmsg_set(err, -EBADMSG, "page map: invalid %s", what);
	return 0;
}

/* The per-page fields of run [first, first + count): gens, then where. */
static int load_run_pages(struct state_reader *r, struct pagemap *m,
			  uint8_t kind, uint8_t flags, uint64_t first,
			  uint64_t count, struct errmsg *err)
{
	uint64_t end = first + count;

	for (uint64_t p = first; (flags & PAGEMAP_RUN_GENS) && p < end; p++) {
		if (state_get_u32(r, &m->gen[p]))
			return bad(err, "a run's generations are cut short");
		if (!m->gen[p])
			return errmsg_set(err, -EBADMSG, "page map: page %" PRIu64
					  " has generation 0", p);
	}
	for (uint64_t p = first; kind == PAGEMAP_REMOTE && p < end; p++) {
		if (state_get_u32(r, &m->where[p]))
			return bad(err, "a remote run is cut short");
		if (!valid_where(m->where[p], m->store.nservers))
			return errmsg_set(err, -EBADMSG, "page map: page %" PRIu64
					  " placed on servers 0x%x of %u", p,
					  m->where[p], m->store.nservers);
	}
	return 0;
}

/* One run at @*pos; advances it. */
static int load_run(struct state_reader *r, struct pagemap *m, uint64_t *pos,
		    struct errmsg *err)
{
	uint64_t first, count;
	uint8_t kind, flags;
	int ret;

	state_get_u8(r, &kind);
	state_get_u8(r, &flags);
	state_get_u64(r, &first);
	state_get_u64(r, &count);
	if (state_reader_error(r))
		return bad(err, "a run is cut short");
	if (kind < PAGEMAP_SEND || kind > PAGEMAP_REMOTE ||
	    (flags & ~PAGEMAP_RUN_GENS))
		return errmsg_set(err, -EBADMSG, "page map: run at page %" PRIu64
				  " of unknown kind %u or flags 0x%x", first,
				  kind, flags);
	if (first != *pos || !count || count > m->ram_pages - first)
		return errmsg_set(err, -EBADMSG, "page map: run %" PRIu64 "+%" PRIu64
				  " does not follow page %" PRIu64 " within %" PRIu64
				  " pages", first, count, *pos, m->ram_pages);
	/* one encoding per map: runs are as long as they can be */
	if (first && m->kind[first - 1] == kind &&
	    !m->gen[first - 1] == !(flags & PAGEMAP_RUN_GENS))
		return errmsg_set(err, -EBADMSG, "page map: run at page %" PRIu64
				  " continues the one before", first);
	if (kind == PAGEMAP_REMOTE && (!m->has_store || !(flags & PAGEMAP_RUN_GENS)))
		return bad(err, "remote pages without a store or generations");
	ret = load_run_pages(r, m, kind, flags, first, count, err);
	if (ret)
		return ret;
	memset(m->kind + first, kind, count);
	m->nsend += kind == PAGEMAP_SEND ? count : 0;
	m->nzero += kind == PAGEMAP_ZERO ? count : 0;
	m->nremote += kind == PAGEMAP_REMOTE ? count : 0;
	*pos = first + count;
	return 0;
}

static int load_body(struct state_reader *r, struct pagemap *m,
		     struct errmsg *err)
{
	uint64_t nruns, pos = 0;
	int ret = 0;

	if (state_get_bool(r, &m->has_store))
		return bad(err, "cut short before the store");
	if (m->has_store && (ret = load_creds(r, &m->store, err)))
		return ret;
	if (state_get_u64(r, &nruns))
		return bad(err, "cut short before the runs");
	if (!nruns || nruns > m->ram_pages)
		return errmsg_set(err, -EBADMSG, "page map: %" PRIu64 " runs for %"
				  PRIu64 " pages", nruns, m->ram_pages);
	m->nzero = 0;
	for (uint64_t i = 0; i < nruns && !ret; i++)
		ret = load_run(r, m, &pos, err);
	if (ret)
		return ret;
	if (pos != m->ram_pages)
		return errmsg_set(err, -EBADMSG, "page map: runs end at page %" PRIu64
				  " of %" PRIu64, pos, m->ram_pages);
	if (state_reader_left(r))
		return errmsg_set(err, -EBADMSG, "page map: %zu bytes after the "
				  "last run", state_reader_left(r));
	return 0;
}

int pagemap_load(const void *data, size_t len, uint64_t ram_pages,
		 struct pagemap **out, struct errmsg *err)
{
	struct state_reader r;
	uint32_t magic, version;
	uint64_t pages;
	struct pagemap *m;
	int ret;

	state_reader_init(&r, data, len);
	state_get_u32(&r, &magic);
	state_get_u32(&r, &version);
	state_get_u64(&r, &pages);
	if (state_reader_error(&r) || magic != PAGEMAP_MAGIC)
		return bad(err, "not a page map (bad magic or cut short)");
	if (version != PAGEMAP_VERSION)
		return errmsg_set(err, -EBADMSG, "page map: version %u, this "
				  "rackvm reads %u", version, PAGEMAP_VERSION);
	if (!ram_pages || pages != ram_pages)
		return errmsg_set(err, -EBADMSG, "page map of %" PRIu64 " pages for "
				  "a VM of %" PRIu64, pages, ram_pages);
	ret = pagemap_alloc(ram_pages, &m);
	if (ret)
		return errmsg_set(err, ret, "page map: out of memory");
	ret = load_body(&r, m, err);
	if (ret) {
		pagemap_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

int pagemap_open_store(const struct pagemap *m, struct page_store **out,
		       struct errmsg *err)
{
	if (!m->has_store)
		return errmsg_set(err, -EINVAL, "page map: no store to open");
	return page_store_import(&m->store, m->ram_pages, m->where, out, err);
}
