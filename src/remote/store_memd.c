// SPDX-License-Identifier: MIT
/*
 * The memd page store: pages on one or more `rackvm memd` servers,
 * optionally replicated.  Spec:
 *   HOST:PORT[,HOST:PORT...][,replicas=N][,min_replicas=K][,down_after=D]
 * (at most MAX_SERVERS servers, N from 1 to their number, default 1; K
 * from 1 to N, default N; D a duration, default 30s, or "never": how
 * long a server may stay unreachable before its copies are written off
 * and placed elsewhere, see store_memd_repair.c).
 *
 * Placement: pages are placed in groups of 16 (page >> GROUP_SHIFT), so
 * that a run stays in one request where it can.  Each group ranks the
 * servers by rendezvous hashing (a hash of the group seeded by a hash of
 * the server's "HOST:PORT" as written): the ranking is stable, does not
 * depend on the order of the spec, and adding a server moves only the
 * groups it wins.  A group's home is the first N servers of its ranking.
 *
 * put writes every page to its N home servers.  A server that is down,
 * fails, refuses us or is full is replaced by the next one in the
 * ranking.  put succeeds only when every page has N acknowledged copies
 * (the caller then drops its own copy, so fewer would silently weaken
 * replicas=N); with min_replicas=K it also succeeds with K to N-1 copies
 * (degraded, an explicit choice of the spec), and the page counts as
 * under-replicated until the repair (below) has its other copies.  It
 * fails with -ENOSPC when some page found no room, and -EAGAIN when too
 * few servers could take it.
 * get reads each page from the first copy in ranking order that is
 * reachable and holds one that opens (page_seal_open() at the generation
 * the caller expects: it is this VM's page, this page, this version, as
 * sealed), falling back to the next one on anything that goes wrong with
 * one server: a dead or refusing server, an error status, a missing page
 * or a copy that does not open (a server that swaps, replays or forges
 * pages is just a bad copy).  Only when every copy failed is it an
 * error (-EBADMSG when every copy found was bad).
 *
 * Copies that are not current.  A stale copy (left on a server that
 * missed a later put or drop because it was down) no longer opens, its
 * generation being older; it would cost a round trip per read, and with
 * seal=off the check is against accidents only, so the client still
 * remembers, per server, the pages whose copy there must not be
 * read (the "fenced" bitmap, one bit per guest page), and per page
 * whether a current copy may live outside its home (the "spilled"
 * bitmap).  After a put, every server that may hold a copy but did not
 * acknowledge the new one (a home, any server of a spilled page, any
 * server the put tried) is fenced for the page; a drop fences the
 * servers it cannot reach.  A server that comes back after a failure
 * first drops every page fenced on it, and is used again only then.  The
 * bitmaps cost (servers + 1) bits per guest page, allocated zeroed and
 * written only after failures.
 * A failed put drops (or fences) every page of the batch everywhere:
 * the contract allows a failed put to make pages unreadable, never to
 * leave part of the new data readable.
 *
 * Lost copies.  memd keeps pages in memory only: a memd that restarts
 * has lost every copy, and a namespace that is gone from a server (and
 * re-created) too.  The handshake says both: the server's identity,
 * random at each start, and whether this HELLO created the namespace
 * (store_memd_hello.c, authenticated by the server's proof).  When a
 * server we have spoken to comes back with another identity, or says
 * our namespace was created, every copy it may have held is fenced and
 * its page counted under-replicated (store_memd_fence.c); whoever
 * created the namespace there, its contents are never read.  A server
 * that is only down loses nothing we know of: its copies count once it
 * answers again, unless it stayed down for longer than down_after: then
 * they are written off (fenced and counted under-replicated) and put
 * elsewhere, as if it had restarted.
 * The repair (store_memd_repair.c) then puts the missing copies back
 * from a current one, on the maintenance thread, REPAIR_BATCH pages a
 * tick, never on an op's path; a page with no copy left anywhere is
 * counted lost, and fails when the pager needs it.  The store's stats op
 * says both counts.
 *
 * Opening connects to every server and registers the namespace; it
 * succeeds when at least one server answers (the others are retried as
 * above), and fails with -EACCES when any refuses the secret: a
 * misconfiguration is best said at once.  Later, a server that refuses
 * us is only one failed server among the others.  While the store is
 * open, the maintenance thread closes connections idle for a few
 * seconds but one per server, which it keeps alive: memd drops a
 * namespace that has no connection for a while.  Destroying the store
 * stops that thread, then drops the namespace on every server it is
 * connected to (RELEASE, over connections whose handshake passed): a
 * namespace belongs to one VM, and its pages die with it
 * (store_memd_idle.c); unless the VM migrated and the namespace went with
 * it, or it is not ours yet (store_handover.h, store_memd_handover.c).
 *
 * Concurrency: the ops may run on several threads at once for different
 * pages; two ops on one page must not overlap (the pager serialises
 * them), since which copy is current is decided per page.  Each op
 * checks out a connection per server it needs from that server's pool
 * (connecting and saying HELLO when the pool is empty), sends all its
 * requests to all servers pipelined, reads the replies as they come, and
 * gives the connections back.  A server that fails is marked down: its
 * idle connections are closed, ops skip it, and the store's maintenance
 * thread reconnects it after RETRY_MS (doubling, up to 2 s, while it
 * keeps failing).  Before it cleans the
 * server's fenced pages it waits until every connection of before the
 * failure is back: a PUT in flight on one may have been stored, and the
 * op that sent it may yet commit that copy as current; a cleanup running
 * alongside could drop it after the server stored it.  A request that
 * makes no progress for IO_TIMEOUT_MS marks its server down.
 *
 * This file holds the page_store ops and opening the store; the
 * connections, the handshake, the request pipeline, placement, fencing,
 * the maintenance thread and the repair have a file each, listed with
 * their contract in store_memd_internal.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <xxhash.h>

#include "remote/store_memd_internal.h"
#include "util/parse.h"

/* For timed waits against monotonic_deadline(). */
static void cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static int check_runs(const struct memd_store *st, const struct page_run *runs,
		      size_t n, bool need_data, struct errmsg *err)
{
	return page_runs_check("memd", runs, n, st->ram_pages, need_data, err);
}

