// SPDX-License-Identifier: MIT
/*
 * The memd handshake (memd_proto.h, "The handshake"): deriving the
 * namespace key, the per-server verifier and the proofs, and the HELLO
 * messages of both steps.  Pure: the decoders check every length and
 * reserved byte of what they are given and read nothing outside it; the
 * randomness (nonces, identities, sealing) is the callers'.
 */
#include "remote/memd_proto.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "util/le.h"

#define LABEL_KEY "rackvm memd 2 key"
#define LABEL_VERIFIER "rackvm memd 2 verifier"
#define LABEL_CLIENT "rackvm memd 2 client"
#define LABEL_SERVER "rackvm memd 2 server"

_Static_assert(MEMD_KEY_SIZE == crypto_generichash_BYTES, "BLAKE2b-256");
_Static_assert(MEMD_SEAL_PK_SIZE == crypto_box_PUBLICKEYBYTES, "X25519");
_Static_assert(MEMD_SEALED_SIZE == MEMD_KEY_SIZE + crypto_box_SEALBYTES,
	       "a sealed verifier");
_Static_assert(MEMD_HELLO_MAX >= MEMD_HDR_SIZE + 4 + MEMD_NONCE_SIZE +
	       MEMD_NAME_MAX, "step 1 fits");

/* Feeds a length byte and then the bytes. */
static void hash_counted(crypto_generichash_state *h, const void *p,
			 size_t len)
{
	uint8_t n = (uint8_t)len;

	crypto_generichash_update(h, &n, 1);
	crypto_generichash_update(h, p, len);
}

void memd_derive_key(uint8_t *key, const char *name, size_t name_len,
		     const uint8_t *secret, size_t secret_len)
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, MEMD_KEY_SIZE);
	crypto_generichash_update(&h, (const uint8_t *)LABEL_KEY,
				  sizeof(LABEL_KEY) - 1);
	hash_counted(&h, name, name_len);
	hash_counted(&h, secret, secret_len);
	crypto_generichash_final(&h, key, MEMD_KEY_SIZE);
	sodium_memzero(&h, sizeof(h));
}

void memd_derive_verifier(uint8_t *verifier, const uint8_t *key,
			  const uint8_t *identity)
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, key, MEMD_KEY_SIZE, MEMD_KEY_SIZE);
	crypto_generichash_update(&h, (const uint8_t *)LABEL_VERIFIER,
				  sizeof(LABEL_VERIFIER) - 1);
	crypto_generichash_update(&h, identity, MEMD_ID_SIZE);
	crypto_generichash_final(&h, verifier, MEMD_KEY_SIZE);
	sodium_memzero(&h, sizeof(h));
}

void memd_proof(uint8_t *out, const uint8_t *verifier, bool server,
		const struct memd_transcript *t, uint8_t flags)
{
	const char *label = server ? LABEL_SERVER : LABEL_CLIENT;
	crypto_generichash_state h;

	crypto_generichash_init(&h, verifier, MEMD_KEY_SIZE, MEMD_KEY_SIZE);
	crypto_generichash_update(&h, (const uint8_t *)label, strlen(label));
	crypto_generichash_update(&h, t->identity, MEMD_ID_SIZE);
	crypto_generichash_update(&h, t->client_nonce, MEMD_NONCE_SIZE);
	crypto_generichash_update(&h, t->server_nonce, MEMD_NONCE_SIZE);
	hash_counted(&h, t->name, t->name_len);
	crypto_generichash_update(&h, &flags, 1);
	crypto_generichash_final(&h, out, MEMD_KEY_SIZE);
	sodium_memzero(&h, sizeof(h));
}

/* ---- requests ------------------------------------------------------------ */

static uint8_t *hello_start(uint8_t *out, uint64_t id, uint32_t body_len,
			    uint8_t step, uint8_t third)
{
	struct memd_hdr h = { .op = MEMD_OP_HELLO, .id = id,
			      .body_len = body_len };
	uint8_t *p = out + MEMD_HDR_SIZE;

	memd_hdr_encode(&h, out);
	put_le16(p, MEMD_VERSION);
	p[2] = step;
	p[3] = third;
	return p + 4;
}

int memd_encode_hello1(uint8_t *out, uint64_t id, const char *name,
		       const uint8_t *nonce)
{
	size_t name_len = name ? strlen(name) : 0;
	uint32_t body_len = (uint32_t)(4 + MEMD_NONCE_SIZE + name_len);
	uint8_t *p;

	if (!memd_valid_name(name, name_len))
		return -EINVAL;
	p = hello_start(out, id, body_len, 1, (uint8_t)name_len);
	memcpy(p, nonce, MEMD_NONCE_SIZE);
	memcpy(p + MEMD_NONCE_SIZE, name, name_len);
	return (int)(MEMD_HDR_SIZE + body_len);
}

