// SPDX-License-Identifier: MIT
/*
 * Pages the guest gave back (pager.h says what becomes of them), run by
 * the balloon's I/O thread through its discard hook.
 *
 * A chunk of up to DISCARD_CHUNK pages at a time: claim each page
 * (-> BUSY, remembering the state it was in), punch the runs of claimed
 * pages out of the memfd, drop the same runs from the store in one
 * request, then take the pages out of the counts and make them HOLEs.
 * Pages only in the store or ZERO have nothing in the memfd, but a punch
 * of a hole costs nothing and keeps the runs whole.  Every claimed page
 * is dropped, resident ones included: a page fetched back keeps its
 * stored copy until its next eviction replaces it, and a ZERO page may
 * have one from before it was zeroed.
 *
 * The drop is made while the pages are still claimed: once a HOLE, a
 * page may be touched, filled and evicted again (by a guest that does not
 * keep its word, or a device writing into it), and a drop arriving after
 * that put would lose the new copy.  A fault on a claimed page waits the
 * way it waits for any BUSY page, for the punch and the drop.  The drop
 * of a page claimed from EVICTING may overlap the evictor's put of it:
 * nothing reads the page from the store meanwhile, and the evictor drops
 * what it put as stale once the put returns, so the store ends without
 * it either way.
 *
 * A page can appear twice in what the guest sends; the second time it
 * is BUSY with PF_DISCARD, ours, and is skipped rather than waited for.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/pager_internal.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"

/* 2 MiB: Linux reports free pages in blocks of that size. */
#define DISCARD_CHUNK 512

struct discard {
	unsigned n;
	uint64_t pages[DISCARD_CHUNK];
	uint8_t from[DISCARD_CHUNK];	/* the state each was claimed from */
	uint8_t punched[DISCARD_CHUNK];
	struct page_run runs[DISCARD_CHUNK];
};

/*
 * Takes @page from whoever may move it, into @from its state then; false
 * if there is nothing to discard or it is not ours to take: a HOLE, a page
 * a fault thread fills in (its fetcher owns it and installs it), a FAILED
 * one (final), one this call claimed already.
 */
static bool claim(struct pager *p, uint64_t page, uint8_t *from)
{
	for (;;) {
		uint8_t s = load_state(p, page);

		switch (s) {
		case PS_LOCAL:
		case PS_EVICTING:	/* cancels the eviction */
		case PS_REMOTE:
		case PS_ZERO:
			if (!move_state(p, page, s, PS_BUSY))
				continue;
			set_flag(p, page, PF_DISCARD);
			*from = s;
			return true;
		case PS_BUSY:
			if (__atomic_load_n(&p->flags[page], __ATOMIC_RELAXED) &
			    PF_DISCARD)
				return false;
			/* fall through */
		case PS_PUNCHING:
			/* a uffd operation or a punch: microseconds */
			sched_yield();
			continue;
		default:
			return false;
		}
	}
}

/* A page whose punch failed goes back to what it was; an eviction the
 * claim cancelled stays cancelled (the evictor drops its copy as stale)
 * and its write protection is lifted, under BUSY as on_wp() does. */
static void unclaim(struct pager *p, uint64_t page, uint8_t from)
{
	if (from == PS_EVICTING) {
		uffd_ram_protect(p->uffd, page, 1, false);
		from = PS_LOCAL;
	}
	take_flag(p, page, PF_DISCARD);
	set_state(p, page, from);
}

/* The claimed pages in runs of adjacent ones (in the order claimed),
 * punched; the pages of a run that could not be punched are given back.
 * Returns the first punch error, 0 if none. */
static int punch_runs(struct pager *p, struct discard *d)
{
	int ret = 0;

	for (unsigned i = 0, j; i < d->n; i = j) {
		int err;

		for (j = i + 1; j < d->n && d->pages[j] == d->pages[j - 1] + 1; j++)
			;
		err = pager_punch(p, d->pages[i], j - i);
		for (unsigned k = i; k < j; k++) {
			d->punched[k] = !err;
			if (err)
				unclaim(p, d->pages[k], d->from[k]);
		}
		if (err && !ret)
			ret = err;
	}
	return ret;
}

/* Drops the punched pages from the store, in one request.  Best effort:
 * a copy left behind is never read (a HOLE is filled with zeros, not
 * fetched), and the page's next eviction replaces it. */
static void drop_punched(struct pager *p, struct discard *d)
{
	size_t nruns = 0;

	for (unsigned i = 0; i < d->n; i++) {
		struct page_run *r = nruns ? &d->runs[nruns - 1] : NULL;

		if (!d->punched[i])
			continue;
		if (r && r->first + r->count == d->pages[i])
			r->count++;
		else
			d->runs[nruns++] = (struct page_run){
				.first = d->pages[i], .count = 1,
			};
	}
	if (nruns)
		page_store_drop(p->store, d->runs, nruns, NULL);
}

/* The chunk's punched pages leave the counts and become HOLEs. */
static int finish(struct pager *p, struct discard *d)
{
	uint64_t resident = 0, remote = 0, zero = 0, gone = 0;
	int ret = punch_runs(p, d);

	drop_punched(p, d);
	for (unsigned i = 0; i < d->n; i++) {
		if (!d->punched[i])
			continue;
		resident += d->from[i] == PS_LOCAL || d->from[i] == PS_EVICTING;
		remote += d->from[i] == PS_REMOTE;
		zero += d->from[i] == PS_ZERO;
		gone++;
		/* no reference, no prefetch hit, not ours any more */
		__atomic_store_n(&p->flags[d->pages[i]], 0, __ATOMIC_RELAXED);
		p->clean[d->pages[i]] = 0;	/* its copy was dropped */
		set_state(p, d->pages[i], PS_HOLE);
	}
	d->n = 0;
	sub(&p->resident, resident);
	sub(&p->c.remote, remote);
	sub(&p->c.zero, zero);
	add(&p->c.discarded, gone);
	if (resident)
		pager_room_made(p);
	return ret;
}

int pager_discard(void *obj, const struct page_range *ranges, size_t n)
{
	struct pager *p = obj;
	struct discard d;
	int ret = 0, err;

	/* guest-controlled (through the balloon): all or nothing */
	for (size_t i = 0; i < n; i++)
		if (ranges[i].count > p->npages ||
		    ranges[i].first > p->npages - ranges[i].count)
			return -EINVAL;
	/* a migration froze the pager (or has yet to hand it the store):
	 * the pages stay as they are, the store is not to be touched */
	if (!pager_try_enter(p))
		return -EBUSY;
	d.n = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t end = ranges[i].first + ranges[i].count;

		for (uint64_t page = ranges[i].first; page < end; page++) {
			if (!claim(p, page, &d.from[d.n]))
				continue;
			d.pages[d.n++] = page;
			if (d.n < DISCARD_CHUNK)
				continue;
			err = finish(p, &d);
			ret = ret ? ret : err;
		}
	}
	err = finish(p, &d);
	pager_fault_exit(p);
	return ret ? ret : err;
}
