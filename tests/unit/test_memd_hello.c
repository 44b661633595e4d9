// SPDX-License-Identifier: MIT
/* The memd handshake's messages, keys and proofs (memd_proto.h, "The
 * handshake"): byte layout, round trips, and what the decoders refuse. */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "harness.h"
#include "remote/memd_proto.h"

static uint8_t msg[MEMD_HELLO_MAX + 64];

static int decode(struct memd_request *req)
{
	struct memd_hdr h;
	int ret = memd_hdr_decode(msg, &h);

	return ret ? ret : memd_decode_request(&h, msg + MEMD_HDR_SIZE, req, NULL);
}

static void set_body_len(uint32_t len)
{
	msg[0] = (uint8_t)len;
	msg[1] = (uint8_t)(len >> 8);
	msg[2] = msg[3] = 0;
}

TEST(memd_hello_step1_layout_and_round_trip)
{
	uint8_t nonce[MEMD_NONCE_SIZE];
	struct memd_request req;
	int len;

	for (unsigned i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(i + 1);
	len = memd_encode_hello1(msg, 5, "vm-1.a_b", nonce);
	CHECK_EQ(len, MEMD_HDR_SIZE + 4 + MEMD_NONCE_SIZE + 8);
	/* version 3, step 1, name_len, nonce, name */
	CHECK(msg[MEMD_HDR_SIZE] == 3 && msg[MEMD_HDR_SIZE + 1] == 0);
	CHECK_EQ(msg[MEMD_HDR_SIZE + 2], 1);
	CHECK_EQ(msg[MEMD_HDR_SIZE + 3], 8);
	CHECK(!memcmp(msg + MEMD_HDR_SIZE + 4, nonce, sizeof(nonce)));
	CHECK(!memcmp(msg + MEMD_HDR_SIZE + 4 + MEMD_NONCE_SIZE, "vm-1.a_b", 8));
	CHECK_EQ(decode(&req), 0);
	CHECK(req.op == MEMD_OP_HELLO && req.id == 5 && req.hello_step == 1);
	CHECK(req.name_len == 8 && !memcmp(req.name, "vm-1.a_b", 8));
	CHECK(!memcmp(req.nonce, nonce, sizeof(nonce)));
	CHECK(!req.proof && !req.sealed);

	CHECK_EQ(memd_encode_hello1(msg, 1, "", nonce), -EINVAL);
	CHECK_EQ(memd_encode_hello1(msg, 1, "a/b", nonce), -EINVAL);
	CHECK_EQ(memd_encode_hello1(msg, 1, NULL, nonce), -EINVAL);
}

TEST(memd_hello_step2_layout_and_round_trip)
{
	uint8_t proof[MEMD_KEY_SIZE], sealed[MEMD_SEALED_SIZE];
	struct memd_request req;
	size_t len;

	memset(proof, 0xaa, sizeof(proof));
	memset(sealed, 0x55, sizeof(sealed));
	len = memd_encode_hello2(msg, 9, proof, NULL);
	CHECK_EQ(len, MEMD_HDR_SIZE + 4 + MEMD_KEY_SIZE);
	CHECK_EQ(decode(&req), 0);
	CHECK(req.hello_step == 2 && req.hello_flags == 0 && !req.sealed);
	CHECK(!memcmp(req.proof, proof, sizeof(proof)));

	len = memd_encode_hello2(msg, 9, proof, sealed);
	CHECK_EQ(len, MEMD_HELLO_MAX);
	CHECK_EQ(msg[MEMD_HDR_SIZE + 3], MEMD_HELLO_CREATE);
	CHECK_EQ(decode(&req), 0);
	CHECK(req.hello_flags == MEMD_HELLO_CREATE);
	CHECK(req.sealed && !memcmp(req.sealed, sealed, sizeof(sealed)));
}

TEST(memd_hello_decoder_rejects_malformed)
{
	uint8_t nonce[MEMD_NONCE_SIZE] = { 0 }, proof[MEMD_KEY_SIZE] = { 0 };
	uint8_t *body = msg + MEMD_HDR_SIZE;
	struct memd_request req;
	int len = memd_encode_hello1(msg, 1, "ns", nonce);

	CHECK_EQ(decode(&req), 0);
	body[2] = 3;				/* step 3 */
	CHECK_EQ(decode(&req), -EBADMSG);
	body[2] = 0;
	CHECK_EQ(decode(&req), -EBADMSG);
	body[2] = 1;
	body[3] = 3;				/* name beyond the body */
	CHECK_EQ(decode(&req), -EBADMSG);
	body[3] = 0;				/* empty name */
	set_body_len(4 + MEMD_NONCE_SIZE);
	CHECK_EQ(decode(&req), -EBADMSG);
	body[3] = 2;
	set_body_len((uint32_t)len - MEMD_HDR_SIZE);
	body[4 + MEMD_NONCE_SIZE] = '/';	/* a bad name character */
	CHECK_EQ(decode(&req), -EBADMSG);
	body[4 + MEMD_NONCE_SIZE] = 'n';
	CHECK_EQ(decode(&req), 0);
	set_body_len(3);			/* too short for the fixed part */
	CHECK_EQ(decode(&req), -EBADMSG);

	memd_encode_hello2(msg, 1, proof, NULL);
	body[3] = 2;				/* an unknown flag */
	CHECK_EQ(decode(&req), -EBADMSG);
	body[3] = MEMD_HELLO_CREATE;		/* CREATE without its verifier */
	CHECK_EQ(decode(&req), -EBADMSG);
	body[3] = 0;
	set_body_len(4 + MEMD_KEY_SIZE + 1);	/* a stray byte */
	CHECK_EQ(decode(&req), -EBADMSG);
}

/* A version 1 HELLO (name and secret in clear) and a version 2 one
 * (8-byte checksums, pages in clear) get a clear no. */
TEST(memd_hello_versions_1_and_2_are_refused_with_their_reason)
{
	static const uint8_t v1[] = { 1, 0, 2, 1, 'n', 's', 'x' };
	uint8_t v2[4 + MEMD_NONCE_SIZE + 2] = { 2, 0, 1, 2 };
	struct memd_request req;
	struct memd_hdr h = { .op = MEMD_OP_HELLO, .id = 1,
			      .body_len = sizeof(v1) };
	struct errmsg err = { "" };

	CHECK_EQ(memd_decode_request(&h, v1, &req, &err), -EBADMSG);
	CHECK(strstr(err.text, "protocol version 1 is not 3"));
	memcpy(v2 + 4 + MEMD_NONCE_SIZE, "ns", 2);
	h.body_len = sizeof(v2);
	CHECK_EQ(memd_decode_request(&h, v2, &req, &err), -EBADMSG);
	CHECK(strstr(err.text, "protocol version 2 is not 3"));
}

TEST(memd_hello_replies_round_trip_and_reject_malformed)
{
	struct memd_challenge ch = { .known = true }, ch2;
	struct memd_welcome w = { .created = true }, w2;
	uint8_t body[MEMD_CHALLENGE_SIZE];

	memset(ch.identity, 1, sizeof(ch.identity));
	memset(ch.nonce, 2, sizeof(ch.nonce));
	memset(ch.seal_pk, 3, sizeof(ch.seal_pk));
	memd_encode_challenge(body, &ch);
	CHECK_EQ(body[MEMD_ID_SIZE], MEMD_HELLO_KNOWN);
	CHECK_EQ(memd_decode_challenge(body, MEMD_CHALLENGE_SIZE, &ch2), 0);
	CHECK(!memcmp(&ch, &ch2, sizeof(ch)));
	CHECK_EQ(memd_decode_challenge(body, MEMD_CHALLENGE_SIZE - 1, &ch2),
		 -EBADMSG);
	body[MEMD_ID_SIZE] = 2;			/* unknown flag */
	CHECK_EQ(memd_decode_challenge(body, MEMD_CHALLENGE_SIZE, &ch2), -EBADMSG);
	body[MEMD_ID_SIZE] = 0;
	body[MEMD_ID_SIZE + 7] = 1;		/* reserved */
	CHECK_EQ(memd_decode_challenge(body, MEMD_CHALLENGE_SIZE, &ch2), -EBADMSG);

	memset(w.proof, 4, sizeof(w.proof));
	memd_encode_welcome(body, &w);
	CHECK_EQ(memd_decode_welcome(body, MEMD_WELCOME_SIZE, &w2), 0);
	CHECK(w2.created && !memcmp(w.proof, w2.proof, sizeof(w.proof)));
	CHECK_EQ(memd_decode_welcome(body, MEMD_WELCOME_SIZE + 1, &w2), -EBADMSG);
	body[1] = 1;				/* reserved */
	CHECK_EQ(memd_decode_welcome(body, MEMD_WELCOME_SIZE, &w2), -EBADMSG);
}

TEST(memd_hello_reply_sizes_are_checked_per_step)
{
	struct memd_hdr h = { .op = MEMD_OP_HELLO, .id = 3,
			      .body_len = MEMD_CHALLENGE_SIZE };

	CHECK_EQ(memd_check_reply(&h, MEMD_OP_HELLO, 3, 1, NULL), 0);
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_HELLO, 3, 2, NULL), -EBADMSG);
	h.body_len = MEMD_WELCOME_SIZE;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_HELLO, 3, 2, NULL), 0);
	h.status = MEMD_ST_BAD_SECRET;		/* refusals carry no body */
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_HELLO, 3, 2, NULL), -EBADMSG);
	h.body_len = 0;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_HELLO, 3, 2, NULL), 0);
}

