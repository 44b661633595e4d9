/* SPDX-License-Identifier: MIT */
/*
 * What the memd tests share (test_memd*.c): servers on 127.0.0.1 running
 * their loops on threads, memd page stores as clients, page runs with
 * contents that name their page and version, and raw sockets for tests
 * of the wire itself.
 */
#ifndef RACKVM_TESTS_MEMD_TEST_UTIL_H
#define RACKVM_TESTS_MEMD_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/memd_proto.h"
#include "remote/memd_server.h"
#include "remote/page_store.h"

#define RAM_PAGES (1u << 16)

struct test_server {
	struct memd_server *s;
	pthread_t thread;
	uint16_t port;
	bool running;
};

/* Starts a server on @port (0: any) with @capacity bytes, or with
 * @cfg's settings (its listen address is replaced by 127.0.0.1:@port). */
int server_start(struct test_server *t, uint16_t port, uint64_t capacity);
int server_start_cfg(struct test_server *t, uint16_t port,
		     struct memd_server_config cfg);
void server_stop(struct test_server *t);
struct memd_stats server_stats(struct test_server *t);

int open_store(const char *spec, const char *ns, const char *secret,
	       struct page_store **out, struct errmsg *err);
/* "memd:127.0.0.1:P1[,127.0.0.1:P2][,replicas=N]" */
void spec_for(char *buf, size_t len, const uint16_t *ports, int n,
	      int replicas);

/* Runs of pages whose contents name the page and a version. */
struct page_run run_alloc(uint64_t first, uint32_t count);
void run_fill(struct page_run *r, uint32_t version);
bool run_holds(const struct page_run *r, uint32_t version);
void run_clear(struct page_run *r);
void run_free(struct page_run *r, size_t n);

void sleep_ms(long ms);

/* Retries @call while it says -EAGAIN (a server that came back is
 * retried at most every 200 ms); bounded, never timed. */
#define RETRY_EAGAIN(call)                                                \
	({                                                                \
		int r_ = (call);                                          \
		for (int i_ = 0; r_ == -EAGAIN && i_ < 100; i_++) {       \
			sleep_ms(50);                                     \
			r_ = (call);                                      \
		}                                                         \
		r_;                                                       \
	})

/* ---- the wire, by hand ---------------------------------------------------- */

/* A blocking TCP connection to 127.0.0.1:@port, from @from (an address
 * of the loopback network, "127.0.0.2" say; NULL: the default); -1. */
int tcp_connect_local(uint16_t port);
int tcp_connect_from(const char *from, uint16_t port);
bool write_all(int fd, const uint8_t *buf, size_t len);
bool recv_all(int fd, uint8_t *buf, size_t len);
/* Reads one reply: header, then its body into @body (at most @cap). */
bool recv_reply(int fd, struct memd_hdr *h, uint8_t *body, size_t cap);
/* Sends one request without a body (STATS, RELEASE) or a HELLO, and
 * returns its reply's status (-1: no reply). */
int wire_empty(int fd, uint8_t op);
int wire_hello(int fd, const char *ns, const char *secret);
/* PUTs pages [@first, @first + @count) of zeros, MEMD_MAX_PAGES at a
 * time; the first status that is not OK, or OK. */
int wire_put(int fd, uint64_t first, uint32_t count);
/* True when the server closed @fd (within @ms). */
bool wire_closed(int fd, int ms);

#endif
