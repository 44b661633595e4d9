// SPDX-License-Identifier: MIT
/* What the memd tests share, see memd_test_util.h. */
#include "memd_test_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
	struct memd_server_config cfg = { .capacity = capacity };
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
	r.sums = calloc(count, sizeof(uint64_t));
	return r;
}

void run_fill(struct page_run *r, uint32_t version)
{
	for (uint32_t i = 0; i < r->count; i++) {
		uint8_t *p = r->data + (size_t)i * PAGE_STORE_PAGE;

		fill_page(p, r->first + i, version);
		r->sums[i] = page_checksum(r->first + i, p);
	}
}

bool run_holds(const struct page_run *r, uint32_t version)
{
	uint8_t want[PAGE_STORE_PAGE];

	for (uint32_t i = 0; i < r->count; i++) {
		fill_page(want, r->first + i, version);
		if (memcmp(want, r->data + (size_t)i * PAGE_STORE_PAGE, sizeof(want)) ||
		    r->sums[i] != page_checksum(r->first + i, want))
			return false;
	}
	return true;
}

void run_clear(struct page_run *r)
{
	memset(r->data, 0, (size_t)r->count * PAGE_STORE_PAGE);
	memset(r->sums, 0, r->count * sizeof(uint64_t));
}

void run_free(struct page_run *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].data);
		free(r[i].sums);
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

int tcp_connect_local(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
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

/* ---- the proxy --------------------------------------------------------------- */

static void proxy_close_all(struct proxy *p)
{
	for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
		for (int k = 0; k < 2; k++)
			if (p->pairs[i][k] >= 0)
				close(p->pairs[i][k]);
		p->pairs[i][0] = p->pairs[i][1] = -1;
		p->held[i] = false;
	}
}

static void proxy_close_pair(struct proxy *p, int i)
{
	close(p->pairs[i][0]);
	close(p->pairs[i][1]);
	p->pairs[i][0] = p->pairs[i][1] = -1;
	p->held[i] = false;
}

/* The test thread's requests, under the lock; false: quit. */
static bool proxy_apply(struct proxy *p)
{
	bool go_on;

	pthread_mutex_lock(&p->lock);
	go_on = !p->quit;
	if (p->cut && p->listen_fd >= 0) {
		close(p->listen_fd);
		p->listen_fd = -1;
		proxy_close_all(p);
	} else if (!p->cut && p->listen_fd < 0) {
		p->listen_fd = tcp_listen(p->port, &p->port);
	}
	if (p->hold_applied != p->hold_seq) {
		for (int i = 0; i < PROXY_MAX_PAIRS; i++)
			p->held[i] = p->hold && p->pairs[i][0] >= 0;
		p->hold_applied = p->hold_seq;
	}
	pthread_mutex_unlock(&p->lock);
	return go_on;
}

static void proxy_accept(struct proxy *p)
{
	int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int b, slot = 0;
	bool refuse;

	if (c < 0)
		return;
	pthread_mutex_lock(&p->lock);
	refuse = p->refuse;
	pthread_mutex_unlock(&p->lock);
	b = refuse ? -1 : tcp_connect_local(p->backend_port);
	while (slot < PROXY_MAX_PAIRS && p->pairs[slot][0] >= 0)
		slot++;
	if (b < 0 || slot == PROXY_MAX_PAIRS) {
		close(c);
		if (b >= 0)
			close(b);
		return;
	}
	p->pairs[slot][0] = c;
	p->pairs[slot][1] = b;
	p->held[slot] = false;
}

static void *proxy_main(void *arg)
{
	static uint8_t buf[1 << 16];
	struct proxy *p = arg;

	while (proxy_apply(p)) {
		struct pollfd pfd[2 + 2 * PROXY_MAX_PAIRS];
		int n = 0, who[2 + 2 * PROXY_MAX_PAIRS];

		pfd[n] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
		who[n++] = -1;
		if (p->listen_fd >= 0) {
			pfd[n] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
			who[n++] = -2;
		}
		for (int i = 0; i < PROXY_MAX_PAIRS; i++)
			for (int k = 0; k < 2 && p->pairs[i][0] >= 0; k++) {
				if (k == 1 && p->held[i])
					continue;	/* its replies wait */
				pfd[n] = (struct pollfd){ .fd = p->pairs[i][k],
							  .events = POLLIN };
				who[n++] = i * 2 + k;
			}
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		for (int j = 0; j < n; j++) {
			int i = who[j] / 2, k = who[j] % 2;
			uint64_t v;
			ssize_t got;

			if (!pfd[j].revents)
				continue;
			if (who[j] == -1) {
				if (read(p->wake_fd, &v, sizeof(v)) < 0)
					continue;
			} else if (who[j] == -2) {
				proxy_accept(p);
			} else if (p->pairs[i][k] >= 0) {
				got = read(p->pairs[i][k], buf, sizeof(buf));
				if (got <= 0 ||
				    !write_all(p->pairs[i][!k], buf, (size_t)got))
					proxy_close_pair(p, i);
			}
		}
	}
	proxy_close_all(p);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	return NULL;
}

int proxy_start(struct proxy *p, uint16_t backend_port)
{
	memset(p, 0, sizeof(*p));
	p->backend_port = backend_port;
	for (int i = 0; i < PROXY_MAX_PAIRS; i++)
		p->pairs[i][0] = p->pairs[i][1] = -1;
	p->listen_fd = tcp_listen(0, &p->port);
	p->wake_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&p->lock, NULL);
	if (p->listen_fd < 0 || p->wake_fd < 0)
		return -1;
	return pthread_create(&p->thread, NULL, proxy_main, p) ? -1 : 0;
}

