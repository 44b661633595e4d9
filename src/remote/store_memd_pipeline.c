// SPDX-License-Identifier: MIT
/*
 * The memd store's request pipeline (see store_memd_internal.h): an op
 * batches its pieces into requests per server, then sends all of them to
 * all its servers at once and reads the replies as they come, with one
 * poll() over the links.  A server that breaks the protocol, closes the
 * connection or makes no progress for IO_TIMEOUT_MS is marked down and
 * its requests stay unanswered (status -1); the others go on.
 *
 * Threads: the calling op's only.  It touches its own struct op and the
 * connections it checked out; it reaches shared state only through
 * remote_mark_down() and remote_release().
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "remote/store_memd_internal.h"
#include "util/full_io.h"

#define IO_TIMEOUT_MS 3000

void op_init(struct op *op, struct memd_store *st)
{
	memset(op, 0, sizeof(*op));
	op->st = st;
}

__attribute__((format(printf, 3, 4)))
void op_fatal(struct op *op, int err, const char *fmt, ...)
{
	va_list ap;

	if (op->fatal)
		return;
	op->fatal = err;
	va_start(ap, fmt);
	vsnprintf(op->fatal_why.text, sizeof(op->fatal_why.text), fmt, ap);
	va_end(ap);
}

static void link_reset(struct link *l)
{
	l->nreqs = l->encoded = l->replied = 0;
}

void op_finish(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];
		struct conn *c = l->conn;

		/* only a connection with nothing half-sent or half-read is
		 * fit for the next op */
		if (c && !c->rx_len && c->tx_off == c->tx_len)
			remote_release(&op->st->servers[s], c);
		else
			conn_close(c);
		free(l->reqs);
	}
	free(op->pieces);
}

static void link_fail(struct op *op, unsigned s, int error, const char *what)
{
	struct link *l = &op->links[s];
	struct remote *r = &op->st->servers[s];

	errmsg_set(&op->last_why, error, "%s: %s", r->label, what);
	l->failed = true;
	l->state = LINK_DOWN;
	l->error = error;
	conn_close(l->conn);
	l->conn = NULL;
	remote_mark_down(r, op->last_why.text);
}

struct creq *link_new_req(struct link *l, uint8_t opcode)
{
	struct creq *q;

	if (l->nreqs == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;

		q = realloc(l->reqs, cap * sizeof(*q));
		if (!q)
			return NULL;
		l->reqs = q;
		l->cap = cap;
	}
	q = &l->reqs[l->nreqs++];
	memset(q, 0, sizeof(*q));
	q->op = opcode;
	q->status = -1;
	return q;
}

/* Encodes the next request (PUT, GET, DROP) into the connection's tx
 * buffer. */
static int link_encode(struct link *l)
{
	struct creq *q = &l->reqs[l->encoded];
	struct conn *c = l->conn;

	q->id = c->next_id++;
	c->tx_len = memd_encode_runs(c->tx, q->op, q->id, q->runs, q->nruns);
	if (!c->tx_len)
		return -EPROTO;
	c->tx_off = 0;
	l->encoded++;
	return 0;
}

static bool link_has_tx(const struct link *l)
{
	return l->conn->tx_off < l->conn->tx_len || l->encoded < l->nreqs;
}

/* Sends what the socket takes; 0 or -errno. */
static int link_send(struct link *l)
{
	struct conn *c = l->conn;

	while (link_has_tx(l)) {
		size_t sent;
		int ret;

		if (c->tx_off == c->tx_len) {
			ret = link_encode(l);
			if (ret)
				return ret;
		}
		ret = send_some(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off,
				&sent);
		c->tx_off += sent;
		if (sent)
			l->last_progress_ms = now_ms();
		if (ret || c->tx_off < c->tx_len)
			return ret;
	}
	return 0;
}

/* Takes the complete replies out of the rx buffer. */
static int link_parse(struct link *l, struct errmsg *why)
{
	struct conn *c = l->conn;
	size_t pos = 0;
	int ret = 0;

	while (c->rx_len - pos >= MEMD_HDR_SIZE) {
		struct memd_hdr h;
		struct creq *q;
		const uint8_t *body;

		if (memd_hdr_decode(c->rx + pos, &h) || l->replied >= l->encoded) {
			ret = errmsg_set(why, -EBADMSG, "a malformed or unasked-for reply");
			break;
		}
		q = &l->reqs[l->replied];
		ret = memd_check_reply(&h, q->op, q->id, q->npages, why);
		if (ret)
			break;
		if (c->rx_len - pos - MEMD_HDR_SIZE < h.body_len)
			break;
		body = c->rx + pos + MEMD_HDR_SIZE;
		if (q->op == MEMD_OP_GET && h.status == MEMD_ST_OK &&
		    memd_decode_get_reply(body, h.body_len, q->runs, q->nruns)) {
			ret = errmsg_set(why, -EBADMSG, "a malformed GET reply");
			break;
		}
		q->status = h.status;
		l->replied++;
		pos += MEMD_HDR_SIZE + h.body_len;
	}
	if (pos) {
		memmove(c->rx, c->rx + pos, c->rx_len - pos);
		c->rx_len -= pos;
	}
	return ret;
}

