// SPDX-License-Identifier: MIT
/* The memd tests' proxy and fake server, see memd_test_util.h. */
#include "memd_test_util.h"

#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the proxy --------------------------------------------------------------- */

/* Under the lock. */
static void proxy_close_pair(struct proxy *p, int i)
{
	for (int k = 0; k < 2; k++)
		if (p->pairs[i][k] >= 0)
			close(p->pairs[i][k]);
	p->pairs[i][0] = p->pairs[i][1] = -1;
	p->held[i] = false;
	memset(&p->count[i], 0, sizeof(p->count[i]));
}

static void proxy_close_all(struct proxy *p)
{
	for (int i = 0; i < PROXY_MAX_PAIRS; i++)
		proxy_close_pair(p, i);
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
		for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
			p->held[i] = p->hold && p->pairs[i][0] >= 0;
			if (!p->hold)
				p->count[i].hold_after = 0;
		}
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
	pthread_mutex_lock(&p->lock);
	p->pairs[slot][0] = c;
	p->pairs[slot][1] = b;
	p->held[slot] = false;
	memset(&p->count[slot], 0, sizeof(p->count[slot]));
	p->count[slot].hold_after = p->hold_new_after;
	pthread_mutex_unlock(&p->lock);
}

/* Counts the replies in @len bytes going to the client of pair @i. */
static void proxy_count_replies(struct proxy *p, int i, const uint8_t *buf,
				size_t len)
{
	struct proxy_count *n = &p->count[i];

	while (len) {
		size_t take;

		if (n->body_left) {
			take = n->body_left < len ? n->body_left : len;
			n->body_left -= take;
			n->replies += !n->body_left;
		} else {
			struct memd_hdr h;

			take = MEMD_HDR_SIZE - n->hdr_got < len ?
			       MEMD_HDR_SIZE - n->hdr_got : len;
			memcpy(n->hdr + n->hdr_got, buf, take);
			n->hdr_got += take;
			if (n->hdr_got == MEMD_HDR_SIZE) {
				memd_hdr_decode(n->hdr, &h);
				n->hdr_got = 0;
				n->body_left = h.body_len;
				n->replies += !n->body_left;
			}
		}
		buf += take;
		len -= take;
	}
	if (n->hold_after && n->replies >= n->hold_after) {
		pthread_mutex_lock(&p->lock);
		p->held[i] = true;
		n->hold_after = 0;
		pthread_mutex_unlock(&p->lock);
	}
}

static void proxy_tap(struct proxy *p, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&p->lock);
	if (len > PROXY_TAP - p->tap_len)
		len = PROXY_TAP - p->tap_len;
	memcpy(p->tap + p->tap_len, buf, len);
	p->tap_len += len;
	pthread_mutex_unlock(&p->lock);
}

static void *proxy_main(void *arg)
{
	/* one per proxy thread: tests run several proxies at once */
	uint8_t buf[1 << 16];
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
				if (got > 0 &&
				    write_all(p->pairs[i][!k], buf, (size_t)got)) {
					if (k == 1)
						proxy_count_replies(p, i, buf,
								    (size_t)got);
					else
						proxy_tap(p, buf, (size_t)got);
					continue;
				}
				pthread_mutex_lock(&p->lock);
				proxy_close_pair(p, i);
				pthread_mutex_unlock(&p->lock);
			}
		}
	}
	pthread_mutex_lock(&p->lock);
	proxy_close_all(p);
	pthread_mutex_unlock(&p->lock);
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
	p->tap = malloc(PROXY_TAP);
	pthread_mutex_init(&p->lock, NULL);
	if (p->listen_fd < 0 || p->wake_fd < 0 || !p->tap)
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

void proxy_hold_new_after(struct proxy *p, unsigned replies)
{
	pthread_mutex_lock(&p->lock);
	p->hold_new_after = replies;
	pthread_mutex_unlock(&p->lock);
}

unsigned proxy_replies_waiting(struct proxy *p)
{
	unsigned n = 0;

	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
		struct pollfd pfd = { .fd = p->pairs[i][1], .events = POLLIN };

		if (p->pairs[i][1] >= 0 && p->held[i] && poll(&pfd, 1, 0) == 1)
			n++;
	}
	pthread_mutex_unlock(&p->lock);
	return n;
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
	free(p->tap);
}

