// SPDX-License-Identifier: MIT
/*
 * memd between clients that do not cooperate (issue 13): quotas, the end
 * of a namespace (RELEASE, expiry), deadlines for connections, limits per
 * peer, and a crowd of idle connections against a real client.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

#define MS 1000000ull

/* Polls @cond every 10 ms for up to @ms; its last value. */
#define WITHIN_MS(ms, cond)                                               \
	({                                                                \
		bool ok_ = (cond);                                        \
		for (int i_ = 0; !ok_ && i_ < (ms) / 10; i_++) {          \
			sleep_ms(10);                                     \
			ok_ = (cond);                                     \
		}                                                         \
		ok_;                                                      \
	})

/* A server with @cfg, and two clients that said HELLO to namespaces
 * @ns0 and @ns1 (secret "s") on fd[0] and fd[1]. */
static bool two_clients(struct test_server *srv, struct memd_server_config cfg,
			int fd[2], const char *ns0, const char *ns1)
{
	if (server_start_cfg(srv, 0, cfg))
		return false;
	fd[0] = tcp_connect_local(srv->port);
	fd[1] = tcp_connect_local(srv->port);
	return wire_hello(fd[0], ns0, "s", NULL) == MEMD_ST_OK &&
	       wire_hello(fd[1], ns1, "s", NULL) == MEMD_ST_OK;
}

static void close_fds(const int *fd, int n)
{
	for (int i = 0; i < n; i++)
		close(fd[i]);
}

TEST(memd_quota_refuses_one_tenant_while_another_stores)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .namespace_quota = 100 * PAGE_STORE_PAGE };
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(1000, 30);
	char spec[128];
	enum { GREEDY, MODEST };
	int fd[2];

	CHECK(two_clients(&srv, cfg, fd, "greedy", "modest"));

	/* 100 pages fit; one more does not, whatever the capacity left */
	CHECK_EQ(wire_put(fd[GREEDY], 0, 100), MEMD_ST_OK);
	CHECK_EQ(wire_put(fd[GREEDY], 100, 1), MEMD_ST_FULL);
	CHECK_EQ(server_stats(&srv).pages, 100);
	CHECK_EQ(server_stats(&srv).full_refusals, 1);
	/* replacing its own pages is fine; a PUT across the line stores
	 * nothing */
	CHECK_EQ(wire_put(fd[GREEDY], 0, 100), MEMD_ST_OK);
	CHECK_EQ(wire_put(fd[GREEDY], 90, 20), MEMD_ST_FULL);
	CHECK_EQ(server_stats(&srv).pages, 100);

	/* the other tenant has its own quota */
	CHECK_EQ(wire_put(fd[MODEST], 0, 64), MEMD_ST_OK);
	CHECK_EQ(server_stats(&srv).pages, 164);

	/* the page store sees a full server: -ENOSPC, nothing lost */
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "modest", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	r.first = 2000;
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), -ENOSPC);
	CHECK_EQ(server_stats(&srv).pages, 194);
	r.first = 1000;
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 1));
	page_store_destroy(st);
	close_fds(fd, 2);
	server_stop(&srv);
	run_free(&r, 1);
}

