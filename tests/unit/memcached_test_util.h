/* SPDX-License-Identifier: MIT */
/*
 * What the memcached store's tests share (test_store_memcached*.c):
 * memcached processes on free loopback ports, started and killed by the
 * tests themselves, a store opened on them, and pages whose contents and
 * checksums name their page and generation.
 */
#ifndef RACKVM_TESTS_MEMCACHED_TEST_UTIL_H
#define RACKVM_TESTS_MEMCACHED_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "remote/page_store.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define RAM_PAGES 4096
#define MAX_TEST_SERVERS 3

static const uint8_t test_secret[] = "memcached-secret";

struct mc_server {
	pid_t pid;
	unsigned port;
	const char *megabytes;	/* memcached -m */
	bool no_evict;		/* memcached -M */
};

struct fixture {
	struct mc_server srv[MAX_TEST_SERVERS];
	int n;
	char spec[256];
	struct page_store *s;
};

struct page_store_params params(const char *ns, const uint8_t *secret,
				size_t secret_len);
double now_s(void);
void nap_ms(unsigned ms);

/* A memcached on m->port (memory and -M as set in @m); ready to serve
 * when this returns 0. */
int mc_server_start(struct mc_server *m);
void mc_server_stop(struct mc_server *m);
/* Sends a text-protocol command and reads the reply up to @end. */
int mc_command(unsigned port, const void *cmd, size_t len,
	       const char *end, char *reply, size_t reply_len);
long mc_items(unsigned port);
int mc_flush(unsigned port);

/* Starts @n servers (memory and -M as set in f->srv beforehand) and
 * opens a store on them, namespace "vm-mc" with test_secret. */
int fixture_start(struct fixture *f, int n, struct errmsg *err);
void fixture_stop(struct fixture *f);
/* fixture_start() in a test: on failure, stops what started and fails
 * the test with the reason; false then. */
bool fixture_up(struct fixture *f, int n);

bool have_memcached(void);
#define SKIP_WITHOUT_MEMCACHED()                                              \
	do {                                                                  \
		if (!have_memcached())                                        \
			SKIP(MEMCACHED_BIN " is not installed (scripts/install-deps)"); \
	} while (0)

/* Puts @nruns runs given as (first, count) pairs in one batch, their
 * pages of generation @gen. */
int put_runs(struct page_store *s, const uint64_t (*shape)[2],
	     size_t nruns, unsigned gen, struct errmsg *err);
/* Gets the runs in one batch; -EBADMSG if any page or checksum differs
 * from generation @gen. */
int check_runs(struct page_store *s, const uint64_t (*shape)[2],
	       size_t nruns, unsigned gen, struct errmsg *err);
int put_one(struct page_store *s, uint64_t page, unsigned gen,
	    struct errmsg *err);
int check_one(struct page_store *s, uint64_t page, unsigned gen,
	      struct errmsg *err);

#endif
