// SPDX-License-Identifier: MIT
/* The memd wire protocol: byte layout, round trips, and every rule the
 * decoders enforce on untrusted input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "remote/memd_proto.h"

static uint8_t msg[MEMD_MAX_MSG + 64];

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decodes msg[] as a request: header then body. */
static int decode(struct memd_request *req)
{
	struct memd_hdr h;
	int ret = memd_hdr_decode(msg, &h);

	return ret ? ret : memd_decode_request(&h, msg + MEMD_HDR_SIZE, req, NULL);
}

/* A batch request by hand: header, nruns, then (first, count) headers. */
static size_t batch(uint8_t op, uint16_t nruns, const uint64_t *first,
		    const uint32_t *count, size_t extra_body)
{
	size_t len = MEMD_BATCH_HDR_SIZE + (size_t)nruns * MEMD_RUN_HDR_SIZE;
	uint8_t *p = msg + MEMD_HDR_SIZE;

	memset(msg, 0, sizeof(msg));
	put_le(msg, len + extra_body, 4);
	msg[4] = op;
	put_le(msg + 8, 42, 8);
	put_le(p, nruns, 2);
	for (uint16_t i = 0; i < nruns; i++)
		if (first) {
			put_le(p + 4 + i * 16, first[i], 8);
			put_le(p + 4 + i * 16 + 8, count[i], 4);
		}
	return len;
}

/* A valid PUT of pages 10 and 20-21 in msg[]; returns its length. */
static size_t put_two_runs(void)
{
	static uint8_t data[3 * PAGE_STORE_PAGE];
	static uint8_t tags[3 * MEMD_TAG_SIZE] = { 1, 2, 3 };
	struct page_run runs[2] = {
		{ .first = 10, .count = 1, .data = data, .tags = tags },
		{ .first = 20, .count = 2, .data = data + PAGE_STORE_PAGE,
		  .tags = tags + MEMD_TAG_SIZE },
	};

	memset(msg, 0, sizeof(msg));
	return memd_encode_runs(msg, MEMD_OP_PUT, 1, runs, 2);
}

TEST(memd_proto_header_layout)
{
	struct memd_hdr h = { .body_len = 0x00020304, .op = MEMD_OP_GET,
			      .status = MEMD_ST_FULL, .id = 0x1122334455667788ull };
	static const uint8_t want[16] = { 4, 3, 2, 0, 3, 2, 0, 0,
					  0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 };
	struct memd_hdr back;
	uint8_t buf[16];

	memd_hdr_encode(&h, buf);
	CHECK(!memcmp(buf, want, 16));
	CHECK_EQ(memd_hdr_decode(buf, &back), 0);
	CHECK_EQ(back.body_len, 0x00020304);
	CHECK_EQ(back.op, MEMD_OP_GET);
	CHECK_EQ(back.status, MEMD_ST_FULL);
	CHECK(back.id == 0x1122334455667788ull);
}

TEST(memd_proto_header_rejects_reserved_and_oversize)
{
	struct memd_hdr h = { .body_len = MEMD_MAX_BODY, .op = 1, .id = 9 };
	uint8_t buf[16];

	memd_hdr_encode(&h, buf);
	CHECK_EQ(memd_hdr_decode(buf, &h), 0);
	buf[6] = 1;
	CHECK_EQ(memd_hdr_decode(buf, &h), -EBADMSG);
	buf[6] = 0;
	buf[7] = 0x80;
	CHECK_EQ(memd_hdr_decode(buf, &h), -EBADMSG);
	buf[7] = 0;
	put_le(buf, MEMD_MAX_BODY + 1, 4);
	CHECK_EQ(memd_hdr_decode(buf, &h), -EMSGSIZE);
	CHECK_EQ(h.id, 9);	/* still decoded, for the error reply */
	put_le(buf, 0xffffffff, 4);
	CHECK_EQ(memd_hdr_decode(buf, &h), -EMSGSIZE);
}

