// SPDX-License-Identifier: MIT
/*
 * A paging VM's migration with its remote pages left in place (issue
 * 16; memory/pager.h "Migration", remote/store_handover.h), without KVM:
 * two memd servers in this process, guest RAM with its uffd and a pager
 * on each side, host threads touching RAM as a guest would.
 *  - the source's pages in memd are not copied: the destination imports
 *    the page map, gets the resident ones as the stream would bring them
 *    (pager_read_page()), reads every other page back from memd
 *    identical, and pages on (puts under the generations that follow
 *    the source's);
 *  - the source's teardown after the handover leaves the namespace and
 *    its pages; the destination's, once committed, drops them;
 *  - without the namespace's key, nobody adopts it;
 *  - a handover rolled back leaves the source paging as before, and a
 *    destination that never committed drops nothing;
 *  - a store that cannot hand over (not memd) has every page sent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"
#include "migrate/pagemap.h"
#include "pager_rig.h"
#include "remote/store_handover.h"
#include "util/state_buf.h"

#define MIB 32ull
#define FIRST 100u
#define NWRITE 4096u

static uint64_t ram_pages(void)
{
	return (MIB << 20) / PAGE;
}

static int open_memd(const uint16_t *ports, const char *secret,
		     struct page_store **out, struct errmsg *err)
{
	struct page_store_params p = {
		.namespace_name = "vm1", .secret = (const uint8_t *)secret,
		.secret_len = strlen(secret), .ram_pages = ram_pages(),
	};
	char spec[128];

	spec_for(spec, sizeof(spec), ports, 2, 2, "");
	return page_store_open(spec, &p, out, err);
}

/* The stream's part: the pages the map says SEND, read from the frozen
 * source and written into the destination's memfd. */
static int send_pages(struct rig *from, struct rig *to,
		      const struct pagemap *m, struct errmsg *err)
{
	static uint8_t buf[PAGE];

	for (uint64_t page = 0; page < m->ram_pages; page++) {
		int ret;

		if (m->kind[page] != PAGEMAP_SEND)
			continue;
		ret = pager_read_page(from->pager, page, buf, err);
		if (ret)
			return ret;
		if (pwrite(to->mem.memfd, buf, PAGE, (off_t)(page * PAGE)) != PAGE)
			return -EIO;
	}
	return 0;
}

/* Guest RAM, its uffd and a pager on @store; with @m, the pages to send
 * come from @from and the map is imported before the pager starts.
 * NULL or why not. */
static const char *side_init(struct rig *r, struct page_store *store,
			     const struct pagemap *m, struct rig *from)
{
	static struct errmsg err;
	struct pager_config cfg;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->ev.lock, NULL);
	pthread_cond_init(&r->ev.cond, NULL);
	r->mem.memfd = -1;
	r->npages = ram_pages();
	pager_config_defaults(&cfg);
	cfg.local_pages = LIMIT;
	cfg.max_prefetch = 8;
	cfg.on_event = rig_on_event;
	cfg.opaque = &r->ev;
	cfg.store = store;
	err.text[0] = 0;
	if (guest_mem_init(&r->mem, MIB << 20, false, &err) ||
	    uffd_ram_create(&r->mem, 2, &r->uffd, &err) ||
	    pager_create(&r->mem, r->uffd, &cfg, &r->pager, &err) ||
	    (m && (send_pages(from, r, m, &err) ||
		   pager_import(r->pager, m, &err))) ||
	    uffd_ram_start(r->uffd, &err) || pager_start(r->pager, &err))
		return err.text[0] ? err.text : "setup failed";
	return NULL;
}

/* The rig's teardown, the store last (it holds its own). */
static void side_destroy(struct rig *r, struct page_store *store)
{
	pager_destroy(r->pager);
	uffd_ram_destroy(r->uffd);
	page_store_destroy(store);
	guest_mem_destroy(&r->mem);
	pthread_cond_destroy(&r->ev.cond);
	pthread_mutex_destroy(&r->ev.lock);
}

