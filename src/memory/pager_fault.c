// SPDX-License-Identifier: MIT
/*
 * The pager's uffd callbacks, run by uffd_ram's fault threads (and
 * on_minor() without a fault by the sampler's thread, through
 * uffd_ram_map_back()):
 *
 *   missing   serve(): claim the page (-> FETCHING), reserve its place in
 *             the budget, claim a prefetch window after it, fetch the
 *             REMOTE ones from the store in one request (the store opens
 *             them: a page that is not what we sealed is -EBADMSG, and
 *             then the faulting page is asked for alone), then put the faulting page in mapped (UFFDIO_COPY wakes
 *             its waiters) and the window unmapped (so that a touch
 *             shows in pagemap); a fault on a page being fetched is
 *             left to the thread that claimed it
 *   wp, minor lifted or mapped back under BUSY, which cancels an
 *             eviction in progress (pager.h says why that keeps writes)
 *
 * A claimed page is the claiming thread's until it sets the page's next
 * state; giving it back unfilled wakes whoever faulted on it meanwhile.
 * The fetch buffers come from a small pool under p->lock; the window's
 * record of what it brought is under prefetch_lock.  Every path out of
 * a callback resolves the fault, wakes its thread, or leaves it to the
 * thread whose install wakes it (uffd_ram.h's contract for resolvers).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory/pager_internal.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"

/* --- claiming and giving back pages --------------------------------------- */

static struct fetch *fetch_get(struct pager *p)
{
	struct fetch *f = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->npool)
		f = p->pool[--p->npool];
	pthread_mutex_unlock(&p->lock);
	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (f)
		f->data = malloc((1 + PAGER_MAX_PREFETCH) * PAGE_SIZE);
	if (f && !f->data) {
		free(f);
		f = NULL;
	}
	return f;
}