static int memd_put(struct page_store *ps, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	struct errmsg ignored;
	struct op op;
	int ret;

	ret = check_runs(st, runs, n, true, err);
	if (ret)
		return ret;
	claim_runs(st, runs, n);
	op_init(&op, st);
	split_runs(&op, runs, n, NULL, true);
	while (!op.fatal && put_pick_targets(&op)) {
		run_round(&op, MEMD_OP_PUT);
		put_collect(&op);
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) :
			 put_failure(&op, err);
	if (!ret)
		put_commit(&op);
	op_finish(&op);
	if (ret)
		drop_pages(st, runs, n, DROP_EVERYWHERE, &ignored);
	else	/* old copies left on live servers off the new homes */
		drop_pages(st, runs, n, DROP_STALE, &ignored);
	release_runs(st, runs, n);
	return ret;
}

static int memd_get(struct page_store *ps, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	struct op op;
	int ret;

	ret = check_runs(st, runs, n, true, err);
	if (ret)
		return ret;
	op_init(&op, st);
	/* a page with no candidate left fails as missing */
	split_runs(&op, runs, n, get_candidates, true);
	while (!op.fatal && get_pick_sources(&op)) {
		run_round(&op, MEMD_OP_GET);
		get_collect(&op);
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) :
			 get_failure(&op, err);
	op_finish(&op);
	return ret;
}

static int memd_drop(struct page_store *ps, const struct page_run *runs,
		     size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	int ret = check_runs(st, runs, n, false, err);

	if (ret)
		return ret;
	claim_runs(st, runs, n);
	ret = drop_pages(st, runs, n, DROP_PAGES, err);
	release_runs(st, runs, n);
	return ret;
}

static void memd_stats(struct page_store *ps, struct page_store_stats *out)
{
	struct memd_store *st = (struct memd_store *)ps;

	out->under_replicated = __atomic_load_n(&st->nshort, __ATOMIC_RELAXED);
	out->lost = __atomic_load_n(&st->nlost, __ATOMIC_RELAXED);
	out->stored = 0;
	for (uint64_t w = 0; w < (st->ram_pages + 63) / 64; w++)
		out->stored += (uint64_t)__builtin_popcountll(
			__atomic_load_n(&st->stored[w], __ATOMIC_RELAXED));
}

static void memd_describe(struct page_store *ps, char *buf, size_t len)
{
	struct memd_store *st = (struct memd_store *)ps;
	size_t used = (size_t)snprintf(buf, len, "memd ");

	for (unsigned s = 0; s < st->nservers && used < len; s++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 s ? "," : "", st->servers[s].label);
	if (used < len)
		used += (size_t)snprintf(buf + used, len - used, " replicas=%u",
					 st->replicas);
	if (used < len && st->min_replicas < st->replicas)
		used += (size_t)snprintf(buf + used, len - used,
					 " min_replicas=%u", st->min_replicas);
	if (used < len && st->down_after_ms != DOWN_AFTER_MS) {
		if (st->down_after_ms)
			snprintf(buf + used, len - used, " down_after=%lldms",
				 (long long)st->down_after_ms);
		else
			snprintf(buf + used, len - used, " down_after=never");
	}
}

