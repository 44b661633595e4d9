// SPDX-License-Identifier: MIT
#include "pager_rig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* --- an in-memory page store --------------------------------------------- */





static struct mem_store *to_mem(struct page_store *s)
{
	return (struct mem_store *)s;
}

static void log_req(struct mem_store *m, char op, const struct page_run *r)
{
	if (m->nlog == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 1024;
		struct mem_req *log = realloc(m->log, cap * sizeof(*log));

		if (!log)
			return;
		m->log = log;
		m->cap = cap;
	}
	m->log[m->nlog++] = (struct mem_req){ op, r->first, r->count };
}

static bool runs_valid(struct mem_store *m, const struct page_run *runs,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!runs[i].count || runs[i].first >= m->npages ||
		    runs[i].count > m->npages - runs[i].first)
			return false;
	return true;
}

static bool is_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < PAGE; i++)
		if (p[i])
			return false;
	return true;
}

static int mem_put(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err)
{
	struct mem_store *m = to_mem(s);
	int delay, fail;

	pthread_mutex_lock(&m->lock);
	fail = m->fail_put;
	delay = m->put_delay_us;
	pthread_mutex_unlock(&m->lock);
	if (delay)
		usleep((useconds_t)delay);
	if (fail)
		return errmsg_set(err, fail, "memory store: put refused");
	if (!runs_valid(m, runs, n))
		return errmsg_set(err, -EINVAL, "memory store: bad run");
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		log_req(m, 'p', &runs[i]);
		for (uint32_t k = 0; k < runs[i].count; k++) {
			uint64_t page = runs[i].first + k;

			uint8_t clear[PAGE];

			memcpy(m->data + page * PAGE, runs[i].data + k * PAGE, PAGE);
			memcpy(m->tags + page * PAGE_TAG_SIZE,
			       runs[i].tags + k * PAGE_TAG_SIZE, PAGE_TAG_SIZE);
			m->held[page] = 1;
			/* what the pager sent, opened: was it a zero page? */
			memcpy(clear, runs[i].data + k * PAGE, PAGE);
			if (!page_seal_open(s->seal, page, runs[i].gens[k], clear,
					    runs[i].tags + k * PAGE_TAG_SIZE))
				m->zero_pages_put += is_zero(clear);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_get(struct page_store *s, const struct page_run *runs,
		   size_t n, struct errmsg *err)
{
	struct mem_store *m = to_mem(s);
	int ret = 0;

	if (!runs_valid(m, runs, n))
		return errmsg_set(err, -EINVAL, "memory store: bad run");
	pthread_mutex_lock(&m->lock);
	if (m->fail_get)
		ret = errmsg_set(err, m->fail_get, "memory store: 127.0.0.1:1 down");
	for (size_t i = 0; !ret && i < n; i++)
		for (uint32_t k = 0; k < runs[i].count; k++)
			if (!m->held[runs[i].first + k])
				ret = errmsg_set(err, -ENOENT, "memory store: no page %llu",
						 (unsigned long long)(runs[i].first + k));
	for (size_t i = 0; !ret && i < n; i++) {
		log_req(m, 'g', &runs[i]);
		memcpy(runs[i].data, m->data + runs[i].first * PAGE,
		       runs[i].count * PAGE);
		memcpy(runs[i].tags, m->tags + runs[i].first * PAGE_TAG_SIZE,
		       runs[i].count * PAGE_TAG_SIZE);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_drop(struct page_store *s, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct mem_store *m = to_mem(s);

	if (!runs_valid(m, runs, n))
		return errmsg_set(err, -EINVAL, "memory store: bad run");
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		log_req(m, 'd', &runs[i]);
		memset(m->held + runs[i].first, 0, runs[i].count);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_describe(struct page_store *s, char *buf, size_t len)
{
	(void)s;
	snprintf(buf, len, "memory test store");
}

static void mem_destroy(struct page_store *s)
{
	struct mem_store *m = to_mem(s);

	pthread_mutex_destroy(&m->lock);
	free(m->data);
	free(m->tags);
	free(m->held);
	free(m->log);
	free(m);
}

static const struct page_store_ops mem_ops = {
	.put = mem_put, .get = mem_get, .drop = mem_drop,
	.describe = mem_describe, .destroy = mem_destroy,
};

struct mem_store *mem_store_new(uint64_t npages)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	m->npages = npages;
	pthread_mutex_init(&m->lock, NULL);
	m->data = malloc(npages * PAGE);
	m->tags = calloc(npages, PAGE_TAG_SIZE);
	m->held = calloc(npages, 1);
	if (!m->data || !m->tags || !m->held ||
	    page_seal_create("pager-test", true, &m->base.seal, NULL)) {
		page_seal_destroy(m->base.seal);
		mem_destroy(&m->base);
		return NULL;
	}
	return m;
}

void store_set(struct mem_store *m, int *field, int value)
{
	pthread_mutex_lock(&m->lock);
	*field = value;
	pthread_mutex_unlock(&m->lock);
}

/* --- the rig: guest RAM, uffd, store, pager ------------------------------- */





void rig_on_event(void *opaque, const struct pager_event *e)
{
	struct events *ev = opaque;

	pthread_mutex_lock(&ev->lock);
	ev->count[e->kind]++;
	ev->last_page = e->page;
	ev->last_error = e->error;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

/* Waits (at most 20 s: a generous bound, not a timing check) for the
 * @n-th event of @kind. */
bool wait_event(struct rig *r, enum pager_event_kind kind, unsigned n)
{
	struct timespec until;
	bool got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&r->ev.lock);
	while (r->ev.count[kind] < n &&
	       pthread_cond_timedwait(&r->ev.cond, &r->ev.lock, &until) == 0)
		;
	got = r->ev.count[kind] >= n;
	pthread_mutex_unlock(&r->ev.lock);
	return got;
}

unsigned events_of(struct rig *r, enum pager_event_kind kind)
{
	unsigned n;

	pthread_mutex_lock(&r->ev.lock);
	n = r->ev.count[kind];
	pthread_mutex_unlock(&r->ev.lock);
	return n;
}

void rig_destroy(struct rig *r)
{
	pager_destroy(r->pager);
	uffd_ram_destroy(r->uffd);
	if (r->store)
		page_store_destroy(&r->store->base);
	guest_mem_destroy(&r->mem);
	pthread_cond_destroy(&r->ev.cond);
	pthread_mutex_destroy(&r->ev.lock);
}

/* NULL, or why the pager cannot run here (then the test skips). */
const char *rig_init(struct rig *r, uint64_t mem_mib, uint64_t limit,
			    unsigned threads, unsigned prefetch, bool sampler,
			    struct ref_sample **rs)
{
	static struct errmsg err;
	struct pager_config cfg;
	unsigned modes = UFFD_RAM_MISSING | UFFD_RAM_WP |
			 (sampler ? UFFD_RAM_MINOR : 0);

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->ev.lock, NULL);
	pthread_cond_init(&r->ev.cond, NULL);
	r->mem.memfd = -1;
	if (uffd_ram_probe(modes, &err)) {
		rig_destroy(r);
		return err.text;
	}
	r->npages = (mem_mib << 20) / PAGE;
	pager_config_defaults(&cfg);
	cfg.local_pages = limit;
	cfg.max_prefetch = prefetch;
	cfg.on_event = rig_on_event;
	cfg.opaque = &r->ev;
	if (guest_mem_init(&r->mem, mem_mib << 20, false, &err) ||
	    !(r->store = mem_store_new(r->npages)) ||
	    uffd_ram_create(&r->mem, threads, &r->uffd, &err) ||
	    (cfg.store = &r->store->base,
	     pager_create(&r->mem, r->uffd, &cfg, &r->pager, &err)) ||
	    (sampler && ref_sample_create_on(r->uffd, &r->mem, 7, rs, &err)) ||
	    uffd_ram_start(r->uffd, &err) ||
	    pager_start(r->pager, &err)) {
		rig_destroy(r);
		return err.text[0] ? err.text : "setup failed";
	}
	return NULL;
}

uint64_t word_of(uint64_t page, unsigned word, uint64_t gen)
{
	return (page << 20) ^ ((uint64_t)word << 8) ^ (gen * 0x9e3779b97f4a7c15ull);
}

/* Every page of [first, first + n) gets its pattern, except every 7th,
 * written all zero; returns false if the limit was ever exceeded while
 * writing. */
bool write_pages(struct rig *r, uint64_t first, uint64_t n, uint64_t gen)
{
	struct pager_stats st;
	bool within = true;

	for (uint64_t p = first; p < first + n; p++) {
		uint64_t *w = (uint64_t *)(r->mem.base + p * PAGE);

		for (unsigned i = 0; i < PAGE / 8; i++)
			w[i] = p % 7 ? word_of(p, i, gen) : 0;
		pager_get_stats(r->pager, &st);
		within &= st.resident <= st.limit_pages;
	}
	return within;
}

/* The first bad page, or UINT64_MAX if all match. */
uint64_t verify_pages(struct rig *r, uint64_t first, uint64_t n,
			     uint64_t gen)
{
	for (uint64_t p = first; p < first + n; p++) {
		const uint64_t *w = (const uint64_t *)(r->mem.base + p * PAGE);

		for (unsigned i = 0; i < PAGE / 8; i++)
			if (w[i] != (p % 7 ? word_of(p, i, gen) : 0))
				return p;
	}
	return UINT64_MAX;
}

void rig_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Waits until the evictor brought resident to the limit (20 s bound). */
bool settle_below(struct rig *r, uint64_t limit)
{
	struct pager_stats st;

	for (int i = 0; i < 2000; i++) {
		pager_get_stats(r->pager, &st);
		if (st.resident <= limit)
			return true;
		rig_sleep_ms(10);
	}
	return false;
}

/* Stops eviction and lets the last batch finish, for exact counts. */
/* Waits (5 s at most) until the pager's counts stop moving for 100 ms:
 * the evictions and read-aheads it had in flight are done.  A fixed
 * sleep is not enough in the emulated test host, where its threads run
 * several times slower. */
void wait_still(struct rig *r, struct pager_stats *st)
{
	struct pager_stats before;

	pager_get_stats(r->pager, st);
	for (int i = 0; i < 50; i++) {
		before = *st;
		rig_sleep_ms(100);
		pager_get_stats(r->pager, st);
		if (st->resident == before.resident &&
		    st->remote == before.remote && st->zero == before.zero &&
		    st->evictions == before.evictions &&
		    st->fetched_pages == before.fetched_pages)
			return;
	}
}

void quiesce(struct rig *r, struct pager_stats *st)
{
	pager_set_limit(r->pager, r->npages);
	wait_still(r, st);
}

/* Pages in the memfd (mincore: page cache residency), in all and
 * outside [first, first + n) (holes prefetched as zero pages). */
uint64_t memfd_resident(struct rig *r, uint64_t first, uint64_t n,
			       uint64_t *outside)
{
	unsigned char *vec = malloc(r->npages);
	uint64_t all = 0;

	*outside = 0;
	if (!vec || mincore(r->mem.base, r->npages * PAGE, vec)) {
		free(vec);
		return UINT64_MAX;
	}
	for (uint64_t p = 0; p < r->npages; p++) {
		all += vec[p] & 1;
		*outside += (vec[p] & 1) && (p < first || p >= first + n);
	}
	free(vec);
	return all;
}

/* The counters agree with the memfd, and every page written is in
 * exactly one place: resident, remote or zero.  Prefetch may have
 * touched up to @slack pages past the range, since evicted. */
bool accounted(struct rig *r, const struct pager_stats *st,
		      uint64_t first, uint64_t n, uint64_t slack)
{
	uint64_t outside, in_memfd = memfd_resident(r, first, n, &outside);
	uint64_t total = st->resident + st->remote + st->zero;

	return in_memfd == st->resident && total >= n + outside &&
	       total <= n + outside + slack;
}

uint64_t logged(struct mem_store *m, char op, uint32_t min_count)
{
	uint64_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nlog; i++)
		n += m->log[i].op == op && m->log[i].count >= min_count;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* A page the store holds (evicted, not zero) in [first, first + n). */
uint64_t a_stored_page(struct mem_store *m, uint64_t first, uint64_t n)
{
	uint64_t found = UINT64_MAX;

	pthread_mutex_lock(&m->lock);
	for (uint64_t p = first; p < first + n && found == UINT64_MAX; p++)
		if (m->held[p])
			found = p;
	pthread_mutex_unlock(&m->lock);
	return found;
}

ssize_t read_via_pipe(const void *addr, void *out, size_t len)
{
	int fds[2];
	ssize_t n;

	if (pipe(fds))
		return -1;
	n = write(fds[1], addr, len);
	if (n > 0 && read(fds[0], out, (size_t)n) != n)
		n = -1;
	close(fds[0]);
	close(fds[1]);
	return n;
}
