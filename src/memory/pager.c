// SPDX-License-Identifier: MIT
#include "memory/pager.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>

#include "memory/dirty_log.h"
#include "memory/pager_internal.h"
#include "memory/uffd_ram.h"
#include "memory/wss.h"
#include "memory/wss_monitor.h"
#include "remote/page_store.h"
#include "vm/vm.h"
#include "util/full_io.h"
#include "util/page.h"

#define WINDOW_START 8u
#define GIVE_UP_CHECK_NS 50000000ull

/* --- small helpers -------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct timespec pager_deadline_in(uint64_t ns)
{
	struct timespec ts;
	uint64_t t;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	t = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(t / 1000000000ull);
	ts.tv_nsec = (long)(t % 1000000000ull);
	return ts;
}

/*
 * The VM is ending and a thread waiting for a page can be answered without
 * it, by poison.  Without UFFDIO_POISON (Linux < 6.6) only the page itself
 * answers a fault, so the pager keeps trying: if the store comes back
 * before rackvm run's shutdown guard ends the process, the VM still ends
 * cleanly.
 */
static bool vm_ending_answerable(struct pager *p)
{
	return p->vm && vm_exit_requested(p->vm) && uffd_ram_has_poison(p->uffd);
}

/* Waiting for the store is over: the pager stops, or the VM ends. */
bool pager_giving_up(struct pager *p)
{
	return stopping(p) || vm_ending_answerable(p);
}

/* A state other threads leave within microseconds (BUSY, PUNCHING). */
static void settle_wait(unsigned *spins)
{
	struct timespec ts = { 0, 50000 };

	if ((*spins)++ < 64)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

void pager_emit(struct pager *p, enum pager_event_kind kind, uint64_t page,
		int error, const char *detail)
{
	struct pager_event ev = {
		.kind = kind, .page = page, .error = error,
		.store = p->store_desc, .detail = detail ? detail : "",
	};

	if (p->cfg.on_event)
		p->cfg.on_event(p->cfg.opaque, &ev);
}

static void record_latency(struct pager *p, uint64_t t0)
{
	uint64_t us = (now_ns() - t0) / 1000;
	unsigned b = us < 2 ? 0 : 63 - (unsigned)__builtin_clzll(us);

	add(&p->c.hist[b < PAGER_HIST_BUCKETS ? b : PAGER_HIST_BUCKETS - 1], 1);
}

/* --- serving faults ------------------------------------------------------- */

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

/* Sleeps up to @ns unless the pager stops first, or, with @or_vm_end,
 * the VM ends: that is looked at every GIVE_UP_CHECK_NS, so that a fault
 * waiting for an unreachable store lets go soon after a signal (nobody
 * signals the pager then). */
void pager_backoff(struct pager *p, uint64_t ns, bool or_vm_end)
{
	uint64_t end = now_ns() + ns;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !(or_vm_end && vm_ending_answerable(p))) {
		uint64_t now = now_ns();
		struct timespec until;

		if (now >= end)
			break;
		until = pager_deadline_in(end - now < GIVE_UP_CHECK_NS ?
					  end - now : GIVE_UP_CHECK_NS);
		pthread_cond_timedwait(&p->stop, &p->lock, &until);
	}
	pthread_mutex_unlock(&p->lock);
}

/* A needed page cannot be had: stop the VM, never hand out other data.
 * The poison answers the fault (SIGBUS, or EFAULT in a syscall), so a
 * device thread waiting on it can still be stopped. */
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
	uffd_ram_poison(p->uffd, page, 1);
}

/* The VM ends while the page is unreachable: the page stays REMOTE,
 * the thread waiting for it gets poison rather than zeros. */
static void give_up(struct pager *p, uint64_t page)
{
	set_state(p, page, PS_REMOTE);
	sub(&p->resident, 1);
	uffd_ram_poison(p->uffd, page, 1);
}

