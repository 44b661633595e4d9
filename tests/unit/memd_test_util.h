/* SPDX-License-Identifier: MIT */
/*
 * What the memd tests share (test_memd*.c): memd servers on 127.0.0.1
 * running their loops on threads, the memd page store as the client,
 * page runs with contents that say which page and version they hold, raw
 * sockets for tests of the wire itself, a TCP proxy that can cut a
 * server off the network, refuse new connections or hold back the
 * replies of the connections it has (memd_test_proxy.c), and a fake
 * memd.
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
/* Replies a client reads before its connection is ready (HELLO's). */
#define HELLO_REPLIES 2

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
/* @n servers of 64 MiB on any port, their ports in @ports; stops those
 * that are running. */
int servers_start(struct test_server *t, int n, uint16_t *ports);
void servers_stop(struct test_server *t, int n);
struct memd_stats server_stats(struct test_server *t);

/* @n servers, a store "vm1" (secret "s") on them with @replicas (and
 * @extra in the spec), @r filled with version 1 and put. */
int open_with_pages(struct test_server *srv, int n, uint16_t *ports,
		    int replicas, const char *extra, struct page_store **st,
		    struct page_run *r);
/* A store of RAM_PAGES pages. */
int open_store(const char *spec, const char *ns, const char *secret,
	       struct page_store **out, struct errmsg *err);
/* "memd:127.0.0.1:P1[,127.0.0.1:P2...][,replicas=N]" then @extra
 * (",min_replicas=K", or "") */
void spec_for(char *buf, size_t len, const uint16_t *ports, int n,
	      int replicas, const char *extra);

/* Runs whose pages hold a content distinct per page and version. */
struct page_run run_alloc(uint64_t first, uint32_t count);
/* Fills the pages with version @version's contents and sets their
 * generations to @version: the next put seals them in place (fill again
 * before putting again), a get expects that version. */
void run_fill(struct page_run *r, uint32_t version);
void run_set_gen(struct page_run *r, uint32_t gen);
/* run_fill() then page_store_put(): a put that can be retried. */
int put_version(struct page_store *st, struct page_run *r, uint32_t version,
		struct errmsg *err);
bool run_holds(const struct page_run *r, uint32_t version);
void run_clear(struct page_run *r);
/* Gets @r from @st (cleared first): true if it holds @version. */
bool get_holds(struct page_store *st, struct page_run *r, uint32_t version);
void run_free(struct page_run *r, size_t n);
/* The store's pages under-replicated, and lost (its stats). */
uint64_t short_of(struct page_store *st);
uint64_t lost_of(struct page_store *st);

void sleep_ms(long ms);

/* Retries @call while it says -EAGAIN (a server that came back is
 * retried every few hundred ms); bounded, never timed. */
#define RETRY_EAGAIN(call)                                                \
	({                                                                \
		int r_ = (call);                                          \
		for (int i_ = 0; r_ == -EAGAIN && i_ < 100; i_++) {       \
			sleep_ms(50);                                     \
			r_ = (call);                                      \
		}                                                         \
		r_;                                                       \
	})

/* ---- sockets --------------------------------------------------------------- */

int tcp_listen(uint16_t port, uint16_t *bound);
/* A blocking TCP connection to 127.0.0.1:@port, from @from (an address
 * of the loopback network, "127.0.0.2" say; NULL: the default); -1. */
int tcp_connect_local(uint16_t port);
int tcp_connect_from(const char *from, uint16_t port);
bool write_all(int fd, const uint8_t *buf, size_t len);
bool recv_all(int fd, uint8_t *buf, size_t len);
/* Reads one reply: header, then its body into @body (at most @cap). */
bool recv_reply(int fd, struct memd_hdr *h, uint8_t *body, size_t cap);
/*
 * The client's handshake by hand on @fd for namespace @name and @secret
 * (ids 1 and 2): the step 2 status, or -1 if the exchange broke or the
 * server's proof is wrong; *@created (may be NULL) from the reply.  The
 * step 1 status when it is not OK.
 */
int wire_hello(int fd, const char *name, const char *secret, bool *created);
/* Sends one request without a body (STATS, RELEASE) and returns its
 * reply's status (-1: no reply). */
