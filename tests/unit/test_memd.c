// SPDX-License-Identifier: MIT
/*
 * memd end to end in one process: servers on 127.0.0.1 (port 0) running
 * their loops on threads, the memd page store as the client (the wire by
 * hand is test_memd_wire.c's, fairness between clients
 * test_memd_fair.c's).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

TEST(memd_put_get_drop_round_trip)
{
	struct page_run runs[3], back[3];
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	char spec[128], desc[256];

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "secret", &st, &err), 0);
	st->ops->describe(st, desc, sizeof(desc));
	CHECK(strstr(desc, "memd 127.0.0.1:") && strstr(desc, " replicas=1"));

	/* one page, a small run, and a run over groups and message limits */
	runs[0] = run_alloc(5, 1);
	runs[1] = run_alloc(100, 3);
	runs[2] = run_alloc(1000, 200);
	for (int i = 0; i < 3; i++) {
		run_fill(&runs[i], 1);
		back[i] = run_alloc(runs[i].first, runs[i].count);
		run_set_gen(&back[i], 1);
	}
	CHECK_EQ(page_store_put(st, runs, 3, &err), 0);
	CHECK_EQ(server_stats(&srv).pages, 204);
	CHECK_EQ(page_store_get(st, back, 3, &err), 0);
	for (int i = 0; i < 3; i++)
		CHECK(run_holds(&back[i], 1));

	/* replacing keeps the page count */
	run_fill(&runs[1], 2);
	CHECK_EQ(page_store_put(st, &runs[1], 1, &err), 0);
	CHECK_EQ(server_stats(&srv).pages, 204);
	CHECK(get_holds(st, &back[1], 2));
	/* the first version is no longer what the store hands out */
	run_set_gen(&back[1], 1);
	CHECK_EQ(page_store_get(st, &back[1], 1, &err), -EBADMSG);

	CHECK_EQ(page_store_drop(st, &runs[1], 1, &err), 0);
	CHECK_EQ(server_stats(&srv).pages, 201);
	CHECK_EQ(page_store_get(st, &back[1], 1, &err), -ENOENT);
	CHECK(strstr(err.text, "page 100"));
	/* a batch with a missing page fails as a whole */
	CHECK_EQ(page_store_get(st, back, 3, &err), -ENOENT);
	CHECK_EQ(page_store_get(st, &back[2], 1, &err), 0);
	CHECK(run_holds(&back[2], 1));
	/* dropping what is not there is fine */
	CHECK_EQ(page_store_drop(st, &runs[1], 1, &err), 0);
	/* beyond guest RAM */
	back[0].first = RAM_PAGES;
	CHECK_EQ(page_store_get(st, back, 1, &err), -EINVAL);
	back[0].first = 5;

	page_store_destroy(st);
	server_stop(&srv);
	run_free(runs, 3);
	run_free(back, 3);
}

/* While the namespace lives (its store is open), another secret is
 * refused and the right one finds its pages; destroying the store ends
 * the namespace (RELEASE), and then the name is anyone's again. */
TEST(memd_wrong_secret_is_eacces_and_reconnect_sees_pages)
{
	struct test_server srv = { 0 };
	struct page_store *st = NULL, *other = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(42, 2), back = run_alloc(42, 2);
	char spec[128];

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "right", &st, &err), 0);
	run_fill(&r, 7);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);

	CHECK_EQ(open_store(spec, "vm1", "wrong", &other, &err), -EACCES);
	CHECK(strstr(err.text, "refused the secret of namespace 'vm1'"));
	CHECK_EQ(open_store(spec, "vm1", "righ", &other, &err), -EACCES);
	CHECK_EQ(server_stats(&srv).bad_secrets, 2);

	/* the same namespace and secret, another VM: it may get the
	 * records, it cannot open them (its key is not the one they were
	 * sealed with) */
	CHECK_EQ(open_store(spec, "vm1", "right", &other, &err), 0);
	run_set_gen(&back, 7);
	CHECK_EQ(page_store_get(other, &back, 1, &err), -EBADMSG);
	CHECK(strstr(err.text, "page 42 (generation 7)"));
	/* while the first still reads its own */
	CHECK(get_holds(st, &back, 7));
	page_store_destroy(other);	/* RELEASE: the namespace goes */
	page_store_destroy(st);
	CHECK_EQ(server_stats(&srv).namespaces, 0);
	CHECK_EQ(open_store(spec, "vm1", "wrong", &other, &err), 0);
	CHECK_EQ(page_store_get(other, &back, 1, &err), -ENOENT);
	page_store_destroy(other);
	server_stop(&srv);
	run_free(&r, 1);
	run_free(&back, 1);
}

