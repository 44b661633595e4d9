// SPDX-License-Identifier: MIT
/*
 * The evictor: one thread that, once the resident count reaches the
 * limit, evicts down to the low watermark a batch at a time.  A batch:
 * choose victims (LOCAL -> EVICTING, pager_policy.c), write-protect and
 * copy them out with pread() (never through the mapping), put the
 * non-zero ones to the store (pager_store.c: sealed, each under a new
 * generation), then punch only
 * the pages still EVICTING (-> PUNCHING -> REMOTE or ZERO).  A page
 * unchanged since it was fetched (its hash is the one the fetch noted
 * in clean[]) is not put: the copy it came from is still in the store
 * under the same generation, as a swap cache keeps a clean page's slot.
 * That saves the seal and the transfer of every read-mostly page on
 * each round trip; it is skipped while the store says it has lost or
 * is short of copies, when an old copy may not be there.  A write
 * since the protection moved its page to BUSY and cancelled it; the
 * stored copy of such a page is dropped as stale.
 *
 * The batch arrays in struct pager are this thread's alone; it takes
 * p->lock only to wait (for work, or out a back-off) and to signal
 * room.  When the store
 * refuses puts it backs off (10 ms doubling to 1 s) and retries, and
 * put_failing lets faults go over the limit meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <linux/falloc.h>

#include "memory/pager_internal.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"
#include "util/full_io.h"
#include "util/page.h"

#define EVICTOR_IDLE_NS 100000000ull

/* Frees the pages' memory; KVM's MMU notifier drops the guest's
 * mappings of them.  The fault path undoes a half-written window so. */
int pager_punch(struct pager *p, uint64_t page, uint64_t count)
{
	return fallocate(p->mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			 (off_t)(page * PAGE_SIZE), (off_t)(count * PAGE_SIZE)) ? -errno : 0;
}

/* End of the run of adjacent candidates from @i among those with
 * @mask set (NULL: all). */
unsigned pager_run_end(struct pager *p, unsigned i, unsigned n,
		       const uint8_t *mask)
{
	unsigned j = i + 1;

	while (j < n && p->cand[j] == p->cand[j - 1] + 1 && (!mask || mask[j]))
		j++;
	return j;
}

/* Candidates [i, j) stay resident after all. */
static void keep_resident(struct pager *p, unsigned i, unsigned j,
			  uint8_t from, uint8_t *alive)
{
	for (unsigned k = i; k < j; k++) {
		alive[k] = 0;
		if (move_state(p, p->cand[k], from, PS_BUSY)) {
			uffd_ram_protect(p->uffd, p->cand[k], 1, false);
			set_state(p, p->cand[k], PS_LOCAL);
		}
	}
}

static bool all_zero(const uint8_t *page)
{
	const uint64_t *w = (const uint64_t *)page;

	for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Write-protect every run: a write after this faults and cancels. */
static void protect(struct pager *p, unsigned n, uint8_t *alive)
{
	for (unsigned i = 0; i < n; i++) {
		alive[i] = 1;
		/* no generation left for another put: it stays (page_seal.h) */
		if (p->gen[p->cand[i]] == UINT32_MAX)
			keep_resident(p, i, i + 1, PS_EVICTING, alive);
	}
	for (unsigned i = 0, j; i < n; i = j) {
		if (!alive[i]) {
			j = i + 1;
			continue;
		}
		j = pager_run_end(p, i, n, alive);
		if (uffd_ram_protect(p->uffd, p->cand[i], j - i, true))
			keep_resident(p, i, j, PS_EVICTING, alive);
	}
}

/* Then copy out: a write before the protection is in the copy.
 * Returns the pages kept. */
static unsigned copy_out(struct pager *p, unsigned n, uint8_t *alive)
{
	unsigned kept = 0;

	for (unsigned i = 0, j; i < n; i = j) {
		if (!alive[i]) {
			j = i + 1;
			continue;
		}
		j = pager_run_end(p, i, n, alive);
		if (pread_full(p->mem->memfd, p->buf + i * PAGE_SIZE,
			       (uint64_t)(j - i) * PAGE_SIZE, p->cand[i] * PAGE_SIZE))
			keep_resident(p, i, j, PS_EVICTING, alive);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!alive[i])
			continue;
		kept++;
		p->zero[i] = all_zero(p->buf + i * PAGE_SIZE);
	}
	return kept;
}

/* Which pages the store still holds as they are now (clean_hit[]). */
static void find_clean(struct pager *p, unsigned n, const uint8_t *alive)
{
	struct page_store_stats ss;
	bool whole;

	page_store_stats(p->store, &ss);
	whole = !ss.lost && !ss.under_replicated;
	for (unsigned i = 0; i < n; i++) {
		uint64_t h = p->clean[p->cand[i]];

		p->clean_hit[i] = whole && alive[i] && !p->zero[i] && h &&
				  page_hash(p, p->buf + i * PAGE_SIZE) == h;
	}
}

