// SPDX-License-Identifier: MIT
/*
 * Sealed pages against hostile memd servers (page_seal.h, store_memd.c):
 * a server (here: a raw client with the namespace secret, which is what
 * a server's operator has) sees only ciphertext, and the copies it
 * swaps in (another namespace's page, an older version of the page) are
 * refused: the store falls back to another replica, and with no good
 * copy left says -EBADMSG instead of handing out data.  With the
 * unkeyed per-page checksum before them, each of these read the wrong
 * data back or found the page in clear.
 */
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

#define PAGE_NO 35	/* any page; its group's copies are on both servers */

/* A raw connection to @srv in namespace @ns. */
static int rogue(struct test_server *srv, const char *ns, const char *secret)
{
	int fd = tcp_connect_local(srv->port);

	if (fd >= 0 && wire_hello(fd, ns, secret, NULL) != MEMD_ST_OK) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Whether 64 bytes of @page (at a few offsets) appear in @hay. */
static bool shows(const uint8_t *hay, size_t len, const uint8_t *page)
{
	for (size_t off = 0; off + 64 <= PAGE_STORE_PAGE; off += 1000)
		if (memmem(hay, len, page + off, 64))
			return true;
	return false;
}

/* A store in namespace @ns on @srv (its spec ending in @extra) puts
 * PAGE_NO with version @version's contents (into @clear too) at
 * generation 2, and @record gets that copy as the server holds it; the
 * store is gone again.  0 or -1. */
static int record_of(struct test_server *srv, const char *extra,
		     const char *ns, const char *secret, uint32_t version,
		     uint8_t *clear, uint8_t *record)
{
	struct page_store *st = NULL;
	struct page_run r = run_alloc(PAGE_NO, 1);
	char spec[160];
	int fd = -1, ret = -1;

	spec_for(spec, sizeof(spec), &srv->port, 1, 0, extra);
	if (!open_store(spec, ns, secret, &st, NULL)) {
		run_fill(&r, version);
		run_set_gen(&r, 2);
		memcpy(clear, r.data, PAGE_STORE_PAGE);
		if (!page_store_put(st, &r, 1, NULL))
			fd = rogue(srv, ns, secret);
		if (fd >= 0 && wire_get_record(fd, PAGE_NO, record) == MEMD_ST_OK)
			ret = 0;
		if (fd >= 0)
			close(fd);
		page_store_destroy(st);
	}
	run_free(&r, 1);
	return ret;
}

/* What the server stores of a sealed page, and with seal=off. */
TEST(memd_server_never_sees_sealed_pages_in_clear)
{
	static uint8_t clear[PAGE_STORE_PAGE], record[MEMD_RECORD];
	struct test_server srv = { 0 };

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	CHECK_EQ(record_of(&srv, "", "vm1", "s", 2, clear, record), 0);
	CHECK(!shows(record, sizeof(record), clear));
	CHECK_EQ(record_of(&srv, ",seal=off", "vm1", "s", 2, clear, record), 0);
	CHECK(shows(record, sizeof(record), clear));	/* the test can see */
	server_stop(&srv);
}

/*
 * @theirs (a record for PAGE_NO from elsewhere), or with NULL the page's
 * own version 1 as stored before version 2 was put (a replay), replaces
 * the copy on one server, then on both: the store reads version 2 from
 * the other server, then refuses.  Each server comes first in one of the
 * two rounds, so that both the fallback and a bad copy found second are
 * covered, whichever the page's ranking.
 */
static void swapped_copies(const uint8_t *theirs)
{
	static uint8_t good[2][MEMD_RECORD], v1[MEMD_RECORD];
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct page_run r = run_alloc(PAGE_NO, 1);
	struct errmsg err = { "" };
	const uint8_t *bad = theirs ? theirs : v1;
	uint16_t ports[2];
	int fd[2];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);
	for (int s = 0; s < 2; s++) {
		fd[s] = rogue(&srv[s], "vm1", "s");
		CHECK(fd[s] >= 0);
	}
	CHECK_EQ(wire_get_record(fd[0], PAGE_NO, v1), MEMD_ST_OK);
	CHECK_EQ(put_version(st, &r, 2, &err), 0);
	for (int s = 0; s < 2; s++)
		CHECK_EQ(wire_get_record(fd[s], PAGE_NO, good[s]), MEMD_ST_OK);
	CHECK(memcmp(good[0], bad, MEMD_RECORD) != 0);
	for (int first = 0; first < 2; first++) {
		CHECK_EQ(wire_put_record(fd[first], PAGE_NO, bad), MEMD_ST_OK);
		CHECK(get_holds(st, &r, 2));	/* the other copy */
		CHECK_EQ(wire_put_record(fd[!first], PAGE_NO, bad), MEMD_ST_OK);
		run_clear(&r);
		run_set_gen(&r, 2);
		CHECK_EQ(page_store_get(st, &r, 1, &err), -EBADMSG);
		CHECK(strstr(err.text, "page 35 (generation 2) did not open "
			      "from any memd copy"));
		CHECK(!run_holds(&r, 1));
		for (int s = 0; s < 2; s++)
			CHECK_EQ(wire_put_record(fd[s], PAGE_NO, good[s]), MEMD_ST_OK);
		CHECK(get_holds(st, &r, 2));	/* the real ones are back */
	}
	close(fd[0]);
	close(fd[1]);
	page_store_destroy(st);
	servers_stop(srv, 2);
	run_free(&r, 1);
}

/* The server replays the page's older version. */
TEST(memd_replayed_old_version_falls_back_then_is_ebadmsg)
{
	swapped_copies(NULL);
}

/* The server hands out another namespace's (another VM's) copy of the
 * same page number, at the generation the client expects. */
TEST(memd_other_namespace_page_falls_back_then_is_ebadmsg)
{
	static uint8_t theirs[MEMD_RECORD], clear[PAGE_STORE_PAGE];
	struct test_server srv = { 0 };

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	/* their page 35 holds other data, at the generation we expect */
	CHECK_EQ(record_of(&srv, "", "vm2", "other", 9, clear, theirs), 0);
	server_stop(&srv);
	swapped_copies(theirs);
}
