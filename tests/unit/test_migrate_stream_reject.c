// SPDX-License-Identifier: MIT
/*
 * The stream reader (migrate/stream.h) against hostile and damaged
 * streams, built here from docs/stream-format.md rather than with the
 * writer: each is refused with the errno the header promises and a
 * message that names the section (its index and type), never a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "harness.h"
#include "migrate/stream.h"
#include "util/full_io.h"
#include "util/le.h"
#include "util/page.h"
#include "util/state_buf.h"

#define F_ZSTD 0x1u		/* header and section flags, from the document */
#define F_SKIP 0x2u

static void raw_header(struct state_buf *b, uint32_t version, uint32_t flags)
{
	state_put_bytes(b, "\x89rackvm\n", 8);
	state_put_u32(b, version);
	state_put_u32(b, flags);
	state_put_u16(b, 4);
	state_put_bytes(b, "test", 4);
	state_put_u64(b, XXH3_64bits(b->data, b->len));
}

/* A section framed as the document says, checksummed as section @index. */
static void raw_section(struct state_buf *b, unsigned index, unsigned type,
			unsigned flags, const void *p, size_t len)
{
	size_t start = b->len;

	state_put_u16(b, (uint16_t)type);
	state_put_u16(b, (uint16_t)flags);
	state_put_u32(b, (uint32_t)len);
	if (len)
		state_put_bytes(b, p, len);
	state_put_u64(b, XXH3_64bits_withSeed(b->data + start, 8 + len, index));
}

/* A header and a config section: what every hostile stream starts with. */
static void raw_start(struct state_buf *b, uint32_t flags)
{
	state_buf_init(b);
	raw_header(b, 1, flags);
	raw_section(b, 0, STREAM_CONFIG, 0, "{}", 2);
}