/* The window's checksums; a bad prefetched page only stays remote. */
static bool verify(struct pager *p, struct fetch *f)
{
	for (unsigned i = 0; i < f->n; i++) {
		if (!f->ok[i] || f->from[i] != PS_REMOTE ||
		    page_checksum(f->pages[i], f->data + i * PAGE_SIZE) == f->sums[i])
			continue;
		if (i == 0)
			return false;
		f->ok[i] = false;
		release(p, f->pages[i], f->from[i]);
	}
	return true;
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
			set_flag(p, f->pages[k], PF_PREFETCHED);
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

/* The next pages after @page that are not in the memfd, as far as the
 * budget allows without waiting. */
static void claim_window(struct pager *p, struct fetch *f, uint64_t page,
			 unsigned w)
{
	for (uint64_t q = page + 1; q <= page + w && q < p->npages; q++) {
		uint8_t s = load_state(p, q);

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

/* @page is FETCHING, claimed by us from @from. */
static void serve(struct pager *p, uint64_t page, uint8_t from, uint64_t t0)
{
	struct errmsg err = { "" };
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
	claim_window(p, f, page, pager_window_now(p));
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
	} else if (!verify(p, f)) {
		release_window(p, f);
		page_lost(p, page, from, -EBADMSG,
			  "its checksum does not match: corrupted in the store or on the way");
	} else if (install_faulting(p, f)) {
		release_window(p, f);
		release(p, page, from);
	} else {
		set_flag(p, page, PF_REF);
		set_state(p, page, PS_LOCAL);
		/* UFFDIO_COPY woke the faulting threads while the page was
		 * FETCHING; if the sampler revoked it again before now, the
		 * retry is a minor fault that on_minor() left waiting for
		 * this wake (it saw FETCHING) */
		uffd_ram_wake(p->uffd, page, 1);
		account_filled(p, from);
		install_window(p, f);
		record_latency(p, t0);
	}
	fetch_put(p, f);
}

/* A LOCAL page is missing from the memfd: someone punched it behind
 * our back (the balloon), so the guest gave it away: a zero page. */
static void refill_punched(struct pager *p, uint64_t page)
{
	uffd_ram_zeropage(p->uffd, page, 1);
	set_flag(p, page, PF_REF);
	set_state(p, page, PS_LOCAL);
	uffd_ram_wake(p->uffd, page, 1);
}

static void on_missing(void *opaque, uint64_t page)
{
	struct pager *p = opaque;
	uint64_t t0 = now_ns();
	unsigned spins = 0;

	if (page >= p->npages)
		return;
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
			if (uffd_ram_poison(p->uffd, page, 1) == -EEXIST)
				uffd_ram_wake(p->uffd, page, 1);
			return;
		default:	/* BUSY, PUNCHING: gone in microseconds */
			settle_wait(&spins);
			break;
		}
	}
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

/* --- lifetime and queries ------------------------------------------------- */

void pager_config_defaults(struct pager_config *c)
{
	*c = (struct pager_config){
		.batch = PAGER_DEFAULT_BATCH,
		.low_pct = PAGER_DEFAULT_LOW_PCT,
		.max_prefetch = PAGER_MAX_PREFETCH,
	};
}

static int check_config(const struct pager_config *cfg, struct errmsg *err)
{
	if (!cfg->store)
		return errmsg_set(err, -EINVAL, "pager: no page store");
	if (cfg->local_pages < PAGER_MIN_LOCAL_PAGES)
		return errmsg_set(err, -EINVAL,
				  "pager: keep at least %u pages (%u MiB) resident",
				  PAGER_MIN_LOCAL_PAGES,
				  PAGER_MIN_LOCAL_PAGES / 256);
	if (!cfg->batch || cfg->batch > PAGER_MAX_BATCH ||
	    cfg->batch > cfg->local_pages / 4)
		return errmsg_set(err, -EINVAL,
				  "pager: an eviction batch of 1 to %u pages, at most a "
				  "quarter of the resident limit", PAGER_MAX_BATCH);
	if (cfg->low_pct < 50 || cfg->low_pct > 100)
		return errmsg_set(err, -EINVAL, "pager: low watermark of 50 to 100%%");
	if (cfg->max_prefetch > PAGER_MAX_PREFETCH)
		return errmsg_set(err, -EINVAL, "pager: prefetch window of at most %u pages",
				  PAGER_MAX_PREFETCH);
	return 0;
}

static int alloc_arrays(struct pager *p)
{
	unsigned b = p->cfg.batch;

	p->state = calloc(p->npages, 1);
	p->flags = calloc(p->npages, 1);
	p->cold = calloc((p->npages + WSS_REGION_PAGES - 1) / WSS_REGION_PAGES,
			 sizeof(*p->cold));
	p->buf = malloc((size_t)b * PAGE_SIZE);
	p->cand = calloc(b, sizeof(*p->cand));
	p->sums = calloc(b, sizeof(*p->sums));
	p->zero = calloc(b, 1);
	p->put = calloc(b, 1);
	p->committed = calloc(b, 1);
	p->runs = calloc(b, sizeof(*p->runs));
	return p->state && p->flags && p->cold && p->buf && p->cand &&
	       p->sums && p->zero && p->put && p->committed && p->runs ?
	       0 : -ENOMEM;
}

/* Timed waits are on the monotonic clock: a wall-clock step must not
 * stretch a back-off. */
static void init_locks(struct pager *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->prefetch_lock, NULL);
	pthread_mutex_init(&p->monitor_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &ca);
	pthread_cond_init(&p->room, &ca);
	pthread_cond_init(&p->stop, &ca);
	pthread_condattr_destroy(&ca);
}

