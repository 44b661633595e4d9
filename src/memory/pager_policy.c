// SPDX-License-Identifier: MIT
/*
 * The pager's policy: how many pages may be resident, which go when
 * there are too many, and how far a fault reads ahead.
 *
 *   budget    resident counts the pages in the memfd or being filled
 *             in (atomic); a fault reserves its page before it fetches,
 *             waiting on the room condition (under p->lock) while the
 *             count is at the limit; the evictor is signalled through
 *             the work condition and broadcasts room as it frees pages.
 *   victims   the evictor thread's alone (cold..cold_off, hand, cand):
 *             the monitor's coldest regions first (monitor_lock only
 *             while copying its order), else a CLOCK over all pages; a
 *             page referenced since the hand passed gets a second
 *             chance.
 *   prefetch  the window (prefetch_lock) grows while the pages it
 *             brought last were touched and shrinks while they were
 *             not; a touch is a present entry in /proc/self/pagemap,
 *             read with pread() so that no pager thread faults on
 *             guest RAM.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "memory/pager_internal.h"
#include "memory/wss.h"
#include "memory/wss_monitor.h"
#include "util/full_io.h"
#include "util/page.h"

#define ROOM_WAIT_NS 10000000ull

/* --- the resident budget -------------------------------------------------- */

/*
 * Headroom: the evictor keeps this many pages of the budget free, so
 * that faults and their prefetch (a window now, the next one read ahead)
 * find room without waiting: the low watermark's share of the limit, or
 * three prefetch windows if more, at most a quarter of the limit.
 */
uint64_t pager_headroom(struct pager *p)
{
	uint64_t limit = get(&p->limit);
	uint64_t h = limit - limit * p->cfg.low_pct / 100;

	if (h < 3ull * p->cfg.max_prefetch)
		h = 3ull * p->cfg.max_prefetch;
	return h < limit / 4 ? h : limit / 4;
}

/* Eviction starts when resident comes within half the headroom of the
 * limit (a fault that would go beyond the limit waits for the evictor),
 * and goes down to the headroom.  A limit of all of RAM never evicts. */
bool pager_at_limit(struct pager *p)
{
	uint64_t limit = get(&p->limit);

	return limit < p->npages &&
	       get(&p->resident) + pager_headroom(p) / 2 >= limit;
}

