// SPDX-License-Identifier: MIT
/* What the memd tests share, see memd_test_util.h. */
#include "memd_test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- servers and stores ------------------------------------------------------ */

static void *server_loop(void *arg)
{
	struct test_server *t = arg;

	memd_server_run(t->s, NULL);
	return NULL;
}

int server_start(struct test_server *t, uint16_t port, uint64_t capacity)
{
	return server_start_cfg(t, port,
				(struct memd_server_config){ .capacity = capacity });
}

int server_start_cfg(struct test_server *t, uint16_t port,
		     struct memd_server_config cfg)
{
	char listen[32];
	int ret;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	cfg.listen = listen;
	ret = memd_server_create(&cfg, &t->s, NULL);
	if (ret)
		return ret;
	t->port = memd_server_port(t->s);
	ret = pthread_create(&t->thread, NULL, server_loop, t);
	if (ret) {
		memd_server_destroy(t->s);
		return -ret;
	}
	t->running = true;
	return 0;
}

void server_stop(struct test_server *t)
{
	if (!t->running)
		return;
	memd_server_stop(t->s);
	pthread_join(t->thread, NULL);
	memd_server_destroy(t->s);
	t->running = false;
}

int servers_start(struct test_server *t, int n, uint16_t *ports)
{
	for (int i = 0; i < n; i++) {
		int ret = server_start(&t[i], 0, 64ull << 20);

		if (ret)
			return ret;
		ports[i] = t[i].port;
	}
	return 0;
}

void servers_stop(struct test_server *t, int n)
{
	for (int i = 0; i < n; i++)
		server_stop(&t[i]);
}

struct memd_stats server_stats(struct test_server *t)
{
	struct memd_stats st;

	memd_server_stats(t->s, &st);
	return st;
}

int open_store(const char *spec, const char *ns, const char *secret,
	       struct page_store **out, struct errmsg *err)
{
	struct page_store_params p = {
		.namespace_name = ns,
		.secret = (const uint8_t *)secret,
		.secret_len = strlen(secret),
		.ram_pages = RAM_PAGES,
	};

	return page_store_open(spec, &p, out, err);
}

void spec_for(char *buf, size_t len, const uint16_t *ports, int n,
	      int replicas, const char *extra)
{
	int used = snprintf(buf, len, "memd:");

	for (int i = 0; i < n; i++)
		used += snprintf(buf + used, len - (size_t)used, "%s127.0.0.1:%u",
				 i ? "," : "", ports[i]);
	if (replicas)
		used += snprintf(buf + used, len - (size_t)used, ",replicas=%d",
				 replicas);
	snprintf(buf + used, len - (size_t)used, "%s", extra ? extra : "");
}

int open_with_pages(struct test_server *srv, int n, uint16_t *ports,
		    int replicas, const char *extra, struct page_store **st,
		    struct page_run *r)
{
	char spec[256];
	int ret = servers_start(srv, n, ports);

	if (ret)
		return ret;
	spec_for(spec, sizeof(spec), ports, n, replicas, extra);
	ret = open_store(spec, "vm1", "s", st, NULL);
	if (ret)
		return ret;
	run_fill(r, 1);
	return page_store_put(*st, r, 1, NULL);
}

/* ---- page runs ----------------------------------------------------------------- */