TEST(memd_proto_get_bytes_are_as_documented)
{
	struct page_run r = { .first = 0x0102030405ull, .count = 3 };
	static const uint8_t want[] = {
		20, 0, 0, 0, MEMD_OP_GET, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0,
		0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
	};

	CHECK_EQ(memd_runs_size(MEMD_OP_GET, &r, 1), sizeof(want));
	CHECK_EQ(memd_encode_runs(msg, MEMD_OP_GET, 7, &r, 1), sizeof(want));
	CHECK(!memcmp(msg, want, sizeof(want)));
}

TEST(memd_proto_put_round_trip)
{
	static uint8_t data[5 * PAGE_STORE_PAGE];
	static uint8_t tags[5 * MEMD_TAG_SIZE];
	struct page_run runs[2] = {
		{ .first = 100, .count = 2, .data = data, .tags = tags },
		{ .first = 7, .count = 3, .data = data + 2 * PAGE_STORE_PAGE,
		  .tags = tags + 2 * MEMD_TAG_SIZE },
	};
	struct memd_request req;
	size_t len;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 4096);
	for (size_t i = 0; i < sizeof(tags); i++)
		tags[i] = (uint8_t)(i * 13 + 1);
	len = memd_encode_runs(msg, MEMD_OP_PUT, 99, runs, 2);
	CHECK_EQ(len, MEMD_HDR_SIZE + 4 + 2 * 16 + 5 * MEMD_RECORD);
	CHECK_EQ(len, memd_runs_size(MEMD_OP_PUT, runs, 2));
	CHECK_EQ(decode(&req), 0);
	CHECK_EQ(req.op, MEMD_OP_PUT);
	CHECK_EQ(req.id, 99);
	CHECK_EQ(req.nruns, 2);
	CHECK_EQ(req.npages, 5);
	CHECK_EQ(req.runs[0].first, 100);
	CHECK_EQ(req.runs[0].count, 2);
	CHECK_EQ(req.runs[1].first, 7);
	CHECK_EQ(req.runs[1].count, 3);
	for (int i = 0; i < 5; i++) {
		const struct memd_run_ref *r = &req.runs[i < 2 ? 0 : 1];
		const uint8_t *rec = r->records + (size_t)(i < 2 ? i : i - 2) * MEMD_RECORD;

		CHECK(!memcmp(memd_record_tag(rec), tags + (size_t)i * MEMD_TAG_SIZE,
			      MEMD_TAG_SIZE));
		CHECK(memd_record_data(rec) == rec + 16);	/* tag first */
		CHECK(!memcmp(memd_record_data(rec), data + (size_t)i * PAGE_STORE_PAGE,
			      PAGE_STORE_PAGE));
	}
}

TEST(memd_proto_get_and_drop_round_trip)
{
	struct page_run runs[3] = { { 1, 1, 0, 0 }, { 50, 64 - 2, 0, 0 },
				    { 3, 1, 0, 0 } };
	struct page_run big = { .first = 0, .count = MEMD_MAX_DROP_PAGES };
	struct memd_request req;

	CHECK(memd_encode_runs(msg, MEMD_OP_GET, 1, runs, 3) > 0);
	CHECK_EQ(decode(&req), 0);
	CHECK_EQ(req.nruns, 3);
	CHECK_EQ(req.npages, 64);
	CHECK_EQ(req.runs[1].first, 50);
	CHECK(req.runs[1].records == NULL);
	CHECK(memd_encode_runs(msg, MEMD_OP_DROP, 2, &big, 1) > 0);
	CHECK_EQ(decode(&req), 0);
	CHECK_EQ(req.op, MEMD_OP_DROP);
	CHECK_EQ(req.npages, MEMD_MAX_DROP_PAGES);
	/* the same run is too big for a GET */
	CHECK_EQ(memd_encode_runs(msg, MEMD_OP_GET, 2, &big, 1), 0);
}