static uint64_t server_pages(struct test_server *srv, uint64_t *namespaces)
{
	struct memd_stats a = server_stats(&srv[0]), b = server_stats(&srv[1]);

	*namespaces = a.namespaces + b.namespaces;
	return a.pages + b.pages;
}

/* server_pages() once a namespace's drop, which the servers take in
 * their own time after the store's end, has had up to 5 s to land. */
static uint64_t server_pages_dropped(struct test_server *srv,
				     uint64_t *namespaces)
{
	uint64_t n = server_pages(srv, namespaces);

	for (int i = 0; i < 500 && (n || *namespaces); i++) {
		usleep(10000);
		n = server_pages(srv, namespaces);
	}
	return n;
}

/* A source paging to memd with NWRITE pages written (version 1), more
 * than the limit, and exported; the map in @blob. */
static const char *source_exported(struct test_server *srv, uint16_t *ports,
				   struct rig *src, struct page_store **store,
				   struct state_buf *blob,
				   struct pager_handover_stats *hs)
{
	static struct errmsg err;
	const char *why;

	if (uffd_ram_probe(UFFD_RAM_MISSING | UFFD_RAM_WP, &err))
		return err.text;
	if (servers_start(srv, 2, ports) || open_memd(ports, "s", store, &err))
		return "memd setup failed";
	why = side_init(src, *store, NULL, NULL);
	if (why)
		return why;
	/* read back too: resident pages that were evicted before, whose
	 * generations the destination must carry on */
	if (!write_pages(src, FIRST, NWRITE, 1) || !settle_below(src, LIMIT) ||
	    verify_pages(src, FIRST, NWRITE, 1) != UINT64_MAX ||
	    !settle_below(src, LIMIT))
		return "the source pager did not keep its limit or its pages";
	state_buf_init(blob);
	if (pager_handover_begin(src->pager, blob, NULL, hs, &err))
		return err.text;
	return NULL;
}

/* Exports @r's map (and thaws it again): every page's generation is at
 * least what @before said, and some pages were put again. */
static bool gens_follow(struct rig *r, const struct pagemap *before)
{
	struct pager_handover_stats hs;
	struct errmsg err;
	struct pagemap *now = NULL;
	struct state_buf b;
	uint64_t newer = 0;
	bool ok;

	state_buf_init(&b);
	ok = !pager_handover_begin(r->pager, &b, NULL, &hs, &err) &&
	     !pagemap_load(b.data, b.len, r->npages, &now, &err);
	for (uint64_t p = 0; ok && p < r->npages; p++) {
		ok = now->gen[p] >= before->gen[p];
		newer += now->gen[p] > before->gen[p] && before->gen[p];
	}
	pager_handover_cancel(r->pager);
	pagemap_free(now);
	state_buf_release(&b);
	return ok && newer > 0;
}

