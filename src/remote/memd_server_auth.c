// SPDX-License-Identifier: MIT
/*
 * The memd server's side of the handshake (memd_proto.h, "The
 * handshake"): its identity and sealing key pair, drawn when it starts,
 * and the two HELLO steps of a connection.  The connection code keeps a
 * struct handshake between the steps and owns the namespace it ends on;
 * namespaces and their verifiers are memd_server_namespace.c's.
 *
 * A namespace is created by the step 2 that brings its verifier (sealed
 * to this server's key); after that only a client that proves it knows
 * that verifier joins it.  So after a restart the first client to come
 * creates each namespace anew, with its own verifier, and says it did
 * (CREATED): a client that had pages there learns they are gone, and a
 * stranger who got there first holds a namespace our clients cannot
 * join, never theirs.
 *
 * Threads: the loop thread only.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "remote/memd_server_internal.h"

struct handshake {
	char name[MEMD_NAME_MAX + 1];
	size_t name_len;
	uint8_t client_nonce[MEMD_NONCE_SIZE];
	uint8_t server_nonce[MEMD_NONCE_SIZE];
};

int auth_init(struct memd_server *s, struct errmsg *err)
{
	if (sodium_init() < 0)
		return errmsg_set(err, -EIO, "libsodium cannot start");
	randombytes_buf(s->identity, sizeof(s->identity));
	crypto_box_keypair(s->seal_pk, s->seal_sk);
	return 0;
}

void memd_server_identity(const struct memd_server *s, uint8_t *out)
{
	memcpy(out, s->identity, MEMD_ID_SIZE);
}

void auth_free(struct memd_server *s)
{
	sodium_memzero(s->seal_sk, sizeof(s->seal_sk));
}

void handshake_free(struct handshake *hs)
{
	free(hs);
}

int hello_challenge(struct memd_server *s, struct handshake **hs,
		    const struct memd_request *req, uint8_t *body)
{
	struct memd_challenge ch = { .known = false };
	struct handshake *h;

	if (*hs)
		return MEMD_ST_BAD_REQUEST;	/* one handshake a connection */
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	memcpy(h->name, req->name, req->name_len);
	h->name_len = req->name_len;
	memcpy(h->client_nonce, req->nonce, MEMD_NONCE_SIZE);
	randombytes_buf(h->server_nonce, sizeof(h->server_nonce));
	memcpy(ch.identity, s->identity, MEMD_ID_SIZE);
	ch.known = namespace_find(s, h->name, h->name_len) != NULL;
	memcpy(ch.nonce, h->server_nonce, MEMD_NONCE_SIZE);
	memcpy(ch.seal_pk, s->seal_pk, MEMD_SEAL_PK_SIZE);
	memd_encode_challenge(body, &ch);
	*hs = h;
	return MEMD_ST_OK;
}

static int refuse_secret(struct memd_server *s, const struct handshake *h,
			 const char *peer, const char *why)
{
	counter_add(&s->c.bad_secrets, 1);
	say(s, MEMD_LOG_WARN, "refused %s: %s for namespace '%s'", peer, why,
	    h->name);
	return MEMD_ST_BAD_SECRET;
}

/* Checks the client's proof against @verifier. */
static bool client_proof_ok(const struct memd_server *s,
			    const struct handshake *h,
			    const struct memd_request *req,
			    const uint8_t *verifier)
{
	struct memd_transcript t = {
		.identity = s->identity, .client_nonce = h->client_nonce,
		.server_nonce = h->server_nonce, .name = h->name,
		.name_len = h->name_len,
	};
	uint8_t want[MEMD_KEY_SIZE];
	bool ok;

	memd_proof(want, verifier, false, &t, req->hello_flags);
	ok = crypto_verify_32(want, req->proof) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

static void welcome(const struct memd_server *s, const struct handshake *h,
		    const uint8_t *verifier, bool created, uint8_t *body)
{
	struct memd_transcript t = {
		.identity = s->identity, .client_nonce = h->client_nonce,
		.server_nonce = h->server_nonce, .name = h->name,
		.name_len = h->name_len,
	};
	struct memd_welcome w = { .created = created };

	memd_proof(w.proof, verifier, true, &t,
		   created ? MEMD_HELLO_CREATED : 0);
	memd_encode_welcome(body, &w);
}

int hello_welcome(struct memd_server *s, struct handshake **hs,
		  const struct memd_request *req, const char *peer,
		  struct namespace **out, uint8_t *body)
{
	struct handshake *h = *hs;
	uint8_t fresh[MEMD_KEY_SIZE];
	const uint8_t *verifier;
	struct namespace *ns;
	int status;

	if (!h)
		return MEMD_ST_BAD_REQUEST;	/* step 2 before step 1 */
	*hs = NULL;
	ns = namespace_find(s, h->name, h->name_len);
	if (ns) {
		verifier = namespace_verifier(ns);
	} else if (!req->sealed) {
		status = refuse_secret(s, h, peer, "no such namespace (any more)");
		goto out;
	} else if (crypto_box_seal_open(fresh, req->sealed, MEMD_SEALED_SIZE,
					s->seal_pk, s->seal_sk)) {
		status = refuse_secret(s, h, peer, "a verifier not sealed to us");
		goto out;
	} else {
		verifier = fresh;
	}
	if (!client_proof_ok(s, h, req, verifier)) {
		status = refuse_secret(s, h, peer, "wrong secret");
		goto out;
	}
	if (ns) {
		namespace_join(ns);
	} else {
		status = namespace_create(s, h->name, h->name_len, verifier,
					  peer, &ns);
		if (status != MEMD_ST_OK)
			goto out;
	}
	welcome(s, h, verifier, verifier == fresh, body);
	*out = ns;
	status = MEMD_ST_OK;
out:
	sodium_memzero(fresh, sizeof(fresh));
	handshake_free(h);
	return status;
}