TEST(memd_proto_encoder_refuses_over_limits)
{
	struct page_run runs[MEMD_MAX_RUNS + 1];

	for (int i = 0; i <= MEMD_MAX_RUNS; i++)
		runs[i] = (struct page_run){ .first = (uint64_t)i * 2, .count = 1 };
	CHECK_EQ(memd_runs_size(MEMD_OP_GET, runs, 0), 0);
	CHECK(memd_runs_size(MEMD_OP_GET, runs, MEMD_MAX_RUNS) > 0);
	CHECK_EQ(memd_runs_size(MEMD_OP_GET, runs, MEMD_MAX_RUNS + 1), 0);
	runs[0].count = 0;
	CHECK_EQ(memd_runs_size(MEMD_OP_GET, runs, 1), 0);
	runs[0].count = MEMD_MAX_PAGES + 1;
	CHECK_EQ(memd_runs_size(MEMD_OP_PUT, runs, 1), 0);
	CHECK(memd_runs_size(MEMD_OP_DROP, runs, 1) > 0);
	runs[0] = (struct page_run){ .first = MEMD_PAGE_LIMIT - 1, .count = 2 };
	CHECK_EQ(memd_runs_size(MEMD_OP_DROP, runs, 1), 0);
	runs[0].count = 1;
	CHECK(memd_runs_size(MEMD_OP_DROP, runs, 1) > 0);
	CHECK_EQ(memd_runs_size(MEMD_OP_HELLO, runs, 1), 0);
}