void pager_wake_evictor(struct pager *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

bool pager_try_reserve(struct pager *p, uint64_t n)
{
	uint64_t r = __atomic_load_n(&p->resident, __ATOMIC_RELAXED);

	do {
		if (r + n > get(&p->limit))
			return false;
	} while (!__atomic_compare_exchange_n(&p->resident, &r, r + n, true,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return true;
}

/*
 * Takes a page of the resident budget for a fault, waiting while the
 * count is at the limit (the evictor frees room).  When the VM ends,
 * or while the store refuses puts (full or unreachable: the evictor
 * cannot make room), it takes it anyway: a guest that keeps running
 * over its local budget is better than one stalled on every fault
 * until a server has room again.
 */
void pager_reserve_for_fault(struct pager *p)
{
	uint64_t t0 = 0;

	while (!pager_try_reserve(p, 1)) {
		struct timespec until = monotonic_deadline(ROOM_WAIT_NS);

		if (pager_giving_up(p) ||
		    __atomic_load_n(&p->put_failing, __ATOMIC_RELAXED)) {
			add(&p->resident, 1);
			break;
		}
		if (!t0) {
			t0 = monotonic_ns();
			__atomic_fetch_add(&p->room_waiters, 1, __ATOMIC_RELAXED);
		}
		pthread_mutex_lock(&p->lock);
		pthread_cond_signal(&p->work);
		pthread_cond_timedwait(&p->room, &p->lock, &until);
		pthread_mutex_unlock(&p->lock);
	}
	if (t0) {
		__atomic_fetch_sub(&p->room_waiters, 1, __ATOMIC_RELAXED);
		add(&p->c.room_wait_ns, monotonic_ns() - t0);
	}
	if (pager_at_limit(p))
		pager_wake_evictor(p);
}

void pager_room_made(struct pager *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->room);
	pthread_mutex_unlock(&p->lock);
}

/* --- prefetch window and hits --------------------------------------------- */

/* Whether @page is mapped in our page tables: a prefetched page was
 * put in the memfd unmapped, so a mapping is the guest's touch. */
static bool page_mapped(struct pager *p, uint64_t page)
{
	uint64_t entry = 0;
	uint64_t off = ((uintptr_t)p->mem->base / PAGE_SIZE + page) * 8;

	if (p->pagemap_fd < 0 ||
	    pread_full(p->pagemap_fd, &entry, sizeof(entry), off))
		return false;
	return entry >> 63;
}

/* A prefetched page not yet counted: counts it if it was touched. */
bool pager_settle_prefetched(struct pager *p, uint64_t page)
{
	if (!take_flag(p, page, PF_PREFETCHED))
		return false;
	if (!page_mapped(p, page))
		return false;
	add(&p->c.prefetch_hits, 1);
	return true;
}

/*
 * The window for this fault, adapted to how the last prefetch fared:
 * mostly touched (sequential access) doubles it, mostly not halves it.
 */
unsigned pager_window_now(struct pager *p)
{
	unsigned w, touched = 0;

	if (!p->cfg.max_prefetch)
		return 0;
	pthread_mutex_lock(&p->prefetch_lock);
	if (p->nlast) {
		for (unsigned i = 0; i < p->nlast; i++) {
			uint64_t q = p->last[i];

			if (load_state(p, q) != PS_LOCAL || !page_mapped(p, q))
				continue;
			touched++;
			if (take_flag(p, q, PF_PREFETCHED))
				add(&p->c.prefetch_hits, 1);
		}
		if (touched * 2 >= p->nlast)
			p->window = p->window * 2 < p->cfg.max_prefetch ?
				    p->window * 2 : p->cfg.max_prefetch;
		else if (touched * 4 < p->nlast && p->window > 1)
			p->window /= 2;
		p->nlast = 0;
	}
	w = p->window;
	pthread_mutex_unlock(&p->prefetch_lock);
	return w;
}

/* --- victims -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The monitor's order of regions, coldest first, for this round. */
void pager_refresh_cold(struct pager *p)
{
	pthread_mutex_lock(&p->monitor_lock);
	p->ncold = p->monitor ?
		   wss_monitor_coldest(p->monitor, p->cold,
				       (p->npages + WSS_REGION_PAGES - 1) /
				       WSS_REGION_PAGES) : 0;
	pthread_mutex_unlock(&p->monitor_lock);
	p->cold_pos = 0;
	p->cold_off = 0;
}

/* The next page the hand considers: region by region from the
 * coldest, or all pages in order (CLOCK). */
static uint64_t next_candidate(struct pager *p)
{
	uint64_t page;

	if (!p->ncold) {
		page = p->hand;
		p->hand = (p->hand + 1) % p->npages;
		return page;
	}
	page = p->cold[p->cold_pos].index * WSS_REGION_PAGES + p->cold_off;
	if (++p->cold_off == WSS_REGION_PAGES) {
		p->cold_off = 0;
		p->cold_pos = (p->cold_pos + 1) % p->ncold;
	}
	return page;
}

/* Second chance for a page referenced since the hand last passed; a
 * prefetched page counts as referenced once the guest touched it. */
static bool second_chance(struct pager *p, uint64_t page)
{
	if (pager_settle_prefetched(p, page))
		return true;
	return take_flag(p, page, PF_REF);
}

/* Pages behind a detected scan, nearest first (MRU: on a loop those are
 * needed last), without second chances: a scan references them all.
 * Up to @want moved to EVICTING into cand[*n]. */
static void scan_victims(struct pager *p, unsigned want, unsigned *n)
{
	unsigned nv;

	pthread_mutex_lock(&p->scan_lock);
	nv = scan_detect_victims(&p->scan, p->vict, SCAN_STREAMS);
	pthread_mutex_unlock(&p->scan_lock);
	for (unsigned i = 0; i < nv && *n < want; i++) {
		uint64_t page = p->vict[i].first;

		for (uint64_t k = 0; k < p->vict[i].count && *n < want;
		     k++, page += (uint64_t)p->vict[i].step) {
			if (page >= p->npages)
				break;
			if (load_state(p, page) != PS_LOCAL)
				continue;
			if (move_state(p, page, PS_LOCAL, PS_EVICTING)) {
				take_flag(p, page, PF_REF);
				pager_settle_prefetched(p, page);
				p->cand[(*n)++] = page;
			}
		}
	}
}

/* Up to @want LOCAL pages moved to EVICTING, ascending. */
unsigned pager_choose_victims(struct pager *p, unsigned want)
{
	uint64_t scan = 2 * (p->ncold ? p->ncold * WSS_REGION_PAGES : p->npages);
	unsigned n = 0;

	scan_victims(p, want, &n);
	while (n < want && scan--) {
		uint64_t page = next_candidate(p);

		if (page >= p->npages || load_state(p, page) != PS_LOCAL ||
		    second_chance(p, page))
			continue;
		if (move_state(p, page, PS_LOCAL, PS_EVICTING))
			p->cand[n++] = page;
	}
	qsort(p->cand, n, sizeof(p->cand[0]), cmp_u64);
	return n;
}