/* Frees @st, stopping its maintenance thread if it runs; no op uses it
 * any more. */
void memd_free(struct memd_store *st)
{
	maint_stop(st);
	for (unsigned s = 0; s < st->nservers; s++) {
		conn_close_list(st->servers[s].idle);
		pthread_mutex_destroy(&st->servers[s].lock);
		pthread_cond_destroy(&st->servers[s].unbusy);
		free(st->servers[s].fenced);
	}
	pthread_mutex_destroy(&st->maint_lock);
	pthread_cond_destroy(&st->maint_wake);
	pthread_mutex_destroy(&st->claim_lock);
	pthread_cond_destroy(&st->claim_done);
	free(st->spilled);
	free(st->stored);
	free(st->short_copies);
	free(st->claimed);
	free(st->repair_data);
	free(st->repair_tags);
	sodium_memzero(st->key, sizeof(st->key));
	free(st);
}

/* The VM is done with its pages: the servers free them now rather than
 * when the namespace's TTL runs out.  The maintenance thread goes first:
 * nothing else may use the pools (or bring a server back) meanwhile. */
static void memd_destroy(struct page_store *ps)
{
	struct memd_store *st = (struct memd_store *)ps;

	maint_stop(st);
	/* a namespace handed over, or not yet ours, is not ours to drop */
	if (st->handover == MEMD_OWNER)
		release_namespace(st);
	memd_free(st);
}

static const struct page_store_ops memd_ops = {
	.put = memd_put,
	.get = memd_get,
	.drop = memd_drop,
	.describe = memd_describe,
	.stats = memd_stats,
	.destroy = memd_destroy,
	.handover = &memd_handover_ops,
};

#define SPEC_SYNTAX "HOST:PORT[,HOST:PORT...][,replicas=N][,min_replicas=K]" \
		    "[,down_after=DURATION|never]"

static int parse_server(struct memd_store *st, const char *item,
			struct errmsg *err)
{
	struct remote *r = &st->servers[st->nservers];
	struct errmsg why;

	if (st->nservers == MAX_SERVERS)
		return errmsg_set(err, -EINVAL, "invalid memd backend: more than "
				  "%d servers", MAX_SERVERS);
	if (memd_parse_hostport(item, r->host, sizeof(r->host), &r->port, &why))
		return errmsg_set(err, -EINVAL, "invalid memd backend: %s "
				  "(give " SPEC_SYNTAX ")", why.text);
	if (!r->port)
		return errmsg_set(err, -EINVAL, "invalid memd backend: server '%s' "
				  "has port 0", item);
	if (strlen(item) >= sizeof(r->label))
		return errmsg_set(err, -EINVAL, "invalid memd backend: '%s' is too "
				  "long", item);
	for (unsigned s = 0; s < st->nservers; s++)
		if (!strcmp(st->servers[s].label, item))
			return errmsg_set(err, -EINVAL, "invalid memd backend: "
					  "server %s is given twice", item);
	snprintf(r->label, sizeof(r->label), "%s", item);
	r->seed = XXH64(r->label, strlen(r->label), 0);
	st->nservers++;
	return 0;
}

/* down_after=DURATION (at least 1 ms) or never, once. */
static int parse_down_after(struct memd_store *st, const char *args,
			    const char *value, bool *seen, struct errmsg *err)
{
	uint64_t ns = 0;

	if (*seen || (strcmp(value, "never") &&
		      (parse_duration_ns(value, &ns) || ns < 1000000 ||
		       ns > 86400ull * 1000000000)))
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': give "
				  "down_after=DURATION once (1ms to 24h, e.g. 30s) "
				  "or down_after=never", args);
	*seen = true;
	st->down_after_ms = (int64_t)(ns / 1000000);
	return 0;
}

static int parse_spec(struct memd_store *st, const char *args,
		      struct errmsg *err)
{
	char *copy = strdup(args), *item, *rest;
	unsigned replicas = 0, min_replicas = 0;
	bool down_after = false;
	int ret = 0;

	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	for (item = copy; item && !ret; item = rest) {
		rest = strchr(item, ',');
		if (rest)
			*rest++ = 0;
		if (!*item) {
			ret = errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
					 "an empty item (give " SPEC_SYNTAX ")", args);
		} else if (!strncmp(item, "replicas=", 9)) {
			if (replicas || parse_uint(item + 9, 1, MAX_SERVERS, &replicas))
				ret = errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
						 "give replicas=N once, N from 1 to %d",
						 args, MAX_SERVERS);
		} else if (!strncmp(item, "min_replicas=", 13)) {
			if (min_replicas ||
			    parse_uint(item + 13, 1, MAX_SERVERS, &min_replicas))
				ret = errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
						 "give min_replicas=K once, K from 1 to "
						 "replicas", args);
		} else if (!strncmp(item, "down_after=", 11)) {
			ret = parse_down_after(st, args, item + 11, &down_after,
					       err);
		} else {
			ret = parse_server(st, item, err);
		}
	}
	free(copy);
	if (ret)
		return ret;
	if (!st->nservers)
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': give "
				  SPEC_SYNTAX, args);
	if (!down_after)
		st->down_after_ms = DOWN_AFTER_MS;
	st->replicas = replicas ? replicas : 1;
	if (st->replicas > st->nservers)
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
				  "replicas=%u but only %u servers", args,
				  st->replicas, st->nservers);
	st->min_replicas = min_replicas ? min_replicas : st->replicas;
	if (st->min_replicas > st->replicas)
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
				  "min_replicas=%u is more than replicas=%u", args,
				  st->min_replicas, st->replicas);
	return 0;
}

