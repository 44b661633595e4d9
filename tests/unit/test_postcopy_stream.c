// SPDX-License-Identifier: MIT
/*
 * Post-copy's part of the stream (migrate/stream.h, docs/stream-format.md)
 * and its latency histogram (migrate/postcopy_latency.h), without KVM:
 * PENDING bitmaps make the round trip, a PENDING range past the guest's
 * RAM or a bit set past its count is refused naming the section, the
 * empty HANDOVER and GO markers read back and refuse a payload, and the
 * histogram's percentiles land within its 12.5% buckets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "migrate/postcopy_latency.h"
#include "migrate/stream.h"
#include "util/le.h"

/* A stream with a PENDING section and the markers; its fd, or -1. */
static int write_sample(uint64_t first, const uint8_t *bits, uint32_t n)
{
	struct stream_writer *w;
	int fd = memfd_create("pc-stream", 0), bad;

	if (fd < 0 || stream_writer_create(fd, "test", NULL, &w, NULL))
		return -1;
	bad = stream_put(w, STREAM_CONFIG, "{}", 2, NULL) ||
	      stream_put_pending(w, first, bits, n, NULL) ||
	      stream_put(w, (enum stream_type)STREAM_HANDOVER, NULL, 0, NULL) ||
	      stream_put(w, (enum stream_type)STREAM_GO, NULL, 0, NULL) ||
	      stream_finish(w, NULL);
	stream_writer_destroy(w);
	if (bad || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

TEST(postcopy_pending_round_trip_and_bounds)
{
	uint8_t bits[3] = { 0xa5, 0xff, 0xff };
	const uint8_t *got;
	struct stream_reader *r;
	struct stream_section s;
	struct errmsg err = { "" };
	uint64_t first;
	uint32_t n;
	int fd = write_sample(100, bits, 20);

	CHECK(fd >= 0);
	CHECK_EQ(stream_reader_create(fd, &r, NULL), 0);
	CHECK_EQ(stream_next(r, &s, NULL), 0);
	CHECK_EQ(stream_next(r, &s, NULL), 0);
	CHECK_EQ((unsigned)s.type, STREAM_PENDING);
	CHECK_EQ(stream_section_pending(&s, 120, &first, &n, &got, NULL), 0);
	CHECK(first == 100 && n == 20);
	/* the writer cleared the bits past the count */
	CHECK(got[0] == 0xa5 && got[1] == 0xff && got[2] == 0x0f);
	CHECK_EQ(stream_section_pending(&s, 119, &first, &n, &got, &err),
		 -EBADMSG);
	CHECK(strstr(err.text, "section 1 (pending)") &&
	      strstr(err.text, "beyond the guest's 119 pages"));
	CHECK_EQ(stream_next(r, &s, NULL), 0);
	CHECK_EQ((unsigned)s.type, STREAM_HANDOVER);
	CHECK_EQ(stream_next(r, &s, NULL), 0);
	CHECK_EQ((unsigned)s.type, STREAM_GO);
	CHECK_EQ(stream_next(r, &s, NULL), 0);
	CHECK_EQ(s.type, STREAM_END);
	stream_reader_destroy(r);
	close(fd);
}

TEST(postcopy_pending_parser_refuses_bad_layouts)
{
	static const struct {
		uint64_t first;
		uint32_t n, reserved;
		size_t bm;
		uint8_t last;
		const char *why;
	} cases[] = {
		{ 0, 0, 0, 0, 0, "pending pages, not 1.." },
		{ 0, 9, 0, 2, 0x02, "pending bits set past page 9" },
		{ 0, 9, 0, 1, 0x00, "1 bitmap bytes for 9 pages" },
		{ 0, 8, 1, 1, 0x00, "reserved field not zero" },
		{ UINT64_MAX / 4096, 1, 0, 1, 0, "beyond any address" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t payload[64] = { 0 };
		struct stream_section s = { .type = (enum stream_type)STREAM_PENDING,
					    .index = 3, .data = payload,
					    .payload_offset = 100 };
		struct errmsg err = { "" };
		const uint8_t *bits;
		uint64_t first;
		uint32_t n;

		put_le64(payload, cases[i].first);
		put_le32(payload + 8, cases[i].n);
		put_le32(payload + 12, cases[i].reserved);
		if (cases[i].bm)
			payload[16 + cases[i].bm - 1] = cases[i].last;
		s.len = 16 + cases[i].bm;
		CHECK_EQ(stream_section_pending(&s, 1000, &first, &n, &bits,
						&err), -EBADMSG);
		if (!strstr(err.text, cases[i].why))
			harness_fail(__FILE__, __LINE__, "case %u: '%s' lacks '%s'",
				     i, err.text, cases[i].why);
	}
}

TEST(postcopy_markers_are_empty)
{
	struct stream_writer *w;
	struct errmsg err = { "" };
	int fd = memfd_create("pc-markers", 0);

	CHECK(fd >= 0);
	CHECK_EQ(stream_writer_create(fd, "test", NULL, &w, NULL), 0);
	CHECK_EQ(stream_put(w, STREAM_CONFIG, "{}", 2, NULL), 0);
	CHECK_EQ(stream_put(w, (enum stream_type)STREAM_GO, "x", 1, &err),
		 -EINVAL);
	CHECK(strstr(err.text, "go section is empty"));
	CHECK_EQ(stream_put(w, (enum stream_type)STREAM_PENDING, "x", 1, &err),
		 -EINVAL);
	stream_writer_destroy(w);
	close(fd);
}

TEST(postcopy_latency_percentiles)
{
	static struct latency_hist h;
	double p50, p99;

	CHECK(latency_percentile_ms(&h, 50) == 0);
	for (unsigned i = 1; i <= 1000; i++)	/* 1..1000 us */
		latency_add(&h, (uint64_t)i * 1000);
	p50 = latency_percentile_ms(&h, 50);
	p99 = latency_percentile_ms(&h, 99);
	CHECK(p50 > 0.500 * 0.875 && p50 < 0.500 * 1.125);
	CHECK(p99 > 0.990 * 0.875 && p99 < 0.990 * 1.125);
	latency_add(&h, 3600ull * 1000000000ull);	/* an hour: the top bucket */
	CHECK(latency_percentile_ms(&h, 100) > 1000);
}
