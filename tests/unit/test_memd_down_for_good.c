// SPDX-License-Identifier: MIT
/*
 * memd servers that stay down: after down_after their copies are written
 * off and placed on the next servers of each page's ranking, so that the
 * store survives losing one more server; a written-off server that comes
 * back has its stale copies dropped before anything reads them.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "memd_test_util.h"

#define PAGES 512

/* Servers A (behind @px), B and C of @srv, a store on them with
 * replicas=2 and down_after=@down_after, @r put as version 1; how many
 * pages A holds (0: something failed). */
static uint64_t open_behind_proxy(struct test_server *srv, struct proxy *px,
				  const char *down_after, struct page_store **st,
				  struct page_run *r)
{
	uint16_t ports[3];
	char spec[200], extra[48];

	if (servers_start(srv, 3, ports) || proxy_start(px, srv[0].port))
		return 0;
	ports[0] = px->port;
	snprintf(extra, sizeof(extra), ",down_after=%s", down_after);
	spec_for(spec, sizeof(spec), ports, 3, 2, extra);
	if (open_store(spec, "vm1", "s", st, NULL))
		return 0;
	run_fill(r, 1);
	if (page_store_put(*st, r, 1, NULL))
		return 0;
	return server_stats(&srv[0]).pages;
}

/* Waits (10 s at most) until no page is short of copies and servers 1
 * and 2 of @srv hold @pages between them. */
static bool wait_copies_on_1_2(struct page_store *st, struct test_server *srv,
			       uint64_t pages)
{
	for (int i = 0; i < 1000; i++) {
		if (server_stats(&srv[1]).pages + server_stats(&srv[2]).pages ==
		    pages && !short_of(st))
			return true;
		sleep_ms(10);
	}
	return false;
}

/*
 * replicas=2 over A (behind a proxy), B and C; A cut off for good.  After
 * down_after every page has its two copies on B and C (before, the pages
 * homed on A kept one copy for ever), and losing B then loses nothing.
 * A comes back (the same instance, its stale copies in memory): they are
 * dropped before any op may read them, and with B and C gone no read
 * returns an old version.
 */
TEST(memd_a_server_down_for_good_has_its_copies_placed_elsewhere)
{
	struct test_server srv[3] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, PAGES);
	struct proxy px;
	uint64_t on_a = open_behind_proxy(srv, &px, "300ms", &st, &r);
	struct page_store_stats ss;
	int ret;

	CHECK(on_a > 0 && on_a < PAGES);
	page_store_stats(st, &ss);
	CHECK_EQ(ss.stored, PAGES);
	/* A unreachable: reads go on from B and C meanwhile */
	proxy_set_cut(&px, true);
	CHECK(get_holds(st, &r, 1));
	CHECK(wait_copies_on_1_2(st, srv, 2 * PAGES));
	CHECK_EQ(server_stats(&srv[1]).pages, PAGES);
	CHECK_EQ(server_stats(&srv[2]).pages, PAGES);

	/* a new version while A is away; then A is back with version 1 */
	run_fill(&r, 2);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, on_a);
	proxy_set_cut(&px, false);
	for (int i = 0; i < 1000 && server_stats(&srv[0]).pages; i++)
		sleep_ms(10);
	CHECK_EQ(server_stats(&srv[0]).pages, 0);

	/* one more server lost: nothing is */
	server_stop(&srv[1]);
	CHECK(get_holds(st, &r, 2));
	/* and with both gone, A has nothing old to give */
	server_stop(&srv[2]);
	run_clear(&r);
	ret = page_store_get(st, &r, 1, &err);
	CHECK(ret == -EAGAIN || ret == -ENOENT);
	CHECK(!run_holds(&r, 1));
	CHECK_EQ(page_store_drop(st, &r, 1, &err), 0);
	page_store_stats(st, &ss);
	CHECK_EQ(ss.stored, 0);

	page_store_destroy(st);
	proxy_stop(&px);
	servers_stop(srv, 3);
	run_free(&r, 1);
}

/*
 * A server unreachable for less than down_after keeps its copies: none
 * is written off or copied elsewhere, and once it is back the pages are
 * on their homes as before.
 */
TEST(memd_a_server_down_for_less_than_down_after_keeps_its_copies)
{
	struct test_server srv[3] = { 0 };
	struct page_store *st = NULL;
	struct page_run r = run_alloc(0, PAGES);
	struct proxy px;
	uint64_t on_a = open_behind_proxy(srv, &px, "60s", &st, &r);

	CHECK(on_a > 0 && on_a < PAGES);
	proxy_set_cut(&px, true);
	CHECK(get_holds(st, &r, 1));
	sleep_ms(1500);
	CHECK_EQ(short_of(st), 0);
	CHECK_EQ(server_stats(&srv[1]).pages + server_stats(&srv[2]).pages,
		 2 * PAGES - on_a);
	proxy_set_cut(&px, false);
	server_stop(&srv[1]);
	server_stop(&srv[2]);
	/* every page has a copy on A, current */
	for (int i = 0; i < 100 && !get_holds(st, &r, 1); i++)
		sleep_ms(50);
	CHECK_EQ(server_stats(&srv[0]).pages, on_a);

	page_store_destroy(st);
	proxy_stop(&px);
	servers_stop(srv, 3);
	run_free(&r, 1);
}

