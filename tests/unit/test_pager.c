// SPDX-License-Identifier: MIT
/*
 * The pager on a plain guest_mem (no VM: test_pager_vm.c has those), with an in-memory page store
 * that logs every request and can fail or corrupt on demand.  Host
 * threads touch guest RAM the way device threads do and the uffd's
 * fault threads serve them:
 *  - writing more than the limit and reading it back loses nothing, the
 *    limit holds, counters add up, zero pages never
 *    reach the store, adjacent pages travel as one run;
 *  - sequential reads are prefetched, and concurrent faults on the same
 *    pages fetch each page once;
 *  - writes racing with eviction are never lost (a slow store widens the
 *    window), also with the reference sampler on the same uffd;
 *  - a corrupted or lost stored page is an error, never data;
 *  - an unreachable store makes the toucher wait, then serves it right;
 *  - a store that refuses puts keeps pages resident, the guest runs on
 *    over its budget, and eviction catches up once the store accepts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pager_rig.h"
#include "vm/ram_sigbus.h"

/* --- tests ---------------------------------------------------------------- */


TEST(pager_keeps_every_byte_beyond_the_limit)
{
	uint64_t n = 4096;
	struct pager_stats st;
	struct rig r;
	const char *skip = rig_init(&r, 32, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 100, n, 1));
	CHECK(settle_below(&r, LIMIT));
	pager_get_stats(r.pager, &st);
	CHECK(st.evictions > 0);
	CHECK(st.remote > 0);
	CHECK(st.zero > 0);	/* every 7th page */
	CHECK_EQ(verify_pages(&r, 100, n, 1), UINT64_MAX);
	CHECK(settle_below(&r, LIMIT));
	quiesce(&r, &st);
	CHECK(st.faults > 0);
	CHECK(st.fetched_pages > 0);
	CHECK_EQ(st.bytes_in, st.fetched_pages * PAGE);
	CHECK(st.bytes_out > 0 && st.bytes_out % PAGE == 0);
	CHECK(st.fault_p50_us <= st.fault_p90_us);
	CHECK(st.fault_p90_us <= st.fault_p99_us);
	/* every touched page is somewhere, exactly once */
	CHECK(accounted(&r, &st, 100, n, 0));
	CHECK_EQ(st.failed, 0);
	/* zero pages never travel; adjacent pages travel together */
	CHECK_EQ(r.store->zero_pages_put, 0);
	CHECK(logged(r.store, 'p', 2) > 0);
	/* untouched memory reads as zeros (and becomes resident) */
	CHECK_EQ(r.mem.base[8000 * PAGE + 5], 0);
	pager_get_stats(r.pager, &st);
	CHECK(accounted(&r, &st, 100, n, 0));
	rig_destroy(&r);
}

TEST(pager_prefetches_sequential_reads_in_one_request)
{
	uint64_t n = 3072;
	struct pager_stats st;
	struct rig r;
	const char *skip = rig_init(&r, 32, LIMIT, 2, PAGER_MAX_PREFETCH,
				    false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, n, 2));
	CHECK(settle_below(&r, LIMIT));
	CHECK_EQ(verify_pages(&r, 0, n, 2), UINT64_MAX);
	pager_settle(r.pager);
	quiesce(&r, &st);
	CHECK(st.prefetched > 0);
	CHECK(st.fetched_pages > st.fetches);
	CHECK(st.prefetch_hits > 0);
	CHECK(st.prefetch_hits <= st.prefetched);
	CHECK(logged(r.store, 'g', 2) > 0);
	/* beyond the end: a window, its marker and the window read ahead */
	CHECK(accounted(&r, &st, 0, n, 2 * PAGER_MAX_PREFETCH + 1));
	rig_destroy(&r);
}

struct reader {
	struct rig *r;
	uint64_t first, n, gen, bad;
};

static void *read_all(void *arg)
{
	struct reader *rd = arg;

	rd->bad = verify_pages(rd->r, rd->first, rd->n, rd->gen);
	return NULL;
}