TEST(memd_release_frees_the_namespace)
{
	struct test_server srv = { 0 };
	struct memd_stats st;
	bool created = false;
	uint64_t used_full;
	int a, b, c;

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	a = tcp_connect_local(srv.port);
	b = tcp_connect_local(srv.port);
	c = tcp_connect_local(srv.port);
	/* before HELLO there is nothing to release */
	CHECK_EQ(wire_empty(a, MEMD_OP_RELEASE), MEMD_ST_BAD_SECRET);
	CHECK_EQ(wire_hello(a, "vm1", "s", NULL), MEMD_ST_OK);
	CHECK_EQ(wire_hello(b, "vm1", "s", NULL), MEMD_ST_OK);
	CHECK_EQ(wire_hello(c, "vm2", "t", NULL), MEMD_ST_OK);
	CHECK_EQ(wire_put(a, 0, 3000), MEMD_ST_OK);
	CHECK_EQ(wire_put(c, 0, 10), MEMD_ST_OK);
	CHECK_EQ(server_stats(&srv).pages, 3010);
	used_full = server_stats(&srv).used;

	CHECK_EQ(wire_empty(a, MEMD_OP_RELEASE), MEMD_ST_OK);
	/* this connection and the namespace's other one are closed; the
	 * other namespace's is not */
	CHECK(wire_closed(a, 2000));
	CHECK(wire_closed(b, 2000));
	CHECK_EQ(wire_empty(c, MEMD_OP_STATS), MEMD_ST_OK);
	/* the pages go back in the background */
	CHECK(WITHIN_MS(5000, server_stats(&srv).pages == 10));
	st = server_stats(&srv);
	CHECK_EQ(st.namespaces, 1);
	/* the slabs stay mapped for reuse; the index (4096 buckets of 16
	 * bytes) and the namespace do not */
	CHECK(st.used + 4096 * 16 < used_full);

	/* the name is free: anyone may take it, with any secret, and the
	 * handshake says it created the namespace anew */
	a = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(a, "vm1", "another", &created), MEMD_ST_OK);
	CHECK(created);
	CHECK_EQ(wire_empty(a, MEMD_OP_STATS), MEMD_ST_OK);
	CHECK_EQ(server_stats(&srv).namespaces, 2);
	close_fds((int[]){ a, b, c }, 3);
	server_stop(&srv);
}

TEST(memd_namespace_expires_after_its_ttl_without_clients)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .namespace_ttl_ns = 300 * MS };
	struct test_server srv = { 0 };
	enum { KEPT, GONE };
	int fd[2];

	CHECK(two_clients(&srv, cfg, fd, "kept", "gone"));
	CHECK_EQ(wire_put(fd[KEPT], 0, 100), MEMD_ST_OK);
	CHECK_EQ(wire_put(fd[GONE], 0, 100), MEMD_ST_OK);
	close(fd[GONE]);

	/* the second client left: its namespace lasts the TTL, then goes */
	sleep_ms(100);
	CHECK_EQ(server_stats(&srv).namespaces, 2);
	CHECK(WITHIN_MS(3000, server_stats(&srv).namespaces == 1));
	CHECK(WITHIN_MS(3000, server_stats(&srv).pages == 100));
	/* a namespace with a client stays past it */
	sleep_ms(400);
	CHECK_EQ(wire_empty(fd[KEPT], MEMD_OP_STATS), MEMD_ST_OK);
	CHECK_EQ(server_stats(&srv).namespaces, 1);
	/* a client back within the TTL stops the clock */
	close(fd[KEPT]);
	sleep_ms(100);
	fd[KEPT] = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(fd[KEPT], "kept", "s", NULL), MEMD_ST_OK);
	sleep_ms(500);
	CHECK_EQ(server_stats(&srv).pages, 100);
	close(fd[KEPT]);
	server_stop(&srv);
}

TEST(memd_hello_deadline_closes_silent_connections)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .hello_timeout_ns = 200 * MS };
	uint8_t msg[MEMD_HELLO_MAX], nonce[MEMD_NONCE_SIZE] = { 0 };
	struct test_server srv = { 0 };
	int silent, stats_only, half, client, len;
	struct memd_hdr h;

	CHECK_EQ(server_start_cfg(&srv, 0, cfg), 0);
	silent = tcp_connect_local(srv.port);
	stats_only = tcp_connect_local(srv.port);
	half = tcp_connect_local(srv.port);
	client = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(client, "vm1", "s", NULL), MEMD_ST_OK);
	CHECK(WITHIN_MS(1000, server_stats(&srv).connections == 4));
	/* STATS is allowed before HELLO, but does not stop the clock */
	CHECK_EQ(wire_empty(stats_only, MEMD_OP_STATS), MEMD_ST_OK);
	/* nor does half a handshake: step 1 answered, no step 2 */
	len = memd_encode_hello1(msg, 1, "vm1", nonce);
	CHECK(len > 0 && write_all(half, msg, (size_t)len));
	CHECK(recv_reply(half, &h, msg, sizeof(msg)) && h.status == MEMD_ST_OK);
	CHECK(wire_closed(silent, 2000));
	CHECK(wire_closed(stats_only, 2000));
	CHECK(wire_closed(half, 2000));
	/* the server counts a connection out just after closing it */
	CHECK(WITHIN_MS(1000, server_stats(&srv).connections == 1));
	/* the client that said HELLO is still served */
	sleep_ms(300);
	CHECK_EQ(wire_empty(client, MEMD_OP_STATS), MEMD_ST_OK);
	close_fds((int[]){ silent, stats_only, half, client }, 4);
	server_stop(&srv);
}