TEST(memd_proto_batch_decoder_rejects_malformed)
{
	uint64_t first[2] = { 10, 20 };
	uint32_t count[2] = { 1, 2 };
	struct memd_request req;
	uint8_t *body = msg + MEMD_HDR_SIZE;
	size_t len;

	batch(MEMD_OP_GET, 2, first, count, 0);
	CHECK_EQ(decode(&req), 0);

	batch(MEMD_OP_GET, 0, NULL, NULL, 0);			/* no runs */
	CHECK_EQ(decode(&req), -EBADMSG);
	batch(MEMD_OP_GET, MEMD_MAX_RUNS + 1, NULL, NULL, 0);	/* too many */
	CHECK_EQ(decode(&req), -EBADMSG);
	batch(MEMD_OP_GET, 2, first, count, 0);
	body[2] = 1;						/* reserved */
	CHECK_EQ(decode(&req), -EBADMSG);
	batch(MEMD_OP_GET, 2, first, count, 0);
	body[4 + 16 + 12] = 1;					/* run reserved */
	CHECK_EQ(decode(&req), -EBADMSG);
	count[1] = 0;						/* empty run */
	batch(MEMD_OP_GET, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
	count[1] = MEMD_MAX_PAGES;				/* 65 pages */
	batch(MEMD_OP_GET, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
	batch(MEMD_OP_DROP, 2, first, count, 0);		/* fine to drop */
	CHECK_EQ(decode(&req), 0);
	count[1] = 0xffffffff;					/* drop too many */
	batch(MEMD_OP_DROP, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
	count[1] = 2;
	first[1] = MEMD_PAGE_LIMIT - 1;				/* beyond 2^52 */
	batch(MEMD_OP_GET, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
	first[1] = UINT64_MAX;					/* wraps around */
	batch(MEMD_OP_DROP, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
	first[1] = 20;
	len = batch(MEMD_OP_GET, 2, first, count, 0);
	put_le(msg, len - 1, 4);				/* run cut short */
	CHECK_EQ(decode(&req), -EBADMSG);
	put_le(msg, len + 1, 4);				/* a stray byte */
	CHECK_EQ(decode(&req), -EBADMSG);
	put_le(msg, 3, 4);					/* no batch header */
	CHECK_EQ(decode(&req), -EBADMSG);
	/* a PUT whose data is one byte short, then one byte long */
	len = put_two_runs() - MEMD_HDR_SIZE;
	CHECK_EQ(decode(&req), 0);
	put_le(msg, len - 1, 4);
	CHECK_EQ(decode(&req), -EBADMSG);
	put_le(msg, len + 1, 4);
	CHECK_EQ(decode(&req), -EBADMSG);
	put_le(msg, len - MEMD_RECORD, 4);	/* the last record missing */
	CHECK_EQ(decode(&req), -EBADMSG);
	/* run headers of a PUT come before their own data: these are
	 * where the second header should be, so a GET-shaped PUT fails */
	batch(MEMD_OP_PUT, 2, first, count, 0);
	CHECK_EQ(decode(&req), -EBADMSG);
}

TEST(memd_proto_other_requests)
{
	struct memd_request req;

	CHECK_EQ(memd_encode_stats_request(msg, 3), MEMD_HDR_SIZE);
	CHECK_EQ(decode(&req), 0);
	CHECK_EQ(req.op, MEMD_OP_STATS);
	put_le(msg, 1, 4);			/* STATS with a body */
	CHECK_EQ(decode(&req), -EBADMSG);
	put_le(msg, 0, 4);
	msg[4] = 0;				/* op 0 */
	CHECK_EQ(decode(&req), -EBADMSG);
	msg[4] = 7;				/* op 7 */
	CHECK_EQ(decode(&req), -EBADMSG);
	msg[4] = 0xff;
	CHECK_EQ(decode(&req), -EBADMSG);
}

TEST(memd_proto_release_is_an_empty_request)
{
	static const uint8_t want[MEMD_HDR_SIZE] = {
		0, 0, 0, 0, MEMD_OP_RELEASE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
	};
	struct memd_request req;
	struct memd_hdr h = { .op = MEMD_OP_RELEASE, .id = 9 };

	CHECK_EQ(MEMD_OP_RELEASE, 6);
	memset(msg, 0xee, sizeof(msg));
	CHECK_EQ(memd_encode_release(msg, 9), MEMD_HDR_SIZE);
	CHECK(!memcmp(msg, want, sizeof(want)));
	CHECK_EQ(decode(&req), 0);
	CHECK_EQ(req.op, MEMD_OP_RELEASE);
	CHECK_EQ(req.id, 9);
	put_le(msg, 1, 4);			/* RELEASE with a body */
	CHECK_EQ(decode(&req), -EBADMSG);
	msg[5] = MEMD_ST_OK + 1;		/* a status in a request */
	put_le(msg, 0, 4);
	CHECK_EQ(decode(&req), -EBADMSG);

	/* its reply carries a status and nothing else */
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_RELEASE, 9, 0, NULL), 0);
	h.status = MEMD_ST_BAD_SECRET;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_RELEASE, 9, 0, NULL), 0);
	h.body_len = 8;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_RELEASE, 9, 0, NULL), -EBADMSG);
	h = (struct memd_hdr){ .op = MEMD_OP_STATS, .id = 9 };
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_RELEASE, 9, 0, NULL), -EBADMSG);
}

TEST(memd_proto_reply_checks)
{
	struct memd_hdr h = { .op = MEMD_OP_GET, .status = MEMD_ST_OK,
			      .id = 5, .body_len = 3 * MEMD_RECORD };

	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 5, 3, NULL), 0);
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 6, 3, NULL), -EBADMSG);
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_PUT, 5, 3, NULL), -EBADMSG);
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 5, 2, NULL), -EBADMSG);
	h.status = MEMD_ST_NO_PAGE;		/* carries no body */
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 5, 3, NULL), -EBADMSG);
	h.body_len = 0;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 5, 3, NULL), 0);
	h.status = 5;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_GET, 5, 3, NULL), -EBADMSG);
	h = (struct memd_hdr){ .op = MEMD_OP_PUT, .status = MEMD_ST_FULL, .id = 1 };
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_PUT, 1, 0, NULL), 0);
	h.body_len = 1;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_PUT, 1, 0, NULL), -EBADMSG);
	h = (struct memd_hdr){ .op = MEMD_OP_STATS, .id = 1,
			       .body_len = MEMD_STATS_SIZE };
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_STATS, 1, 0, NULL), 0);
	h.body_len = MEMD_STATS_SIZE - 8;
	CHECK_EQ(memd_check_reply(&h, MEMD_OP_STATS, 1, 0, NULL), -EBADMSG);
}