/* Punches the pages still EVICTING after the put (-> PUNCHING). */
static void punch(struct pager *p, unsigned n, uint8_t *alive)
{
	for (unsigned i = 0; i < n; i++) {
		bool moved = alive[i] &&
			     move_state(p, p->cand[i], PS_EVICTING, PS_PUNCHING);

		p->put[i] = p->put[i] && !moved;	/* now: stale copies */
		alive[i] = moved;
	}
	for (unsigned i = 0, j; i < n; i = j) {
		if (!alive[i]) {
			j = i + 1;
			continue;
		}
		j = pager_run_end(p, i, n, alive);
		if (pager_punch(p, p->cand[i], j - i)) {
			/* the copies just put are stale; a clean one is not */
			for (unsigned k = i; k < j; k++)
				p->put[k] = !p->zero[k] && !p->clean_hit[k];
			keep_resident(p, i, j, PS_PUNCHING, alive);
		}
	}
}

static unsigned count_runs(struct pager *p, unsigned n)
{
	unsigned runs = 0;

	for (unsigned i = 0; i < n; i = pager_run_end(p, i, n, NULL))
		runs++;
	return runs;
}

/* One batch of at most @want pages; returns the pages evicted.  The
 * protections and the punches (the invalidations) run with the vCPUs
 * paused or not, whichever was cheaper lately for this many runs; the
 * copy and the put never hold them paused. */
static unsigned evict_batch(struct pager *p, unsigned want)
{
	uint8_t *alive = p->committed;
	unsigned n = pager_choose_victims(p, want), evicted = 0, zeros = 0;
	unsigned cleans = 0;
	unsigned runs;
	bool paused, way;
	uint64_t t0, ns;

	if (!n)
		return 0;
	runs = count_runs(p, n);
	way = pager_evict_choose_paused(p, runs);
	t0 = monotonic_ns();
	paused = way && pager_evict_pause(p);
	protect(p, n, alive);
	pager_evict_resume(p, paused);
	ns = monotonic_ns() - t0;
	if (!copy_out(p, n, alive))
		return 0;
	find_clean(p, n, alive);
	if (pager_put_batch(p, n, alive)) {
		keep_resident(p, 0, n, PS_EVICTING, alive);
		return 0;
	}
	t0 = monotonic_ns();
	paused = paused && pager_evict_pause(p);
	punch(p, n, alive);
	pager_evict_resume(p, paused);
	pager_evict_cost_note(p, runs, paused, ns + monotonic_ns() - t0);
	for (unsigned i = 0; i < n; i++) {
		if (!alive[i])
			continue;
		__atomic_store_n(&p->flags[p->cand[i]], 0, __ATOMIC_RELAXED);
		if (p->zero[i])
			p->clean[p->cand[i]] = 0;
		set_state(p, p->cand[i], p->zero[i] ? PS_ZERO : PS_REMOTE);
		evicted++;
		zeros += p->zero[i];
		cleans += p->clean_hit[i];
	}
	sub(&p->resident, evicted);
	add(&p->c.remote, evicted - zeros);
	add(&p->c.zero, zeros);
	add(&p->c.evictions, evicted);
	add(&p->c.clean_evictions, cleans);
	pager_drop_stale(p, n, p->put);
	return evicted;
}

/* Down to the low watermark, a batch at a time. */
static void evict_down(struct pager *p)
{
	uint64_t low = get(&p->limit) - pager_headroom(p);

	pager_refresh_cold(p);
	while (!stopping(p) && !pager_evict_held(p)) {
		uint64_t r = get(&p->resident), t0;
		unsigned got;

		if (r <= low)
			break;
		t0 = monotonic_ns();
		got = evict_batch(p, r - low < p->cfg.batch ?
				     (unsigned)(r - low) : p->cfg.batch);
		add(&p->c.evict_ns, monotonic_ns() - t0);
		pager_room_made(p);
		if (got)
			continue;
		if (!p->put_failing) {
			/* nothing evictable yet */
			pager_backoff(p, 5000000, false);
			break;
		}
		pager_backoff(p, p->put_delay_ns, false);
		p->put_delay_ns = p->put_delay_ns * 2 < RETRY_MAX_NS ?
				  p->put_delay_ns * 2 : RETRY_MAX_NS;
	}
	if (!p->put_failing)
		p->put_delay_ns = RETRY_FIRST_NS;
}

/* Says once when the store's pages fall short of their copies, once
 * when they have them all again; the evictor's, without p->lock. */
static void watch_copies(struct pager *p)
{
	struct page_store_stats ss;
	struct pager_event ev = { .store = p->store_desc, .detail = "" };

	page_store_stats(p->store, &ss);
	if (!ss.under_replicated == !p->copies_short)
		return;
	p->copies_short = ss.under_replicated;
	ev.kind = p->copies_short ? PAGER_EVENT_COPIES_SHORT :
				    PAGER_EVENT_COPIES_BACK;
	ev.count = ss.under_replicated;
	if (p->cfg.on_event)
		p->cfg.on_event(p->cfg.opaque, &ev);
}

void *pager_evictor_thread(void *arg)
{
	struct pager *p = arg;

	pthread_setname_np(pthread_self(), "pager-evict");
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		bool work = pager_at_limit(p) && !pager_evict_held(p);

		if (!work) {
			struct timespec until;

			until = monotonic_deadline(EVICTOR_IDLE_NS);
			pthread_cond_timedwait(&p->work, &p->lock, &until);
		}
		/* re-read under the lock: pager_handover_begin() waits
		 * for evicting to clear once it froze the pager */
		work = work && !pager_evict_held(p);
		p->evicting = work;
		pthread_mutex_unlock(&p->lock);
		watch_copies(p);
		if (work)
			evict_down(p);
		pthread_mutex_lock(&p->lock);
		p->evicting = false;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}
