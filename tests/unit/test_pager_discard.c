// SPDX-License-Identifier: MIT
/*
 * pager_discard(): pages the guest gives back (balloon inflate, free
 * page reporting) leave the pager, on a plain guest_mem with a file:
 * store behind a gate that can hold the evictor's puts:
 *  - resident, remote and zero pages leave their counts, their memfd
 *    pages and the store; the next touch is a zero page, not a fetch;
 *  - a page whose eviction is in flight (its put held at the gate) is
 *    discarded at once, a touch gets zeros while the put is still held,
 *    and the put, once let go, leaves no copy behind;
 *  - ranges outside guest RAM change nothing, pages named twice are
 *    discarded once, without hanging.
 * (Apart from test_pager.c, whose store is in memory.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "memory/pager.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"

#define LIMIT 1024u		/* pages resident at most */
#define RAM_MIB 16
#define GATE_MAX 1024

/* --- a gate in front of the file store: puts can be held ------------------ */

struct gate {
	struct page_store base;
	struct page_store *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;		/* puts wait at the gate while set */
	unsigned waiting;	/* puts waiting */
	uint64_t held[GATE_MAX];	/* the pages of the first held put */
	unsigned nheld;
};

static struct gate *to_gate(struct page_store *s)
{
	return (struct gate *)s;
}

static int gate_put(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct gate *g = to_gate(s);

	pthread_mutex_lock(&g->lock);
	if (g->hold && !g->nheld)
		for (size_t i = 0; i < n; i++)
			for (uint32_t k = 0; k < runs[i].count && g->nheld < GATE_MAX; k++)
				g->held[g->nheld++] = runs[i].first + k;
	g->waiting++;
	pthread_cond_broadcast(&g->cond);
	while (g->hold)
		pthread_cond_wait(&g->cond, &g->lock);
	g->waiting--;
	pthread_mutex_unlock(&g->lock);
	return g->inner->ops->put(g->inner, runs, n, err);	/* sealed */
}

static int gate_get(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	return to_gate(s)->inner->ops->get(to_gate(s)->inner, runs, n, err);
}

static int gate_drop(struct page_store *s, const struct page_run *runs,
		     size_t n, struct errmsg *err)
{
	return page_store_drop(to_gate(s)->inner, runs, n, err);
}

static void gate_describe(struct page_store *s, char *buf, size_t len)
{
	to_gate(s)->inner->ops->describe(to_gate(s)->inner, buf, len);
}