static void fetch_put(struct pager *p, struct fetch *f)
{
	pthread_mutex_lock(&p->lock);
	if (p->npool < FETCH_POOL) {
		p->pool[p->npool++] = f;
		f = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (f) {
		free(f->data);
		free(f);
	}
}

static void fetch_add(struct fetch *f, uint64_t page, uint8_t from)
{
	f->pages[f->n] = page;
	f->from[f->n] = from;
	f->ok[f->n] = true;
	f->n++;
}

/* Gives a claimed page back unfilled, and wakes whoever faulted on it
 * meanwhile (they left it to us): their retry claims it afresh. */
static void release(struct pager *p, uint64_t page, uint8_t from)
{
	set_state(p, page, from);
	sub(&p->resident, 1);
	uffd_ram_wake(p->uffd, page, 1);
}

static void release_window(struct pager *p, struct fetch *f)
{
	for (unsigned i = 1; i < f->n; i++)
		if (f->ok[i])
			release(p, f->pages[i], f->from[i]);
	f->n = 1;
}

/* --- a fetch's outcome ---------------------------------------------------- */

/* A needed page cannot be had: stop the VM, never hand out other data.
 * The refusal (poison, or the fence without it: uffd_ram.h) releases the
 * threads waiting for the page without data (SIGBUS, or EFAULT in a
 * syscall or KVM_RUN), so that a device thread waiting on it can still
 * be stopped; it comes after the exit request, so that theirs is not
 * the message the VM ends with. */
static void page_lost(struct pager *p, uint64_t page, uint8_t from, int error,
		      const char *why)
{
	set_state(p, page, PS_FAILED);
	sub(&p->resident, 1);
	if (from == PS_REMOTE)
		sub(&p->c.remote, 1);
	else if (from == PS_ZERO)
		sub(&p->c.zero, 1);
	add(&p->c.failed, 1);
	pager_emit(p, PAGER_EVENT_PAGE_LOST, page, error, why);
	if (p->vm)
		vm_request_exit(p->vm, VM_EXIT_HOST_ERROR, error, 0,
				"pager: guest page %llu (memfd offset %#llx) cannot be "
				"brought back from %s: %s",
				(unsigned long long)page,
				(unsigned long long)(page * PAGE_SIZE), p->store_desc,
				why);
	uffd_ram_refuse(p->uffd, page, 1);
}

/* The VM ends (or the pager stops) while the page is unreachable: the
 * page stays REMOTE, the thread waiting for it is refused rather than
 * given zeros. */
static void give_up(struct pager *p, uint64_t page)
{
	set_state(p, page, PS_REMOTE);
	sub(&p->resident, 1);
	uffd_ram_refuse(p->uffd, page, 1);
}

/* Window pages [i, j) of one kind, adjacent: into the memfd, unmapped,
 * so that their first touch is visible.  Zero pages are written, not
 * fallocated: a fallocated page is not "uptodate" and mincore() (the
 * sampler's population) would not see it. */
static int install_unmapped(struct pager *p, struct fetch *f, unsigned i,
			    unsigned j)
{
	uint64_t off = f->pages[i] * PAGE_SIZE, len = (uint64_t)(j - i) * PAGE_SIZE;
	int ret;

	if (f->from[i] != PS_REMOTE)
		memset(f->data + i * PAGE_SIZE, 0, len);
	ret = pwrite_full(p->mem->memfd, f->data + i * PAGE_SIZE, len, off);
	if (ret)	/* nothing half-written stays */
		pager_punch(p, f->pages[i], j - i);
	return ret;
}

static void account_filled(struct pager *p, uint8_t from)
{
	if (from == PS_REMOTE) {
		sub(&p->c.remote, 1);
		add(&p->c.fetched_pages, 1);
		add(&p->c.bytes_in, PAGE_SIZE);
	} else if (from == PS_ZERO) {
		sub(&p->c.zero, 1);
	}
}

/* Slot @i was filled in: from the store, its stored copy holds what it
 * holds now (pager_evict.c punches it without a put while it does). */
static void note_clean(struct pager *p, const struct fetch *f, unsigned i)
{
	p->clean[f->pages[i]] = f->from[i] == PS_REMOTE ?
				page_hash(p, f->data + i * PAGE_SIZE) : 0;
}

static void install_window(struct pager *p, struct fetch *f)
{
	unsigned i = 1, n = 0;

	while (i < f->n) {
		unsigned j = i + 1;

		if (!f->ok[i]) {
			i++;
			continue;
		}
		while (j < f->n && f->ok[j] && f->from[j] == f->from[i] &&
		       f->pages[j] == f->pages[j - 1] + 1)
			j++;
		if (install_unmapped(p, f, i, j)) {
			for (unsigned k = i; k < j; k++) {
				f->ok[k] = false;
				release(p, f->pages[k], f->from[k]);
			}
			i = j;
			continue;
		}
		for (unsigned k = i; k < j; k++) {
			note_clean(p, f, k);
			set_flag(p, f->pages[k], PF_PREFETCHED);
			mark_brought_in(p, f->pages[k]);
			set_state(p, f->pages[k], PS_LOCAL);
			account_filled(p, f->from[k]);
			add(&p->c.prefetched, 1);
		}
		/* after LOCAL: a fault that saw FETCHING is woken here */
		uffd_ram_wake(p->uffd, f->pages[i], j - i);
		i = j;
	}
	pthread_mutex_lock(&p->prefetch_lock);
	for (i = 1; i < f->n; i++)
		if (f->ok[i])
			p->last[n++] = f->pages[i];
	if (n)
		p->nlast = n;
	pthread_mutex_unlock(&p->prefetch_lock);
}

/* The next pages from @page along @step that are not in the memfd, as
 * far as the budget allows without waiting, into @f ascending (runs of
 * adjacent pages travel together either way).  Returns the last page
 * considered (@page if none). */
static uint64_t claim_window(struct pager *p, struct fetch *f, uint64_t page,
			     unsigned w, int64_t step)
{
	uint64_t q = page, last = page;

	for (unsigned i = 0; i < w; i++) {
		uint8_t s;

		q += (uint64_t)step;
		if (q >= p->npages)	/* past either end (wraps if below 0) */
			break;
		last = q;
		s = load_state(p, q);
		if (s != PS_REMOTE && s != PS_HOLE && s != PS_ZERO)
			continue;
		if (!pager_try_reserve(p, 1))
			break;
		if (!move_state(p, q, s, PS_FETCHING)) {
			sub(&p->resident, 1);
			continue;
		}
		fetch_add(f, q, s);
	}
	if (step < 0) {
		for (unsigned i = 1, j = f->n - 1; i < j; i++, j--) {
			uint64_t pg = f->pages[i];
			uint8_t fr = f->from[i];

			f->pages[i] = f->pages[j];
			f->from[i] = f->from[j];
			f->pages[j] = pg;
			f->from[j] = fr;
		}
	}
	return last;
}

/* A fault's place in a detected scan, if any. */
struct scan_pos {
	int stream;		/* -1: none */
	int64_t step;		/* the scan's direction and stride */
	uint64_t last;		/* the last page the window considered */
};

/* Where this fault's prefetch goes: along a detected scan (its
 * direction and stride, the whole window), else forward with the
 * adaptive window.  Tells the detector what it covered. */
static void claim_for_fault(struct pager *p, struct fetch *f, uint64_t page,
			    struct scan_pos *pos)
{
	struct scan_info info;
	unsigned w;

	pthread_mutex_lock(&p->scan_lock);
	pos->stream = scan_detect_fault(&p->scan, page, &info);
	pthread_mutex_unlock(&p->scan_lock);
	pos->step = info.step;
	w = info.step ? p->cfg.max_prefetch : pager_window_now(p);
	pos->last = claim_window(p, f, page, w, info.step ? info.step : 1);
	pthread_mutex_lock(&p->scan_lock);
	scan_detect_fetched(&p->scan, pos->stream, page, pos->last);
	pthread_mutex_unlock(&p->scan_lock);
}

/*
 * A scan's next window, read once its fault is served, while the guest
 * reads the window just brought: the guest then finds it in place.  Its
 * first page (the marker) is left out, so that the guest's arrival
 * there is a fault, a one-page one, that reads the window after it: the
 * scan's reads stay a window ahead of it.  Best effort: trouble with the
 * store gives the pages back, to be faulted in when needed.
 */
static void read_ahead(struct pager *p, struct fetch *f,
		       const struct scan_pos *pos)
{
	struct errmsg err = { "" };
	uint64_t marker = pos->last + (uint64_t)pos->step, last;

	if (!pos->step || marker >= p->npages || stopping(p))
		return;
	f->n = 1;	/* slot 0: the marker, not fetched */
	f->pages[0] = marker;
	f->from[0] = PS_LOCAL;
	f->ok[0] = false;
	last = claim_window(p, f, marker, p->cfg.max_prefetch, pos->step);
	if (f->n == 1)
		return;
	if (pager_get_remote(p, f, &err)) {
		release_window(p, f);
		return;
	}
	install_window(p, f);
	pthread_mutex_lock(&p->scan_lock);
	scan_detect_fetched(&p->scan, pos->stream, marker, last);
	pthread_mutex_unlock(&p->scan_lock);
}

/* The faulting page first, mapped (UFFDIO_COPY wakes every waiter). */
static int install_faulting(struct pager *p, struct fetch *f)
{
	int ret = f->from[0] == PS_REMOTE ?
		  uffd_ram_copy(p->uffd, f->pages[0], 1, f->data) :
		  uffd_ram_zeropage(p->uffd, f->pages[0], 1);

	/* -EEXIST: there after all (nothing else fills a page we own;
	 * kept for safety): the waiters still need waking */
	if (ret == -EEXIST)
		ret = uffd_ram_wake(p->uffd, f->pages[0], 1);
	return ret;
}

static void record_latency(struct pager *p, uint64_t t0)
{
	uint64_t us = (monotonic_ns() - t0) / 1000;
	unsigned b = us < 2 ? 0 : 63 - (unsigned)__builtin_clzll(us);

	add(&p->c.hist[b < PAGER_HIST_BUCKETS ? b : PAGER_HIST_BUCKETS - 1], 1);
	add(&p->c.fault_us_sum, us);
}

/* @page is FETCHING, claimed by us from @from. */
static void serve(struct pager *p, uint64_t page, uint8_t from, uint64_t t0)
{
	struct errmsg err = { "" };
	struct scan_pos pos;
	struct fetch *f;
	int ret;

	pager_reserve_for_fault(p);
	f = fetch_get(p);
	if (!f) {
		release(p, page, from);	/* out of memory: let it retry */
		return;
	}
	f->n = 0;
	fetch_add(f, page, from);
	claim_for_fault(p, f, page, &pos);
	ret = pager_get_remote(p, f, &err);
	if (ret && f->n > 1) {
		release_window(p, f);
		ret = pager_get_remote(p, f, &err);
	}
	if (ret == -EAGAIN)
		ret = pager_wait_for_store(p, f, &err);
	if (ret == -ECANCELED) {
		give_up(p, page);
	} else if (ret) {
		page_lost(p, page, from, ret, err.text);
	} else if (install_faulting(p, f)) {
		release_window(p, f);
		release(p, page, from);
	} else {
		note_clean(p, f, 0);
		set_flag(p, page, PF_REF);
		mark_brought_in(p, page);
		set_state(p, page, PS_LOCAL);
		/* UFFDIO_COPY woke the faulting threads while the page was
		 * FETCHING; if the sampler revoked it again before now, the
		 * retry is a minor fault that on_minor() left waiting for
		 * this wake (it saw FETCHING) */
		uffd_ram_wake(p->uffd, page, 1);
		account_filled(p, from);
		install_window(p, f);
		record_latency(p, t0);
		read_ahead(p, f, &pos);
	}
	fetch_put(p, f);
}

/* --- the callbacks -------------------------------------------------------- */

/* A state other threads leave within microseconds (BUSY, PUNCHING). */
static void settle_wait(unsigned *spins)
{
	struct timespec ts = { 0, 50000 };

	if ((*spins)++ < 64)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* A LOCAL page is missing from the memfd: someone punched it behind
 * our back (the balloon), so the guest gave it away: a zero page. */
static void refill_punched(struct pager *p, uint64_t page)
{
	uffd_ram_zeropage(p->uffd, page, 1);
	p->clean[page] = 0;
	set_flag(p, page, PF_REF);
	mark_brought_in(p, page);
	set_state(p, page, PS_LOCAL);
	uffd_ram_wake(p->uffd, page, 1);
}

static void missing(struct pager *p, uint64_t page)
{
	uint64_t t0 = monotonic_ns();
	unsigned spins = 0;

	add(&p->c.faults, 1);
	for (;;) {
		uint8_t s = load_state(p, page);

		switch (s) {
		case PS_HOLE:
		case PS_ZERO:
		case PS_REMOTE:
			if (!move_state(p, page, s, PS_FETCHING))
				continue;
			serve(p, page, s, t0);
			return;
		case PS_FETCHING:
			return;	/* its fetcher's install wakes us */
		case PS_LOCAL:
			if (!move_state(p, page, PS_LOCAL, PS_BUSY))
				continue;
			refill_punched(p, page);
			return;
		case PS_EVICTING:
			/* in the memfd: a fault from before it came back */
			uffd_ram_wake(p->uffd, page, 1);
			return;
		case PS_FAILED:
			/* a fault from before the refusal, or one that
			 * came in while the page was failing */
			uffd_ram_refuse(p->uffd, page, 1);
			return;
		default:	/* BUSY, PUNCHING: gone in microseconds */
			settle_wait(&spins);
			break;
		}
	}
}

static void on_missing(void *opaque, uint64_t page)
{
	struct pager *p = opaque;

	if (page >= p->npages)
		return;
	/* a migration may have frozen the pager: wait for it to thaw */
	pager_fault_enter(p);
	missing(p, page);
	pager_fault_exit(p);
}

/*
 * A write to a write-protected page: if it is being evicted, the
 * eviction is cancelled; if not, the protection is the sampler's.
 * Either way it is lifted under BUSY, so that it cannot lift a
 * protection the evictor sets meanwhile.
 */
static void on_wp(void *opaque, uint64_t page)
{
	struct pager *p = opaque;
	unsigned spins = 0;

	if (page >= p->npages)
		return;
	for (;;) {
		uint8_t s = load_state(p, page);

		switch (s) {
		case PS_LOCAL:
		case PS_EVICTING:
			if (!move_state(p, page, s, PS_BUSY))
				continue;
			if (uffd_ram_protect(p->uffd, page, 1, false))
				uffd_ram_wake(p->uffd, page, 1);
			set_flag(p, page, PF_REF);
			set_state(p, page, PS_LOCAL);
			if (s == PS_EVICTING)
				add(&p->c.cancelled, 1);
			return;
		case PS_BUSY:
		case PS_PUNCHING:
			settle_wait(&spins);
			break;
		default:
			/* gone from the memfd: the retry faults it back in */
			uffd_ram_wake(p->uffd, page, 1);
			return;
		}
	}
}

/*
 * A page the sampler revoked is mapped back under BUSY, so that no
 * eviction copies it meanwhile: where UFFDIO_CONTINUE cannot map it
 * write-protected in one step, the page is writable for a moment, and a
 * write then must not escape an eviction (uffd_ram.h).  A fault on a
 * page being evicted cancels the eviction (the page is in use); mapping
 * back an untouched sample (@fault false) leaves such a page revoked: it
 * is punched, or faults back in later.
 */
static void on_minor(void *opaque, uint64_t page, bool fault)
{
	struct pager *p = opaque;
	unsigned spins = 0;

	if (page >= p->npages)
		return;
	for (;;) {
		uint8_t s = load_state(p, page);

		switch (s) {
		case PS_EVICTING:
			if (!fault)
				return;
			/* fall through */
		case PS_LOCAL:
			if (!move_state(p, page, s, PS_BUSY))
				continue;
			uffd_ram_continue(p->uffd, page, 1);
			if (fault) {
				uffd_ram_wake(p->uffd, page, 1);
				set_flag(p, page, PF_REF);
			}
			if (s == PS_EVICTING)
				add(&p->c.cancelled, 1);
			set_state(p, page, PS_LOCAL);
			return;
		case PS_BUSY:
		case PS_PUNCHING:
			if (!fault)
				return;
			settle_wait(&spins);
			break;
		case PS_FETCHING:
			return;	/* its fetcher wakes us once it is LOCAL */
		default:
			/* gone from the memfd: the retry is a missing fault */
			if (fault)
				uffd_ram_wake(p->uffd, page, 1);
			return;
		}
	}
}

static void on_note(void *opaque, uint64_t page, enum uffd_fault_kind kind)
{
	struct pager *p = opaque;

	(void)kind;
	if (page < p->npages)
		set_flag(p, page, PF_REF);
}

void pager_fault_user(struct pager *p, struct uffd_ram_user *user)
{
	*user = (struct uffd_ram_user){
		.modes = UFFD_RAM_MISSING | UFFD_RAM_WP,
		.observe = UFFD_OBSERVE(UFFD_FAULT_MINOR) |
			   UFFD_OBSERVE(UFFD_FAULT_WP),
		.note = on_note, .missing = on_missing, .wp = on_wp,
		.minor = on_minor,
		.opaque = p,
	};
}
