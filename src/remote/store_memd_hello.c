// SPDX-License-Identifier: MIT
/*
 * The memd store's side of the handshake (memd_proto.h, "The
 * handshake"), on a new connection, before it joins the pool: step 1
 * with a fresh nonce, step 2 with our proof (and, when the server does
 * not know the namespace, its verifier sealed to the server), then the
 * server's proof checked.  A server that cannot prove it knows our
 * verifier is refused like one that refuses us: it may be another
 * server at that address, or a namespace someone else created there
 * with another secret.  What the server said about itself (identity,
 * whether this HELLO created the namespace) goes back to the caller,
 * which decides what it means for our copies there.  The exchange it
 * uses, one request and its reply with a deadline (conn_send(),
 * conn_recv()), also serves the pools' upkeep and RELEASE
 * (store_memd_idle.c).
 *
 * Threads: the calling thread's, on a connection nobody else holds.
 */
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "remote/store_memd_internal.h"
#include "util/full_io.h"

#define HELLO_TIMEOUT_MS 3000

/* Waits for @events on @c within @deadline_ms; -ETIMEDOUT if not. */
static int conn_wait(struct conn *c, short events, int64_t deadline_ms)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int64_t left = deadline_ms - now_ms();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	n = poll(&p, 1, (int)left);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n ? 0 : -ETIMEDOUT;
}

int conn_send(struct conn *c, size_t len, int64_t deadline_ms)
{
	size_t off = 0;
	int ret = 0;

	while (off < len && !ret) {
		size_t sent;

		ret = send_some(c->fd, c->tx + off, len - off, &sent);
		off += sent;
		if (!ret && off < len)
			ret = conn_wait(c, POLLOUT, deadline_ms);
	}
	return ret;
}

int conn_recv(struct conn *c, uint8_t op, uint64_t id, uint32_t arg,
	      int64_t deadline_ms, struct memd_hdr *h, struct errmsg *err)
{
	int ret = 0;

	c->rx_len = 0;
	while (!ret) {
		ssize_t n;

		if (c->rx_len >= MEMD_HDR_SIZE) {
			ret = memd_hdr_decode(c->rx, h) ? -EBADMSG :
			      memd_check_reply(h, op, id, arg, err);
			if (ret || c->rx_len >= MEMD_HDR_SIZE + h->body_len)
				break;
		}
		ret = conn_wait(c, POLLIN, deadline_ms);
		if (ret)
			break;
		n = recv(c->fd, c->rx + c->rx_len, MEMD_MAX_MSG - c->rx_len, 0);
		if (n == 0)
			ret = -ECONNRESET;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			ret = -errno;
		else if (n > 0)
			c->rx_len += (size_t)n;
	}
	if (!ret && c->rx_len != MEMD_HDR_SIZE + h->body_len)
		ret = -EBADMSG;		/* more than the one reply */
	c->rx_len = 0;
	if (ret == -EBADMSG)
		return errmsg_set(err, ret, "a malformed %s reply",
				  op == MEMD_OP_HELLO ? "HELLO" : "memd");
	return ret ? errmsg_set(err, ret, "%s", strerror(-ret)) : 0;
}

/* One HELLO step: c->tx's @len bytes out, its reply in. */
static int hello_call(struct conn *c, size_t len, uint8_t step,
		      struct memd_hdr *h, struct errmsg *err)
{
	int64_t deadline = now_ms() + HELLO_TIMEOUT_MS;
	int ret = conn_send(c, len, deadline);

	if (ret)
		return errmsg_set(err, ret, "%s", strerror(-ret));
	return conn_recv(c, MEMD_OP_HELLO, c->next_id - 1, step, deadline, h,
			 err);
}