size_t memd_encode_hello2(uint8_t *out, uint64_t id, const uint8_t *proof,
			  const uint8_t *sealed)
{
	uint32_t body_len = 4 + MEMD_KEY_SIZE + (sealed ? MEMD_SEALED_SIZE : 0);
	uint8_t *p = hello_start(out, id, body_len, 2,
				 sealed ? MEMD_HELLO_CREATE : 0);

	memcpy(p, proof, MEMD_KEY_SIZE);
	if (sealed)
		memcpy(p + MEMD_KEY_SIZE, sealed, MEMD_SEALED_SIZE);
	return MEMD_HDR_SIZE + body_len;
}

int memd_decode_hello(const uint8_t *body, size_t len,
		      struct memd_request *req, struct errmsg *err)
{
	if (len < 4)
		return errmsg_set(err, -EBADMSG, "HELLO body of %zu bytes is too short",
				  len);
	if (get_le16(body) != MEMD_VERSION)
		return errmsg_set(err, -EBADMSG, "protocol version %u is not %u "
				  "(a rackvm of another release?)",
				  get_le16(body), MEMD_VERSION);
	req->hello_step = body[2];
	if (body[2] == 1) {
		size_t name_len = body[3];

		if (len != 4 + MEMD_NONCE_SIZE + name_len)
			return errmsg_set(err, -EBADMSG, "HELLO of %zu bytes for a "
					  "%zu-byte name", len, name_len);
		if (!memd_valid_name((const char *)body + 4 + MEMD_NONCE_SIZE,
				     name_len))
			return errmsg_set(err, -EBADMSG, "invalid namespace name: "
					  "1-64 of A-Z a-z 0-9 . _ -");
		req->nonce = body + 4;
		req->name = (const char *)body + 4 + MEMD_NONCE_SIZE;
		req->name_len = name_len;
		return 0;
	}
	if (body[2] != 2)
		return errmsg_set(err, -EBADMSG, "HELLO step %u", body[2]);
	req->hello_flags = body[3];
	if (req->hello_flags & ~MEMD_HELLO_CREATE)
		return errmsg_set(err, -EBADMSG, "HELLO flags 0x%x", body[3]);
	if (len != 4 + MEMD_KEY_SIZE + (req->hello_flags ? MEMD_SEALED_SIZE : 0))
		return errmsg_set(err, -EBADMSG, "HELLO step 2 of %zu bytes", len);
	req->proof = body + 4;
	req->sealed = req->hello_flags ? body + 4 + MEMD_KEY_SIZE : NULL;
	return 0;
}

/* ---- replies --------------------------------------------------------------- */

void memd_encode_challenge(uint8_t *out, const struct memd_challenge *c)
{
	memset(out, 0, MEMD_CHALLENGE_SIZE);
	memcpy(out, c->identity, MEMD_ID_SIZE);
	out[MEMD_ID_SIZE] = c->known ? MEMD_HELLO_KNOWN : 0;
	memcpy(out + MEMD_ID_SIZE + 8, c->nonce, MEMD_NONCE_SIZE);
	memcpy(out + MEMD_ID_SIZE + 8 + MEMD_NONCE_SIZE, c->seal_pk,
	       MEMD_SEAL_PK_SIZE);
}

void memd_encode_welcome(uint8_t *out, const struct memd_welcome *w)
{
	memset(out, 0, MEMD_WELCOME_SIZE);
	out[0] = w->created ? MEMD_HELLO_CREATED : 0;
	memcpy(out + 8, w->proof, MEMD_KEY_SIZE);
}

/* True if the @n bytes at @p are all 0. */
static bool zeros(const uint8_t *p, size_t n)
{
	uint8_t any = 0;

	for (size_t i = 0; i < n; i++)
		any |= p[i];
	return !any;
}

int memd_decode_challenge(const uint8_t *body, size_t len,
			  struct memd_challenge *out)
{
	const uint8_t *flags = body + MEMD_ID_SIZE;

	if (len != MEMD_CHALLENGE_SIZE || (flags[0] & ~MEMD_HELLO_KNOWN) ||
	    !zeros(flags + 1, 7))
		return -EBADMSG;
	memcpy(out->identity, body, MEMD_ID_SIZE);
	out->known = flags[0] & MEMD_HELLO_KNOWN;
	memcpy(out->nonce, flags + 8, MEMD_NONCE_SIZE);
	memcpy(out->seal_pk, flags + 8 + MEMD_NONCE_SIZE, MEMD_SEAL_PK_SIZE);
	return 0;
}

int memd_decode_welcome(const uint8_t *body, size_t len,
			struct memd_welcome *out)
{
	if (len != MEMD_WELCOME_SIZE || (body[0] & ~MEMD_HELLO_CREATED) ||
	    !zeros(body + 1, 7))
		return -EBADMSG;
	out->created = body[0] & MEMD_HELLO_CREATED;
	memcpy(out->proof, body + 8, MEMD_KEY_SIZE);
	return 0;
}