static int link_recv(struct link *l, struct errmsg *why)
{
	struct conn *c = l->conn;
	ssize_t n = recv(c->fd, c->rx + c->rx_len, MEMD_MAX_MSG - c->rx_len, 0);

	if (n == 0)
		return errmsg_set(why, -ECONNRESET, "the server closed the connection");
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 :
			errmsg_set(why, -errno, "%s", strerror(errno));
	c->rx_len += (size_t)n;
	l->last_progress_ms = now_ms();
	return link_parse(l, why);
}

static bool link_busy(const struct link *l)
{
	return l->conn && !l->failed && l->replied < l->nreqs;
}

/* Sends every link's requests and reads their replies, all links at once,
 * until each has its replies or has failed. */
void exchange(struct op *op)
{
	unsigned n = op->st->nservers;

	for (unsigned s = 0; s < n; s++)
		op->links[s].last_progress_ms = now_ms();
	for (;;) {
		struct pollfd pfd[MAX_SERVERS];
		unsigned who[MAX_SERVERS], npfd = 0;
		int timeout = -1;

		for (unsigned s = 0; s < n; s++) {
			struct link *l = &op->links[s];
			struct errmsg why;
			int64_t left;
			int ret;

			if (!link_busy(l))
				continue;
			ret = link_send(l);
			if (ret) {
				errmsg_set(&why, ret, "%s", strerror(-ret));
				link_fail(op, s, ret, why.text);
				continue;
			}
			left = l->last_progress_ms + IO_TIMEOUT_MS - now_ms();
			if (left <= 0) {
				link_fail(op, s, -ETIMEDOUT, "no reply in time");
				continue;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
			pfd[npfd] = (struct pollfd){
				.fd = l->conn->fd,
				.events = POLLIN | (link_has_tx(l) ? POLLOUT : 0) };
			who[npfd++] = s;
		}
		if (!npfd)
			return;
		if (poll(pfd, npfd, timeout) < 0)
			continue;	/* EINTR; anything else shows as a timeout */
		for (unsigned i = 0; i < npfd; i++) {
			struct errmsg why;
			int ret;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ret = link_recv(&op->links[who[i]], &why);
			if (ret)
				link_fail(op, who[i], ret, why.text);
		}
	}
}

/* Builds this round's requests: each server's pieces, in order, merging
 * neighbours of one caller run into one run of the request. */
static int build_requests(struct op *op, uint8_t opcode)
{
	uint32_t max_pages = opcode == MEMD_OP_DROP ? MEMD_MAX_DROP_PAGES :
						      MEMD_MAX_PAGES;

	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];
		struct creq *q = NULL;

		link_reset(l);
		for (size_t i = 0; i < op->npieces; i++) {
			struct piece *p = &op->pieces[i];
			struct page_run *last;
			bool joins;

			if (!(p->round & 1u << s))
				continue;
			last = q && q->nruns ? &q->runs[q->nruns - 1] : NULL;
			joins = last && q->last_run == p->run &&
				last->first + last->count == p->first;
			if (!q || p->alone || q->npieces == REQ_MAX_PIECES ||
			    q->npages + p->count > max_pages ||
			    (!joins && q->nruns == MEMD_MAX_RUNS)) {
				q = link_new_req(l, opcode);
				if (!q) {
					op_fatal(op, -ENOMEM, "out of memory");
					return -ENOMEM;
				}
				joins = false;
			}
			if (joins) {
				q->runs[q->nruns - 1].count += p->count;
			} else {
				q->runs[q->nruns++] = (struct page_run){
					.first = p->first, .count = p->count,
					.data = p->data, .tags = p->tags,
					.gens = p->gens };
				q->last_run = p->run;
			}
			q->npages += p->count;
			q->piece[q->npieces++] = (uint32_t)i;
			if (p->alone)
				q = NULL;	/* nothing joins it */
		}
	}
	return 0;
}

/*
 * Runs the round's requests.  A server that answers BAD_SECRET (it does
 * not know this connection as ours) or BAD_REQUEST (it cannot read what
 * we send) is no use for this op or the next ones until it is
 * reconnected: it fails like a server that went away, and the op goes on
 * with the others.
 */
void run_round(struct op *op, uint8_t opcode)
{
	if (build_requests(op, opcode))
		return;
	exchange(op);
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs && !l->failed; i++) {
			int st = l->reqs[i].status;
			char what[96];

			if (st != MEMD_ST_BAD_SECRET && st != MEMD_ST_BAD_REQUEST)
				continue;
			snprintf(what, sizeof(what), "answered %s to a %s",
				 memd_status_name((unsigned)st),
				 opcode == MEMD_OP_PUT ? "PUT" :
				 opcode == MEMD_OP_GET ? "GET" : "DROP");
			link_fail(op, s, st == MEMD_ST_BAD_SECRET ? -EACCES :
				  -EPROTO, what);
		}
	}
}
