// SPDX-License-Identifier: MIT
/*
 * memd servers that come back: the cleanup of their stale copies never
 * races a put still in flight on a connection of before the failure.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

struct bg_op {
	struct page_store *st;
	struct page_run *run;
	bool put;
	int ret;
	struct errmsg err;
	pthread_t thread;
};

static void *bg_main(void *arg)
{
	struct bg_op *o = arg;

	o->ret = o->put ? page_store_put(o->st, o->run, 1, &o->err) :
			  page_store_get(o->st, o->run, 1, &o->err);
	return NULL;
}

static int bg_start(struct bg_op *o, struct page_store *st,
		    struct page_run *run, bool put)
{
	*o = (struct bg_op){ .st = st, .run = run, .put = put };
	return pthread_create(&o->thread, NULL, bg_main, o);
}

/* Waits until @what holds, polling; false after 3 s. */
#define WAIT_FOR(what)                                                    \
	({                                                                \
		int w_ = 0;                                               \
		while (!(what) && w_++ < 300)                             \
			sleep_ms(10);                                     \
		(what);                                                   \
	})

/* The first three groups (16 pages) whose home is server 0 of two,
 * found by storing each and seeing where it went; nothing stays stored. */
static bool groups_homed_on(struct page_store *st, struct test_server *srv,
			    uint64_t *groups)
{
	struct page_run r = run_alloc(0, 16);
	struct errmsg err;
	int found = 0;

	for (uint64_t g = 0; g < 64 && found < 3; g++) {
		uint64_t before = server_stats(srv).pages;
		bool on_it;

		r.first = g * 16;
		run_fill(&r, 0);
		if (page_store_put(st, &r, 1, &err))
			break;
		on_it = server_stats(srv).pages > before;
		if (page_store_drop(st, &r, 1, &err))
			break;
		if (on_it)
			groups[found++] = g;
	}
	run_free(&r, 1);
	return found == 3;
}

/*
 * Server A behind a proxy, B, replicas=1; pages P < Q < S each a group
 * whose home is A.  The race needs P fenced on A while A is up: a put of
 * P made while A's previous recovery was cleaning it up (the cleanup had
 * passed P).  Then a PUT of P goes out on A's pooled connection, A
 * stores it, its reply is held back; A fails on another connection and
 * comes back.  Its cleanup must not drop P: the put, once acknowledged,
 * makes A's copy the only one.  (It did: the cleanup sent its DROP on a
 * new connection while the PUT's reply was on its way, and the next get
 * of P found nothing.)
 */
TEST(memd_recovery_cleanup_never_drops_a_put_in_flight)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run p = run_alloc(0, 16), q = run_alloc(0, 16);
	struct page_run s = run_alloc(0, 16);
	struct bg_op trigger, put;
	struct proxy px;
	uint16_t ports[2];
	uint64_t groups[3], before;
	char spec[160];

	CHECK_EQ(servers_start(srv, 2, ports), 0);
	CHECK_EQ(proxy_start(&px, srv[0].port), 0);
	ports[0] = px.port;
	spec_for(spec, sizeof(spec), ports, 2, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	CHECK(groups_homed_on(st, &srv[0], groups));
	p.first = groups[0] * 16;
	q.first = groups[1] * 16;
	s.first = groups[2] * 16;

	/* Q is fenced on A, which is down */
	proxy_set_cut(&px, true);
	run_fill(&q, 1);
	CHECK_EQ(page_store_put(st, &q, 1, &err), 0);

	/* A's recovery: its DROP of Q waits in the proxy */
	proxy_hold_new_after(&px, HELLO_REPLIES);
	proxy_set_cut(&px, false);
	sleep_ms(250);
	CHECK_EQ(bg_start(&trigger, st, &s, false), 0);	/* may recover A */
	CHECK(WAIT_FOR(proxy_replies_waiting(&px) == 1));
	proxy_hold_new_after(&px, 0);

	/* P put meanwhile: to B, fenced on A; then the recovery ends */
	run_fill(&p, 1);
	CHECK_EQ(page_store_put(st, &p, 1, &err), 0);
	proxy_set_hold(&px, false);
	pthread_join(trigger.thread, NULL);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &s, 1, &err)), -ENOENT);

	/* P's next version goes out to A on its pooled connection, and A
	 * stores it; the reply waits in the proxy */
	proxy_set_hold(&px, true);
	before = server_stats(&srv[0]).pages_put;
	run_fill(&p, 2);
	CHECK_EQ(bg_start(&put, st, &p, true), 0);
	CHECK(WAIT_FOR(server_stats(&srv[0]).pages_put >= before + 16));

	/* A fails on a new connection, and is due back */
	proxy_set_refuse(&px, true);
	page_store_get(st, &s, 1, &err);
	proxy_set_refuse(&px, false);
	sleep_ms(300);
	page_store_get(st, &s, 1, &err);	/* may recover A */
	sleep_ms(100);

	proxy_set_hold(&px, false);
	pthread_join(put.thread, NULL);
	CHECK_EQ(put.ret, 0);
	run_clear(&p);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &p, 1, &err)), 0);
	CHECK(run_holds(&p, 2));

	page_store_destroy(st);
	proxy_stop(&px);
	servers_stop(srv, 2);
	run_free(&p, 1);
	run_free(&q, 1);
	run_free(&s, 1);
}