TEST(memd_idle_timeout_closes_quiet_connections)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .idle_timeout_ns = 300 * MS };
	struct test_server srv = { 0 };
	enum { QUIET, BUSY };
	int fd[2];

	CHECK(two_clients(&srv, cfg, fd, "vm1", "vm1"));
	/* a request now and then keeps a connection; silence does not */
	for (int i = 0; i < 8; i++) {
		sleep_ms(100);
		CHECK_EQ(wire_empty(fd[BUSY], MEMD_OP_STATS), MEMD_ST_OK);
	}
	CHECK(wire_closed(fd[QUIET], 1000));
	CHECK_EQ(wire_empty(fd[BUSY], MEMD_OP_STATS), MEMD_ST_OK);
	close_fds(fd, 2);
	server_stop(&srv);
}

/* Raises the fd limit for @need descriptors; false if it cannot. */
static bool fds_for(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return false;
	if (rl.rlim_cur >= need)
		return true;
	if (rl.rlim_max < need)
		return false;
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

TEST(memd_one_peer_cannot_take_every_slot)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .max_conns_per_peer = 20 };
	struct test_server srv = { 0 };
	int fds[30], closed = 0, client;

	CHECK_EQ(server_start_cfg(&srv, 0, cfg), 0);
	for (int i = 0; i < 30; i++) {
		fds[i] = tcp_connect_from("127.0.0.2", srv.port);
		CHECK(fds[i] >= 0);
	}
	for (int i = 0; i < 30; i++)
		closed += wire_closed(fds[i], i < 20 ? 0 : 2000);
	CHECK_EQ(closed, 10);
	CHECK(WITHIN_MS(1000, server_stats(&srv).connections == 20));
	/* another peer is not counted with it */
	client = tcp_connect_from("127.0.0.3", srv.port);
	CHECK_EQ(wire_hello(client, "vm1", "s", NULL), MEMD_ST_OK);
	for (int i = 0; i < 30; i++)
		close(fds[i]);
	close(client);
	server_stop(&srv);
}

/*
 * 1200 connections that never say HELLO, from eight peers (loopback
 * addresses 127.0.0.2-9, 150 each): with the default limits a real
 * client still gets in and is served, since the oldest silent
 * connections make room for newcomers; the server never holds more
 * than its limit.  (The HELLO deadline is set long here, so that it is
 * the limit and not the deadline that is under test, however slowly
 * the connections are made.)  Before issue 13, 256 of them locked
 * everyone out.
 */
TEST(memd_a_thousand_idle_connections_do_not_lock_out_a_client)
{
	enum { IDLE = 1200 };
	static int fds[IDLE];
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .hello_timeout_ns = 600000 * MS };
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 64);
	char spec[128], from[16];

	if (!fds_for(3 * IDLE))
		SKIP("cannot raise the fd limit to 3600");
	CHECK_EQ(server_start_cfg(&srv, 0, cfg), 0);
	for (int i = 0; i < IDLE; i++) {
		snprintf(from, sizeof(from), "127.0.0.%d", 2 + i % 8);
		fds[i] = tcp_connect_from(from, srv.port);
		CHECK(fds[i] >= 0);
	}
	CHECK(WITHIN_MS(10000, server_stats(&srv).connections ==
				       MEMD_DEFAULT_MAX_CLIENTS));

	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	run_clear(&r);
	CHECK_EQ(page_store_get(st, &r, 1, &err), 0);
	CHECK(run_holds(&r, 1));
	CHECK(server_stats(&srv).connections <= MEMD_DEFAULT_MAX_CLIENTS);
	page_store_destroy(st);
	for (int i = 0; i < IDLE; i++)
		close(fds[i]);
	server_stop(&srv);
	run_free(&r, 1);
}

/* ---- the client's side: its store's connections -------------------------- */

TEST(memd_store_destroy_releases_its_namespace)
{
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 200);
	char spec[128];

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv).pages, 200);
	page_store_destroy(st);
	CHECK_EQ(server_stats(&srv).namespaces, 0);
	CHECK(WITHIN_MS(5000, server_stats(&srv).pages == 0));
	CHECK(WITHIN_MS(1000, server_stats(&srv).connections == 0));
	server_stop(&srv);
	run_free(&r, 1);
}