static void proxy_wake(struct proxy *p)
{
	uint64_t one = 1;

	if (write(p->wake_fd, &one, sizeof(one)) < 0)
		return;
}

void proxy_set_cut(struct proxy *p, bool cut)
{
	pthread_mutex_lock(&p->lock);
	p->cut = cut;
	pthread_mutex_unlock(&p->lock);
	proxy_wake(p);
	for (int i = 0; i < 200; i++) {
		bool done;

		pthread_mutex_lock(&p->lock);
		done = cut ? p->listen_fd < 0 : p->listen_fd >= 0;
		pthread_mutex_unlock(&p->lock);
		if (done)
			return;
		sleep_ms(10);
	}
}

void proxy_set_refuse(struct proxy *p, bool refuse)
{
	pthread_mutex_lock(&p->lock);
	p->refuse = refuse;
	pthread_mutex_unlock(&p->lock);
}

void proxy_set_hold(struct proxy *p, bool hold)
{
	pthread_mutex_lock(&p->lock);
	p->hold = hold;
	p->hold_seq++;
	pthread_mutex_unlock(&p->lock);
	proxy_wake(p);
	for (int i = 0; i < 200; i++) {
		bool done;

		pthread_mutex_lock(&p->lock);
		done = p->hold_applied == p->hold_seq;
		pthread_mutex_unlock(&p->lock);
		if (done)
			return;
		sleep_ms(10);
	}
}

void proxy_stop(struct proxy *p)
{
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_mutex_unlock(&p->lock);
	proxy_wake(p);
	pthread_join(p->thread, NULL);
	close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
}

/* ---- the fake memd -------------------------------------------------------- */

/* The reply to one request; false closes the connection. */
static bool fake_answer(struct fake_server *f, int fd, const struct memd_hdr *h)
{
	struct memd_hdr r = { .op = h->op, .id = h->id, .status = f->status };
	uint8_t out[MEMD_HDR_SIZE];

	if (h->op == MEMD_OP_HELLO)
		r.status = MEMD_ST_OK;
	else
		f->answered++;
	memd_hdr_encode(&r, out);
	return write_all(fd, out, sizeof(out));
}

/* Reads what @i sent and answers its complete requests. */
static bool fake_serve(struct fake_server *f, int i)
{
	ssize_t n = read(f->fds[i], f->in[i] + f->in_len[i],
			 MEMD_MAX_MSG - f->in_len[i]);
	size_t pos = 0;

	if (n <= 0)
		return false;
	f->in_len[i] += (size_t)n;
	while (f->in_len[i] - pos >= MEMD_HDR_SIZE) {
		struct memd_hdr h;

		if (memd_hdr_decode(f->in[i] + pos, &h))
			return false;
		if (f->in_len[i] - pos - MEMD_HDR_SIZE < h.body_len)
			break;
		if (!fake_answer(f, f->fds[i], &h))
			return false;
		pos += MEMD_HDR_SIZE + h.body_len;
	}
	memmove(f->in[i], f->in[i] + pos, f->in_len[i] - pos);
	f->in_len[i] -= pos;
	return true;
}

static void fake_close(struct fake_server *f, int i)
{
	close(f->fds[i]);
	free(f->in[i]);
	f->fds[i] = -1;
	f->in[i] = NULL;
	f->in_len[i] = 0;
}

static void *fake_main(void *arg)
{
	struct fake_server *f = arg;

	for (;;) {
		struct pollfd pfd[2 + FAKE_MAX_CONNS];
		int who[2 + FAKE_MAX_CONNS], n = 0;

		pfd[n] = (struct pollfd){ .fd = f->wake_fd, .events = POLLIN };
		who[n++] = -1;
		pfd[n] = (struct pollfd){ .fd = f->listen_fd, .events = POLLIN };
		who[n++] = -2;
		for (int i = 0; i < FAKE_MAX_CONNS; i++)
			if (f->fds[i] >= 0) {
				pfd[n] = (struct pollfd){ .fd = f->fds[i],
							  .events = POLLIN };
				who[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, -1) < 0)
			continue;
		if (pfd[0].revents)
			break;
		for (int j = 1; j < n; j++) {
			if (!pfd[j].revents)
				continue;
			if (who[j] == -2) {
				int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				int i = 0;

				while (i < FAKE_MAX_CONNS && f->fds[i] >= 0)
					i++;
				if (fd >= 0 && i < FAKE_MAX_CONNS &&
				    (f->in[i] = malloc(MEMD_MAX_MSG))) {
					f->fds[i] = fd;
					f->in_len[i] = 0;
				} else if (fd >= 0) {
					close(fd);
				}
			} else if (!fake_serve(f, who[j])) {
				fake_close(f, who[j]);
			}
		}
	}
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		if (f->fds[i] >= 0)
			fake_close(f, i);
	return NULL;
}

int fake_start(struct fake_server *f, uint16_t port, uint8_t status)
{
	memset(f, 0, sizeof(*f));
	f->status = status;
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		f->fds[i] = -1;
	f->listen_fd = tcp_listen(port, &f->port);
	f->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (f->listen_fd < 0 || f->wake_fd < 0)
		return -1;
	return pthread_create(&f->thread, NULL, fake_main, f) ? -1 : 0;
}

void fake_stop(struct fake_server *f)
{
	uint64_t one = 1;

	if (write(f->wake_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(f->thread, NULL);
	close(f->wake_fd);
	close(f->listen_fd);
}