static void gate_destroy(struct page_store *s)
{
	struct gate *g = to_gate(s);

	page_store_destroy(g->inner);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static const struct page_store_ops gate_ops = {
	.put = gate_put, .get = gate_get, .drop = gate_drop,
	.describe = gate_describe, .destroy = gate_destroy,
};

static void gate_hold(struct gate *g, bool hold)
{
	pthread_mutex_lock(&g->lock);
	g->hold = hold;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Waits (20 s bound) until a put waits at the gate. */
static bool gate_wait_put(struct gate *g)
{
	struct timespec until;
	bool got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&g->lock);
	while (!g->waiting &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	got = g->waiting && g->nheld;
	pthread_mutex_unlock(&g->lock);
	return got;
}

/* Whether the file store holds @page (a get of it succeeds). */
static bool stored(struct gate *g, uint64_t page)
{
	static uint8_t data[PAGE_STORE_PAGE], tag[PAGE_TAG_SIZE];
	uint32_t gen = 0;
	struct page_run r = { .first = page, .count = 1, .data = data,
			      .tags = tag, .gens = &gen };

	/* the backend's own get: the copy as stored, not opened */
	return g->inner->ops->get(g->inner, &r, 1, NULL) == 0;
}

/* --- the rig -------------------------------------------------------------- */

struct drig {
	struct guest_mem mem;
	struct uffd_ram *uffd;
	struct gate *gate;
	struct pager *pager;
	uint64_t npages;
};

static void drig_destroy(struct drig *r)
{
	pager_destroy(r->pager);
	uffd_ram_destroy(r->uffd);
	if (r->gate)
		page_store_destroy(&r->gate->base);
	guest_mem_destroy(&r->mem);
}

static struct gate *gate_new(uint64_t npages, struct errmsg *err)
{
	static const uint8_t secret[] = "discard";
	struct page_store_params sp = {
		.namespace_name = "discard", .secret = secret,
		.secret_len = sizeof(secret) - 1, .ram_pages = npages,
	};
	struct gate *g = calloc(1, sizeof(*g));
	char spec[512];

	if (!g)
		return NULL;
	snprintf(spec, sizeof(spec), "file:%s/pages", harness_tmpdir());
	if (page_store_open(spec, &sp, &g->inner, err)) {
		free(g);
		return NULL;
	}
	g->base.ops = &gate_ops;
	/* the gate seals and opens (page_store_put/get on it), the file
	 * store under it only keeps what it is given: the seal moves up */
	g->base.seal = g->inner->seal;
	g->inner->seal = NULL;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	return g;
}

/* NULL, or why the pager cannot run here (the test skips). */
static const char *drig_init(struct drig *r)
{
	static struct errmsg err;
	struct pager_config cfg;

	memset(r, 0, sizeof(*r));
	r->mem.memfd = -1;
	if (uffd_ram_probe(UFFD_RAM_MISSING | UFFD_RAM_WP, &err))
		return err.text;
	r->npages = ((uint64_t)RAM_MIB << 20) / PAGE_SIZE;
	pager_config_defaults(&cfg);
	cfg.local_pages = LIMIT;
	cfg.max_prefetch = 0;	/* no page comes in but the one touched */
	if (guest_mem_init(&r->mem, (uint64_t)RAM_MIB << 20, false, &err) ||
	    !(r->gate = gate_new(r->npages, &err)) ||
	    uffd_ram_create(&r->mem, 2, &r->uffd, &err) ||
	    (cfg.store = &r->gate->base,
	     pager_create(&r->mem, r->uffd, &cfg, &r->pager, &err)) ||
	    uffd_ram_start(r->uffd, &err) || pager_start(r->pager, &err)) {
		drig_destroy(r);
		return err.text[0] ? err.text : "setup failed";
	}
	return NULL;
}

static void ms_sleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Page @page's first word: never zero. */
static uint64_t mark(uint64_t page)
{
	return page * 0x9e3779b97f4a7c15ull | 1;
}

/* Pages [first, first + n): a mark in every page but each @zero_every-th
 * (0: none), written all zero. */
static void fill(struct drig *r, uint64_t first, uint64_t n, unsigned zero_every)
{
	for (uint64_t p = first; p < first + n; p++) {
		volatile uint64_t *w = (volatile uint64_t *)(r->mem.base + p * PAGE_SIZE);

		w[0] = w[511] = !zero_every || p % zero_every ? mark(p) : 0;
	}
}

/* Pages of [first, first + n) in the memfd, or of all guest RAM. */
static uint64_t in_memfd(struct drig *r, uint64_t first, uint64_t n)
{
	unsigned char vec[4096];
	uint64_t count = 0;

	if (n > sizeof(vec) || mincore(r->mem.base + first * PAGE_SIZE,
				       n * PAGE_SIZE, vec))
		return UINT64_MAX;
	for (uint64_t i = 0; i < n; i++)
		count += vec[i] & 1;
	return count;
}

static bool all_zero(struct drig *r, uint64_t page)
{
	const volatile uint64_t *w =
		(const volatile uint64_t *)(r->mem.base + page * PAGE_SIZE);

	for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Waits (20 s bound) until the evictor brought resident to the limit,
 * then stops eviction, so that counts stay put. */
static bool settle(struct drig *r, struct pager_stats *st)
{
	for (int i = 0; i < 2000; i++) {
		pager_get_stats(r->pager, st);
		if (st->resident <= LIMIT)
			break;
		ms_sleep(10);
	}
	pager_set_limit(r->pager, r->npages);
	ms_sleep(50);
	pager_get_stats(r->pager, st);
	return st->resident <= LIMIT;
}

/* --- tests ---------------------------------------------------------------- */

TEST(pager_discard_frees_resident_remote_and_zero_pages)
{
	struct page_range ranges[2] = { { 0, 1000 }, { 1000, 2072 } };
	uint64_t n = 3072, held = 0;
	struct pager_stats st0, st1, st2;
	struct drig r;
	const char *skip = drig_init(&r);

	if (skip)
		SKIP(skip);
	fill(&r, 0, n, 7);
	CHECK(settle(&r, &st0));
	CHECK(st0.remote > 0 && st0.zero > 0 && st0.resident > 0);
	CHECK_EQ(st0.resident + st0.remote + st0.zero, n);
	for (uint64_t p = 0; p < n; p++)
		held += stored(r.gate, p);
	CHECK_EQ(held, st0.remote);

	CHECK_EQ(pager_discard(r.pager, ranges, 2), 0);
	pager_get_stats(r.pager, &st1);
	CHECK_EQ(st1.discarded, n);
	CHECK_EQ(st1.resident, 0);
	CHECK_EQ(st1.remote, 0);
	CHECK_EQ(st1.zero, 0);
	CHECK_EQ(in_memfd(&r, 0, n), 0);
	for (uint64_t p = 0; p < n; p++)
		CHECK(!stored(r.gate, p));

	/* given back: zeros, from no fetch */
	for (uint64_t p = 0; p < n; p += 5)
		CHECK(all_zero(&r, p));
	pager_get_stats(r.pager, &st2);
	CHECK_EQ(st2.fetches, st1.fetches);
	CHECK(st2.faults > st1.faults);
	CHECK_EQ(st2.resident, in_memfd(&r, 0, n));
	CHECK_EQ(st2.resident, (n + 4) / 5);
	drig_destroy(&r);
}

struct writer {
	struct drig *r;
	uint64_t n;
};

static void *write_some(void *arg)
{
	struct writer *w = arg;

	fill(w->r, 0, w->n, 0);
	return NULL;
}

struct toucher {
	struct drig *r;
	uint64_t page;
	bool zero;
	bool done;		/* atomic */
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	t->zero = all_zero(t->r, t->page);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static bool wait_done(struct toucher *t)
{
	for (int i = 0; i < 1000; i++) {
		if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
			return true;
		ms_sleep(10);
	}
	return false;
}

TEST(pager_discard_cancels_an_eviction_in_flight_without_waiting_for_it)
{
	struct toucher t = { 0 };
	struct pager_stats st;
	struct writer w;
	pthread_t wt, tt;
	bool put_held, started = false, touched = false;
	unsigned nput = 0, discard_errors = 0;
	struct drig r;
	const char *skip = drig_init(&r);

	if (skip)
		SKIP(skip);
	gate_hold(r.gate, true);
	/* one page past the limit: the evictor's first put waits at the
	 * gate, and so does the writer's last page, for room */
	w = (struct writer){ &r, LIMIT + 1 };
	CHECK_EQ(pthread_create(&wt, NULL, write_some, &w), 0);
	put_held = gate_wait_put(r.gate);
	if (put_held) {
		/* the put's pages are EVICTING: discard them while it waits */
		nput = r.gate->nheld;
		for (unsigned i = 0; i < nput; i++) {
			struct page_range one = { r.gate->held[i], 1 };

			discard_errors += pager_discard(r.pager, &one, 1) != 0;
		}
		pager_get_stats(r.pager, &st);
		/* a touch gets zeros now, not once the put ends */
		t = (struct toucher){ &r, r.gate->held[0], false, false };
		started = pthread_create(&tt, NULL, touch, &t) == 0;
		touched = started && wait_done(&t);
	}
	/* let everything go before any check can end the test */
	gate_hold(r.gate, false);
	if (started)
		pthread_join(tt, NULL);
	pthread_join(wt, NULL);
	CHECK(put_held);
	CHECK_EQ(discard_errors, 0);
	CHECK_EQ(st.discarded, nput);
	CHECK_EQ(st.evictions, 0);
	CHECK(touched);
	CHECK(t.zero);

	/* the put went through late: its copies were dropped as stale */
	CHECK(settle(&r, &st));
	for (unsigned i = 0; i < nput; i++)
		CHECK(!stored(r.gate, r.gate->held[i]));
	CHECK_EQ(st.discarded, nput);
	CHECK_EQ(st.resident, in_memfd(&r, 0, r.npages));
	/* the writer's pages but the discarded ones, and the touched one */
	CHECK_EQ(st.resident + st.remote + st.zero, LIMIT + 1 - nput + 1);
	drig_destroy(&r);
}

TEST(pager_discard_refuses_ranges_outside_ram_and_takes_repeats_once)
{
	struct page_range bad[2] = { { 0, 10 }, { 4090, 7 } };
	struct page_range wrap = { UINT64_MAX, 2 };
	struct page_range twice[3] = { { 10, 10 }, { 10, 10 }, { 15, 10 } };
	struct pager_stats st;
	struct drig r;
	const char *skip = drig_init(&r);

	if (skip)
		SKIP(skip);
	fill(&r, 0, 64, 0);
	CHECK_EQ(pager_discard(r.pager, bad, 2), -EINVAL);
	CHECK_EQ(pager_discard(r.pager, &wrap, 1), -EINVAL);
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.discarded, 0);
	CHECK_EQ(st.resident, 64);
	CHECK_EQ(in_memfd(&r, 0, 64), 64);

	CHECK_EQ(pager_discard(r.pager, twice, 3), 0);
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.discarded, 15);
	CHECK_EQ(st.resident, 64 - 15);
	CHECK_EQ(in_memfd(&r, 10, 15), 0);
	CHECK_EQ(in_memfd(&r, 0, 64), 64 - 15);
	/* and nothing at all */
	CHECK_EQ(pager_discard(r.pager, twice, 0), 0);
	drig_destroy(&r);
}