TEST(pager_handover_leaves_memd_pages_in_place)
{
	struct test_server srv[2];
	uint16_t ports[2];
	struct page_store *src_store = NULL, *dst_store = NULL, *stranger;
	struct pager_handover_stats hs;
	struct page_store_creds bad;
	struct pager_stats st, dst_st;
	struct errmsg err = { "" };
	struct pagemap *m = NULL;
	struct rig src, dst;
	struct state_buf blob;
	uint64_t stored, ns;
	const char *why;

	memset(srv, 0, sizeof(srv));
	why = source_exported(srv, ports, &src, &src_store, &blob, &hs);
	if (why && strstr(why, "userfaultfd"))
		SKIP(why);
	CHECK(why == NULL);
	if (why) {
		fprintf(stderr, "  %s\n", why);
		return;
	}
	pager_get_stats(src.pager, &st);
	CHECK(st.remote > NWRITE / 2);
	CHECK_EQ(hs.pages_left, st.remote);
	CHECK_EQ(hs.bytes_left, st.remote * PAGE);
	CHECK_EQ(hs.pages_send, st.resident);
	CHECK_EQ(hs.pages_left + hs.pages_send + hs.pages_zero, ram_pages());
	CHECK_EQ(st.left_in_place, hs.pages_left);
	fprintf(stderr, "  handover: %llu pages (%llu MiB) left in memd, %llu "
		"sent, %llu zero; page map %zu bytes\n",
		(unsigned long long)hs.pages_left,
		(unsigned long long)(hs.bytes_left >> 20),
		(unsigned long long)hs.pages_send,
		(unsigned long long)hs.pages_zero, blob.len);

	CHECK_EQ(pagemap_load(blob.data, blob.len, ram_pages(), &m, &err), 0);
	CHECK(m && m->has_store && m->nremote == hs.pages_left);
	/* without the key (or with another secret), nobody gets in */
	bad = m->store;
	bad.ns_key[0] ^= 1;
	CHECK_EQ(page_store_import(&bad, ram_pages(), m->where, &stranger, &err),
		 -EACCES);
	CHECK_EQ(open_memd(ports, "not-s", &stranger, &err), -EACCES);
	page_store_creds_wipe(&bad);

	stored = server_pages(srv, &ns);
	CHECK_EQ(pagemap_open_store(m, &dst_store, &err), 0);
	why = side_init(&dst, dst_store, m, &src);
	CHECK(why == NULL);
	/* GO: the source lets go, and ends */
	pager_handover_release(src.pager);
	side_destroy(&src, src_store);
	CHECK_EQ(server_pages(srv, &ns), stored);
	CHECK_EQ(ns, 2);
	CHECK_EQ(pager_handover_commit(dst.pager, &err), 0);

	/* every page as the source wrote it, the remote ones from memd */
	CHECK_EQ(verify_pages(&dst, FIRST, NWRITE, 1), UINT64_MAX);
	pager_get_stats(dst.pager, &dst_st);
	CHECK(dst_st.fetched_pages >= hs.pages_left / 2);
	CHECK_EQ(dst_st.failed, 0);
	/* and it pages on: new versions evicted and read back */
	CHECK(write_pages(&dst, FIRST, NWRITE, 2));
	CHECK(settle_below(&dst, LIMIT));
	CHECK_EQ(verify_pages(&dst, FIRST, NWRITE, 2), UINT64_MAX);
	pager_get_stats(dst.pager, &dst_st);
	CHECK_EQ(dst_st.failed, 0);
	CHECK_EQ(events_of(&dst, PAGER_EVENT_PAGE_LOST), 0);
	/* no (page, generation) sealed twice under the key both used: each
	 * page's generation on the destination follows the source's */
	CHECK(gens_follow(&dst, m));
	/* the namespace is the destination's: its end drops it */
	side_destroy(&dst, dst_store);
	CHECK_EQ(server_pages_dropped(srv, &ns), 0);
	CHECK_EQ(ns, 0);
	pagemap_free(m);
	state_buf_release(&blob);
	servers_stop(srv, 2);
}

