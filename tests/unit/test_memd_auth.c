// SPDX-License-Identifier: MIT
/*
 * The memd handshake end to end: the secret never crosses the wire, a
 * recorded HELLO cannot be replayed, a server that does not know our
 * verifier is refused, and a namespace someone else registered on a
 * restarted server is not ours.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

static bool contains(const uint8_t *hay, size_t len, const void *needle,
		     size_t n)
{
	return memmem(hay, len, needle, n) != NULL;
}

TEST(memd_auth_the_secret_and_its_key_never_cross_the_wire)
{
	static const char secret[] = "a-secret-of-32-bytes-0123456789!";
	struct test_server srv = { 0 };
	struct page_store *st = NULL, *other = NULL;
	struct errmsg err = { "" };
	struct proxy px;
	uint8_t key[MEMD_KEY_SIZE];
	char spec[64];

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	CHECK_EQ(proxy_start(&px, srv.port), 0);
	spec_for(spec, sizeof(spec), &px.port, 1, 0, "");
	/* a handshake that creates the namespace, then one that joins it
	 * (while the first store holds it: destroying a store ends its
	 * namespace), then RELEASE */
	CHECK_EQ(open_store(spec, "vm1", secret, &st, &err), 0);
	CHECK_EQ(open_store(spec, "vm1", secret, &other, &err), 0);
	page_store_destroy(other);
	page_store_destroy(st);

	CHECK(px.tap_len > 0);
	CHECK(contains(px.tap, px.tap_len, "vm1", 3));	/* the tap works */
	CHECK(!contains(px.tap, px.tap_len, secret, 8));
	CHECK(!contains(px.tap, px.tap_len, secret + 8, 8));
	memd_derive_key(key, "vm1", 3, (const uint8_t *)secret, strlen(secret));
	CHECK(!contains(px.tap, px.tap_len, key, 8));
	proxy_stop(&px);
	server_stop(&srv);
}

/* Step 1 with @nonce by hand; the challenge back. */
static bool step1(int fd, const uint8_t *nonce, struct memd_challenge *ch)
{
	uint8_t buf[MEMD_HELLO_MAX];
	struct memd_hdr h;
	int len = memd_encode_hello1(buf, 1, "vm1", nonce);

	return len > 0 && write_all(fd, buf, (size_t)len) &&
	       recv_reply(fd, &h, buf, sizeof(buf)) && h.status == MEMD_ST_OK &&
	       !memd_decode_challenge(buf, h.body_len, ch);
}

/* Step 2 with @proof by hand: the status back. */
static int step2(int fd, const uint8_t *proof)
{
	uint8_t buf[MEMD_HELLO_MAX];
	struct memd_hdr h;
	size_t len = memd_encode_hello2(buf, 2, proof, NULL);

	if (!write_all(fd, buf, len) || !recv_reply(fd, &h, buf, sizeof(buf)))
		return -1;
	return h.status;
}

/*
 * A recorded handshake's step 2 (same client nonce, same proof) on a new
 * connection: the server's nonce is new, so the proof is wrong.
 */
TEST(memd_auth_a_replayed_hello_is_refused)
{
	struct test_server srv = { 0 };
	struct memd_challenge ch;
	struct memd_transcript t;
	uint8_t nonce[MEMD_NONCE_SIZE] = { 42 }, key[MEMD_KEY_SIZE];
	uint8_t v[MEMD_KEY_SIZE], proof[MEMD_KEY_SIZE], buf[16];
	int fd;

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	fd = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(fd, "vm1", "s", NULL), MEMD_ST_OK);	/* creates */
	close(fd);

	/* a real client's handshake, recorded */
	fd = tcp_connect_local(srv.port);
	CHECK(step1(fd, nonce, &ch));
	CHECK(ch.known);
	memd_derive_key(key, "vm1", 3, (const uint8_t *)"s", 1);
	memd_derive_verifier(v, key, ch.identity);
	t = (struct memd_transcript){ ch.identity, nonce, ch.nonce, "vm1", 3 };
	memd_proof(proof, v, false, &t, 0);
	CHECK_EQ(step2(fd, proof), MEMD_ST_OK);
	close(fd);

	/* replayed by someone without the secret */
	fd = tcp_connect_local(srv.port);
	CHECK(step1(fd, nonce, &ch));
	CHECK_EQ(step2(fd, proof), MEMD_ST_BAD_SECRET);
	CHECK_EQ(recv(fd, buf, 1, 0), 0);	/* and closed */
	close(fd);
	CHECK_EQ(server_stats(&srv).bad_secrets, 1);

	/* a step 2 without step 1, a second step 1: out of order */
	fd = tcp_connect_local(srv.port);
	CHECK_EQ(step2(fd, proof), MEMD_ST_BAD_REQUEST);
	CHECK(step1(fd, nonce, &ch));
	CHECK(!step1(fd, nonce, &ch));
	close(fd);
	server_stop(&srv);
}

/* A server claiming our namespace without knowing its verifier: the
 * client refuses it, and reads go to the server that is ours. */
TEST(memd_auth_a_server_that_cannot_prove_itself_is_refused)
{
	struct test_server srv[2] = { 0 };
	struct fake_server fake;
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	struct page_run r = run_alloc(0, 256);
	uint16_t ports[2];
	char spec[160];

	CHECK_EQ(fake_start(&fake, 0, MEMD_ST_OK, "vm1", "not-ours"), 0);
	spec_for(spec, sizeof(spec), &fake.port, 1, 0, "");
	CHECK_EQ(open_store(spec, "vm1", "s", &st, &err), -EACCES);
	CHECK(strstr(err.text, "could not prove it knows the secret"));
	fake_stop(&fake);

	CHECK_EQ(open_with_pages(srv, 2, ports, 2, "", &st, &r), 0);
	/* another server at A's address, which says yes to everything */
	server_stop(&srv[0]);
	CHECK_EQ(fake_start(&fake, ports[0], MEMD_ST_OK, "vm1", "not-ours"), 0);
	run_clear(&r);
	CHECK_EQ(RETRY_EAGAIN(page_store_get(st, &r, 1, &err)), 0);
	CHECK(run_holds(&r, 1));
	CHECK_EQ(fake.answered, 0);		/* never asked for a page */
	page_store_destroy(st);
	fake_stop(&fake);
	servers_stop(srv, 2);
	run_free(&r, 1);
}

TEST(memd_auth_other_protocol_versions_are_refused_clearly)
{
	struct test_server srv = { 0 };
	struct fake_server fake;
	struct page_store *st = NULL;
	struct errmsg err = { "" };
	static const uint8_t v1[] = { 7, 0, 0, 0, MEMD_OP_HELLO, 0, 0, 0,
				      1, 0, 0, 0, 0, 0, 0, 0,
				      1, 0, 2, 1, 'n', 's', 'x' };
	struct memd_hdr h;
	uint8_t buf[64];
	char spec[64];
	int fd;

	/* a version 1 client */
	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	fd = tcp_connect_local(srv.port);
	CHECK(write_all(fd, v1, sizeof(v1)));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK_EQ(h.status, MEMD_ST_BAD_REQUEST);
	close(fd);
	server_stop(&srv);

	/* a version 1 server */
	CHECK_EQ(fake_start(&fake, 0, MEMD_ST_OK, "vm1", "s"), 0);
	fake.old_version = true;
	spec_for(spec, sizeof(spec), &fake.port, 1, 0, "");
	CHECK(open_store(spec, "vm1", "s", &st, &err) < 0);
	CHECK(strstr(err.text, "does not speak memd protocol 3"));
	fake_stop(&fake);
}