/* A page's contents for a version: distinct per page and version. */
static void fill_page(uint8_t *p, uint64_t page, uint32_t version)
{
	uint64_t x = page * 0x9e3779b97f4a7c15ull + version + 1;

	for (size_t i = 0; i < PAGE_STORE_PAGE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

struct page_run run_alloc(uint64_t first, uint32_t count)
{
	struct page_run r = { .first = first, .count = count };

	r.data = calloc(count, PAGE_STORE_PAGE);
	r.tags = calloc(count, PAGE_TAG_SIZE);
	r.gens = calloc(count, sizeof(uint32_t));
	return r;
}

void run_set_gen(struct page_run *r, uint32_t gen)
{
	for (uint32_t i = 0; i < r->count; i++)
		((uint32_t *)r->gens)[i] = gen;
}

void run_fill(struct page_run *r, uint32_t version)
{
	for (uint32_t i = 0; i < r->count; i++)
		fill_page(r->data + (size_t)i * PAGE_STORE_PAGE, r->first + i,
			  version);
	run_set_gen(r, version);
}

int put_version(struct page_store *st, struct page_run *r, uint32_t version,
		struct errmsg *err)
{
	run_fill(r, version);
	return page_store_put(st, r, 1, err);
}

bool run_holds(const struct page_run *r, uint32_t version)
{
	uint8_t want[PAGE_STORE_PAGE];

	for (uint32_t i = 0; i < r->count; i++) {
		fill_page(want, r->first + i, version);
		if (memcmp(want, r->data + (size_t)i * PAGE_STORE_PAGE, sizeof(want)))
			return false;
	}
	return true;
}

void run_clear(struct page_run *r)
{
	memset(r->data, 0, (size_t)r->count * PAGE_STORE_PAGE);
	memset(r->tags, 0, (size_t)r->count * PAGE_TAG_SIZE);
}

bool get_holds(struct page_store *st, struct page_run *r, uint32_t version)
{
	run_clear(r);
	run_set_gen(r, version);
	return page_store_get(st, r, 1, NULL) == 0 && run_holds(r, version);
}

uint64_t short_of(struct page_store *st)
{
	struct page_store_stats ss;

	page_store_stats(st, &ss);
	return ss.under_replicated;
}

uint64_t lost_of(struct page_store *st)
{
	struct page_store_stats ss;

	page_store_stats(st, &ss);
	return ss.lost;
}

void run_free(struct page_run *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].data);
		free(r[i].tags);
		free((uint32_t *)r[i].gens);
	}
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- sockets --------------------------------------------------------------- */

int tcp_listen(uint16_t port, uint16_t *bound)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&a, &len);
	*bound = ntohs(a.sin_port);
	return fd;
}

