// SPDX-License-Identifier: MIT
/*
 * A migration that leaves the remote pages in place (pager.h says the
 * calls and their order; migrate/pagemap.h the map).
 *
 * Freezing: the pager stops starting anything on the store.  A missing
 * fault announces itself in in_fault before it looks at frozen, and the
 * freezer looks at in_fault after setting frozen, both sequentially
 * consistent: either the fault sees frozen and waits (on p->stop, which
 * thawing and pager_destroy() broadcast), or the freezer sees it and
 * waits for it to end.  Only then is the evictor stopped (frozen_evict,
 * which it looks at before each batch, recording under p->lock whether
 * it is at work): a fault under way may be waiting for it to make room.  Once neither runs, every page is in a state of
 * rest (LOCAL, REMOTE, ZERO, HOLE, FAILED) and stays there.  The other
 * uffd callbacks (write-protect and minor faults) only lift protections
 * in place and start no store request; pager_discard(), which drops
 * pages from the store, is counted like a fault but refused (-EBUSY)
 * rather than kept waiting.
 *
 * On the destination, hold_evict keeps the evictor idle until the
 * namespace is its own (pager_handover_commit()): a put before that
 * could seal a page under a (page, generation) the source uses again if
 * the migration fails and the source resumes.
 *
 * Threads: the migration's, one call at a time; faults wait meanwhile.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "memory/pager_internal.h"
#include "migrate/pagemap.h"
#include "remote/store_handover.h"
#include "util/full_io.h"
#include "util/state_buf.h"

#define FREEZE_TIMEOUT_NS 10000000000ull
#define FREEZE_POLL_US 1000

void pager_fault_enter(struct pager *p)
{
	for (;;) {
		bool stop;

		__atomic_add_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&p->frozen, __ATOMIC_SEQ_CST))
			return;
		__atomic_sub_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&p->lock);
		while (p->frozen && !p->stopping)
			pthread_cond_wait(&p->stop, &p->lock);
		stop = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (stop) {	/* served as any fault of a pager that stops */
			__atomic_add_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
			return;
		}
	}
}

bool pager_try_enter(struct pager *p)
{
	__atomic_add_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&p->frozen, __ATOMIC_SEQ_CST) &&
	    !__atomic_load_n(&p->hold_evict, __ATOMIC_ACQUIRE))
		return true;
	__atomic_sub_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
	return false;
}

void pager_fault_exit(struct pager *p)
{
	__atomic_sub_fetch(&p->in_fault, 1, __ATOMIC_SEQ_CST);
}

static void thaw(struct pager *p)
{
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->frozen, false, __ATOMIC_SEQ_CST);
	__atomic_store_n(&p->frozen_evict, false, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&p->stop);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
}

static bool evicting(struct pager *p)
{
	bool busy;

	pthread_mutex_lock(&p->lock);
	busy = p->evicting;
	pthread_mutex_unlock(&p->lock);
	return busy;
}

static bool faulting(struct pager *p)
{
	return __atomic_load_n(&p->in_fault, __ATOMIC_SEQ_CST) != 0;
}

/* Waits while @busy says so, up to @end; -ETIMEDOUT then. */
static int wait_until_idle(struct pager *p, bool (*busy)(struct pager *),
			   uint64_t end)
{
	while (busy(p)) {
		if (monotonic_ns() > end)
			return -ETIMEDOUT;
		usleep(FREEZE_POLL_US);
	}
	return 0;
}

/*
 * New faults wait, then the ones under way end (the evictor still runs
 * meanwhile: one may be waiting for it to make room), then the evictor
 * stops after its batch.
 */
static int freeze(struct pager *p, struct errmsg *err)
{
	uint64_t end = monotonic_ns() + FREEZE_TIMEOUT_NS;
	int ret;

	pthread_mutex_lock(&p->lock);
	if (p->frozen || p->hold_evict) {
		pthread_mutex_unlock(&p->lock);
		return errmsg_set(err, -EBUSY, "pager: a handover is under way");
	}
	__atomic_store_n(&p->frozen, true, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&p->lock);
	ret = wait_until_idle(p, faulting, end);
	if (!ret) {
		pthread_mutex_lock(&p->lock);
		__atomic_store_n(&p->frozen_evict, true, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&p->lock);
		ret = wait_until_idle(p, evicting, end);
	}
	if (ret) {
		thaw(p);
		return errmsg_set(err, ret, "pager: a fetch or an eviction still "
				  "runs after 10 s (store unreachable?)");
	}
	return 0;
}

/* Page @page as the map says it, from a pager at rest. */
static int map_page(struct pager *p, struct pagemap *m, uint64_t page,
		    bool in_place, struct errmsg *err)
{
	uint8_t s = load_state(p, page);

	m->gen[page] = p->gen[page];
	switch (s) {
	case PS_LOCAL:
		m->kind[page] = PAGEMAP_SEND;
		return 0;
	case PS_HOLE:
	case PS_ZERO:
		return 0;	/* ZERO already */
	case PS_REMOTE:
		m->kind[page] = in_place ? PAGEMAP_REMOTE : PAGEMAP_SEND;
		if (!in_place)
			return 0;
		m->where[page] = page_store_where(p->store, page);
		if (m->where[page])
			return 0;
		return errmsg_set(err, -EIO, "page %" PRIu64 " has no copy left "
				  "in the store: the VM cannot migrate", page);
	case PS_FAILED:
		return errmsg_set(err, -EIO, "page %" PRIu64 " was lost in the "
				  "store: the VM cannot migrate", page);
	default:
		return errmsg_set(err, -EBUSY, "page %" PRIu64 " is in transit "
				  "(state %u) in a frozen pager", page, s);
	}
}