static int mem_fd(const void *p, size_t len)
{
	int fd = memfd_create("stream", 0);

	if (fd >= 0 && (write_full(fd, p, len) || lseek(fd, 0, SEEK_SET))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static unsigned pages_seen;

static int count_page(void *opaque, uint64_t page, const uint8_t *data,
		      uint64_t off)
{
	(void)opaque, (void)page, (void)data, (void)off;
	pages_seen++;
	return 0;
}

/* Reads @len bytes as a stream through every decoder: 0 only for a whole
 * stream with nothing after END.  *@sections: those stream_next() gave. */
static int read_bytes(const void *p, size_t len, unsigned *sections,
		      struct errmsg *err)
{
	char name[STREAM_NAME_MAX + 1];
	struct stream_reader *r = NULL;
	struct stream_section s;
	const uint8_t *st;
	unsigned idx, n = 0;
	size_t slen;
	int ret, fd = mem_fd(p, len);

	if (fd < 0)
		return -EMFILE;
	ret = stream_reader_create(fd, &r, err);
	while (!ret) {
		ret = stream_next(r, &s, err);
		if (ret)
			break;
		n++;
		if (s.type == STREAM_CPU)
			ret = stream_section_cpu(&s, &idx, &st, &slen, err);
		if (s.type == STREAM_DEVICE)
			ret = stream_section_device(&s, name, &st, &slen, err);
		if (s.type == STREAM_RAM)
			ret = stream_section_pages(&s, 1024, count_page, NULL,
						   err);
		if (!ret && s.type == STREAM_END) {
			ret = stream_reader_finish(r, err);
			break;
		}
	}
	stream_reader_destroy(r);
	close(fd);
	if (sections)
		*sections = n;
	return ret;
}

/* The stream in @b gives @want and a message containing @want_text. */
#define CHECK_REFUSED(b, want, want_text)                                      \
	do {                                                              \
		struct errmsg e_ = { "" };                                \
		int r_ = read_bytes((b)->data, (b)->len, NULL, &e_);      \
		if (r_ != (want) || !strstr(e_.text, (want_text))) {           \
			harness_fail(__FILE__, __LINE__,                  \
				     "got %d \"%s\", want %d \"%s\"", r_, \
				     e_.text, (want), (want_text));            \
			return;                                           \
		}                                                         \
	} while (0)

TEST(stream_rejects_bad_header)
{
	struct state_buf b;

	state_buf_init(&b);
	CHECK_REFUSED(&b, -ENODATA, "empty");
	state_put_bytes(&b, "QFI\xfb this is not a stream at all", 30);
	CHECK_REFUSED(&b, -EBADMSG, "not a rackvm stream");
	state_buf_release(&b);

	state_buf_init(&b);
	raw_header(&b, 2, 0);
	CHECK_REFUSED(&b, -EPROTONOSUPPORT, "stream version 2, this rackvm reads 1");
	b.len = 12;		/* the version is judged before the rest */
	CHECK_REFUSED(&b, -EPROTONOSUPPORT, "stream version 2");
	state_buf_release(&b);

	state_buf_init(&b);
	raw_header(&b, 1, 0x4);
	CHECK_REFUSED(&b, -EBADMSG, "stream header: unknown flags 0x4");
	b.data[20] ^= 1;
	CHECK_REFUSED(&b, -EBADMSG, "stream header: checksum mismatch");
	put_le16(b.data + 16, 0);
	CHECK_REFUSED(&b, -EBADMSG, "a producer of 0 bytes");
	put_le16(b.data + 16, 65);
	CHECK_REFUSED(&b, -EBADMSG, "a producer of 65 bytes");
	state_buf_release(&b);

	state_buf_init(&b);
	state_put_bytes(&b, "\x89rackvm\n", 8);
	state_put_u32(&b, 1);
	state_put_u32(&b, 0);
	state_put_u16(&b, 2);
	state_put_bytes(&b, "a\033", 2);
	state_put_u64(&b, XXH3_64bits(b.data, b.len));
	CHECK_REFUSED(&b, -EBADMSG, "producer is not printable");
	state_buf_release(&b);
}

/* Config, cpu, device, RAM (a zero and a data page), end, by the writer. */
static int small_stream(struct state_buf *b)
{
	uint8_t pages[2 * PAGE_SIZE] = { 0 };
	struct stream_writer *w;
	int ret, fd = memfd_create("small", 0);

	memset(pages + PAGE_SIZE, 0x5a, PAGE_SIZE);
	ret = fd < 0 ? -errno : stream_writer_create(fd, "t", NULL, &w, NULL);
	if (!ret) {
		ret = stream_put(w, STREAM_CONFIG, "{}", 2, NULL) ?:
		      stream_put_cpu(w, 0, "cpu", 3, NULL) ?:
		      stream_put_device(w, "dev", "d", 1, NULL) ?:
		      stream_put_pages(w, 7, pages, 2, NULL) ?:
		      stream_finish(w, NULL);
		stream_writer_destroy(w);
	}
	state_buf_init(b);
	b->len = fd < 0 ? 0 : (size_t)lseek(fd, 0, SEEK_END);
	b->data = malloc(b->len + 1);
	if (!ret && (!b->data || pread_full(fd, b->data, b->len, 0)))
		ret = -EIO;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Section k's first byte in @b (k = 5: the end). */
static size_t section_start(const struct state_buf *b, unsigned k)
{
	size_t at = 18 + get_le16(b->data + 16) + 8;

	while (k--)
		at += 8 + get_le32(b->data + at + 4) + 8;
	return at;
}

static unsigned section_of(const struct state_buf *b, size_t pos)
{
	unsigned k = 0;

	while (k < 5 && section_start(b, k + 1) <= pos)
		k++;
	return k;
}

TEST(stream_rejects_every_flipped_byte)
{
	struct state_buf b;
	struct errmsg err;
	unsigned n;
	char want[32];

	CHECK_EQ(small_stream(&b), 0);
	CHECK_EQ(read_bytes(b.data, b.len, &n, &err), 0);
	CHECK_EQ(n, 5);
	CHECK_EQ(pages_seen, 2);
	for (size_t pos = 0; pos < b.len; pos++) {
		bool header = pos < section_start(&b, 0);
		int ret;

		/* the page's own bytes: a sample is enough */
		if (b.data[pos] == 0x5a && pos % 61)
			continue;
		b.data[pos] ^= 0x10;
		ret = read_bytes(b.data, b.len, NULL, &err);
		b.data[pos] ^= 0x10;
		snprintf(want, sizeof(want), "section %u", section_of(&b, pos));
		if (ret && header && (strstr(err.text, "header") ||
				      strstr(err.text, "not a rackvm") ||
				      strstr(err.text, "stream version")))
			continue;
		if (ret && !header && strstr(err.text, want))
			continue;
		harness_fail(__FILE__, __LINE__, "byte %zu flipped: %d \"%s\"",
			     pos, ret, ret ? err.text : "");
		break;
	}
	state_buf_release(&b);
}

TEST(stream_rejects_every_truncation)
{
	struct state_buf b;
	struct errmsg err;
	char want[64];

	CHECK_EQ(small_stream(&b), 0);
	for (size_t len = 0; len < b.len; len++) {
		size_t first = section_start(&b, 0);
		unsigned k = section_of(&b, len);
		int ret = read_bytes(b.data, len, NULL, &err);

		if (len < first)
			snprintf(want, sizeof(want), len ? "inside its header" :
				 "empty");
		else if (len == first)
			snprintf(want, sizeof(want), "after its header");
		else if (len == section_start(&b, k))
			snprintf(want, sizeof(want), "ends after section %u (",
				 k - 1);
		else
			snprintf(want, sizeof(want), "ends inside section %u (",
				 k);
		if (ret != -ENODATA || !strstr(err.text, want)) {
			harness_fail(__FILE__, __LINE__,
				     "cut at %zu: %d \"%s\", want \"%s\"", len,
				     ret, err.text, want);
			break;
		}
	}
	state_buf_release(&b);
}

TEST(stream_rejects_lengths_over_the_limit)
{
	struct state_buf b;
	uint8_t *big = calloc(1, 3u << 20);
	size_t cap = ZSTD_compressBound(3u << 20), n;
	uint8_t *z = malloc(2 * cap);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	CHECK(big && z && cctx);
	raw_start(&b, F_ZSTD);
	state_put_u16(&b, STREAM_VM);
	state_put_u16(&b, 0);
	state_put_u32(&b, STREAM_SECTION_MAX + 1);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (vm) at byte 48: stored length 2097153 over the limit");
	state_buf_release(&b);

	/* a small frame of a 3 MiB payload: refused before inflating it */
	n = ZSTD_compressCCtx(cctx, z, cap, big, 3u << 20, 1);
	CHECK(!ZSTD_isError(n) && n < 4096);
	raw_start(&b, F_ZSTD);
	raw_section(&b, 1, STREAM_RAM, F_ZSTD, z, n);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: decompresses to 3145728 bytes");
	state_buf_release(&b);

	/* two frames, and a frame without its size */
	n = ZSTD_compressCCtx(cctx, z, cap, big, 64, 1);
	memcpy(z + n, z, n);
	raw_start(&b, F_ZSTD);
	raw_section(&b, 1, STREAM_RAM, F_ZSTD, z, 2 * n);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: not exactly one zstd frame");
	state_buf_release(&b);
	CHECK_EQ(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0), 0);
	n = ZSTD_compress2(cctx, z, cap, big, 64);
	CHECK(!ZSTD_isError(n));
	raw_start(&b, F_ZSTD);
	raw_section(&b, 1, STREAM_RAM, F_ZSTD, z, n);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: not a zstd frame with its content size");
	state_buf_release(&b);

	/* compressed where the document does not allow it */
	raw_start(&b, 0);
	raw_section(&b, 1, STREAM_RAM, F_ZSTD, z, n);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: compressed");
	state_buf_release(&b);
	raw_start(&b, F_ZSTD);
	raw_section(&b, 1, STREAM_CPU, F_ZSTD, z, n);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (cpu) at byte 48: compressed");
	state_buf_release(&b);
	ZSTD_freeCCtx(cctx);
	free(z);
	free(big);
}

/* A RAM payload: header, bitmap, @pad zero bytes, @data_pages of 0x11. */
static void ram_payload(struct state_buf *p, uint64_t first, uint32_t npages,
			uint32_t pad, const uint8_t *bitmap, size_t bm,
			uint32_t data_pages)
{
	state_buf_init(p);
	state_put_u64(p, first);
	state_put_u32(p, npages);
	state_put_u32(p, pad);
	state_put_bytes(p, bitmap, bm);
	for (uint32_t i = 0; i < pad; i++)
		state_put_u8(p, 0);
	for (size_t i = 0; i < data_pages * PAGE_SIZE; i++)
		state_put_u8(p, 0x11);
}

/* The stream: config, then the RAM payload in @p as section 1. */
static void ram_stream(struct state_buf *b, struct state_buf *p)
{
	raw_start(b, 0);
	raw_section(b, 1, STREAM_RAM, 0, p->data, p->len);
	raw_section(b, 2, STREAM_END, 0, NULL, 0);
	state_buf_release(p);
}

TEST(stream_rejects_bad_ram_sections)
{
	static const uint8_t ones[32] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const char *where = "section 1 (ram) at byte 48: ";
	struct state_buf b, p;
	char want[128];

	/* pages 1020..1023 fit a guest of 1024 pages (read_bytes's) */
	ram_payload(&p, 1020, 4, 0, (uint8_t[]){ 0x0e }, 1, 1);
	ram_stream(&b, &p);
	pages_seen = 0;
	CHECK_EQ(read_bytes(b.data, b.len, NULL, NULL), 0);
	CHECK_EQ(pages_seen, 4);
	state_buf_release(&b);
	/* 1021..1024 do not, and no page reaches the callback */
	ram_payload(&p, 1021, 4, 0, (uint8_t[]){ 0x0f }, 1, 0);
	ram_stream(&b, &p);
	pages_seen = 0;
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: pages 0x3fd..0x400 beyond the guest's 1024 pages");
	CHECK_EQ(pages_seen, 0);
	state_buf_release(&b);

	struct {
		uint64_t first;
		uint32_t npages, pad, bm, data_pages;
		const char *why;
	} bad[] = {
		{ 0, 0, 0, 0, 0, "0 pages, not 1..256" },
		{ 0, 257, 0, 32, 0, "257 pages, not 1..256" },
		{ UINT64_MAX - 1, 1, 0, 1, 0, "first page 0xfffffffffffffffe beyond any address" },
		{ 0, 1, 4096, 1, 0, "padding of 4096 bytes" },
		{ 0, 4, 0, 1, 0, "zero-page bits set past page 4" },
		{ 0, 8, 0, 1, 1, "4096 bytes of page data for 0 non-zero pages" },
		{ 0, 16, 0, 1, 0, "17 bytes, short of its bitmap and padding" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ram_payload(&p, bad[i].first, bad[i].npages, bad[i].pad, ones,
			    bad[i].bm, bad[i].data_pages);
		ram_stream(&b, &p);
		snprintf(want, sizeof(want), "%s%s", where, bad[i].why);
		CHECK_REFUSED(&b, -EBADMSG, want);
		state_buf_release(&b);
	}
	/* padding that is not zero */
	ram_payload(&p, 0, 1, 2, (uint8_t[]){ 0 }, 1, 1);
	p.data[17] = 1;
	ram_stream(&b, &p);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (ram) at byte 48: padding not zero");
	state_buf_release(&b);
}

TEST(stream_rejects_bad_order)
{
	struct state_buf b;
	struct errmsg err;
	unsigned n;

	state_buf_init(&b);
	raw_header(&b, 1, 0);
	raw_section(&b, 0, STREAM_VM, 0, "vm", 2);
	CHECK_REFUSED(&b, -EPROTO, "section 0 (vm) at byte 30: the stream must begin with its config");
	state_buf_release(&b);

	raw_start(&b, 0);
	raw_section(&b, 1, STREAM_CONFIG, 0, "{}", 2);
	CHECK_REFUSED(&b, -EPROTO, "section 1 (config) at byte 48: a second config section");
	state_buf_release(&b);

	/* a section dropped: the next one's checksum was for its old place */
	raw_start(&b, 0);
	raw_section(&b, 2, STREAM_VM, 0, "vm", 2);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (vm) at byte 48: checksum mismatch");
	state_buf_release(&b);

	raw_start(&b, 0);
	raw_section(&b, 1, STREAM_END, 0, NULL, 0);
	CHECK_EQ(read_bytes(b.data, b.len, &n, &err), 0);
	CHECK_EQ(n, 2);
	raw_section(&b, 2, STREAM_VM, 0, "vm", 2);
	CHECK_REFUSED(&b, -EPROTO, "section 2 (vm) at byte 64 follows the END section");
	b.len -= 17;		/* one byte after END, not a section */
	CHECK_REFUSED(&b, -EPROTO, "follows the END section");
	state_buf_release(&b);
}

/* stream_next() after END: -ENODATA at the end of the file. */
TEST(stream_next_after_end)
{
	struct stream_reader *r;
	struct stream_section s;
	struct errmsg err;
	struct state_buf b;
	int fd;

	raw_start(&b, 0);
	raw_section(&b, 1, STREAM_END, 0, NULL, 0);
	fd = mem_fd(b.data, b.len);
	CHECK(fd >= 0);
	CHECK_EQ(stream_reader_create(fd, &r, &err), 0);
	CHECK_EQ(stream_reader_finish(r, &err), -ENODATA);
	CHECK_EQ(stream_next(r, &s, &err), 0);
	CHECK_EQ(stream_section_cpu(&s, &(unsigned){ 0 },
				    &(const uint8_t *){ 0 }, &(size_t){ 0 },
				    &err), -EINVAL);
	CHECK(strstr(err.text, "section 0 (config) at byte 30 is not a cpu section"));
	CHECK_EQ(stream_next(r, &s, &err), 0);
	CHECK_EQ(s.type, STREAM_END);
	CHECK_EQ(stream_next(r, &s, &err), -ENODATA);
	CHECK(strstr(err.text, "ended with its END section (section 1)"));
	CHECK_EQ(stream_reader_finish(r, &err), 0);
	stream_reader_destroy(r);
	close(fd);
	state_buf_release(&b);
}

TEST(stream_rejects_bad_payloads)
{
	static const struct {
		unsigned type;
		const char *payload;
		size_t len;
		const char *why;
	} bad[] = {
		{ STREAM_CPU, "abc", 3, "(cpu) at byte 48: 3 bytes, short of a vCPU index" },
		{ STREAM_DEVICE, "", 0, "(device) at byte 48: device name of 0 bytes" },
		{ STREAM_DEVICE, "\0x", 2, "(device) at byte 48: device name of 0 bytes" },
		{ STREAM_DEVICE, "\x05" "ab", 3, "(device) at byte 48: device name of 5 bytes" },
		{ STREAM_DEVICE, "\x20" "0123456789abcdef0123456789abcdef", 33,
		  "(device) at byte 48: device name of 32 bytes, not 1..31" },
		{ STREAM_DEVICE, "\x05" "ab\0cd", 6, "(device) at byte 48: device name with a byte" },
		{ STREAM_DEVICE, "\x02" "\xc3\xa9", 3, "(device) at byte 48: device name with a byte" },
		{ STREAM_END, "x", 1, "(end) at byte 48: 1 bytes in the END section" },
		{ STREAM_PAGEMAP, "x", 1, "(pagemap) at byte 48: 1 bytes, no page map after its header" },
		{ STREAM_PAGEMAP, "\x10\0\0\0\0\0\0\0" "\x10\0\0\0\0\0\0\0" "x", 17,
		  "(pagemap) at byte 48: 1 bytes at 16 of a page map of 16 bytes" },
		{ STREAM_PAGEMAP, "\x02\0\0\0\0\0\0\0" "\x00\0\0\0\0\0\0\0" "xyz", 19,
		  "(pagemap) at byte 48: 3 bytes at 0 of a page map of 2 bytes" },
		{ STREAM_PAGEMAP, "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0" "x", 17,
		  "(pagemap) at byte 48: 1 bytes at 0 of a page map of 0 bytes" },
		{ STREAM_SYNC, "x", 1, "(sync) at byte 48: 1 bytes in an empty section" },
		{ 11, "x", 1, "section 1: unknown type 11" },
		{ 0, "x", 1, "section 1: unknown type 0" },
	};
	struct state_buf b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_start(&b, 0);
		raw_section(&b, 1, bad[i].type, 0, bad[i].payload, bad[i].len);
		CHECK_REFUSED(&b, -EBADMSG, bad[i].why);
		state_buf_release(&b);
	}
	raw_start(&b, 0);
	raw_section(&b, 1, STREAM_VM, 0x4, "vm", 2);
	CHECK_REFUSED(&b, -EBADMSG, "section 1 (vm) at byte 48: unknown flags 0x4");
	state_buf_release(&b);
}

/* A type this version does not know, marked skippable, is passed over
 * (checked all the same); the next section keeps its stream index. */
TEST(stream_skips_skippable_unknown_types)
{
	struct stream_reader *r;
	struct stream_section s;
	struct stream_counts c;
	struct errmsg err;
	struct state_buf b;
	unsigned n;
	int fd;

	raw_start(&b, 0);
	raw_section(&b, 1, 11, F_SKIP, "future", 6);
	raw_section(&b, 2, STREAM_VM, F_SKIP, "vm", 2);
	raw_section(&b, 3, STREAM_END, 0, NULL, 0);
	CHECK_EQ(read_bytes(b.data, b.len, &n, &err), 0);
	CHECK_EQ(n, 3);
	fd = mem_fd(b.data, b.len);
	CHECK(fd >= 0);
	CHECK_EQ(stream_reader_create(fd, &r, &err), 0);
	CHECK_EQ(stream_next(r, &s, &err), 0);
	CHECK_EQ(stream_next(r, &s, &err), 0);
	CHECK(s.type == STREAM_VM && s.index == 2 && s.len == 2);
	CHECK_EQ(s.payload_offset, 48 + 8 + 6 + 8 + 8);
	stream_reader_counts(r, &c);
	CHECK_EQ(c.sections, 3);
	stream_reader_destroy(r);
	close(fd);
	/* ...but not as the first section, which must be the config */
	b.len = 0;
	raw_header(&b, 1, 0);
	raw_section(&b, 0, 11, F_SKIP, "future", 6);
	CHECK_REFUSED(&b, -EBADMSG, "section 0: unknown type 11");
	state_buf_release(&b);
}