/* The status of a HELLO step that is not OK, as an error. */
static int step_refused(const struct memd_store *st, unsigned s,
			uint8_t step, uint8_t status, struct errmsg *err)
{
	const char *label = st->servers[s].label;

	switch (status) {
	case MEMD_ST_BAD_SECRET:
		return errmsg_set(err, -EACCES, "memd server %s refused the secret "
				  "of namespace '%s'", label, st->namespace_name);
	case MEMD_ST_FULL:
		return errmsg_set(err, -ENOSPC, "memd server %s is full: no room "
				  "for namespace '%s'", label, st->namespace_name);
	case MEMD_ST_BAD_REQUEST:
		return errmsg_set(err, -EPROTO, "memd server %s answered HELLO "
				  "step %u with BAD_REQUEST: it does not speak "
				  "memd protocol %d (a rackvm of another release?)",
				  label, step, MEMD_VERSION);
	default:
		return errmsg_set(err, -EPROTO, "memd server %s: HELLO answered %s",
				  label, memd_status_name(status));
	}
}

int conn_hello(struct memd_store *st, unsigned s, struct conn *c,
	       struct hello_result *res, struct errmsg *err)
{
	uint8_t nonce[MEMD_NONCE_SIZE], verifier[MEMD_KEY_SIZE];
	uint8_t proof[MEMD_KEY_SIZE], sealed[MEMD_SEALED_SIZE];
	struct memd_challenge ch;
	struct memd_welcome w;
	struct memd_transcript t;
	struct memd_hdr h;
	int len, ret;

	randombytes_buf(nonce, sizeof(nonce));
	len = memd_encode_hello1(c->tx, c->next_id++, st->namespace_name, nonce);
	if (len < 0)
		return errmsg_set(err, -EINVAL, "invalid namespace name");
	ret = hello_call(c, (size_t)len, 1, &h, err);
	if (ret)
		return ret;
	if (h.status != MEMD_ST_OK)
		return step_refused(st, s, 1, h.status, err);
	if (memd_decode_challenge(c->rx + MEMD_HDR_SIZE, h.body_len, &ch))
		return errmsg_set(err, -EBADMSG, "a malformed HELLO reply");

	t = (struct memd_transcript){
		.identity = ch.identity, .client_nonce = nonce,
		.server_nonce = ch.nonce, .name = st->namespace_name,
		.name_len = strlen(st->namespace_name),
	};
	memd_derive_verifier(verifier, st->key, ch.identity);
	memd_proof(proof, verifier, false, &t, ch.known ? 0 : MEMD_HELLO_CREATE);
	/* a namespace the server does not know: ours to create there */
	if (!ch.known && crypto_box_seal(sealed, verifier, sizeof(verifier),
					 ch.seal_pk)) {
		ret = errmsg_set(err, -EPROTO, "memd server %s sent an unusable "
				 "sealing key", st->servers[s].label);
		goto out;
	}
	len = (int)memd_encode_hello2(c->tx, c->next_id++, proof,
				      ch.known ? NULL : sealed);
	ret = hello_call(c, (size_t)len, 2, &h, err);
	if (ret)
		goto out;
	if (h.status != MEMD_ST_OK) {
		ret = step_refused(st, s, 2, h.status, err);
		goto out;
	}
	if (memd_decode_welcome(c->rx + MEMD_HDR_SIZE, h.body_len, &w)) {
		ret = errmsg_set(err, -EBADMSG, "a malformed HELLO reply");
		goto out;
	}
	memd_proof(proof, verifier, true, &t,
		   w.created ? MEMD_HELLO_CREATED : 0);
	if (crypto_verify_32(proof, w.proof)) {
		ret = errmsg_set(err, -EACCES, "memd server %s could not prove "
				 "it knows the secret of namespace '%s' (another "
				 "server, or the namespace is someone else's)",
				 st->servers[s].label, st->namespace_name);
		goto out;
	}
	memcpy(res->identity, ch.identity, MEMD_ID_SIZE);
	res->created = w.created;
out:
	sodium_memzero(verifier, sizeof(verifier));
	sodium_memzero(proof, sizeof(proof));
	return ret;
}
