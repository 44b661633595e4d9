// SPDX-License-Identifier: MIT
/*
 * Handing a memd namespace over to another process (store_handover.h
 * says the steps and why): the source stops its maintenance thread at
 * BEGIN (no repair, recovery, write-off or upkeep may touch the
 * namespace while the destination may be reading it), restarts it at
 * CANCEL, and at RELEASE leaves the namespace to the destination: its
 * destruction no longer sends RELEASE.  The destination opens the
 * namespace with the exported K (the servers' handshake proves it: no
 * protocol change is needed to share a namespace between two clients
 * that both know K, and a client that does not know it is refused
 * BAD_SECRET), with the placement the source exported, and with the
 * servers' identities as the source knew them: a server that restarted
 * since, or that lost the namespace (our HELLO creates it anew), has
 * lost its copies, which the usual path (remote_lost_copies(),
 * forget_copies_on()) then treats as lost there.  It stays ADOPTING (the
 * maintenance thread only keeps its connections alive; no RELEASE at its
 * end) until COMMIT.
 *
 * Placement crosses over as a mask per page, the servers that may hold
 * a current copy (what get_candidates() says), and a bit for a page
 * short of copies; import turns it back into the spilled and fenced
 * bitmaps: a page whose mask is within its home servers is not spilled,
 * and its home servers outside the mask are fenced; any other page is
 * spilled, and every server outside its mask fenced.
 *
 * Threads: the steps and export run with no op in flight (the pager is
 * quiesced); import before the store is shared.
 */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "remote/store_memd_internal.h"

/* The servers known to have lost our copies whose recovery (which
 * fences them, forget_copies_on()) has not run yet: no copy there is
 * exported as current. */
static uint32_t lost_servers(struct memd_store *st)
{
	uint32_t m = 0;

	for (unsigned s = 0; s < st->nservers; s++) {
		struct remote *r = &st->servers[s];

		pthread_mutex_lock(&r->lock);
		if (r->reset_pending)
			m |= 1u << s;
		pthread_mutex_unlock(&r->lock);
	}
	return m;
}

static int memd_step(struct page_store *ps, enum page_store_step step,
		     struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	int from = __atomic_load_n(&st->handover, __ATOMIC_ACQUIRE);
	int to;

	switch (step) {
	case PAGE_STORE_BEGIN:
		if (from != MEMD_OWNER)
			goto order;
		maint_stop(st);
		st->handover_lost = lost_servers(st);
		to = MEMD_HANDING_OVER;
		break;
	case PAGE_STORE_CANCEL:
		if (from != MEMD_HANDING_OVER)
			goto order;
		__atomic_store_n(&st->handover, MEMD_OWNER, __ATOMIC_RELEASE);
		return maint_start(st, err);
	case PAGE_STORE_RELEASE:
		if (from != MEMD_HANDING_OVER)
			goto order;
		to = MEMD_RELEASED;
		break;
	case PAGE_STORE_COMMIT:
		if (from != MEMD_ADOPTING)
			goto order;
		to = MEMD_OWNER;
		break;
	default:
		goto order;
	}
	__atomic_store_n(&st->handover, to, __ATOMIC_RELEASE);
	return 0;
order:
	return errmsg_set(err, -EINVAL, "memd namespace '%s': handover step %d "
			  "out of order (state %d)", st->namespace_name,
			  (int)step, from);
}

static void memd_creds(struct page_store *ps, struct page_store_creds *c)
{
	struct memd_store *st = (struct memd_store *)ps;

	memset(c, 0, sizeof(*c));
	c->kind = PAGE_STORE_KIND_MEMD;
	snprintf(c->namespace_name, sizeof(c->namespace_name), "%s",
		 st->namespace_name);
	_Static_assert(sizeof(c->ns_key) == sizeof(st->key), "K");
	memcpy(c->ns_key, st->key, sizeof(c->ns_key));
	c->nservers = st->nservers;
	c->replicas = st->replicas;
	c->min_replicas = st->min_replicas;
	c->down_after_ms = st->down_after_ms;
	for (unsigned s = 0; s < st->nservers; s++) {
		struct remote *r = &st->servers[s];

		snprintf(c->server[s].label, sizeof(c->server[s].label), "%s",
			 r->label);
		pthread_mutex_lock(&r->lock);
		c->server[s].identified = r->identified;
		memcpy(c->server[s].identity, r->identity, MEMD_ID_SIZE);
		pthread_mutex_unlock(&r->lock);
	}
}

