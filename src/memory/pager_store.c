// SPDX-License-Identifier: MIT
/*
 * The pager's requests to the page store, made without any of the
 * pager's locks held:
 *
 *   get   a fault thread's fetch: the REMOTE pages among the faulting
 *         one and its window, as runs of adjacent pages, in one request;
 *         while no copy is reachable (-EAGAIN) the VM is paused and the
 *         fetch retried with a growing back-off, until the pager or the
 *         VM ends (unreachable_waiters, under p->lock, makes the event
 *         callback say so once for all waiting threads)
 *   put   the evictor's batch: its non-zero pages still being evicted,
 *         each under its next generation (sealed in place in the batch
 *         buffer: page_store_put());
 *         put_failing (set and cleared by the evictor only, read by
 *         fault threads) makes the callback say so once
 *   drop  the evictor's stale copies of pages whose eviction a write
 *         cancelled, best effort
 *
 * page_store ops return 0 or -errno; anything else counts as -EIO.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "memory/pager_internal.h"
#include "remote/page_store.h"
#include "util/page.h"
#include "vm/vm.h"

/* --- gets, for faults ----------------------------------------------------- */

/* Runs of adjacent REMOTE pages, data at each page's slot. */
static size_t remote_runs(struct pager *p, struct fetch *f)
{
	size_t nruns = 0;

	for (unsigned i = 0; i < f->n; i++) {
		struct page_run *r = nruns ? &f->runs[nruns - 1] : NULL;

		if (!f->ok[i] || f->from[i] != PS_REMOTE)
			continue;
		if (r && r->first + r->count == f->pages[i] &&
		    r->data + r->count * PAGE_SIZE == f->data + i * PAGE_SIZE) {
			r->count++;
			continue;
		}
		f->runs[nruns++] = (struct page_run){
			.first = f->pages[i], .count = 1,
			.data = f->data + i * PAGE_SIZE,
			.tags = f->tags + i * PAGE_TAG_SIZE,
			.gens = &p->gen[f->pages[i]],
		};
	}
	return nruns;
}

int pager_get_remote(struct pager *p, struct fetch *f, struct errmsg *err)
{
	size_t nruns = remote_runs(p, f);
	uint64_t t0;
	int ret;

	if (!nruns)
		return 0;
	err->text[0] = 0;
	add(&p->c.fetches, 1);
	t0 = monotonic_ns();
	ret = page_store_get(p->store, f->runs, nruns, err);
	add(&p->c.get_ns, monotonic_ns() - t0);
	if (ret > 0)
		ret = -EIO;	/* the contract is 0 or -errno */
	return ret;
}

/*
 * No copy of a needed page is reachable: pause the VM (without waiting:
 * the faulting vCPU is ours and cannot pause), retry until a copy is
 * back.  -ECANCELED if the VM or the pager ends first.
 */
int pager_wait_for_store(struct pager *p, struct fetch *f,
			 struct errmsg *err)
{
	bool paused = p->vm && vm_request_pause(p->vm) == 0;
	uint64_t delay = RETRY_FIRST_NS, page = f->pages[0];
	bool first, last;
	int ret;

	add(&p->c.unreachable, 1);
	pthread_mutex_lock(&p->lock);
	first = p->unreachable_waiters++ == 0;
	pthread_mutex_unlock(&p->lock);
	if (first)
		pager_emit(p, PAGER_EVENT_UNREACHABLE, page, -EAGAIN,
			   err->text);
	for (;;) {
		if (pager_giving_up(p)) {
			ret = -ECANCELED;
			break;
		}
		pager_backoff(p, delay, true);
		if (pager_giving_up(p)) {
			ret = -ECANCELED;
			break;
		}
		ret = pager_get_remote(p, f, err);
		if (ret != -EAGAIN)
			break;
		delay = delay * 2 < RETRY_MAX_NS ? delay * 2 : RETRY_MAX_NS;
	}
	pthread_mutex_lock(&p->lock);
	last = --p->unreachable_waiters == 0;
	pthread_mutex_unlock(&p->lock);
	if (!ret && last)
		pager_emit(p, PAGER_EVENT_REACHABLE, page, 0, "");
	if (paused)
		vm_resume(p->vm);
	return ret;
}

/* --- puts, for the evictor ------------------------------------------------ */

/* Runs of adjacent candidates with @mask set, into p->runs. */
static size_t mask_runs(struct pager *p, unsigned n, const uint8_t *mask)
{
	size_t nruns = 0;

	for (unsigned i = 0, j; i < n; i = j) {
		if (!mask[i]) {
			j = i + 1;
			continue;
		}
		j = pager_run_end(p, i, n, mask);
		p->runs[nruns++] = (struct page_run){
			.first = p->cand[i], .count = j - i,
			.data = p->buf + i * PAGE_SIZE,
			.tags = p->tags + i * PAGE_TAG_SIZE,
			.gens = &p->gen[p->cand[i]],
		};
	}
	return nruns;
}

/* Puts the non-zero pages still being evicted; 0 or -errno. */
int pager_put_batch(struct pager *p, unsigned n, const uint8_t *alive)
{
	struct errmsg err = { "" };
	uint64_t pages = 0, t0;
	size_t nruns;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		p->put[i] = alive[i] && !p->zero[i] && !p->clean_hit[i] &&
			    load_state(p, p->cand[i]) == PS_EVICTING;
		pages += p->put[i];
	}
	nruns = mask_runs(p, n, p->put);
	if (!nruns)
		return 0;
	/* a new generation for each, used even if the put fails; the
	 * copy at the old one is replaced, so no longer a clean copy */
	for (unsigned i = 0; i < n; i++) {
		if (p->put[i]) {
			p->gen[p->cand[i]]++;
			p->clean[p->cand[i]] = 0;
		}
	}
	add(&p->c.puts, 1);
	t0 = monotonic_ns();
	ret = page_store_put(p->store, p->runs, nruns, &err);
	add(&p->c.put_ns, monotonic_ns() - t0);
	if (ret > 0)
		ret = -EIO;
	if (ret) {
		if (!p->put_failing)
			pager_emit(p, PAGER_EVENT_EVICT_FAILED, p->cand[0], ret,
				   err.text);
		__atomic_store_n(&p->put_failing, true, __ATOMIC_RELAXED);
		return ret;
	}
	add(&p->c.bytes_out, pages * PAGE_SIZE);
	if (p->put_failing)
		pager_emit(p, PAGER_EVENT_EVICT_RESUMED, p->cand[0], 0, "");
	__atomic_store_n(&p->put_failing, false, __ATOMIC_RELAXED);
	return 0;
}

/* Forgets stored copies of pages whose eviction a write cancelled: they
 * are stale.  Best effort: a stale copy is never read (the page is not
 * REMOTE), and the next eviction replaces it. */
void pager_drop_stale(struct pager *p, unsigned n, const uint8_t *stale)
{
	size_t nruns = mask_runs(p, n, stale);

	if (nruns)
		page_store_drop(p->store, p->runs, nruns, NULL);
}