/* Waits (10 s at most) until the store has no page short of copies and
 * @srv holds @pages. */
static bool wait_repaired(struct page_store *st, struct test_server *srv,
			  uint64_t pages)
{
	for (int i = 0; i < 1000; i++) {
		if (server_stats(srv).pages >= pages && !short_of(st))
			return true;
		sleep_ms(10);
	}
	return false;
}

/*
 * replicas=2 on A and B.  A restarts (a new identity, nothing in
 * memory): the client sees it at the next HELLO, counts A's copies lost
 * and puts them back from B.  Then B goes: every page still reads back.
 * (Before, the client never learnt that A's copies were gone, and losing
 * B lost every page.)
 */
static void check_restart_then_loss(bool stranger_first)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL, *other = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 512);
	uint16_t ports[2];
	char one[64];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, 512);
	CHECK_EQ(short_of(st), 0);

	server_stop(&srv[0]);
	CHECK_EQ(server_start(&srv[0], ports[0], 64ull << 20), 0);
	if (stranger_first) {
		/* another client of the namespace creates it there first (and
		 * keeps it: destroying its store would RELEASE it) */
		spec_for(one, sizeof(one), ports, 1, 0, "");
		CHECK_EQ(open_store(one, "vm1", "s", &other, &err), 0);
	}
	CHECK(wait_repaired(st, &srv[0], 512));
	CHECK_EQ(lost_of(st), 0);

	server_stop(&srv[1]);
	CHECK(get_holds(st, &r, 1));

	page_store_destroy(st);
	if (other)
		page_store_destroy(other);
	servers_stop(srv, 2);
	run_free(&r, 1);
}

TEST(memd_a_restarted_server_gets_its_copies_back)
{
	check_restart_then_loss(false);
}

TEST(memd_a_namespace_recreated_by_another_client_gets_our_copies_back)
{
	check_restart_then_loss(true);
}

/* replicas=1: a restart loses the pages; they are counted lost, not
 * short, and a get says they are not there. */
TEST(memd_a_restart_with_one_copy_counts_the_pages_lost)
{
	struct test_server srv = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(100, 50);
	uint16_t port;

	CHECK_EQ(open_with_pages(&srv, 1, &port, 0, "", &st, &r), 0);
	server_stop(&srv);
	CHECK_EQ(server_start(&srv, port, 64ull << 20), 0);
	for (int i = 0; i < 1000 && lost_of(st) < 50; i++)
		sleep_ms(10);
	CHECK_EQ(lost_of(st), 50);
	CHECK_EQ(short_of(st), 0);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &r, 1, &err)), -ENOENT);
	page_store_destroy(st);
	server_stop(&srv);
	run_free(&r, 1);
}

/* min_replicas=1: a put with one copy counts its pages short until the
 * other server is back and has its copies. */
TEST(memd_degraded_puts_are_topped_up_when_a_server_is_back)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 64), r2 = run_alloc(4096, 128);
	uint16_t ports[2];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, ",min_replicas=1", &st, &r), 0);
	server_stop(&srv[1]);
	run_fill(&r2, 1);
	CHECK_EQ(page_store_put(st, &r2, 1, &err), 0);
	CHECK_EQ(short_of(st), 128);

	/* B back, empty (a new identity): both runs get their copies */
	CHECK_EQ(server_start(&srv[1], ports[1], 64ull << 20), 0);
	CHECK(wait_repaired(st, &srv[1], 64 + 128));
	server_stop(&srv[0]);
	CHECK(get_holds(st, &r2, 1));
	CHECK(get_holds(st, &r, 1));
	page_store_destroy(st);
	servers_stop(srv, 2);
	run_free(&r, 1);
	run_free(&r2, 1);
}