int wire_empty(int fd, uint8_t op);
/* PUTs pages [@first, @first + @count) of zeros, MEMD_MAX_PAGES at a
 * time; the first status that is not OK, or OK. */
int wire_put(int fd, uint64_t first, uint32_t count);
/* One page's record (MEMD_RECORD bytes: tag, then data) as the server
 * holds it, read or written raw, as a hostile server (or anyone with the
 * namespace secret) could; the reply's status, -1 on a socket error. */
int wire_get_record(int fd, uint64_t page, uint8_t *record);
int wire_put_record(int fd, uint64_t page, const uint8_t *record);
/* True when the server closed @fd (within @ms). */
bool wire_closed(int fd, int ms);

/* ---- a TCP proxy in front of one server -------------------------------------- */

#define PROXY_MAX_PAIRS 32

/* How far a pair's replies went: whole messages, and the one under way. */
struct proxy_count {
	unsigned hold_after;		/* 0, or hold after so many replies */
	unsigned replies;
	uint8_t hdr[MEMD_HDR_SIZE];
	size_t hdr_got, body_left;
};

struct proxy {
	uint16_t port, backend_port;
	int listen_fd, wake_fd;
	/* written by the proxy thread under the lock, read by it without */
	int pairs[PROXY_MAX_PAIRS][2];	/* client, backend; -1 unused */
	bool held[PROXY_MAX_PAIRS];	/* replies not forwarded */
	struct proxy_count count[PROXY_MAX_PAIRS];
	pthread_t thread;
	pthread_mutex_t lock;		/* the requests below, and applied */
	bool cut, quit, refuse, hold;
	unsigned hold_new_after;
	unsigned hold_seq, hold_applied;
	uint8_t *tap;			/* the first PROXY_TAP bytes clients sent */
	size_t tap_len;
};

#define PROXY_TAP (1u << 16)

int proxy_start(struct proxy *p, uint16_t backend_port);
/* Cuts (or restores) the network: every connection closed, nothing
 * accepted; waits until it is done. */
void proxy_set_cut(struct proxy *p, bool cut);
/* New connections are accepted and closed at once (or not any more). */
void proxy_set_refuse(struct proxy *p, bool refuse);
/* The replies of the connections open now stay in the proxy (or go on
 * again, for all of them); waits until it is done. */
void proxy_set_hold(struct proxy *p, bool hold);
/* Connections accepted from now on forward @replies replies, then hold
 * the next ones (0: no more). */
void proxy_hold_new_after(struct proxy *p, unsigned replies);
/* How many held connections have a reply waiting in the proxy. */
unsigned proxy_replies_waiting(struct proxy *p);
void proxy_stop(struct proxy *p);

/* ---- a fake memd ------------------------------------------------------------ */

#define FAKE_MAX_CONNS 16

/*
 * Says HELLO as a real server of namespace @name with secret @secret
 * would (it knows the namespace already) and answers every other request
 * with @status (BAD_SECRET, BAD_REQUEST, ...): a server that went wrong;
 * or, with the wrong secret, a server that is not ours.
 */
struct fake_server {
	uint16_t port;
	uint8_t status;
	char name[MEMD_NAME_MAX + 1];
	uint8_t key[MEMD_KEY_SIZE];
	uint8_t identity[MEMD_ID_SIZE];
	int listen_fd, wake_fd;
	int fds[FAKE_MAX_CONNS];
	uint8_t *in[FAKE_MAX_CONNS];
	size_t in_len[FAKE_MAX_CONNS];
	uint8_t client_nonce[FAKE_MAX_CONNS][MEMD_NONCE_SIZE];
	uint8_t server_nonce[FAKE_MAX_CONNS][MEMD_NONCE_SIZE];
	pthread_t thread;
	_Atomic bool old_version;	/* HELLO: BAD_REQUEST, as a memd 1 */
	_Atomic unsigned answered;	/* requests other than HELLO */
};

int fake_start(struct fake_server *f, uint16_t port, uint8_t status,
	       const char *name, const char *secret);
/* Takes @srv's place at its address, with its identity: to clients, the
 * same server gone wrong.  Stops @srv. */
int fake_replace(struct fake_server *f, struct test_server *srv,
		 uint8_t status, const char *name, const char *secret);
void fake_stop(struct fake_server *f);

#endif