TEST(pager_concurrent_faults_fetch_each_page_once)
{
	struct reader rd[4];
	pthread_t t[4];
	uint64_t n = 2048, *gets;
	struct pager_stats st;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 4, 16, false, NULL);

	if (skip)
		SKIP(skip);
	gets = calloc(r.npages, sizeof(*gets));
	CHECK(gets != NULL);
	CHECK(write_pages(&r, 0, n, 3));
	CHECK(settle_below(&r, LIMIT));
	/* from here on nothing is evicted: each page comes back once */
	pager_set_limit(r.pager, r.npages);
	wait_still(&r, &st);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){ &r, 0, n, 3, 0 };
		CHECK_EQ(pthread_create(&t[i], NULL, read_all, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(rd[i].bad, UINT64_MAX);
	}
	pthread_mutex_lock(&r.store->lock);
	for (size_t i = 0; i < r.store->nlog; i++)
		if (r.store->log[i].op == 'g')
			for (uint32_t k = 0; k < r.store->log[i].count; k++)
				gets[r.store->log[i].first + k]++;
	pthread_mutex_unlock(&r.store->lock);
	for (uint64_t p = 0; p < r.npages; p++)
		CHECK(gets[p] <= 1);
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.remote, 0);
	free(gets);
	rig_destroy(&r);
}

struct writer {
	struct rig *r;
	uint64_t n;
	unsigned rounds;
	uint64_t *last;		/* the value each page's word 0 holds */
};

/* Round after round over more pages than the limit: each write may hit
 * a page the evictor has write-protected and is copying out. */
static void *write_rounds(void *arg)
{
	struct writer *w = arg;

	/* the first round writes every page, later ones skip some */
	for (unsigned round = 1; round <= w->rounds; round++)
		for (uint64_t p = 0; p < w->n;
		     p += round == 1 ? 1 : 1 + (p + round) % 3) {
			volatile uint64_t *word =
				(volatile uint64_t *)(w->r->mem.base + p * PAGE);

			word[0] = w->last[p] = (p << 32) | round;
			word[511] = ~w->last[p];
		}
	return NULL;
}

static bool rounds_intact(struct writer *w)
{
	for (uint64_t p = 0; p < w->n; p++) {
		const volatile uint64_t *word =
			(const volatile uint64_t *)(w->r->mem.base + p * PAGE);

		if (word[0] != w->last[p] || word[511] != ~w->last[p])
			return false;
	}
	return true;
}

TEST(pager_never_loses_a_write_racing_with_eviction)
{
	struct writer w;
	struct pager_stats st;
	pthread_t t;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 8, false, NULL);

	if (skip)
		SKIP(skip);
	w = (struct writer){ &r, 3 * LIMIT, 6, calloc(3 * LIMIT, 8) };
	CHECK(w.last != NULL);
	/* a slow store keeps pages EVICTING while the writer comes back */
	store_set(r.store, &r.store->put_delay_us, 3000);
	CHECK_EQ(pthread_create(&t, NULL, write_rounds, &w), 0);
	pthread_join(t, NULL);
	store_set(r.store, &r.store->put_delay_us, 0);
	CHECK(rounds_intact(&w));
	quiesce(&r, &st);
	CHECK(st.evictions > 0);
	CHECK_EQ(st.failed, 0);
	CHECK(accounted(&r, &st, 0, 3 * LIMIT, PAGER_MAX_PREFETCH));
	free(w.last);
	rig_destroy(&r);
}

/* @two_step: pages mapped back as kernels before 6.5 must (writable for
 * a moment, then protected), whatever this kernel can do. */
static void shares_uffd_with_sampler(bool two_step)
{
	struct ref_sample_result res;
	struct ref_sample *rs = NULL;
	struct errmsg err;
	struct writer w;
	pthread_t t;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 8, true, &rs);
	bool done = false;

	if (skip)
		SKIP(skip);
	if (two_step)
		uffd_ram_use_two_step_continue(r.uffd);
	w = (struct writer){ &r, 3 * LIMIT, 4, calloc(3 * LIMIT, 8) };
	CHECK(w.last != NULL);
	CHECK_EQ(pthread_create(&t, NULL, write_rounds, &w), 0);
	/* revoke every resident page, again and again, while the writer
	 * writes and the evictor write-protects and punches */
	for (int i = 0; i < 200 && !done; i++) {
		CHECK_EQ(ref_sample_rotate(rs, REF_SAMPLE_ALL, NULL, NULL, &res, &err), 0);
		CHECK_EQ(ref_sample_arm(rs, &err), 0);
		rig_sleep_ms(5);
		done = pthread_tryjoin_np(t, NULL) == 0;
	}
	if (!done)
		pthread_join(t, NULL);
	CHECK(rounds_intact(&w));
	CHECK(res.faults > 0);
	ref_sample_destroy(rs);
	rs = NULL;
	CHECK(rounds_intact(&w));
	free(w.last);
	rig_destroy(&r);
}

