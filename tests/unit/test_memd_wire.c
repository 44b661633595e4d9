// SPDX-License-Identifier: MIT
/*
 * memd's server on the wire, spoken by hand over raw sockets: statuses,
 * pipelining, throttling.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "memd_test_util.h"

TEST(memd_server_wire_statuses_and_pipelining)
{
	static uint8_t buf[MEMD_MAX_MSG], page[PAGE_STORE_PAGE];
	struct test_server srv = { 0 };
	uint8_t tag[MEMD_TAG_SIZE] = { 77, [15] = 78 };
	struct page_run r = { .first = 9, .count = 1, .data = page, .tags = tag };
	uint8_t nonce[MEMD_NONCE_SIZE] = { 0 };
	struct memd_stats st;
	struct memd_hdr h;
	size_t len, total;
	bool created = false;
	int fd;

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	fd = tcp_connect_local(srv.port);
	CHECK(fd >= 0);

	/* before HELLO: STATS works, PUT is refused */
	len = memd_encode_stats_request(buf, 1);
	CHECK(write_all(fd, buf, len));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK_EQ(h.status, MEMD_ST_OK);
	CHECK_EQ(memd_decode_stats(buf, h.body_len, &st), 0);
	CHECK_EQ(st.connections, 1);
	len = memd_encode_runs(buf, MEMD_OP_PUT, 2, &r, 1);
	CHECK(write_all(fd, buf, len));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK_EQ(h.status, MEMD_ST_BAD_SECRET);

	/* the handshake creates the namespace; then pipelined: PUT, GET,
	 * GET of a missing page, another HELLO, DROP, STATS, all sent
	 * before reading a reply */
	CHECK_EQ(wire_hello(fd, "ns", "x", &created), MEMD_ST_OK);
	CHECK(created);
	memset(page, 0x3c, sizeof(page));
	total = memd_encode_runs(buf, MEMD_OP_PUT, 7, &r, 1);
	total += memd_encode_runs(buf + total, MEMD_OP_GET, 3, &r, 1);
	r.first = 10;
	total += memd_encode_runs(buf + total, MEMD_OP_GET, 4, &r, 1);
	total += (size_t)memd_encode_hello1(buf + total, 5, "ns", nonce);
	r.first = 9;
	total += memd_encode_runs(buf + total, MEMD_OP_DROP, 6, &r, 1);
	total += memd_encode_stats_request(buf + total, 8);
	CHECK(write_all(fd, buf, total));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 7 && h.op == MEMD_OP_PUT && h.status == MEMD_ST_OK);
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 3 && h.status == MEMD_ST_OK && h.body_len == MEMD_RECORD);
	CHECK(!memcmp(memd_record_tag(buf), tag, MEMD_TAG_SIZE));	/* as put */
	CHECK(!memcmp(memd_record_data(buf), page, PAGE_STORE_PAGE));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 4 && h.status == MEMD_ST_NO_PAGE && h.body_len == 0);
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 5 && h.status == MEMD_ST_BAD_REQUEST);
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 6 && h.status == MEMD_ST_OK);
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 8 && h.status == MEMD_ST_OK);
	CHECK_EQ(memd_decode_stats(buf, h.body_len, &st), 0);
	CHECK_EQ(st.pages, 0);
	CHECK_EQ(st.pages_put, 1);

	/* a malformed body: BAD_REQUEST, and the connection goes on */
	len = memd_encode_runs(buf, MEMD_OP_GET, 11, &r, 1);
	buf[MEMD_HDR_SIZE] = 0;		/* nruns 0 */
	CHECK(write_all(fd, buf, len));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK(h.id == 11 && h.status == MEMD_ST_BAD_REQUEST);
	/* a broken frame: BAD_REQUEST, then the server closes */
	memset(buf, 0xff, MEMD_HDR_SIZE);
	buf[6] = buf[7] = 0;
	CHECK(write_all(fd, buf, MEMD_HDR_SIZE));
	CHECK(recv_reply(fd, &h, buf, sizeof(buf)));
	CHECK_EQ(h.status, MEMD_ST_BAD_REQUEST);
	CHECK_EQ(recv(fd, buf, 1, 0), 0);
	close(fd);

	/* a wrong secret: BAD_SECRET, then closed; the right one joins */
	fd = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(fd, "ns", "y", NULL), MEMD_ST_BAD_SECRET);
	CHECK_EQ(recv(fd, buf, 1, 0), 0);
	close(fd);
	fd = tcp_connect_local(srv.port);
	CHECK_EQ(wire_hello(fd, "ns", "x", &created), MEMD_ST_OK);
	CHECK(!created);
	close(fd);
	server_stop(&srv);
}

/* A client that sends requests and never reads the replies is throttled:
 * the server stops reading it instead of buffering replies without end. */
TEST(memd_server_throttles_a_client_that_does_not_read)
{
	static uint8_t page[MEMD_MAX_PAGES * PAGE_STORE_PAGE];
	static uint8_t req[MEMD_MAX_MSG + 256];
	static uint8_t tags[MEMD_MAX_PAGES * MEMD_TAG_SIZE];
	struct page_run r = { .first = 0, .count = MEMD_MAX_PAGES, .data = page,
			      .tags = tags };
	struct test_server srv = { 0 };
	size_t len, one, sent = 0, per = 0;
	struct memd_hdr h;
	uint64_t got;
	int fd;

	CHECK_EQ(server_start(&srv, 0, 64ull << 20), 0);
	fd = tcp_connect_local(srv.port);
	CHECK(fd >= 0);
	CHECK_EQ(wire_hello(fd, "ns", "x", NULL), MEMD_ST_OK);
	len = memd_encode_runs(req, MEMD_OP_PUT, 2, &r, 1);
	CHECK(write_all(fd, req, len));
	CHECK(recv_reply(fd, &h, req, sizeof(req)) && h.status == MEMD_ST_OK);

	/* a buffer of GETs of 64 pages (a 257 KiB reply each) */
	one = memd_encode_runs(req, MEMD_OP_GET, 3, &r, 1);
	while (per + one <= (1u << 16)) {
		memd_encode_runs(req + per, MEMD_OP_GET, 3, &r, 1);
		per += one;
	}
	/* send until the socket refuses: the server stopped reading */
	for (;;) {
		ssize_t n = send(fd, req + sent % per, per - sent % per, MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			break;
		CHECK(n > 0);
		sent += (size_t)n;
		CHECK(sent < (1ull << 30));	/* it would never stop */
	}
	/* every request sent would be 64 pages: far fewer were served */
	got = server_stats(&srv).pages_got;
	CHECK(got < sent / one * MEMD_MAX_PAGES / 4);
	CHECK(server_stats(&srv).connections == 1);
	close(fd);
	server_stop(&srv);
}