TEST(memd_proto_get_reply_and_stats_round_trip)
{
	static uint8_t page[2][PAGE_STORE_PAGE], back[3][PAGE_STORE_PAGE];
	uint8_t tags[3][MEMD_TAG_SIZE], tag_a[MEMD_TAG_SIZE], tag_b[MEMD_TAG_SIZE];
	struct page_run runs[2] = {
		{ .first = 4, .count = 1, .data = back[0], .tags = tags[0] },
		{ .first = 9, .count = 1, .data = back[1], .tags = tags[1] },
	};
	struct memd_stats st = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, st2;

	memset(page[0], 0xa5, PAGE_STORE_PAGE);
	memset(page[1], 0x5a, PAGE_STORE_PAGE);
	memset(tag_a, 0x12, sizeof(tag_a));
	memset(tag_b, 0x56, sizeof(tag_b));
	tag_b[15] = 0x78;
	memd_record_encode(msg, tag_a, page[0]);
	memd_record_encode(msg + MEMD_RECORD, tag_b, page[1]);
	CHECK_EQ(MEMD_RECORD, 4112);
	CHECK_EQ(memd_decode_get_reply(msg, 2 * MEMD_RECORD, runs, 2), 0);
	CHECK(!memcmp(tags[0], tag_a, MEMD_TAG_SIZE));
	CHECK(!memcmp(tags[1], tag_b, MEMD_TAG_SIZE));
	CHECK(!memcmp(back[0], page[0], PAGE_STORE_PAGE));
	CHECK(!memcmp(back[1], page[1], PAGE_STORE_PAGE));
	CHECK_EQ(memd_decode_get_reply(msg, 2 * MEMD_RECORD - 1, runs, 2), -EBADMSG);
	CHECK_EQ(memd_decode_get_reply(msg, 2 * MEMD_RECORD + 1, runs, 2), -EBADMSG);

	memd_encode_stats(msg, &st);
	CHECK_EQ(msg[0], 1);
	CHECK_EQ(msg[8 * 10], 11);
	CHECK_EQ(memd_decode_stats(msg, MEMD_STATS_SIZE, &st2), 0);
	CHECK(!memcmp(&st, &st2, sizeof(st)));
	CHECK_EQ(memd_decode_stats(msg, MEMD_STATS_SIZE + 1, &st2), -EBADMSG);
}

TEST(memd_proto_hostport)
{
	char host[MEMD_HOST_MAX], small[4];
	uint16_t port;

	CHECK_EQ(memd_parse_hostport("127.0.0.1:7070", host, sizeof(host), &port, NULL), 0);
	CHECK(!strcmp(host, "127.0.0.1"));
	CHECK_EQ(port, 7070);
	CHECK_EQ(memd_parse_hostport("[::1]:0", host, sizeof(host), &port, NULL), 0);
	CHECK(!strcmp(host, "::1"));
	CHECK_EQ(port, 0);
	CHECK_EQ(memd_parse_hostport("memd-1.rack:65535", host, sizeof(host), &port, NULL), 0);
	CHECK_EQ(port, 65535);
	CHECK_EQ(memd_parse_hostport("nocolon", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport(":80", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("h:", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("h:65536", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("h:-1", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("h:80x", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("::1:80", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("[::1]80", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("[::1:80", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("[]:80", host, sizeof(host), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("abcd:80", small, sizeof(small), &port, NULL), -EINVAL);
	CHECK_EQ(memd_parse_hostport("abc:80", small, sizeof(small), &port, NULL), 0);
}