TEST(pager_shares_the_uffd_with_the_sampler_without_losing_data)
{
	shares_uffd_with_sampler(false);
}

TEST(pager_and_sampler_lose_nothing_where_continue_cannot_protect)
{
	shares_uffd_with_sampler(true);
}

static void load_word(void *arg)
{
	(void)*(volatile uint64_t *)arg;
}

/* A load from @page as a device thread makes one, with its recovery
 * point: 0, or -EFAULT if the page was refused (SIGBUS). */
static int load_page(struct rig *r, uint64_t page)
{
	uint64_t off = UINT64_MAX;
	int ret = ram_sigbus_call(&r->mem, load_word, r->mem.base + page * PAGE,
				  &off);

	return ret || off == UINT64_MAX ? ret : -EIO;
}

/*
 * @fence: refuse lost pages as kernels without UFFDIO_POISON must (Linux
 * < 6.6), whatever this kernel can do.  Each lost page is first touched
 * while the pager fetches it, so the toucher is waiting when the page
 * fails: a load (released by SIGBUS, caught) and a syscall (EFAULT).
 * Before the fence a waiter without poison was never released.
 */
static void corrupt_or_lost(bool fence)
{
	uint64_t n = 3072, bad, lost;
	struct pager_stats st;
	uint8_t buf[64];
	struct errmsg err;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	if (fence)
		uffd_ram_use_fence(r.uffd);
	/* without UFFDIO_POISON the unforced variant runs this kernel's own
	 * path, the fence, like the forced one: both must hold */
	CHECK_EQ(ram_sigbus_install(&err), 0);
	CHECK(write_pages(&r, 0, n, 4));
	CHECK(settle_below(&r, LIMIT));
	pager_set_limit(r.pager, r.npages);
	bad = a_stored_page(r.store, 0, n);
	CHECK(bad != UINT64_MAX);
	lost = a_stored_page(r.store, bad + 1, n - bad - 1);
	CHECK(lost != UINT64_MAX);
	pthread_mutex_lock(&r.store->lock);
	r.store->data[bad * PAGE + 100] ^= 0x40;	/* one bit flips */
	r.store->held[lost] = 0;			/* the store loses one */
	pthread_mutex_unlock(&r.store->lock);

	CHECK_EQ(load_page(&r, bad), -EFAULT);
	CHECK(wait_event(&r, PAGER_EVENT_PAGE_LOST, 1));
	CHECK_EQ(r.ev.last_page, bad);
	CHECK_EQ(r.ev.last_error, -EBADMSG);
	CHECK_EQ(read_via_pipe(r.mem.base + lost * PAGE, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK(wait_event(&r, PAGER_EVENT_PAGE_LOST, 2));
	CHECK_EQ(r.ev.last_page, lost);
	CHECK_EQ(r.ev.last_error, -ENOENT);
	/* a second touch is refused again, not served, either way */
	CHECK_EQ(read_via_pipe(r.mem.base + bad * PAGE, buf, sizeof(buf)), -1);
	CHECK_EQ(load_page(&r, lost), -EFAULT);
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.failed, 2);
	/* everything else is intact */
	for (uint64_t p = 0; p < n; p++) {
		if (p == bad || p == lost)
			continue;
		CHECK_EQ(verify_pages(&r, p, 1, 4), UINT64_MAX);
	}
	rig_destroy(&r);
}

TEST(pager_corrupt_or_lost_page_is_an_error_not_data)
{
	corrupt_or_lost(false);
}

TEST(pager_corrupt_or_lost_page_is_an_error_not_data_without_poison)
{
	corrupt_or_lost(true);
}

/*
 * A store that keeps a page's first copy and hands it back after the
 * page was put again (a replay of an older version, which the old
 * per-page checksum passed): the pager stops the VM with the page named
 * and never maps the old data.  Every put of a page is under a new
 * generation, and the get asks for the newest.
 */
TEST(pager_refuses_a_replayed_older_copy_of_a_page)
{
	uint64_t n = 3072, page = UINT64_MAX;
	uint8_t *old = malloc(n * PAGE), *old_tags = malloc(n * PAGE_TAG_SIZE);
	uint8_t *held = calloc(n, 1);
	struct errmsg err;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(old && old_tags && held);
	CHECK_EQ(ram_sigbus_install(&err), 0);
	CHECK(write_pages(&r, 0, n, 4));
	CHECK(settle_below(&r, LIMIT));
	pthread_mutex_lock(&r.store->lock);	/* version 4, as stored */
	memcpy(old, r.store->data, n * PAGE);
	memcpy(old_tags, r.store->tags, n * PAGE_TAG_SIZE);
	memcpy(held, r.store->held, n);
	pthread_mutex_unlock(&r.store->lock);
	CHECK(write_pages(&r, 0, n, 5));	/* faults back, evicts again */
	CHECK(settle_below(&r, LIMIT));
	pager_set_limit(r.pager, r.npages);	/* no more evictions */
	rig_sleep_ms(50);
	/* a page evicted in both rounds, not in the memfd now */
	pthread_mutex_lock(&r.store->lock);
	for (uint64_t p = 0; p < n && page == UINT64_MAX; p++) {
		unsigned char in_memfd = 1;

		if (held[p] && r.store->held[p] &&
		    memcmp(old_tags + p * PAGE_TAG_SIZE,
			   r.store->tags + p * PAGE_TAG_SIZE, PAGE_TAG_SIZE) &&
		    !mincore(r.mem.base + p * PAGE, PAGE, &in_memfd) &&
		    !(in_memfd & 1)) {
			page = p;
			memcpy(r.store->data + p * PAGE, old + p * PAGE, PAGE);
			memcpy(r.store->tags + p * PAGE_TAG_SIZE,
			       old_tags + p * PAGE_TAG_SIZE, PAGE_TAG_SIZE);
		}
	}
	pthread_mutex_unlock(&r.store->lock);
	CHECK(page != UINT64_MAX);
	CHECK_EQ(load_page(&r, page), -EFAULT);
	CHECK(wait_event(&r, PAGER_EVENT_PAGE_LOST, 1));
	CHECK_EQ(r.ev.last_page, page);
	CHECK_EQ(r.ev.last_error, -EBADMSG);
	/* the others read back version 5 */
	for (uint64_t p = 0; p < n; p++)
		if (p != page)
			CHECK_EQ(verify_pages(&r, p, 1, 5), UINT64_MAX);
	rig_destroy(&r);
	free(old);
	free(old_tags);
	free(held);
}

struct toucher {
	struct rig *r;
	uint64_t page;
	uint64_t bad;
	bool done;		/* atomic */
};

static void *touch_one(void *arg)
{
	struct toucher *t = arg;

	t->bad = verify_pages(t->r, t->page, 1, 5);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

TEST(pager_waits_out_an_unreachable_store_and_serves_the_right_data)
{
	struct toucher tt;
	struct pager_stats st;
	pthread_t t;
	uint64_t page;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 8, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, 3072, 5));
	CHECK(settle_below(&r, LIMIT));
	pager_set_limit(r.pager, r.npages);
	page = a_stored_page(r.store, 0, 3072);
	CHECK(page != UINT64_MAX);
	store_set(r.store, &r.store->fail_get, -EAGAIN);
	tt = (struct toucher){ &r, page, 0, false };
	CHECK_EQ(pthread_create(&t, NULL, touch_one, &tt), 0);
	CHECK(wait_event(&r, PAGER_EVENT_UNREACHABLE, 1));
	CHECK_EQ(r.ev.last_page, page);
	/* the store is still down: the toucher must still be waiting */
	CHECK(!__atomic_load_n(&tt.done, __ATOMIC_ACQUIRE));
	store_set(r.store, &r.store->fail_get, 0);
	pthread_join(t, NULL);
	CHECK_EQ(tt.bad, UINT64_MAX);
	CHECK(wait_event(&r, PAGER_EVENT_REACHABLE, 1));
	pager_get_stats(r.pager, &st);
	CHECK(st.unreachable >= 1);
	CHECK_EQ(st.failed, 0);
	CHECK_EQ(verify_pages(&r, 0, 3072, 5), UINT64_MAX);
	rig_destroy(&r);
}