/* ---- the fake memd -------------------------------------------------------- */

/* The HELLO steps of connection @i, as a server that knows the
 * namespace; the reply body into @body, its length returned. */
static uint32_t fake_hello(struct fake_server *f, int i, const uint8_t *req,
			   uint32_t len, uint8_t *body)
{
	struct memd_transcript t = {
		f->identity, f->client_nonce[i], f->server_nonce[i], f->name,
		strlen(f->name),
	};
	uint8_t v[MEMD_KEY_SIZE];

	if (len >= 4 + MEMD_NONCE_SIZE && req[2] == 1) {
		struct memd_challenge ch = { .known = true };

		memcpy(f->client_nonce[i], req + 4, MEMD_NONCE_SIZE);
		randombytes_buf(f->server_nonce[i], MEMD_NONCE_SIZE);
		memcpy(ch.identity, f->identity, MEMD_ID_SIZE);
		memcpy(ch.nonce, f->server_nonce[i], MEMD_NONCE_SIZE);
		memd_encode_challenge(body, &ch);
		return MEMD_CHALLENGE_SIZE;
	} else {
		struct memd_welcome w = { .created = false };

		memd_derive_verifier(v, f->key, f->identity);
		memd_proof(w.proof, v, true, &t, 0);
		memd_encode_welcome(body, &w);
		return MEMD_WELCOME_SIZE;
	}
}

/* The reply to one request; false closes the connection. */
static bool fake_answer(struct fake_server *f, int i, const struct memd_hdr *h,
			const uint8_t *req)
{
	struct memd_hdr r = { .op = h->op, .id = h->id, .status = f->status };
	uint8_t out[MEMD_HDR_SIZE + MEMD_CHALLENGE_SIZE];

	if (h->op == MEMD_OP_HELLO && f->old_version) {
		r.status = MEMD_ST_BAD_REQUEST;
	} else if (h->op == MEMD_OP_HELLO) {
		r.status = MEMD_ST_OK;
		r.body_len = fake_hello(f, i, req, h->body_len, out + MEMD_HDR_SIZE);
	} else {
		f->answered++;
	}
	memd_hdr_encode(&r, out);
	return write_all(f->fds[i], out, MEMD_HDR_SIZE + r.body_len);
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
		if (!fake_answer(f, i, &h, f->in[i] + pos + MEMD_HDR_SIZE))
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

/* With @identity, or a new one if NULL. */
static int fake_run(struct fake_server *f, uint16_t port, uint8_t status,
		    const char *name, const char *secret,
		    const uint8_t *identity)
{
	memset(f, 0, sizeof(*f));
	f->status = status;
	if (sodium_init() < 0)
		return -1;
	snprintf(f->name, sizeof(f->name), "%s", name);
	memd_derive_key(f->key, name, strlen(name), (const uint8_t *)secret,
			strlen(secret));
	if (identity)
		memcpy(f->identity, identity, MEMD_ID_SIZE);
	else
		randombytes_buf(f->identity, sizeof(f->identity));
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		f->fds[i] = -1;
	f->listen_fd = tcp_listen(port, &f->port);
	f->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (f->listen_fd < 0 || f->wake_fd < 0)
		return -1;
	return pthread_create(&f->thread, NULL, fake_main, f) ? -1 : 0;
}

int fake_replace(struct fake_server *f, struct test_server *srv,
		 uint8_t status, const char *name, const char *secret)
{
	uint8_t identity[MEMD_ID_SIZE];
	uint16_t port = srv->port;

	memd_server_identity(srv->s, identity);
	server_stop(srv);
	return fake_run(f, port, status, name, secret, identity);
}

int fake_start(struct fake_server *f, uint16_t port, uint8_t status,
	       const char *name, const char *secret)
{
	return fake_run(f, port, status, name, secret, NULL);
}

void fake_stop(struct fake_server *f)
{
	uint64_t one = 1;

	if (write(f->wake_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(f->thread, NULL);
	close(f->wake_fd);
	close(f->listen_fd);
}
