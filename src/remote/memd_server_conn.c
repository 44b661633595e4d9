// SPDX-License-Identifier: MIT
/*
 * The memd server's protocol side (see memd_server_internal.h): its
 * connections' buffers, cutting the stream into requests, running each
 * (the pages are the storage code's business) and queueing its reply,
 * and flushing the replies as the socket takes them.  Which connections
 * exist, and until when, is memd_server_accept.c's.
 *
 * A connection's requests are answered in order.  Its reads stop while
 * more than OUT_HIGH bytes of replies wait, which throttles a client that
 * sends faster than it reads.  Buffers are freed whenever they are empty,
 * so that the many connections that are idle at any time cost their
 * struct and their socket, not two buffers each.
 *
 * Threads: the loop thread only (connections' count is a counter that
 * memd_server_stats() reads from anywhere).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote/memd_server_internal.h"
#include "util/full_io.h"

#define BUF_MIN (64u << 10)		/* the smallest buffer allocated */
#define OUT_HIGH MEMD_MAX_MSG		/* stop reading requests above this */
#define REPLY_WRITTEN 0x100		/* a handler wrote its reply itself */

/* ---- connection buffers -------------------------------------------------- */

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_head;
}

/* Room for @n more bytes of replies; NULL when out of memory. */
static uint8_t *out_reserve(struct conn *c, size_t n)
{
	uint8_t *p;

	if (c->out_cap - c->out_len < n && c->out_head) {
		memmove(c->out, c->out + c->out_head, out_pending(c));
		c->out_len -= c->out_head;
		c->out_head = 0;
	}
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_len + n < BUF_MIN ? BUF_MIN : c->out_len + n;

		p = realloc(c->out, cap);
		if (!p)
			return NULL;
		c->out = p;
		c->out_cap = cap;
	}
	p = c->out + c->out_len;
	c->out_len += n;
	return p;
}

