// SPDX-License-Identifier: MIT
/*
 * memd servers that come back: the cleanup of their stale copies never
 * races a put still in flight on a connection of before the failure.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

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