struct bulk {
	struct rig *r;
	uint64_t n;
	bool within;
};

static void *write_bulk(void *arg)
{
	struct bulk *b = arg;

	b->within = write_pages(b->r, 0, b->n, 6);
	return NULL;
}

TEST(pager_overcommits_while_the_store_refuses_puts_then_recovers)
{
	struct bulk b;
	struct pager_stats st;
	pthread_t t;
	struct rig r;
	const char *skip = rig_init(&r, 16, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	store_set(r.store, &r.store->fail_put, -ENOSPC);
	b = (struct bulk){ &r, 3 * LIMIT, false };
	/* the writer must not stall on a full store: it finishes over the
	 * budget, the pages stay resident */
	CHECK_EQ(pthread_create(&t, NULL, write_bulk, &b), 0);
	pthread_join(t, NULL);
	CHECK(wait_event(&r, PAGER_EVENT_EVICT_FAILED, 1));
	CHECK_EQ(r.ev.last_error, -ENOSPC);
	pager_get_stats(r.pager, &st);
	CHECK(st.resident > LIMIT);
	CHECK_EQ(st.evictions, 0);
	store_set(r.store, &r.store->fail_put, 0);
	CHECK(wait_event(&r, PAGER_EVENT_EVICT_RESUMED, 1));
	for (int i = 0; i < 500; i++) {
		pager_get_stats(r.pager, &st);
		if (st.resident <= LIMIT)
			break;
		usleep(10000);
	}
	CHECK(st.resident <= LIMIT);
	CHECK_EQ(verify_pages(&r, 0, 3 * LIMIT, 6), UINT64_MAX);
	CHECK_EQ(events_of(&r, PAGER_EVENT_EVICT_FAILED), 1);
	rig_destroy(&r);
}

TEST(pager_with_room_for_everything_never_evicts)
{
	struct pager_stats st;
	struct rig r;
	const char *skip = rig_init(&r, 8, 2048, 1, 8, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, r.npages, 7));
	CHECK_EQ(verify_pages(&r, 0, r.npages, 7), UINT64_MAX);
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.evictions, 0);
	CHECK_EQ(st.resident, r.npages);
	CHECK_EQ(r.store->nlog, 0);
	rig_destroy(&r);
}