static int reply_empty(struct conn *c, const struct memd_hdr *req,
		       uint8_t status)
{
	struct memd_hdr h = { .op = req->op, .status = status, .id = req->id };
	uint8_t *p = out_reserve(c, MEMD_HDR_SIZE);

	if (!p)
		return -ENOMEM;
	memd_hdr_encode(&h, p);
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

/* A reply with a body, queued. */
static int reply_body(struct conn *c, const struct memd_request *req,
		      const uint8_t *body, uint32_t len)
{
	struct memd_hdr h = { .op = req->op, .id = req->id, .body_len = len };
	uint8_t *p = out_reserve(c, MEMD_HDR_SIZE + len);

	if (!p)
		return -ENOMEM;
	memd_hdr_encode(&h, p);
	memcpy(p + MEMD_HDR_SIZE, body, len);
	return REPLY_WRITTEN;
}

static int handle_hello(struct memd_server *s, struct conn *c,
			const struct memd_request *req)
{
	uint8_t body[MEMD_CHALLENGE_SIZE > MEMD_WELCOME_SIZE ?
		     MEMD_CHALLENGE_SIZE : MEMD_WELCOME_SIZE];
	int status;

	if (c->ns)
		return MEMD_ST_BAD_REQUEST;
	if (req->hello_step == 1)
		status = hello_challenge(s, &c->hs, req, body);
	else
		status = hello_welcome(s, &c->hs, req, c->peer, &c->ns, body);
	if (status == MEMD_ST_BAD_SECRET)
		c->closing = true;
	if (status != MEMD_ST_OK)
		return status;
	/* the handshake is done only once step 2 is answered OK */
	if (req->hello_step == 2)
		conn_said_hello(s, c);
	return reply_body(c, req, body, req->hello_step == 1 ?
			  MEMD_CHALLENGE_SIZE : MEMD_WELCOME_SIZE);
}

static int handle_put(struct memd_server *s, struct conn *c,
		      const struct memd_request *req)
{
	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	return namespace_put(s, c->ns, req, c->peer);
}

static int handle_get(struct memd_server *s, struct conn *c,
		      const struct memd_request *req)
{
	struct memd_hdr h = { .op = MEMD_OP_GET, .id = req->id };
	uint32_t slots[MEMD_MAX_PAGES], n;
	int status;
	uint8_t *p;

	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	status = namespace_find_pages(c->ns, req, slots, &n);
	if (status != MEMD_ST_OK)
		return status;
	h.body_len = n * MEMD_RECORD;
	p = out_reserve(c, MEMD_HDR_SIZE + h.body_len);
	if (!p)
		return -ENOMEM;
	memd_hdr_encode(&h, p);
	slots_encode(s, slots, n, p + MEMD_HDR_SIZE);
	counter_add(&s->c.pages_got, n);
	return REPLY_WRITTEN;
}

static int handle_drop(struct memd_server *s, struct conn *c,
		       const struct memd_request *req)
{
	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	return namespace_drop(s, c->ns, req);
}

/* Ends the namespace: its other connections are closed (whatever they
 * were doing: the namespace is gone), and this one after the reply. */
static int handle_release(struct memd_server *s, struct conn *c)
{
	struct namespace *ns = c->ns;
	struct list *l, *next;
	char why[96];

	if (!ns)
		return MEMD_ST_BAD_SECRET;
	for (l = s->active.next; l != &s->active; l = next) {
		struct conn *other = list_entry(l, struct conn, link);

		next = l->next;
		if (other != c && other->ns == ns)
			conn_end(s, other);
	}
	namespace_leave(s, ns);
	c->ns = NULL;
	c->closing = true;
	snprintf(why, sizeof(why), "released by %s", c->peer);
	namespace_release(s, ns, why);
	return MEMD_ST_OK;
}

static int handle_stats(struct memd_server *s, struct conn *c,
			const struct memd_request *req)
{
	struct memd_hdr h = { .op = MEMD_OP_STATS, .id = req->id,
			      .body_len = MEMD_STATS_SIZE };
	struct memd_stats st;
	uint8_t *p = out_reserve(c, MEMD_HDR_SIZE + MEMD_STATS_SIZE);

	if (!p)
		return -ENOMEM;
	memd_server_stats(s, &st);
	st.namespace_pages = c->ns ? namespace_pages(c->ns) : 0;
	memd_hdr_encode(&h, p);
	memd_encode_stats(p + MEMD_HDR_SIZE, &st);
	return REPLY_WRITTEN;
}

/* Runs one well-framed request and queues its reply; -errno closes. */
static int conn_execute(struct memd_server *s, struct conn *c,
			const struct memd_hdr *h, const uint8_t *body)
{
	struct memd_request req;
	struct errmsg why;
	int ret;

	if (memd_decode_request(h, body, &req, &why)) {
		say(s, MEMD_LOG_WARN, "bad request from %s: %s", c->peer, why.text);
		return reply_empty(c, h, MEMD_ST_BAD_REQUEST);
	}
	switch (req.op) {
	case MEMD_OP_HELLO:
		ret = handle_hello(s, c, &req);
		break;
	case MEMD_OP_PUT:
		ret = handle_put(s, c, &req);
		break;
	case MEMD_OP_GET:
		ret = handle_get(s, c, &req);
		break;
	case MEMD_OP_DROP:
		ret = handle_drop(s, c, &req);
		break;
	case MEMD_OP_RELEASE:
		ret = handle_release(s, c);
		break;
	default:
		ret = handle_stats(s, c, &req);
		break;
	}
	if (ret < 0 || ret == REPLY_WRITTEN)
		return ret < 0 ? ret : 0;
	return reply_empty(c, h, (uint8_t)ret);
}

/* ---- connections --------------------------------------------------------- */

static int conn_update_interest(struct memd_server *s, struct conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (!c->closing && out_pending(c) <= OUT_HIGH)
		want |= EPOLLIN;
	if (out_pending(c))
		want |= EPOLLOUT;
	if (want == c->events)
		return 0;
	ev = (struct epoll_event){ .events = want, .data.ptr = c };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev))
		return -errno;
	c->events = want;
	return 0;
}