/*
 * The key depends on name and secret (length-prefixed: no two splits of
 * the same bytes collide); the verifier on the server's identity; a
 * proof on every field of the transcript, its side and its flags.
 */
TEST(memd_hello_keys_and_proofs_bind_everything)
{
	uint8_t k1[MEMD_KEY_SIZE], k2[MEMD_KEY_SIZE], v1[MEMD_KEY_SIZE];
	uint8_t v2[MEMD_KEY_SIZE], p1[MEMD_KEY_SIZE], p2[MEMD_KEY_SIZE];
	uint8_t id[MEMD_ID_SIZE] = { 7 }, cn[MEMD_NONCE_SIZE] = { 8 };
	uint8_t sn[MEMD_NONCE_SIZE] = { 9 };
	struct memd_transcript t = { id, cn, sn, "ns", 2 };

	CHECK(sodium_init() >= 0);
	memd_derive_key(k1, "ns", 2, (const uint8_t *)"ab", 2);
	memd_derive_key(k2, "ns", 2, (const uint8_t *)"ab", 2);
	CHECK(!memcmp(k1, k2, sizeof(k1)));
	memd_derive_key(k2, "nsa", 3, (const uint8_t *)"b", 1);
	CHECK(memcmp(k1, k2, sizeof(k1)));
	memd_derive_key(k2, "ns", 2, (const uint8_t *)"ac", 2);
	CHECK(memcmp(k1, k2, sizeof(k1)));

	memd_derive_verifier(v1, k1, id);
	id[0]++;
	memd_derive_verifier(v2, k1, id);
	id[0]--;
	CHECK(memcmp(v1, v2, sizeof(v1)));
	CHECK(memcmp(v1, k1, sizeof(v1)));

	memd_proof(p1, v1, false, &t, 0);
	memd_proof(p2, v1, false, &t, 0);
	CHECK(!memcmp(p1, p2, sizeof(p1)));
	memd_proof(p2, v1, true, &t, 0);	/* the other side's */
	CHECK(memcmp(p1, p2, sizeof(p1)));
	memd_proof(p2, v1, false, &t, 1);	/* other flags */
	CHECK(memcmp(p1, p2, sizeof(p1)));
	memd_proof(p2, v2, false, &t, 0);	/* another verifier */
	CHECK(memcmp(p1, p2, sizeof(p1)));
	sn[5] ^= 1;				/* another server nonce: a replay */
	memd_proof(p2, v1, false, &t, 0);
	sn[5] ^= 1;
	CHECK(memcmp(p1, p2, sizeof(p1)));
	cn[31] ^= 1;
	memd_proof(p2, v1, false, &t, 0);
	cn[31] ^= 1;
	CHECK(memcmp(p1, p2, sizeof(p1)));
	t.name = "nt";
	memd_proof(p2, v1, false, &t, 0);
	CHECK(memcmp(p1, p2, sizeof(p1)));
}