static uint32_t memd_where(struct page_store *ps, uint64_t page)
{
	struct memd_store *st = (struct memd_store *)ps;
	struct piece group;
	uint32_t m;

	if (page >= st->ram_pages || !bit_test(st->stored, page))
		return 0;
	group.home = group_home(st, page >> GROUP_SHIFT);
	m = get_candidates(st, &group, page);
	if (!(m & ~st->handover_lost))
		return 0;	/* no copy left: the pager refuses to migrate */
	if (bit_test(st->short_copies, page) || (m & st->handover_lost))
		return (m & ~st->handover_lost) | PAGE_STORE_WHERE_SHORT;
	return m;
}

const struct page_store_handover_ops memd_handover_ops = {
	.step = memd_step,
	.creds = memd_creds,
	.where = memd_where,
};

/* The spec store_memd_open() would have been given. */
static int creds_spec(const struct page_store_creds *c, char *buf,
		      size_t len, struct errmsg *err)
{
	size_t used = 0;

	for (unsigned s = 0; s < c->nservers; s++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 s ? "," : "", c->server[s].label);
	if (used < len)
		used += (size_t)snprintf(buf + used, len - used,
					 ",replicas=%u,min_replicas=%u",
					 c->replicas, c->min_replicas);
	if (used < len && c->down_after_ms)
		used += (size_t)snprintf(buf + used, len - used,
					 ",down_after=%" PRId64 "ms",
					 c->down_after_ms);
	else if (used < len)
		used += (size_t)snprintf(buf + used, len - used,
					 ",down_after=never");
	if (used >= len)
		return errmsg_set(err, -EINVAL, "memd handover: server list too "
				  "long");
	return 0;
}

/* The exported placement as the bitmaps; -EINVAL for a mask naming no
 * server or one that does not exist. */
static int apply_where(struct memd_store *st, const uint32_t *where,
		       struct errmsg *err)
{
	uint32_t all = all_servers(st);

	for (uint64_t page = 0; page < st->ram_pages; page++) {
		uint32_t m = where[page] & ~PAGE_STORE_WHERE_SHORT, home;

		if (!where[page])
			continue;
		if (!m || (m & ~all))
			return errmsg_set(err, -EINVAL, "memd handover: page %" PRIu64
					  " placed on servers 0x%x of %u", page,
					  where[page], st->nservers);
		home = group_home(st, page >> GROUP_SHIFT);
		if (m & ~home)
			bit_set(st->spilled, page);
		for (unsigned s = 0; s < st->nservers; s++)
			if (!(m & 1u << s) && ((m & ~home) || (home & 1u << s)))
				bit_set(st->servers[s].fenced, page);
		bit_set(st->stored, page);
		if (where[page] & PAGE_STORE_WHERE_SHORT)
			note_copies(st, page, 0);
	}
	return 0;
}

int store_memd_import(const struct page_store_creds *c, uint64_t ram_pages,
		      const uint32_t *where, struct page_store **out,
		      struct errmsg *err)
{
	char spec[PAGE_STORE_MAX_SERVERS * PAGE_STORE_LABEL_MAX + 96];
	struct memd_store *st;
	int ret;

	if (c->kind != PAGE_STORE_KIND_MEMD || !c->nservers ||
	    c->nservers > PAGE_STORE_MAX_SERVERS)
		return errmsg_set(err, -EINVAL, "memd handover: not a memd store");
	ret = creds_spec(c, spec, sizeof(spec), err);
	if (ret)
		return ret;
	ret = memd_store_new(spec, c->namespace_name, ram_pages, &st, err);
	if (ret)
		return ret;
	if (st->nservers != c->nservers) {
		memd_free(st);
		return errmsg_set(err, -EINVAL, "memd handover: %u servers named, "
				  "%u parsed", c->nservers, st->nservers);
	}
	memcpy(st->key, c->ns_key, sizeof(st->key));
	for (unsigned s = 0; s < st->nservers; s++) {
		st->servers[s].identified = c->server[s].identified;
		memcpy(st->servers[s].identity, c->server[s].identity,
		       MEMD_ID_SIZE);
	}
	st->handover = MEMD_ADOPTING;
	ret = apply_where(st, where, err);
	if (ret) {
		memd_free(st);
		return ret;
	}
	return memd_store_start(st, out, err);
}
