// SPDX-License-Identifier: MIT
/*
 * The memcached page store against real memcached processes on free
 * loopback ports, started and killed by the tests themselves (keys and
 * what they reveal: test_store_memcached_keys.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "memcached_test_util.h"

static void round_trips(struct fixture *f)
{
	const uint64_t batch[3][2] = { { 0, 40 }, { 100, 24 }, { 4095, 1 } };
	const uint64_t reshaped[2][2] = { { 10, 100 }, { 4095, 1 } };
	struct errmsg err = { "" };
	char desc[512];
	long total = 0;

	CHECK_EQ(put_runs(f->s, batch, 3, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 3, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch + 1, 1, 0, &err), 0);
	/* a get batch need not have the shape of the puts */
	CHECK_EQ(put_runs(f->s, (const uint64_t[][2]){ { 40, 60 } }, 1, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, reshaped, 2, 0, &err), 0);
	/* rewriting replaces */
	CHECK_EQ(put_one(f->s, 101, 5, &err), 0);
	CHECK_EQ(check_one(f->s, 101, 5, &err), 0);
	CHECK_EQ(check_one(f->s, 100, 0, &err), 0);
	/* consistent hashing spread the batch over every server */
	for (int i = 0; i < f->n; i++) {
		long items = mc_items(f->srv[i].port);

		CHECK(items > 0);
		total += items;
	}
	CHECK_EQ(total, 125);
	f->s->ops->describe(f->s, desc, sizeof(desc));
	CHECK(strstr(desc, f->spec + strlen("memcached:")) != NULL);
}

TEST(memcached_store_round_trips_over_three_servers)
{
	struct fixture f = { 0 };

	SKIP_WITHOUT_MEMCACHED();
	if (!fixture_up(&f, 3))
		return;
	round_trips(&f);
	fixture_stop(&f);
}

static void missing_pages(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 200, 32 } };
	struct page_run drop = { 210, 2, NULL, NULL };
	struct page_run never = { 3000, 9, NULL, NULL };
	struct errmsg err = { "" };

	CHECK_EQ(check_one(f->s, 7, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "page 0x7 ") != NULL);
	CHECK(strstr(err.text, "127.0.0.1:") != NULL);
	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	CHECK_EQ(page_store_drop(f->s, &drop, 1, &err), 0);
	CHECK_EQ(page_store_drop(f->s, &never, 1, &err), 0);
	CHECK_EQ(check_one(f->s, 209, 0, &err), 0);
	CHECK_EQ(check_one(f->s, 210, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0xd2") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -ENOENT);
	CHECK_EQ(check_one(f->s, 212, 0, &err), 0);
	/* memcached forgets everything: the store says which page, where */
	for (int i = 0; i < f->n; i++)
		CHECK_EQ(mc_flush(f->srv[i].port), 0);
	CHECK_EQ(check_one(f->s, 212, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0xd4") != NULL);
	CHECK(strstr(err.text, "evicted") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -ENOENT);
}

TEST(memcached_store_missing_pages_are_enoent)
{
	struct fixture f = { 0 };

	SKIP_WITHOUT_MEMCACHED();
	if (!fixture_up(&f, 2))
		return;
	missing_pages(&f);
	fixture_stop(&f);
}

static void outage(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 0, 64 } };
	struct page_run drop = { 0, 64, NULL, NULL };
	struct errmsg err = { "" };
	char port_b[16];
	int on_a = -1, on_b = -1, r;
	double deadline;

	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	/* B goes away: its pages are -EAGAIN, A's still there */
	mc_server_stop(&f->srv[1]);
	snprintf(port_b, sizeof(port_b), ":%u", f->srv[1].port);
	for (int page = 0; page < 64; page++) {
		r = check_one(f->s, (uint64_t)page, 0, &err);
		CHECK(r == 0 || r == -EAGAIN);
		if (r == 0) {
			on_a = page;
		} else {
			on_b = page;
			CHECK(strstr(err.text, port_b) != NULL);
		}
	}
	CHECK(on_a >= 0 && on_b >= 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EAGAIN);
	CHECK_EQ(put_one(f->s, (uint64_t)on_b, 1, &err), -EAGAIN);
	CHECK_EQ(put_one(f->s, (uint64_t)on_a, 1, &err), 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), 0);

	/* all servers down: every op says try again */
	mc_server_stop(&f->srv[0]);
	CHECK_EQ(put_runs(f->s, batch, 1, 2, &err), -EAGAIN);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EAGAIN);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), -EAGAIN);
	CHECK_EQ(page_store_drop(f->s, &drop, 1, &err), -EAGAIN);

	/* B comes back (empty: memcached keeps nothing over a restart) and
	 * is used again once libmemcached's retry timeout has passed */
	CHECK_EQ(mc_server_start(&f->srv[1]), 0);
	deadline = now_s() + 15;
	do {
		r = put_one(f->s, (uint64_t)on_b, 3, &err);
		if (r == -EAGAIN)
			nap_ms(100);
	} while (r == -EAGAIN && now_s() < deadline);
	CHECK_EQ(r, 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_b, 3, &err), 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), -EAGAIN);
}