TEST(memd_namespaces_are_isolated)
{
	struct test_server srv = { 0 };
	struct page_store *a = NULL, *b = NULL;
	struct errmsg err = { "" };
	struct page_run ra = run_alloc(7, 1), rb = run_alloc(7, 1);
	char spec[128];

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm-a", "sa", &a, &err), 0);
	CHECK_EQ(open_store(spec, "vm-b", "sb", &b, &err), 0);
	run_fill(&ra, 1);
	run_fill(&rb, 2);
	CHECK_EQ(page_store_put(a, &ra, 1, &err), 0);
	CHECK_EQ(page_store_get(b, &rb, 1, &err), -ENOENT);
	CHECK_EQ(page_store_put(b, &rb, 1, &err), 0);
	run_clear(&ra);
	run_clear(&rb);
	CHECK_EQ(page_store_get(a, &ra, 1, &err), 0);
	CHECK_EQ(page_store_get(b, &rb, 1, &err), 0);
	CHECK(run_holds(&ra, 1));
	CHECK(run_holds(&rb, 2));
	CHECK_EQ(page_store_drop(a, &ra, 1, &err), 0);
	CHECK_EQ(page_store_get(a, &ra, 1, &err), -ENOENT);
	CHECK_EQ(page_store_get(b, &rb, 1, &err), 0);
	CHECK(run_holds(&rb, 2));
	CHECK_EQ(server_stats(&srv).namespaces, 2);
	page_store_destroy(a);
	page_store_destroy(b);
	server_stop(&srv);
	run_free(&ra, 1);
	run_free(&rb, 1);
}

TEST(memd_full_is_enospc_and_server_keeps_serving)
{
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 16), first = run_alloc(0, 16);
	uint64_t stored = 0;
	int ret = 0;
	char spec[128];

	/* 4 MiB: one slab of 512 pages and room for the index */
	CHECK_EQ(server_start(&srv, 0, MEMD_MIN_CAPACITY), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	for (int i = 0; i < 64 && !ret; i++) {
		r.first = (uint64_t)i * 16;
		run_fill(&r, 1);
		ret = page_store_put(st, &r, 1, &err);
		if (!ret)
			stored += 16;
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK(strstr(err.text, "room"));
	CHECK(stored >= 256 && stored <= 512);
	CHECK(server_stats(&srv).used <= MEMD_MIN_CAPACITY);
	CHECK(server_stats(&srv).full_refusals >= 1);
	/* still serving: what was stored reads back, and dropping makes room */
	CHECK(get_holds(st, &first, 1));
	CHECK_EQ(page_store_drop(st, &first, 1, &err), 0);
	run_fill(&r, 1);	/* the failed put sealed it in place */
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 1));
	page_store_destroy(st);
	server_stop(&srv);
	run_free(&r, 1);
	run_free(&first, 1);
}

struct worker {
	struct page_store *st;
	int index;
	atomic_int *failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct page_run r = run_alloc((uint64_t)w->index * 1000 + 3, 37);
	struct errmsg err;

	for (uint32_t v = 1; v <= 20; v++) {
		bool ok;

		run_fill(&r, v);
		ok = page_store_put(w->st, &r, 1, &err) == 0;
		run_clear(&r);
		ok = ok && page_store_get(w->st, &r, 1, &err) == 0 && run_holds(&r, v);
		if (v % 4 == 2)
			ok = ok && page_store_drop(w->st, &r, 1, &err) == 0 &&
			     page_store_get(w->st, &r, 1, &err) == -ENOENT;
		if (!ok)
			atomic_fetch_add(w->failures, 1);
	}
	run_free(&r, 1);
	return NULL;
}

TEST(memd_eight_threads_at_once)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct worker w[8];
	pthread_t t[8];
	atomic_int failures = 0;
	uint16_t ports[2];
	char spec[128];

	CHECK_EQ(server_start(&srv[0], 0, 64ull << 20), 0);
	CHECK_EQ(server_start(&srv[1], 0, 64ull << 20), 0);
	ports[0] = srv[0].port;
	ports[1] = srv[1].port;
	spec_for(spec, sizeof(spec), ports, 2, 2, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ st, i, &failures };
		CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(atomic_load(&failures), 0);
	/* 8 runs of 37 pages, twice each (replicas=2) */
	CHECK_EQ(server_stats(&srv[0]).pages + server_stats(&srv[1]).pages,
		 2 * 8 * 37);
	page_store_destroy(st);
	server_stop(&srv[0]);
	server_stop(&srv[1]);
}

