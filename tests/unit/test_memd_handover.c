// SPDX-License-Identifier: MIT
/*
 * A memd namespace handed over to another store (remote/store_handover.h),
 * store against store, servers in this process:
 *  - the placement crosses over: pages that spilled off a server that was
 *    cut off are read where their current copies are, never from the stale
 *    copies the server still holds once it is back;
 *  - the steps come in order only, and a store that cannot hand over
 *    says so;
 *  - the source's end after RELEASE leaves the pages, the destination's
 *    after COMMIT drops them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "memd_test_util.h"
#include "remote/store_handover.h"

#define NPAGES 256u	/* 16 groups: some homed on each server */

TEST(memd_handover_carries_placement_across)
{
	struct test_server srv[2];
	struct page_store *src = NULL, *dst = NULL;
	struct page_run r = run_alloc(0, NPAGES);
	struct page_store_creds c;
	struct errmsg err = { "" };
	uint32_t *where = calloc(RAM_PAGES, sizeof(*where));
	struct memd_stats a, b;
	struct proxy px;
	uint16_t ports[2];
	char spec[160];
	unsigned spilled = 0;

	memset(srv, 0, sizeof(srv));
	CHECK_EQ(servers_start(srv, 2, ports), 0);
	CHECK_EQ(proxy_start(&px, srv[0].port), 0);
	ports[0] = px.port;
	spec_for(spec, sizeof(spec), ports, 2, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &src, &err), 0);
	CHECK_EQ(put_version(src, &r, 1, &err), 0);
	/* server A cut off: version 2 of its pages spills to B */
	proxy_set_cut(&px, true);
	CHECK_EQ(put_version(src, &r, 2, &err), 0);
	CHECK_EQ(page_store_handover(src, PAGE_STORE_BEGIN, &err), 0);
	/* A is back, with version 1 of the pages homed there, which the
	 * source (no maintenance any more) never cleaned */
	proxy_set_cut(&px, false);
	CHECK_EQ(page_store_export(src, &c, &err), 0);
	CHECK_EQ(c.nservers, 2);
	CHECK(c.server[0].identified && c.server[1].identified);
	for (uint64_t p = 0; p < NPAGES; p++) {
		where[p] = page_store_where(src, p);
		CHECK_EQ(where[p], 2u);		/* on B only */
	}
	for (uint64_t p = NPAGES; p < NPAGES + 64; p++)
		CHECK_EQ(page_store_where(src, p), 0u);
	a = server_stats(&srv[0]);
	spilled = (unsigned)a.pages;
	CHECK(spilled > 0 && spilled < NPAGES);

	CHECK_EQ(page_store_import(&c, RAM_PAGES, where, &dst, &err), 0);
	CHECK(get_holds(dst, &r, 2));
	/* steps out of order */
	CHECK_EQ(page_store_handover(dst, PAGE_STORE_BEGIN, &err), -EINVAL);
	CHECK_EQ(page_store_handover(src, PAGE_STORE_COMMIT, &err), -EINVAL);
	CHECK_EQ(page_store_handover(src, PAGE_STORE_RELEASE, &err), 0);
	CHECK_EQ(page_store_handover(src, PAGE_STORE_CANCEL, &err), -EINVAL);
	page_store_destroy(src);
	a = server_stats(&srv[0]);
	b = server_stats(&srv[1]);
	CHECK_EQ(b.pages, NPAGES);
	CHECK_EQ(a.namespaces + b.namespaces, 2);
	CHECK_EQ(page_store_handover(dst, PAGE_STORE_COMMIT, &err), 0);
	CHECK(get_holds(dst, &r, 2));
	/* version 3 from the new owner, read back */
	CHECK_EQ(put_version(dst, &r, 3, &err), 0);
	CHECK(get_holds(dst, &r, 3));
	page_store_destroy(dst);
	a = server_stats(&srv[0]);
	b = server_stats(&srv[1]);
	CHECK_EQ(a.namespaces + b.namespaces, 0);
	page_store_creds_wipe(&c);
	proxy_stop(&px);
	servers_stop(srv, 2);
	run_free(&r, 1);
	free(where);
}

TEST(memd_handover_refuses_hostile_credentials)
{
	struct test_server srv[1];
	struct page_store *src = NULL, *dst = NULL;
	struct page_run r = run_alloc(0, 8);
	struct page_store_creds c, bad;
	struct errmsg err = { "" };
	uint32_t *where = calloc(RAM_PAGES, sizeof(*where));
	uint16_t ports[1];
	char spec[96];

	memset(srv, 0, sizeof(srv));
	CHECK_EQ(servers_start(srv, 1, ports), 0);
	spec_for(spec, sizeof(spec), ports, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &src, &err), 0);
	CHECK_EQ(put_version(src, &r, 1, &err), 0);
	CHECK_EQ(page_store_handover(src, PAGE_STORE_BEGIN, &err), 0);
	CHECK_EQ(page_store_export(src, &c, &err), 0);
	for (uint64_t p = 0; p < 8; p++)
		where[p] = page_store_where(src, p);
	/* another key: refused by the server */
	bad = c;
	bad.ns_key[31] ^= 0x80;
	CHECK_EQ(page_store_import(&bad, RAM_PAGES, where, &dst, &err), -EACCES);
	/* another seal key: in, but no page opens */
	bad = c;
	bad.seal_key[0] ^= 1;
	CHECK_EQ(page_store_import(&bad, RAM_PAGES, where, &dst, &err), 0);
	CHECK(!get_holds(dst, &r, 1));
	page_store_destroy(dst);
	/* a placement on a server it does not have */
	where[3] = 2;
	CHECK_EQ(page_store_import(&c, RAM_PAGES, where, &dst, &err), -EINVAL);
	where[3] = 1;
	/* the source takes it back: its pages are all there */
	CHECK_EQ(page_store_handover(src, PAGE_STORE_CANCEL, &err), 0);
	CHECK(get_holds(src, &r, 1));
	page_store_destroy(src);
	CHECK_EQ(server_stats(&srv[0]).namespaces, 0);
	page_store_creds_wipe(&c);
	page_store_creds_wipe(&bad);
	servers_stop(srv, 1);
	run_free(&r, 1);
	free(where);
}