int pager_create(const struct guest_mem *mem, struct uffd_ram *uffd,
		 const struct pager_config *cfg, struct pager **out,
		 struct errmsg *err)
{
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING | UFFD_RAM_WP,
		.observe = UFFD_OBSERVE(UFFD_FAULT_MINOR) |
			   UFFD_OBSERVE(UFFD_FAULT_WP),
		.note = on_note, .missing = on_missing, .wp = on_wp,
		.minor = on_minor,
	};
	struct pager *p;
	int ret = check_config(cfg, err);

	if (ret)
		return ret;
	if (mem->hugetlb)
		return errmsg_set(err, -ENOTSUP,
				  "the pager needs 4 KiB guest pages (not --hugetlb)");
	p = calloc(1, sizeof(*p));
	if (!p)
		return errmsg_set(err, -ENOMEM, "pager: out of memory");
	p->mem = mem;
	p->uffd = uffd;
	p->store = cfg->store;
	p->vm = cfg->vm;
	p->cfg = *cfg;
	p->npages = mem->size / PAGE_SIZE;
	p->limit = cfg->local_pages;
	p->window = cfg->max_prefetch < WINDOW_START ? cfg->max_prefetch :
		    WINDOW_START;
	p->put_delay_ns = RETRY_FIRST_NS;
	init_locks(p);
	p->store->ops->describe(p->store, p->store_desc, sizeof(p->store_desc));
	p->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (alloc_arrays(p)) {
		ret = errmsg_set(err, -ENOMEM, "pager: out of memory");
		goto fail;
	}
	user.opaque = p;
	ret = uffd_ram_attach(uffd, &user, err);
	if (ret)
		goto fail;
	p->attached = true;
	*out = p;
	return 0;
fail:
	pager_destroy(p);
	return ret;
}

/* Pages already in the memfd (the kernel the loader wrote, faults
 * served before this) are LOCAL; the rest are holes. */
static int take_resident(struct pager *p, struct errmsg *err)
{
	unsigned char *vec = malloc(p->npages);
	uint64_t n = 0;

	if (!vec)
		return errmsg_set(err, -ENOMEM, "pager: out of memory");
	if (mincore(p->mem->base, p->mem->size, vec)) {
		int ret = -errno;

		free(vec);
		return errmsg_set(err, ret, "mincore: %s", strerror(-ret));
	}
	for (uint64_t i = 0; i < p->npages; i++)
		if ((vec[i] & 1) && move_state(p, i, PS_HOLE, PS_LOCAL))
			n++;
	free(vec);
	add(&p->resident, n);
	return 0;
}

int pager_start(struct pager *p, struct errmsg *err)
{
	int ret;

	if (p->evictor_started)
		return errmsg_set(err, -EINVAL, "pager already started");
	ret = take_resident(p, err);
	if (ret)
		return ret;
	ret = -pthread_create(&p->evictor, NULL, pager_evictor_thread, p);
	if (ret)
		return errmsg_set(err, ret, "starting the evictor: %s",
				  strerror(-ret));
	p->evictor_started = true;
	return 0;
}