TEST(memcached_store_unreachable_servers_are_eagain_then_recover)
{
	struct fixture f = { 0 };

	SKIP_WITHOUT_MEMCACHED();
	if (!fixture_up(&f, 2))
		return;
	outage(&f);
	fixture_stop(&f);
}

static void full_server(struct fixture *f)
{
	const uint64_t first[1][2] = { { 0, 32 } };
	struct errmsg err = { "" };
	uint64_t page = 0;
	int r = 0;

	/* -m 2 -M holds a few hundred pages, then refuses */
	while (!r && page < RAM_PAGES) {
		const uint64_t batch[1][2] = { { page, 32 } };

		r = put_runs(f->s, batch, 1, 0, &err);
		page += 32;
	}
	CHECK_EQ(r, -ENOSPC);
	CHECK(strstr(err.text, "full") != NULL);
	CHECK(page > 32);
	/* with -M nothing stored before was evicted */
	CHECK_EQ(check_runs(f->s, first, 1, 0, &err), 0);
}

TEST(memcached_store_full_server_is_enospc)
{
	struct fixture f = { 0 };

	SKIP_WITHOUT_MEMCACHED();
	f.srv[0].megabytes = "2";
	f.srv[0].no_evict = true;
	if (!fixture_up(&f, 1))
		return;
	full_server(&f);
	fixture_stop(&f);
}

struct worker {
	struct page_store *s;
	uint64_t first;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct errmsg err;

	for (unsigned gen = 0; gen < 25; gen++) {
		const uint64_t batch[2][2] = {
			{ w->first + gen % 8, 1 + gen % 5 },
			{ w->first + 20, 4 },
		};

		if (put_runs(w->s, batch, 2, gen, &err) ||
		    check_runs(w->s, batch, 2, gen, &err))
			w->failures++;
	}
	return NULL;
}

TEST(memcached_store_concurrent_threads)
{
	struct fixture f = { 0 };
	struct worker w[4];
	pthread_t t[4];

	SKIP_WITHOUT_MEMCACHED();
	if (!fixture_up(&f, 2))
		return;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ f.s, (uint64_t)i * 100, 0 };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	fixture_stop(&f);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(w[i].failures, 0);
}

TEST(memcached_store_rejects_bad_specs)
{
	static const char *const bad[] = {
		"memcached:",
		"memcached:localhost",
		"memcached:localhost:",
		"memcached::11211",
		"memcached:localhost:0",
		"memcached:localhost:65536",
		"memcached:localhost:11x",
		"memcached:a:1,,b:2",
		"memcached:a:1,",
		"memcached:,a:1",
		"memcached:::1:11211",
		"memcached:[]:11211",
		"memcached:a b:1",
		"memcached:a/b:1",
		"memcached:a:1,a:1",
		"memcached:a:1,replicas=2",
	};
	struct page_store_params p =
		params("vm-mc", test_secret, sizeof(test_secret) - 1);
	struct page_store *s = NULL;
	struct errmsg err;
	char many[1024];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text[0] = 0;
		if (page_store_open(bad[i], &p, &s, &err) != -EINVAL) {
			harness_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
			page_store_destroy(s);
			return;
		}
		CHECK(!strncmp(err.text, "memcached: ", 11));
	}
	CHECK(s == NULL);
	len = (size_t)snprintf(many, sizeof(many), "memcached:");
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len,
					"%sh:%d", i ? "," : "", 1000 + i);
	CHECK_EQ(page_store_open(many, &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "at most") != NULL);
	/* these are fine (nothing is contacted at open) */
	CHECK_EQ(page_store_open("memcached:[::1]:11211,10.0.0.2:11211,"
				 "mc-3.rack.example:7000", &p, &s, &err), 0);
	page_store_destroy(s);
	p.ram_pages = 0;
	CHECK_EQ(page_store_open("memcached:a:1", &p, &s, &err), -EINVAL);
}