TEST(memd_replicas_survive_a_stopped_server)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(64, 64), r2 = run_alloc(4096, 40);
	uint16_t ports[2];
	char spec[128];

	CHECK_EQ(server_start(&srv[0], 0, 64ull << 20), 0);
	CHECK_EQ(server_start(&srv[1], 0, 64ull << 20), 0);
	ports[0] = srv[0].port;
	ports[1] = srv[1].port;
	spec_for(spec, sizeof(spec), ports, 2, 2, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, 64);
	CHECK_EQ(server_stats(&srv[1]).pages, 64);

	/* one down: reads fall back to the other copy; a put cannot have
	 * its two copies, so it fails and leaves nothing readable */
	server_stop(&srv[0]);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 1));
	run_fill(&r2, 1);
	CHECK_EQ(page_store_put(st, &r2, 1, &err), -EAGAIN);
	CHECK(strstr(err.text, "1 of the 2 copies"));
	CHECK_EQ(page_store_get(st, &r2, 1, &err), -ENOENT);
	CHECK_EQ(server_stats(&srv[1]).pages, 64);

	/* both down: nothing lost, nothing reachable */
	server_stop(&srv[1]);
	CHECK_EQ(page_store_get(st, &r, 1, &err), -EAGAIN);
	CHECK(strstr(err.text, "reachable"));
	CHECK_EQ(page_store_put(st, &r, 1, &err), -EAGAIN);

	/* back (empty): usable again once the client retries them */
	CHECK_EQ(server_start(&srv[0], ports[0], 64ull << 20), 0);
	CHECK_EQ(server_start(&srv[1], ports[1], 64ull << 20), 0);
	CHECK_EQ(RETRY_EAGAIN(put_version(st, &r, 3, &err)), 0);
	/* both copies once both servers are back */
	for (int i = 0; i < 100 && (server_stats(&srv[0]).pages != 64 ||
				     server_stats(&srv[1]).pages != 64); i++) {
		sleep_ms(50);
		CHECK_EQ(put_version(st, &r, 3, &err), 0);
	}
	CHECK_EQ(server_stats(&srv[0]).pages, 64);
	CHECK_EQ(server_stats(&srv[1]).pages, 64);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 3));
	page_store_destroy(st);
	server_stop(&srv[0]);
	server_stop(&srv[1]);
	run_free(&r, 1);
	run_free(&r2, 1);
}

/*
 * A server cut off while a page is rewritten keeps its old copy, whose
 * checksum is valid: once back, it must not be read, and its stale
 * copies must be dropped before it is used again; copies spilled to
 * another server go once the page is home again.
 */
TEST(memd_stale_copy_on_a_returning_server_is_never_read)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 256), other = run_alloc(256, 256);
	struct proxy px;
	uint16_t ports[2];
	uint64_t on_a, on_b;
	char spec[128];

	CHECK_EQ(server_start(&srv[0], 0, 64ull << 20), 0);
	CHECK_EQ(server_start(&srv[1], 0, 64ull << 20), 0);
	CHECK_EQ(proxy_start(&px, srv[0].port), 0);
	ports[0] = px.port;		/* server A, behind the proxy */
	ports[1] = srv[1].port;		/* server B */
	spec_for(spec, sizeof(spec), ports, 2, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);

	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	on_a = server_stats(&srv[0]).pages;
	on_b = server_stats(&srv[1]).pages;
	CHECK_EQ(on_a + on_b, 256);
	CHECK(on_a > 0 && on_b > 0);	/* 16 groups over 2 servers */

	/* A unreachable: version 2 of A's pages spills over to B */
	proxy_set_cut(&px, true);
	run_fill(&r, 2);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[1]).pages, 256);
	CHECK_EQ(server_stats(&srv[0]).pages, on_a);	/* still version 1 */

	/* A back, and due for a retry: version 2 is what reads back */
	proxy_set_cut(&px, false);
	sleep_ms(300);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 2));

	/* A in use again (other pages): its stale copies are gone */
	CHECK_EQ(RETRY_EAGAIN(put_version(st, &other, 1, &err)), 0);
	CHECK_EQ(server_stats(&srv[0]).pages + server_stats(&srv[1]).pages, 512);

	/* home again: the copies spilled to B go */
	run_fill(&r, 3);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[0]).pages + server_stats(&srv[1]).pages, 512);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 3));
	run_clear(&other);
	CHECK_EQ(page_store_get(st, &other, 1, &err), 0);
	CHECK(run_holds(&other, 1));

	page_store_destroy(st);
	proxy_stop(&px);
	server_stop(&srv[0]);
	server_stop(&srv[1]);
	run_free(&r, 1);
	run_free(&other, 1);
}

TEST(memd_bad_specs_are_refused)
{
	static const char *const bad[] = {
		"memd:", "memd:host", "memd:127.0.0.1:0", "memd:127.0.0.1:70000",
		"memd:127.0.0.1:1,", "memd:,127.0.0.1:1", "memd:127.0.0.1:1,,127.0.0.1:2",
		"memd:127.0.0.1:1,replicas=2", "memd:127.0.0.1:1,replicas=0",
		"memd:127.0.0.1:1,replicas=x", "memd:127.0.0.1:1,127.0.0.1:1",
		"memd:127.0.0.1:1,replicas=1,replicas=1", "memd:replicas=1",
		"memd:127.0.0.1:1,127.0.0.1:2,replicas=2,min_replicas=3",
		"memd:127.0.0.1:1,min_replicas=2", "memd:127.0.0.1:1,min_replicas=0",
		"memd:127.0.0.1:1,min_replicas=1,min_replicas=1",
		"memd:1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1,10:1,11:1,12:1,13:1,"
		"14:1,15:1,16:1,17:1",
	};
	struct page_store *st = NULL;
	struct errmsg err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text[0] = 0;
		CHECK_EQ(open_store(bad[i], "vm1", "s", &st, &err), -EINVAL);
		CHECK(strstr(err.text, "memd backend"));
	}
	/* nothing listening: not an invalid spec, just unreachable */
	CHECK(open_store("memd:127.0.0.1:1", "vm1", "s", &st, &err) < 0);
	CHECK(strstr(err.text, "cannot reach any memd server"));
}