void pager_destroy(void *obj)
{
	struct pager *p = obj;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	__atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->room);
	pthread_cond_broadcast(&p->stop);
	pthread_mutex_unlock(&p->lock);
	if (p->evictor_started)
		pthread_join(p->evictor, NULL);
	/* waits for fault threads inside our callbacks: they give up */
	if (p->attached)
		uffd_ram_detach(p->uffd, p);
	while (p->npool) {
		free(p->pool[--p->npool]->data);
		free(p->pool[p->npool]);
	}
	if (p->pagemap_fd >= 0)
		close(p->pagemap_fd);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->room);
	pthread_cond_destroy(&p->stop);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->prefetch_lock);
	pthread_mutex_destroy(&p->monitor_lock);
	free(p->state);
	free(p->flags);
	free(p->cold);
	free(p->buf);
	free(p->cand);
	free(p->sums);
	free(p->zero);
	free(p->put);
	free(p->committed);
	free(p->runs);
	free(p);
}

void pager_set_monitor(struct pager *p, struct wss_monitor *m)
{
	pthread_mutex_lock(&p->monitor_lock);
	p->monitor = m;
	pthread_mutex_unlock(&p->monitor_lock);
}

void pager_forget_monitor(void *p)
{
	pager_set_monitor(p, NULL);
}

void pager_note_pages(void *obj, const uint64_t *written,
		      const uint64_t *touched)
{
	struct pager *p = obj;

	for (uint64_t w = 0; w < bitmap_words(p->npages); w++) {
		uint64_t bits = (written ? written[w] : 0) |
				(touched ? touched[w] : 0);

		while (bits) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (page < p->npages)
				set_flag(p, page, PF_REF);
		}
	}
}

void pager_set_limit(struct pager *p, uint64_t local_pages)
{
	__atomic_store_n(&p->limit, local_pages, __ATOMIC_RELAXED);
	pager_wake_evictor(p);
	pager_room_made(p);
}

/* The latency below which @q of the faults fell, interpolated within
 * its log2 bucket. */
static uint64_t percentile(const uint64_t *hist, uint64_t total, double q)
{
	double target = q * (double)total, seen = 0;

	if (!total)
		return 0;
	for (unsigned b = 0; b < PAGER_HIST_BUCKETS; b++) {
		double lo = b ? (double)(1ull << b) : 0;
		double hi = (double)(2ull << b);

		if (!hist[b])
			continue;
		if (seen + (double)hist[b] >= target)
			return (uint64_t)(lo + (hi - lo) * (target - seen) /
					  (double)hist[b] + 0.5);
		seen += (double)hist[b];
	}
	return 1ull << PAGER_HIST_BUCKETS;
}

void pager_get_stats(struct pager *p, struct pager_stats *st)
{
	uint64_t total = 0;

	*st = (struct pager_stats){
		.ram_pages = p->npages,
		.limit_pages = get(&p->limit),
		.resident = get(&p->resident),
		.remote = get(&p->c.remote),
		.zero = get(&p->c.zero),
		.failed = get(&p->c.failed),
		.faults = get(&p->c.faults),
		.fetches = get(&p->c.fetches),
		.fetched_pages = get(&p->c.fetched_pages),
		.prefetched = get(&p->c.prefetched),
		.prefetch_hits = get(&p->c.prefetch_hits),
		.evictions = get(&p->c.evictions),
		.cancelled = get(&p->c.cancelled),
		.puts = get(&p->c.puts),
		.bytes_in = get(&p->c.bytes_in),
		.bytes_out = get(&p->c.bytes_out),
		.unreachable = get(&p->c.unreachable),
	};
	for (unsigned b = 0; b < PAGER_HIST_BUCKETS; b++) {
		st->fault_hist[b] = get(&p->c.hist[b]);
		total += st->fault_hist[b];
	}
	st->fault_p50_us = percentile(st->fault_hist, total, 0.50);
	st->fault_p90_us = percentile(st->fault_hist, total, 0.90);
	st->fault_p99_us = percentile(st->fault_hist, total, 0.99);
	pthread_mutex_lock(&p->prefetch_lock);
	st->prefetch_window = p->window;
	pthread_mutex_unlock(&p->prefetch_lock);
}

void pager_settle(struct pager *p)
{
	for (uint64_t page = 0; page < p->npages; page++)
		if (__atomic_load_n(&p->flags[page], __ATOMIC_RELAXED) &
		    PF_PREFETCHED)
			pager_settle_prefetched(p, page);
}