static int build_map(struct pager *p, bool in_place, struct pagemap **out,
		     struct errmsg *err)
{
	struct pagemap *m;
	int ret = pagemap_alloc(p->npages, &m);

	if (ret)
		return errmsg_set(err, ret, "pager: out of memory for the page map");
	for (uint64_t page = 0; page < p->npages && !ret; page++)
		ret = map_page(p, m, page, in_place, err);
	if (!ret && in_place) {
		ret = page_store_export(p->store, &m->store, err);
		m->has_store = !ret;
	}
	if (ret) {
		pagemap_free(m);
		return ret;
	}
	m->nsend = m->nzero = m->nremote = 0;
	for (uint64_t page = 0; page < p->npages; page++) {
		m->nsend += m->kind[page] == PAGEMAP_SEND;
		m->nzero += m->kind[page] == PAGEMAP_ZERO;
		m->nremote += m->kind[page] == PAGEMAP_REMOTE;
	}
	*out = m;
	return 0;
}

int pager_handover_begin(struct pager *p, struct state_buf *blob,
			 struct pagemap **map, struct pager_handover_stats *st,
			 struct errmsg *err)
{
	bool in_place = page_store_can_hand_over(p->store);
	struct pagemap *m = NULL;
	int ret = freeze(p, err);

	if (ret)
		return ret;
	if (in_place) {
		ret = page_store_handover(p->store, PAGE_STORE_BEGIN, err);
		if (ret)
			goto thaw;
	}
	ret = build_map(p, in_place, &m, err);
	if (!ret && (ret = pagemap_save(m, blob)))
		errmsg_set(err, ret, "pager: cannot write the page map");
	if (!ret) {
		*st = (struct pager_handover_stats){
			.pages_left = m->nremote,
			.bytes_left = m->nremote * PAGE_SIZE,
			.pages_send = m->nsend,
			.pages_zero = m->nzero,
		};
		__atomic_store_n(&p->left_in_place, m->nremote, __ATOMIC_RELAXED);
		if (map) {
			*map = m;
			return 0;
		}
	}
	pagemap_free(m);
	if (!ret)
		return 0;
	if (in_place)
		page_store_handover(p->store, PAGE_STORE_CANCEL, NULL);
thaw:
	thaw(p);
	return ret;
}

void pager_handover_cancel(struct pager *p)
{
	struct errmsg ignored;

	if (!__atomic_load_n(&p->frozen, __ATOMIC_SEQ_CST))
		return;
	/* only a failed thread start can fail: the store then runs without
	 * its maintenance until the VM ends, as a store whose servers are
	 * all well needs none */
	if (page_store_can_hand_over(p->store))
		page_store_handover(p->store, PAGE_STORE_CANCEL, &ignored);
	__atomic_store_n(&p->left_in_place, 0, __ATOMIC_RELAXED);
	thaw(p);
}

void pager_handover_release(struct pager *p)
{
	struct errmsg ignored;

	if (page_store_can_hand_over(p->store))
		page_store_handover(p->store, PAGE_STORE_RELEASE, &ignored);
}

int pager_read_page(struct pager *p, uint64_t page, void *buf,
		    struct errmsg *err)
{
	uint8_t tag[PAGE_TAG_SIZE];
	struct page_run run = {
		.first = page, .count = 1, .data = buf, .tags = tag,
	};
	uint8_t s;

	if (page >= p->npages || !__atomic_load_n(&p->frozen, __ATOMIC_SEQ_CST))
		return errmsg_set(err, -EINVAL, "pager: page %" PRIu64 " read "
				  "outside RAM or while not frozen", page);
	s = load_state(p, page);
	switch (s) {
	case PS_LOCAL:
		return pread_full(p->mem->memfd, buf, PAGE_SIZE, page * PAGE_SIZE) ?
		       errmsg_set(err, -EIO, "pager: reading page %" PRIu64, page) : 0;
	case PS_HOLE:
	case PS_ZERO:
		memset(buf, 0, PAGE_SIZE);
		return 0;
	case PS_REMOTE:
		run.gens = &p->gen[page];
		return page_store_get(p->store, &run, 1, err);
	default:
		return errmsg_set(err, -EIO, "pager: page %" PRIu64 " is lost or "
				  "in transit (state %u)", page, s);
	}
}

int pager_import(struct pager *p, const struct pagemap *m, struct errmsg *err)
{
	uint64_t remote = 0;

	if (p->evictor_started || m->ram_pages != p->npages)
		return errmsg_set(err, -EINVAL, "pager: import a page map of the "
				  "VM's size before pager_start()");
	for (uint64_t page = 0; page < p->npages; page++) {
		if (m->kind[page] == PAGEMAP_REMOTE &&
		    load_state(p, page) != PS_HOLE)
			return errmsg_set(err, -EINVAL, "pager: page %" PRIu64 " is "
					  "remote but was written already", page);
	}
	for (uint64_t page = 0; page < p->npages; page++) {
		p->gen[page] = m->gen[page];
		if (m->kind[page] == PAGEMAP_REMOTE &&
		    move_state(p, page, PS_HOLE, PS_REMOTE))
			remote++;
	}
	add(&p->c.remote, remote);
	if (m->has_store) {
		pthread_mutex_lock(&p->lock);
		__atomic_store_n(&p->hold_evict, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&p->lock);
	}
	return 0;
}

int pager_handover_commit(struct pager *p, struct errmsg *err)
{
	int ret;

	if (!__atomic_load_n(&p->hold_evict, __ATOMIC_ACQUIRE))
		return 0;
	ret = page_store_handover(p->store, PAGE_STORE_COMMIT, err);
	if (ret)
		return ret;
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->hold_evict, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	pager_room_made(p);
	return 0;
}