struct burst {
	struct page_store *st;
	pthread_barrier_t *start;
	uint64_t first;
	int failures;
};

/* One of the threads of a burst: a put and a get of 128 pages. */
static void *burst_main(void *arg)
{
	struct burst *b = arg;
	struct page_run r = run_alloc(b->first, 128);
	struct errmsg err;

	run_fill(&r, 1);
	pthread_barrier_wait(b->start);
	if (page_store_put(b->st, &r, 1, &err) ||
	    page_store_get(b->st, &r, 1, &err) || !run_holds(&r, 1)) {
		fprintf(stderr, "burst: %s\n", err.text);
		b->failures++;
	}
	run_free(&r, 1);
	return NULL;
}

/* @threads ops at once on @st, as a VM's pager threads do; failures. */
static int burst(struct page_store *st, int threads)
{
	struct burst b[8];
	pthread_t t[8];
	pthread_barrier_t start;
	int failures = 0;

	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		b[i] = (struct burst){ st, &start, (uint64_t)i * 128, 0 };
		pthread_create(&t[i], NULL, burst_main, &b[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		failures += b[i].failures;
	}
	pthread_barrier_destroy(&start);
	return failures;
}

/* A store keeps one connection per server however long it is quiet
 * (memd's namespace TTL counts from the last one), and closes the rest
 * of its pool a few seconds after a burst. */
TEST(memd_store_keeps_one_connection_and_closes_idle_ones)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .namespace_ttl_ns = 500 * MS };
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 128);
	char spec[128];

	CHECK_EQ(server_start_cfg(&srv, 0, cfg), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	CHECK_EQ(burst(st, 8), 0);
	CHECK(server_stats(&srv).connections > 1);
	/* closed within IDLE_CLOSE_MS (5 s) and a tick of the thread */
	CHECK(WITHIN_MS(8000, server_stats(&srv).connections == 1));
	/* quiet for many TTLs: the namespace and its pages are still there */
	sleep_ms(1500);
	CHECK_EQ(server_stats(&srv).namespaces, 1);
	CHECK(get_holds(st, &r, 1));
	page_store_destroy(st);
	server_stop(&srv);
	run_free(&r, 1);
}

/*
 * 100 VMs (stores, each with its own namespace) against one memd with
 * the default flags, all from one address as on one host: each runs a
 * burst of 4 ops at once, half of them, then after their pools went
 * quiet the other half, then each once more.  Every op is served.
 * Before issue 13, the pools of the first half alone (4 connections
 * each) filled the server's slots for good.
 */
TEST(memd_a_hundred_namespaces_get_service_with_default_flags)
{
	enum { VMS = 100 };
	static struct page_store *st[VMS];
	struct memd_server_config cfg = { .capacity = 512ull << 20 };
	struct test_server srv = { 0 };
	struct errmsg err = { "" };
	int failures = 0;
	char spec[128], name[16];

	if (!fds_for(4096))
		SKIP("cannot raise the fd limit to 4096");
	CHECK_EQ(server_start_cfg(&srv, 0, cfg), 0);
	spec_for(spec, sizeof(spec), &srv.port, 1, 0, "");
	for (int i = 0; i < VMS; i++) {
		snprintf(name, sizeof(name), "vm%d", i);
		CHECK_EQ(open_store(spec, name, "s", &st[i], &err), 0);
	}
	for (int i = 0; i < VMS / 2; i++)
		failures += burst(st[i], 4);
	CHECK_EQ(failures, 0);
	/* the first half's pools shrink to one connection each */
	CHECK(WITHIN_MS(8000, server_stats(&srv).connections == VMS));
	for (int i = VMS / 2; i < VMS; i++)
		failures += burst(st[i], 4);
	CHECK_EQ(failures, 0);
	for (int i = 0; i < VMS; i++)
		failures += burst(st[i], 1);
	CHECK_EQ(failures, 0);
	CHECK_EQ(server_stats(&srv).namespaces, VMS);
	for (int i = 0; i < VMS; i++)
		page_store_destroy(st[i]);
	CHECK_EQ(server_stats(&srv).namespaces, 0);
	server_stop(&srv);
}
