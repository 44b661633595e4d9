// SPDX-License-Identifier: MIT
/*
 * memd replication: a put is done only with its copies, a failed
 * server's share goes elsewhere, and a read falls back past any server
 * that fails it, whatever the way.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "memd_test_util.h"

static uint64_t pages_on(struct test_server *srv, int n)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		if (srv[i].running)
			total += server_stats(&srv[i]).pages;
	return total;
}

TEST(memd_put_is_done_only_with_every_copy)
{
	struct test_server srv[3] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 256), r2 = run_alloc(1024, 256);
	uint16_t ports[3];
	uint64_t on0;
	char spec[160];

	CHECK_EQ(servers_start(srv, 3, ports), 0);
	spec_for(spec, sizeof(spec), ports, 3, 2, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(pages_on(srv, 3), 2 * 256);

	/* one of three down: its share of the copies goes to the third */
	on0 = server_stats(&srv[0]).pages;
	CHECK(on0 > 0 && on0 < 256);
	server_stop(&srv[0]);
	run_fill(&r2, 1);
	CHECK_EQ(page_store_put(st, &r2, 1, &err), 0);
	CHECK_EQ(pages_on(srv, 3), 2 * 256 - on0 + 2 * 256);
	run_clear(&r2);
	CHECK_EQ(page_store_get(st, &r2, 1, &err), 0);
	CHECK(run_holds(&r2, 1));

	/* two of three down: one copy is not enough, nothing is left
	 * readable, and the page stays the caller's */
	server_stop(&srv[1]);
	run_fill(&r2, 2);
	CHECK_EQ(page_store_put(st, &r2, 1, &err), -EAGAIN);
	CHECK(strstr(err.text, "of the 2 copies it needs"));
	CHECK(page_store_get(st, &r2, 1, &err) < 0);

	page_store_destroy(st);
	servers_stop(srv, 3);
	run_free(&r, 1);
	run_free(&r2, 1);
}

TEST(memd_min_replicas_accepts_fewer_copies_when_asked)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 128);
	uint16_t ports[2];
	char spec[160], desc[256];

	CHECK_EQ(servers_start(srv, 2, ports), 0);
	spec_for(spec, sizeof(spec), ports, 2, 2, ",min_replicas=1");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	st->ops->describe(st, desc, sizeof(desc));
	CHECK(strstr(desc, " replicas=2 min_replicas=1"));
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(pages_on(srv, 2), 2 * 128);

	server_stop(&srv[1]);
	run_fill(&r, 2);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, 128);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 2));

	page_store_destroy(st);
	server_stop(&srv[0]);
	run_free(&r, 1);
}

/*
 * A server that answers @status to every GET: each page is read from the
 * other copy, whichever the server's rank for it.
 */
static void check_fallback_past(uint8_t status)
{
	struct test_server srv[2] = { 0 };
	struct fake_server fake;
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 256);
	uint16_t ports[2];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);

	/* the first server turns bad: same address and identity, answers
	 * @status */
	CHECK_EQ(fake_replace(&fake, &srv[0], status, "vm1", "s"), 0);
	run_clear(&r);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &r, 1, &err)), 0);
	CHECK(run_holds(&r, 1));
	CHECK(fake.answered > 0);	/* it was asked, and failed */
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 1));

	page_store_destroy(st);
	fake_stop(&fake);
	server_stop(&srv[1]);
	run_free(&r, 1);
}

TEST(memd_get_falls_back_past_a_server_answering_bad_secret)
{
	check_fallback_past(MEMD_ST_BAD_SECRET);
}

TEST(memd_get_falls_back_past_a_server_answering_bad_request)
{
	check_fallback_past(MEMD_ST_BAD_REQUEST);
}

/*
 * A server restarted empty, whose namespace a stranger then registered
 * with another secret: it refuses us, and reads go to the other copy;
 * the stranger finds none of our pages.
 */
TEST(memd_get_falls_back_past_a_server_refusing_our_secret)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL, *stranger = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 256);
	uint16_t ports[2];
	char one[64];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);

	server_stop(&srv[0]);
	CHECK_EQ(server_start(&srv[0], ports[0], 64ull << 20), 0);
	spec_for(one, sizeof(one), ports, 1, 0, "");
	CHECK_EQ(open_store(one, "vm1", "not-s", &stranger, &err), 0);

	run_clear(&r);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &r, 1, &err)), 0);
	CHECK(run_holds(&r, 1));
	CHECK(server_stats(&srv[0]).bad_secrets >= 1);
	CHECK_EQ(page_store_get(stranger, &r, 1, &err), -ENOENT);
	/* our pages never go there: a put cannot have its two copies */
	CHECK_EQ(page_store_put(st, &r, 1, &err), -EAGAIN);
	CHECK_EQ(server_stats(&srv[0]).pages, 0);
	CHECK_EQ(page_store_get(stranger, &r, 1, &err), -ENOENT);

	page_store_destroy(stranger);
	page_store_destroy(st);
	servers_stop(srv, 2);
	run_free(&r, 1);
}
