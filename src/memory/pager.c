// SPDX-License-Identifier: MIT
/*
 * The pager's glue: create, start and destroy, the queries and stats,
 * and the helpers all its parts use (the clock, the back-off that ends
 * when the pager stops, the event callback).  The parts and the
 * threads that run them are listed in pager_internal.h.
 *
 * The API here may be called from any thread.  Create and destroy own
 * the arrays, the locks and the uffd attachment; destroy first stops the
 * evictor, then detaches, which waits for fault threads still inside the
 * pager's callbacks (they give up once stopping is set).
 */
#include "memory/pager.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "memory/dirty_log.h"
#include "memory/pager_internal.h"
#include "memory/uffd_ram.h"
#include "memory/wss.h"
#include "remote/page_store.h"
#include "util/page.h"
#include "vm/vm.h"

#define WINDOW_START 8u
#define GIVE_UP_CHECK_NS 50000000ull

/* --- helpers for every part ----------------------------------------------- */

/*
 * The VM is ending: a thread waiting for a page the store cannot give now
 * is refused instead (uffd_ram_refuse(): poison, or the fence on kernels
 * without it), which releases it without data, so that the VM can stop.
 */
static bool vm_ending(struct pager *p)
{
	return p->vm && vm_exit_requested(p->vm);
}

/* Waiting for the store is over: the pager stops, or the VM ends. */
bool pager_giving_up(struct pager *p)
{
	return stopping(p) || vm_ending(p);
}

/* Sleeps up to @ns unless the pager stops first, or, with @or_vm_end,
 * the VM ends: that is looked at every GIVE_UP_CHECK_NS, so that a fault
 * waiting for an unreachable store lets go soon after a signal (nobody
 * signals the pager then). */
void pager_backoff(struct pager *p, uint64_t ns, bool or_vm_end)
{
	uint64_t end = monotonic_ns() + ns;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !(or_vm_end && vm_ending(p))) {
		uint64_t now = monotonic_ns();
		struct timespec until;

		if (now >= end)
			break;
		until = monotonic_deadline(end - now < GIVE_UP_CHECK_NS ?
					  end - now : GIVE_UP_CHECK_NS);
		pthread_cond_timedwait(&p->stop, &p->lock, &until);
	}
	pthread_mutex_unlock(&p->lock);
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
	p->tags = calloc(b, PAGE_TAG_SIZE);
	p->gen = calloc(p->npages, sizeof(*p->gen));
	p->clean = calloc(p->npages, sizeof(*p->clean));
	p->clean_hit = calloc(b, 1);
	p->brought_in = calloc(bitmap_words(p->npages), sizeof(uint64_t));
	p->zero = calloc(b, 1);
	p->put = calloc(b, 1);
	p->committed = calloc(b, 1);
	p->runs = calloc(b, sizeof(*p->runs));
	return p->state && p->flags && p->cold && p->buf && p->cand &&
	       p->tags && p->gen && p->clean && p->clean_hit &&
	       p->brought_in && p->zero && p->put && p->committed && p->runs ?
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
	pthread_mutex_init(&p->scan_lock, NULL);
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
	struct uffd_ram_user user;
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
	scan_detect_init(&p->scan, p->npages);
	p->limit = cfg->local_pages;
	p->window = cfg->max_prefetch < WINDOW_START ? cfg->max_prefetch :
		    WINDOW_START;
	p->put_delay_ns = RETRY_FIRST_NS;
	/* unknown to the guest, so that it cannot pick two contents that
	 * hash alike (which would only give it back its own older page) */
	if (getrandom(&p->clean_seed, sizeof(p->clean_seed), 0) !=
	    sizeof(p->clean_seed))
		p->clean_seed = monotonic_ns();
	init_locks(p);
	page_store_describe(p->store, p->store_desc, sizeof(p->store_desc));
	p->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (alloc_arrays(p)) {
		ret = errmsg_set(err, -ENOMEM, "pager: out of memory");
		goto fail;
	}
	pager_fault_user(p, &user);
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
	pthread_mutex_destroy(&p->scan_lock);
	free(p->state);
	free(p->flags);
	free(p->brought_in);
	free(p->cold);
	free(p->buf);
	free(p->cand);
	free(p->tags);
	free(p->gen);
	free(p->clean);
	free(p->clean_hit);
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

	pthread_mutex_lock(&p->scan_lock);
	for (uint64_t w = 0; w < bitmap_words(p->npages); w++) {
		uint64_t bits = (written ? written[w] : 0) |
				(touched ? touched[w] : 0);

		while (bits) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (page >= p->npages)
				continue;
			set_flag(p, page, PF_REF);
			if (touched && (touched[w] >> (page % 64) & 1))
				scan_detect_touched(&p->scan, page);
		}
	}
	pthread_mutex_unlock(&p->scan_lock);
}

uint64_t pager_take_brought_in(void *obj, uint64_t *bitmap)
{
	struct pager *p = obj;
	uint64_t added = 0;

	for (uint64_t w = 0; w < bitmap_words(p->npages); w++) {
		uint64_t bits = __atomic_exchange_n(&p->brought_in[w], 0,
						    __ATOMIC_RELAXED);

		added += (uint64_t)__builtin_popcountll(bits & ~bitmap[w]);
		bitmap[w] |= bits;
	}
	return added;
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
	struct page_store_stats ss;
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
		.clean_evictions = get(&p->c.clean_evictions),
		.puts = get(&p->c.puts),
		.bytes_in = get(&p->c.bytes_in),
		.bytes_out = get(&p->c.bytes_out),
		.unreachable = get(&p->c.unreachable),
		.discarded = get(&p->c.discarded),
		.fault_us_sum = get(&p->c.fault_us_sum),
		.room_wait_us = get(&p->c.room_wait_ns) / 1000,
		.get_us = get(&p->c.get_ns) / 1000,
		.put_us = get(&p->c.put_ns) / 1000,
		.evict_us = get(&p->c.evict_ns) / 1000,
		.stall_us = get(&p->c.stall_ns) / 1000,
		.paused_batches = get(&p->c.paused_batches),
		.left_in_place = get(&p->left_in_place),
	};
	for (unsigned b = 0; b < PAGER_HIST_BUCKETS; b++) {
		st->fault_hist[b] = get(&p->c.hist[b]);
		total += st->fault_hist[b];
	}
	st->fault_p50_us = percentile(st->fault_hist, total, 0.50);
	st->fault_p90_us = percentile(st->fault_hist, total, 0.90);
	st->fault_p99_us = percentile(st->fault_hist, total, 0.99);
	page_store_stats(p->store, &ss);
	st->under_replicated = ss.under_replicated;
	st->store_pages = ss.stored;
	st->store_lost = ss.lost;
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