TEST(pager_refuses_bad_settings)
{
	struct pager_config cfg;
	struct guest_mem mem;
	struct uffd_ram *u;
	struct mem_store *s;
	struct pager *p;
	struct errmsg err;

	if (uffd_ram_probe(UFFD_RAM_MISSING | UFFD_RAM_WP, &err))
		SKIP(err.text);
	CHECK_EQ(guest_mem_init(&mem, 8 << 20, false, &err), 0);
	CHECK_EQ(uffd_ram_create(&mem, 1, &u, &err), 0);
	s = mem_store_new(2048);
	CHECK(s != NULL);
	pager_config_defaults(&cfg);
	cfg.local_pages = 10;
	cfg.store = &s->base;
	CHECK_EQ(pager_create(&mem, u, &cfg, &p, &err), -EINVAL);
	cfg.local_pages = 2048;
	cfg.store = NULL;
	CHECK_EQ(pager_create(&mem, u, &cfg, &p, &err), -EINVAL);
	cfg.store = &s->base;
	cfg.max_prefetch = PAGER_MAX_PREFETCH + 1;
	CHECK_EQ(pager_create(&mem, u, &cfg, &p, &err), -EINVAL);
	cfg.max_prefetch = 8;
	cfg.batch = 0;
	CHECK_EQ(pager_create(&mem, u, &cfg, &p, &err), -EINVAL);
	uffd_ram_destroy(u);
	page_store_destroy(&s->base);
	guest_mem_destroy(&mem);
}

TEST(pager_set_limit_evicts_down_and_lets_pages_back_in)
{
	struct pager_stats st;
	uint64_t evicted;
	struct rig r;
	const char *skip = rig_init(&r, 32, 8192, 2, 8, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, 0, r.npages, 1));
	pager_get_stats(r.pager, &st);
	CHECK(st.resident > 4096);
	CHECK_EQ(st.evictions, 0);

	pager_set_limit(r.pager, 2048);
	CHECK(settle_below(&r, 2048));
	pager_get_stats(r.pager, &st);
	CHECK_EQ(st.limit_pages, 2048);
	CHECK(st.evictions > 0);
	CHECK_EQ(verify_pages(&r, 0, r.npages, 1), UINT64_MAX);
	pager_get_stats(r.pager, &st);
	CHECK(st.resident <= 2048);

	pager_set_limit(r.pager, r.npages);
	rig_sleep_ms(100);		/* the last batch under the old limit ends */
	pager_get_stats(r.pager, &st);
	evicted = st.evictions;
	CHECK_EQ(verify_pages(&r, 0, r.npages, 1), UINT64_MAX);
	pager_get_stats(r.pager, &st);
	CHECK(st.resident > 4096);
	CHECK_EQ(st.evictions, evicted);
	rig_destroy(&r);
}