/* A store for @args (the spec after "memd:"), namespace @name, not yet
 * keyed nor connected: memd_store_start() does that. */
int memd_store_new(const char *args, const char *name, uint64_t ram_pages,
		   struct memd_store **out, struct errmsg *err)
{
	struct memd_store *st = calloc(1, sizeof(*st));
	size_t words;
	int ret;

	if (!st)
		return errmsg_set(err, -ENOMEM, "out of memory");
	st->base.ops = &memd_ops;
	st->base.opens = true;	/* each copy, to fall back to the next */
	ret = parse_spec(st, args, err);
	if (!ret && (!ram_pages || ram_pages > MEMD_PAGE_LIMIT))
		ret = errmsg_set(err, -EINVAL, "memd backend: guest RAM of %llu "
				 "pages", (unsigned long long)ram_pages);
	if (!ret && !memd_valid_name(name, strlen(name)))
		ret = errmsg_set(err, -EINVAL, "memd backend: invalid namespace "
				 "name");
	if (!ret && sodium_init() < 0)
		ret = errmsg_set(err, -EIO, "libsodium cannot start");
	if (ret) {
		free(st);
		return ret;
	}
	snprintf(st->namespace_name, sizeof(st->namespace_name), "%s", name);
	st->ram_pages = ram_pages;
	words = (size_t)((ram_pages + 63) / 64);
	st->spilled = calloc(words, sizeof(uint64_t));
	st->stored = calloc(words, sizeof(uint64_t));
	st->short_copies = calloc(words, sizeof(uint64_t));
	st->claimed = calloc(words, sizeof(uint64_t));
	st->repair_data = malloc(REPAIR_BATCH * PAGE_STORE_PAGE);
	st->repair_tags = malloc(REPAIR_BATCH * PAGE_TAG_SIZE);
	pthread_mutex_init(&st->maint_lock, NULL);
	cond_init_monotonic(&st->maint_wake);
	pthread_mutex_init(&st->claim_lock, NULL);
	pthread_cond_init(&st->claim_done, NULL);
	st->upkeep_ms = now_ms();
	for (unsigned s = 0; s < st->nservers; s++) {
		st->alive_ms[s] = st->upkeep_ms;
		st->servers[s].retry_ms = RETRY_MS;
		pthread_mutex_init(&st->servers[s].lock, NULL);
		cond_init_monotonic(&st->servers[s].unbusy);
		st->servers[s].fenced = calloc(words, sizeof(uint64_t));
		if (!st->servers[s].fenced)
			ret = -ENOMEM;
	}
	if (ret || !st->spilled || !st->stored || !st->short_copies ||
	    !st->claimed || !st->repair_data || !st->repair_tags) {
		memd_free(st);
		return errmsg_set(err, -ENOMEM, "out of memory for the memd "
				  "backend's page maps");
	}
	*out = st;
	return 0;
}

/* Connects (st->key set) and starts the maintenance thread; frees @st
 * on failure. */
int memd_store_start(struct memd_store *st, struct page_store **out,
		     struct errmsg *err)
{
	int ret = connect_all(st, err);

	if (!ret)
		ret = maint_start(st, err);
	if (ret) {
		memd_free(st);
		return ret;
	}
	*out = &st->base;
	return 0;
}

int store_memd_open(const char *args, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err)
{
	struct memd_store *st;
	int ret;

	if (p->secret_len < 1 || p->secret_len > MEMD_SECRET_MAX)
		return errmsg_set(err, -EINVAL, "memd backend: invalid namespace "
				  "name or secret");
	ret = memd_store_new(args, p->namespace_name, p->ram_pages, &st, err);
	if (ret)
		return ret;
	/* the secret itself is not kept: the handshake needs only K */
	memd_derive_key(st->key, st->namespace_name,
			strlen(st->namespace_name), p->secret, p->secret_len);
	return memd_store_start(st, out, err);
}