TEST(memd_down_after_is_parsed_and_described)
{
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	uint16_t port;
	char spec[200], desc[256];
	static const char *const bad[] = { "0", "-1s", "1us", "soon", "25h" };

	CHECK_EQ(servers_start(&srv, 1, &port), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(spec, sizeof(spec), "memd:127.0.0.1:%u,down_after=%s",
			 port, bad[i]);
		CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), -EINVAL);
		CHECK(strstr(err.text, "down_after"));
	}
	snprintf(spec, sizeof(spec), "memd:127.0.0.1:%u,down_after=1s,"
		 "down_after=2s", port);
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), -EINVAL);

	snprintf(spec, sizeof(spec), "memd:127.0.0.1:%u,down_after=never", port);
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	st->ops->describe(st, desc, sizeof(desc));
	CHECK(strstr(desc, " down_after=never"));
	page_store_destroy(st);

	snprintf(spec, sizeof(spec), "memd:127.0.0.1:%u,down_after=1.5s", port);
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	st->ops->describe(st, desc, sizeof(desc));
	CHECK(strstr(desc, " down_after=1500ms"));
	page_store_destroy(st);

	snprintf(spec, sizeof(spec), "memd:127.0.0.1:%u", port);
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	st->ops->describe(st, desc, sizeof(desc));
	CHECK(!strstr(desc, "down_after"));	/* the default is not said */
	page_store_destroy(st);
	server_stop(&srv);
}

/*
 * Servers A, B, C of @srv behind the proxies @px, a store on them with
 * replicas=2 and down_after=300ms, @r put as version 1; then A away for
 * good and back, cleaned: every page on B and C, off its home where A was
 * one (spilled).  False if something failed.
 */
static bool spilled_off_a(struct test_server *srv, struct proxy *px,
			  struct page_store **st, struct page_run *r)
{
	uint16_t ports[3];
	char spec[200];

	if (servers_start(srv, 3, ports))
		return false;
	for (int i = 0; i < 3; i++) {
		if (proxy_start(&px[i], srv[i].port))
			return false;
		ports[i] = px[i].port;
	}
	spec_for(spec, sizeof(spec), ports, 3, 2, ",down_after=300ms");
	if (open_store(spec, "vm1", "s", st, NULL))
		return false;
	run_fill(r, 1);
	if (page_store_put(*st, r, 1, NULL))
		return false;
	proxy_set_cut(&px[0], true);
	if (!get_holds(*st, r, 1) || !wait_copies_on_1_2(*st, srv, 2 * r->count))
		return false;
	proxy_set_cut(&px[0], false);
	for (int i = 0; i < 1000 && server_stats(&srv[0]).pages; i++)
		sleep_ms(10);
	/* A in use again */
	return !server_stats(&srv[0]).pages && get_holds(*st, r, 1);
}

static void close_three(struct test_server *srv, struct proxy *px,
			struct page_store *st, struct page_run *r)
{
	page_store_destroy(st);
	for (int i = 0; i < 3; i++)
		proxy_stop(&px[i]);
	servers_stop(srv, 3);
	run_free(r, 1);
}

/*
 * replicas=2 over A, B, C, each behind a proxy.  A goes for good: its
 * copies move to C (spilled: off their home), A comes back and is
 * cleaned (it holds none of them now).  Then B and C are cut off
 * together past down_after: the pages' only copies are on them, so they
 * must not be written off on the strength of A, up but empty.  (A
 * write-off that trusted A dropped them from B and C once they were
 * back: the pages were lost.)
 */
TEST(memd_no_write_off_of_the_last_copies_of_a_spilled_page)
{
	struct test_server srv[3] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, PAGES);
	struct proxy px[3];

	/* A away for good, then back and cleaned: every copy on B and C */
	CHECK(spilled_off_a(srv, px, &st, &r));

	/* B and C away together for longer than down_after, then back */
	proxy_set_cut(&px[1], true);
	proxy_set_cut(&px[2], true);
	CHECK(page_store_get(st, &r, 1, &err) == -EAGAIN);
	sleep_ms(1500);
	proxy_set_cut(&px[1], false);
	proxy_set_cut(&px[2], false);
	for (int i = 0; i < 100 && !get_holds(st, &r, 1); i++)
		sleep_ms(50);
	CHECK(get_holds(st, &r, 1));
	CHECK_EQ(lost_of(st), 0);

	close_three(srv, px, st, &r);
}

/*
 * replicas=2 over A, B, C behind proxies.  A goes for good: its copies
 * move to C (spilled), A comes back cleaned.  Then B goes for good, and
 * comes back: the spilled pages whose copy B held are short, and must
 * get it back although no server up is fenced for them.  (The repair
 * took a spilled page only when a server up was fenced for it, and these
 * stayed short for ever.)
 */
TEST(memd_spilled_pages_short_of_copies_are_put_back)
{
	struct test_server srv[3] = { 0 };
	struct page_store *st = NULL;
	struct page_run r = run_alloc(0, PAGES);
	struct proxy px[3];

	/* A away for good, then back and cleaned: every copy on B and C */
	CHECK(spilled_off_a(srv, px, &st, &r));

	/* B away past down_after, then back */
	proxy_set_cut(&px[1], true);
	CHECK(get_holds(st, &r, 1));
	sleep_ms(1000);
	proxy_set_cut(&px[1], false);
	for (int i = 0; i < 1000 && short_of(st); i++)
		sleep_ms(10);
	CHECK_EQ(short_of(st), 0);
	CHECK_EQ(lost_of(st), 0);
	/* each page on two servers at least: any one can go */
	for (int i = 0; i < 3; i++) {
		proxy_set_cut(&px[i], true);
		for (int k = 0; k < 100 && !get_holds(st, &r, 1); k++)
			sleep_ms(50);
		CHECK(get_holds(st, &r, 1));
		proxy_set_cut(&px[i], false);
	}

	close_three(srv, px, st, &r);
}