static int conn_read(struct conn *c)
{
	size_t want = BUF_MIN;
	struct memd_hdr h;
	ssize_t n;

	/* room for the whole message being received (its length was
	 * checked when it was first seen complete enough to decode) */
	if (c->in_len >= MEMD_HDR_SIZE && !memd_hdr_decode(c->in, &h) &&
	    MEMD_HDR_SIZE + h.body_len > want)
		want = MEMD_HDR_SIZE + h.body_len;
	if (c->in_cap < want) {
		uint8_t *p = realloc(c->in, want);

		if (!p)
			return -ENOMEM;
		c->in = p;
		c->in_cap = want;
	}
	if (c->in_len == c->in_cap)
		return 0;
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n > 0) {
		c->in_len += (size_t)n;
		return 0;
	}
	if (n == 0)
		return -ECONNRESET;
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Executes the complete requests received, while the replies fit. */
static int conn_process(struct memd_server *s, struct conn *c)
{
	size_t pos = 0;
	int ret = 0;

	while (!c->closing && out_pending(c) <= OUT_HIGH &&
	       c->in_len - pos >= MEMD_HDR_SIZE) {
		struct memd_hdr h;
		int bad = memd_hdr_decode(c->in + pos, &h);

		if (bad) {
			say(s, MEMD_LOG_WARN, "bad request from %s: %s; closing",
			    c->peer, bad == -EMSGSIZE ? "message too long" :
			    "reserved header bytes set");
			c->closing = true;
			ret = reply_empty(c, &h, MEMD_ST_BAD_REQUEST);
			break;
		}
		if (c->in_len - pos - MEMD_HDR_SIZE < h.body_len)
			break;
		ret = conn_execute(s, c, &h, c->in + pos + MEMD_HDR_SIZE);
		if (ret)
			break;
		pos += MEMD_HDR_SIZE + h.body_len;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (!c->in_len) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	return ret;
}

static int conn_flush(struct conn *c)
{
	size_t sent;
	int ret = send_some(c->fd, c->out + c->out_head, out_pending(c), &sent);

	c->out_head += sent;
	if (ret || out_pending(c))
		return ret;
	c->out_head = c->out_len = 0;
	free(c->out);
	c->out = NULL;
	c->out_cap = 0;
	return 0;
}

void conn_event(struct memd_server *s, struct conn *c, uint32_t events)
{
	int ret = events & EPOLLERR ? -EIO : 0;

	/* closed earlier in this batch of events (see conn_end()) */
	if (c->dead)
		return;
	/* an event means bytes came or went: the client is not idle */
	conn_touch(s, c, monotonic_ns());

	if (!ret && (events & EPOLLOUT))
		ret = conn_flush(c);
	if (!ret && (events & (EPOLLIN | EPOLLHUP)) && !c->closing)
		ret = conn_read(c);
	/* requests left in the buffer while the replies were too many: a
	 * flush that makes room must get to them, no event will */
	while (!ret) {
		size_t before = c->in_len;

		ret = conn_process(s, c);
		if (!ret)
			ret = conn_flush(c);
		if (c->in_len == before || c->in_len < MEMD_HDR_SIZE ||
		    c->closing || out_pending(c) > OUT_HIGH)
			break;
	}
	if (ret == -ENOMEM)
		say(s, MEMD_LOG_WARN, "closing %s: out of memory for its buffers",
		    c->peer);
	if (!ret && !(c->closing && !out_pending(c)))
		ret = conn_update_interest(s, c);
	if (ret || (c->closing && !out_pending(c)))
		conn_end(s, c);
}