/*
 * replicas=2 on A (behind a proxy, a 300 ms namespace TTL) and B.  Cut
 * off for longer than the TTL, A drops our namespace as if we had gone;
 * once A is back, its handshake says it created the namespace anew, and
 * A's copies count as lost and are put back from B, as after a restart.
 */
TEST(memd_a_namespace_expired_while_cut_off_gets_our_copies_back)
{
	struct memd_server_config cfg = { .capacity = 64ull << 20,
					  .namespace_ttl_ns = 300000000 };
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 512);
	struct proxy px;
	uint16_t ports[2];
	char spec[128];

	CHECK_EQ(server_start_cfg(&srv[0], 0, cfg), 0);
	CHECK_EQ(server_start(&srv[1], 0, 64ull << 20), 0);
	CHECK_EQ(proxy_start(&px, srv[0].port), 0);
	ports[0] = px.port;
	ports[1] = srv[1].port;
	spec_for(spec, sizeof(spec), ports, 2, 2, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), 0);
	run_fill(&r, 1);
	CHECK_EQ(page_store_put(st, &r, 1, &err), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, 512);

	proxy_set_cut(&px, true);
	CHECK(WAIT_FOR(server_stats(&srv[0]).namespaces == 0 &&
		       server_stats(&srv[0]).pages == 0));
	proxy_set_cut(&px, false);
	CHECK(wait_repaired(st, &srv[0], 512));
	CHECK_EQ(lost_of(st), 0);
	CHECK_EQ(server_stats(&srv[0]).namespaces, 1);

	server_stop(&srv[1]);
	CHECK(get_holds(st, &r, 1));
	page_store_destroy(st);
	proxy_stop(&px);
	servers_stop(srv, 2);
	run_free(&r, 1);
}

/* Drops page @page of namespace "vm1" on the server at @port behind the
 * client's back (a server that lost one page); true once done. */
static bool drop_behind_our_back(uint16_t port, uint64_t page)
{
	static uint8_t msg[MEMD_MAX_MSG];
	struct page_run r = { .first = page, .count = 1 };
	struct memd_hdr h;
	int fd = tcp_connect_local(port);
	bool ok;
	size_t len;

	if (fd < 0)
		return false;
	ok = wire_hello(fd, "vm1", "s", NULL) == MEMD_ST_OK;
	len = memd_encode_runs(msg, MEMD_OP_DROP, 3, &r, 1);
	ok = ok && write_all(fd, msg, len) && recv_reply(fd, &h, msg, sizeof(msg)) &&
	     h.status == MEMD_ST_OK;
	close(fd);
	return ok;
}

/*
 * replicas=2 on A and B; B has lost one page (only that one); A restarts,
 * and the repair reads A's copies back from B in batches.  memd answers
 * NO_PAGE for a whole GET when one of its pages is missing: the repair
 * must count that one page lost, not every page of its batch (it counted
 * them all, and they were never put back), and every other page is on
 * both servers again.
 */
TEST(memd_one_missing_page_does_not_lose_its_batch)
{
	struct test_server srv[2] = { 0 };
	struct page_store *st = NULL;
	struct page_run r = run_alloc(0, 512);
	uint16_t ports[2];

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);
	CHECK(drop_behind_our_back(srv[1].port, 100));
	CHECK_EQ(server_stats(&srv[1]).pages, 511);

	server_stop(&srv[0]);
	CHECK_EQ(server_start(&srv[0], ports[0], 64ull << 20), 0);
	for (int i = 0; i < 1000 && (lost_of(st) + short_of(st) != 1 || !lost_of(st)); i++)
		sleep_ms(10);
	CHECK_EQ(lost_of(st), 1);
	CHECK_EQ(short_of(st), 0);
	CHECK_EQ(server_stats(&srv[0]).pages, 511);

	/* the others are on A again: B can go */
	server_stop(&srv[1]);
	r.count = 100;
	CHECK(get_holds(st, &r, 1));
	r.first = 101;
	r.count = 411;
	CHECK(get_holds(st, &r, 1));

	page_store_destroy(st);
	servers_stop(srv, 2);
	run_free(&r, 1);
}
