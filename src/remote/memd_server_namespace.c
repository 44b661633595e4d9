// SPDX-License-Identifier: MIT
/*
 * The memd server's namespaces from birth to end (see
 * memd_server_internal.h): a handshake creates one with the verifier it
 * brings, or joins one (memd_server_auth.c checks the proofs against
 * namespace_verifier()), connections leave it, and it ends by RELEASE or
 * by expiry after namespace_ttl_ns without a connection.  An ended
 * namespace's name is free at once (and its verifier forgotten); its
 * pages go back to the slabs in the background, a bounded number of
 * index buckets per step (WORK_BUCKETS), so that dropping a namespace of
 * millions of pages does not stall the other clients.  The same queue
 * carries indexes that are growing, so that one that stops receiving
 * requests still finishes and frees its old table.
 *
 * Namespaces without a connection sit in s->orphans in the order they
 * lost their last one; the TTL being the same for all, the first is the
 * first to expire, so expiring costs nothing per namespace that stays.
 *
 * Threads: the loop thread only; of what it changes, other threads read
 * just the counters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "remote/memd_server_internal.h"

/* Index buckets a background step goes through: ~50-100 us of work. */
#define WORK_BUCKETS 16384u

/* What a new namespace costs; it grows with its index's tables. */
static uint64_t namespace_bytes(void)
{
	return sizeof(struct namespace) +
	       memd_index_table_bytes(MEMD_INDEX_MIN_SIZE);
}

struct namespace *namespace_find(struct memd_server *s, const char *name,
				 size_t len)
{
	for (struct list *l = s->namespaces.next; l != &s->namespaces; l = l->next) {
		struct namespace *ns = list_entry(l, struct namespace, all);

		if (strlen(ns->name) == len && !memcmp(ns->name, name, len))
			return ns;
	}
	return NULL;
}

const uint8_t *namespace_verifier(const struct namespace *ns)
{
	return ns->verifier;
}

static void namespace_free(struct memd_server *s, struct namespace *ns)
{
	counter_add(&s->c.used, -(int64_t)(sizeof(*ns) +
					   memd_index_bytes(&ns->index)));
	explicit_bzero(ns->verifier, sizeof(ns->verifier));
	memd_index_free(&ns->index);
	free(ns);
}

void namespace_join(struct namespace *ns)
{
	if (!ns->nconns++)
		list_del(&ns->orphan);
}

int namespace_create(struct memd_server *s, const char *name, size_t len,
		     const uint8_t *verifier, const char *peer,
		     struct namespace **out)
{
	struct namespace *ns;

	if (!budget_allows(s, namespace_bytes())) {
		counter_add(&s->c.full_refusals, 1);
		say(s, MEMD_LOG_INFO, "capacity reached: no room for namespace "
		    "'%.*s' of %s", (int)len, name, peer);
		return MEMD_ST_FULL;
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns || memd_index_init(&ns->index, s->index_key)) {
		free(ns);
		return MEMD_ST_FULL;
	}
	memcpy(ns->name, name, len);
	memcpy(ns->verifier, verifier, MEMD_KEY_SIZE);
	ns->nconns = 1;
	list_init(&ns->orphan);
	list_add_tail(&s->namespaces, &ns->all);
	counter_add(&s->c.used, (int64_t)namespace_bytes());
	counter_add(&s->c.namespaces, 1);
	*out = ns;
	say(s, MEMD_LOG_INFO, "namespace '%s' created by %s", ns->name, peer);
	return MEMD_ST_OK;
}

void namespace_leave(struct memd_server *s, struct namespace *ns)
{
	if (--ns->nconns)
		return;
	ns->orphaned_ns = monotonic_ns();
	list_add_tail(&s->orphans, &ns->orphan);
}

void namespace_queue(struct memd_server *s, struct namespace *ns)
{
	if (ns->queued)
		return;
	ns->queued = true;
	ns->work_next = NULL;
	if (s->work_tail)
		s->work_tail->work_next = ns;
	else
		s->work_head = ns;
	s->work_tail = ns;
}

void namespace_release(struct memd_server *s, struct namespace *ns,
		       const char *why)
{
	say(s, MEMD_LOG_INFO, "namespace '%s' %s: freeing its %llu pages",
	    ns->name, why, (unsigned long long)namespace_pages(ns));
	list_del(&ns->all);
	list_del(&ns->orphan);
	explicit_bzero(ns->verifier, sizeof(ns->verifier));
	ns->released = true;
	counter_add(&s->c.namespaces, -1);
	namespace_queue(s, ns);
}

uint64_t namespaces_expire(struct memd_server *s, uint64_t now)
{
	while (!list_empty(&s->orphans)) {
		struct namespace *ns = list_entry(s->orphans.next,
						  struct namespace, orphan);
		uint64_t deadline = ns->orphaned_ns + s->namespace_ttl_ns;

		if (deadline > now)
			return deadline;
		namespace_release(s, ns, "expired with no client connected");
	}
	return 0;
}

static void free_slot(void *opaque, uint32_t slot)
{
	slot_release(opaque, slot);
}

/* One step for the queue's first namespace; true if it needs more. */
static bool namespace_work(struct memd_server *s, struct namespace *ns)
{
	uint64_t before = memd_index_bytes(&ns->index);
	bool more;

	if (ns->released)
		more = memd_index_drain(&ns->index, WORK_BUCKETS, free_slot, s);
	else
		more = memd_index_migrate(&ns->index, WORK_BUCKETS);
	index_bytes_changed(s, &ns->index, before);
	if (ns->released && !more)
		namespace_free(s, ns);
	return more;
}

bool storage_background(struct memd_server *s)
{
	struct namespace *ns = s->work_head;

	if (!ns)
		return false;
	s->work_head = ns->work_next;
	if (!s->work_head)
		s->work_tail = NULL;
	ns->queued = false;
	/* round robin: one step each, so one huge namespace does not hold
	 * up the others' */
	if (namespace_work(s, ns))
		namespace_queue(s, ns);
	return s->work_head != NULL;
}

void namespaces_free(struct memd_server *s)
{
	struct namespace *ns;

	/* released ones are only in the queue, live ones only in the list
	 * if their index is not growing */
	while ((ns = s->work_head)) {
		s->work_head = ns->work_next;
		ns->queued = false;
		if (ns->released)
			namespace_free(s, ns);
	}
	s->work_tail = NULL;
	while (!list_empty(&s->namespaces)) {
		ns = list_entry(s->namespaces.next, struct namespace, all);
		list_del(&ns->all);
		namespace_free(s, ns);
	}
	list_init(&s->orphans);
}