int tcp_connect_from(const char *from, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if ((from && (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
		      bind(fd, (struct sockaddr *)&src, sizeof(src)))) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int tcp_connect_local(uint16_t port)
{
	return tcp_connect_from(NULL, port);
}

bool write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

bool recv_all(int fd, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

bool recv_reply(int fd, struct memd_hdr *h, uint8_t *body, size_t cap)
{
	uint8_t hdr[MEMD_HDR_SIZE];

	return recv_all(fd, hdr, sizeof(hdr)) && !memd_hdr_decode(hdr, h) &&
	       h->body_len <= cap && recv_all(fd, body, h->body_len);
}

int wire_hello(int fd, const char *name, const char *secret, bool *created)
{
	uint8_t msg[MEMD_HELLO_MAX], body[MEMD_CHALLENGE_SIZE];
	uint8_t key[MEMD_KEY_SIZE], v[MEMD_KEY_SIZE], proof[MEMD_KEY_SIZE];
	uint8_t nonce[MEMD_NONCE_SIZE], sealed[MEMD_SEALED_SIZE];
	struct memd_challenge ch;
	struct memd_welcome w;
	struct memd_transcript t;
	struct memd_hdr h;
	int len;

	if (sodium_init() < 0)
		return -1;
	randombytes_buf(nonce, sizeof(nonce));
	len = memd_encode_hello1(msg, 1, name, nonce);
	if (len < 0 || !write_all(fd, msg, (size_t)len) ||
	    !recv_reply(fd, &h, body, sizeof(body)))
		return -1;
	if (h.status != MEMD_ST_OK)
		return h.status;
	if (memd_decode_challenge(body, h.body_len, &ch))
		return -1;
	memd_derive_key(key, name, strlen(name), (const uint8_t *)secret,
			strlen(secret));
	memd_derive_verifier(v, key, ch.identity);
	t = (struct memd_transcript){ ch.identity, nonce, ch.nonce, name,
				      strlen(name) };
	memd_proof(proof, v, false, &t, ch.known ? 0 : MEMD_HELLO_CREATE);
	if (!ch.known)
		crypto_box_seal(sealed, v, sizeof(v), ch.seal_pk);
	len = (int)memd_encode_hello2(msg, 2, proof, ch.known ? NULL : sealed);
	if (!write_all(fd, msg, (size_t)len) || !recv_reply(fd, &h, body, sizeof(body)))
		return -1;
	if (h.status != MEMD_ST_OK)
		return h.status;
	if (memd_decode_welcome(body, h.body_len, &w))
		return -1;
	memd_proof(proof, v, true, &t, w.created ? MEMD_HELLO_CREATED : 0);
	if (memcmp(proof, w.proof, sizeof(proof)))
		return -1;
	if (created)
		*created = w.created;
	return MEMD_ST_OK;
}

int wire_empty(int fd, uint8_t op)
{
	uint8_t msg[MEMD_HDR_SIZE], body[MEMD_STATS_SIZE];
	struct memd_hdr h = { .op = op, .id = 1 };

	memd_hdr_encode(&h, msg);
	if (!write_all(fd, msg, sizeof(msg)) ||
	    !recv_reply(fd, &h, body, sizeof(body)))
		return -1;
	return h.status;
}

int wire_put(int fd, uint64_t first, uint32_t count)
{
	static uint8_t msg[MEMD_MAX_MSG], zeros[MEMD_MAX_PAGES * PAGE_STORE_PAGE];
	static uint8_t tags[MEMD_MAX_PAGES * MEMD_TAG_SIZE];

	for (uint32_t done = 0; done < count; done += MEMD_MAX_PAGES) {
		struct page_run r = { .first = first + done, .data = zeros,
				      .tags = tags };
		struct memd_hdr h;
		size_t len;

		r.count = count - done < MEMD_MAX_PAGES ? count - done :
							  MEMD_MAX_PAGES;
		len = memd_encode_runs(msg, MEMD_OP_PUT, 2, &r, 1);
		if (!write_all(fd, msg, len) || !recv_reply(fd, &h, msg, sizeof(msg)))
			return -1;
		if (h.status != MEMD_ST_OK)
			return h.status;
	}
	return MEMD_ST_OK;
}

int wire_get_record(int fd, uint64_t page, uint8_t *record)
{
	static uint8_t msg[MEMD_HDR_SIZE + MEMD_RECORD];
	struct page_run r = { .first = page, .count = 1 };
	struct memd_hdr h;
	size_t len = memd_encode_runs(msg, MEMD_OP_GET, 3, &r, 1);

	if (!write_all(fd, msg, len) || !recv_reply(fd, &h, msg, sizeof(msg)))
		return -1;
	if (h.status == MEMD_ST_OK && h.body_len == MEMD_RECORD)
		memcpy(record, msg, MEMD_RECORD);
	return h.status;
}

int wire_put_record(int fd, uint64_t page, const uint8_t *record)
{
	static uint8_t msg[MEMD_HDR_SIZE + 4 + 16 + MEMD_RECORD], data[PAGE_STORE_PAGE];
	uint8_t tag[MEMD_TAG_SIZE];
	struct page_run r = { .first = page, .count = 1, .data = data, .tags = tag };
	struct memd_hdr h;
	size_t len;

	memcpy(tag, memd_record_tag(record), MEMD_TAG_SIZE);
	memcpy(data, memd_record_data(record), PAGE_STORE_PAGE);
	len = memd_encode_runs(msg, MEMD_OP_PUT, 4, &r, 1);
	if (!write_all(fd, msg, len) || !recv_reply(fd, &h, msg, sizeof(msg)))
		return -1;
	return h.status;
}

bool wire_closed(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t byte;

	return poll(&p, 1, ms) == 1 && recv(fd, &byte, 1, 0) <= 0;
}