TEST(pager_handover_rolls_back_before_go)
{
	struct test_server srv[2];
	uint16_t ports[2];
	struct page_store *src_store = NULL, *dst_store = NULL;
	struct pager_handover_stats hs;
	struct errmsg err = { "" };
	struct pagemap *m = NULL;
	struct state_buf blob;
	struct pager_stats st;
	struct rig src;
	uint64_t stored, ns;
	const char *why;

	memset(srv, 0, sizeof(srv));
	why = source_exported(srv, ports, &src, &src_store, &blob, &hs);
	if (why && strstr(why, "userfaultfd"))
		SKIP(why);
	CHECK(why == NULL);
	if (why)
		return;
	stored = server_pages(srv, &ns);
	/* a destination that adopted but never committed: drops nothing */
	CHECK_EQ(pagemap_load(blob.data, blob.len, ram_pages(), &m, &err), 0);
	CHECK_EQ(pagemap_open_store(m, &dst_store, &err), 0);
	page_store_destroy(dst_store);
	CHECK_EQ(server_pages(srv, &ns), stored);
	/* roll back: the source pages on as before */
	pager_handover_cancel(src.pager);
	pager_get_stats(src.pager, &st);
	CHECK_EQ(st.left_in_place, 0);
	CHECK_EQ(verify_pages(&src, FIRST, NWRITE, 1), UINT64_MAX);
	CHECK(write_pages(&src, FIRST, NWRITE, 2));
	CHECK(settle_below(&src, LIMIT));
	CHECK_EQ(verify_pages(&src, FIRST, NWRITE, 2), UINT64_MAX);
	pager_get_stats(src.pager, &st);
	CHECK(st.evictions > hs.pages_left);
	CHECK_EQ(st.failed, 0);
	/* the second try can go through: begin again, then release */
	state_buf_release(&blob);
	state_buf_init(&blob);
	CHECK_EQ(pager_handover_begin(src.pager, &blob, NULL, &hs, &err), 0);
	pager_handover_cancel(src.pager);
	side_destroy(&src, src_store);
	CHECK_EQ(server_pages_dropped(srv, &ns), 0);	/* still the owner: dropped */
	pagemap_free(m);
	state_buf_release(&blob);
	servers_stop(srv, 2);
}

struct toucher {
	pthread_t thread;
	const uint64_t *word;
	uint64_t seen;
	bool done;		/* atomic */
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	t->seen = *(const volatile uint64_t *)t->word;
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

TEST(pager_handover_sends_pages_a_store_cannot_leave)
{
	struct pager_handover_stats hs;
	struct errmsg err = { "" };
	struct pagemap *m = NULL;
	struct state_buf blob;
	struct pager_stats st, st2;
	struct toucher t = { 0 };
	static uint8_t buf[PAGE];
	uint64_t page;
	struct rig r;
	const char *skip = rig_init(&r, MIB, LIMIT, 2, 0, false, NULL);

	if (skip)
		SKIP(skip);
	CHECK(write_pages(&r, FIRST, NWRITE, 1));
	CHECK(settle_below(&r, LIMIT));
	state_buf_init(&blob);
	CHECK_EQ(pager_handover_begin(r.pager, &blob, &m, &hs, &err), 0);
	pager_get_stats(r.pager, &st);
	CHECK(st.remote > 0);
	CHECK_EQ(hs.pages_left, 0);
	CHECK_EQ(hs.pages_send, st.resident + st.remote);
	CHECK(m && !m->has_store && m->nsend == hs.pages_send);
	/* frozen: a discard leaves the pages to the migration */
	CHECK_EQ(pager_discard(r.pager, &(struct page_range){ FIRST, 8 }, 1),
		 -EBUSY);
	/* a page only the store holds, read for the stream */
	page = a_stored_page(r.store, FIRST, NWRITE);
	CHECK(page != UINT64_MAX);
	CHECK_EQ(pager_read_page(r.pager, page, buf, &err), 0);
	CHECK_EQ(((uint64_t *)buf)[3], word_of(page, 3, 1));
	CHECK_EQ(page_store_handover(&r.store->base, PAGE_STORE_BEGIN, &err),
		 -ENOTSUP);
	/* frozen: a touch of a page not resident waits, with no fetch */
	pager_get_stats(r.pager, &st);
	t.word = (const uint64_t *)(r.mem.base + page * PAGE) + 3;
	CHECK_EQ(pthread_create(&t.thread, NULL, touch, &t), 0);
	rig_sleep_ms(200);
	CHECK(!__atomic_load_n(&t.done, __ATOMIC_ACQUIRE));
	pager_get_stats(r.pager, &st2);
	CHECK_EQ(st2.fetches, st.fetches);
	pager_handover_cancel(r.pager);
	pthread_join(t.thread, NULL);
	CHECK_EQ(t.seen, word_of(page, 3, 1));
	CHECK_EQ(verify_pages(&r, FIRST, NWRITE, 1), UINT64_MAX);
	pagemap_free(m);
	state_buf_release(&blob);
	rig_destroy(&r);
}
