// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the snapshot/migration stream reader
 * (migrate/stream.h) on arbitrary bytes, through stream_reader_create(),
 * stream_next() and every section decoder until an error or END.  The
 * first input byte picks how the rest becomes a stream:
 *	bit 0 clear	the bytes are the stream, as they are;
 *	bit 0 set	records the target frames into sections with correct
 *			checksums, so that the fuzzer reaches the payload
 *			checks (random bytes never pass a checksum):
 *			[u8 type] [u8 flags] [u16 len] [len bytes]...  where
 *			flags bit 7 = zstd-compress the payload here, bit 6 =
 *			append the data pages a RAM header asks for (up to
 *			16), bits 0..1
 *			= the section's own flags; header bit 1 of the first
 *			byte = the header's zstd flag;
 *	bit 2 set	(either way) the reader defers RAM sections' page data
 *			and checksums, as a lazy restore does, and each
 *			deferred section is then verified;
 *	0xff		the bytes are guest pages: written with the writer
 *			(compressed on the second byte's bit 0), read back,
 *			compared.
 * Checks what callers rely on: errors are the documented ones and come
 * with a message; sections come in order, CONFIG first, nothing after
 * END, no payload over the limit; device names are short and printable;
 * pages lie inside the guest, in order, and a raw page's stream offset
 * points at its bytes; a PENDING section's range lies inside the guest
 * and its bitmap inside the section, with no bit set past its count; a
 * PAGEMAP piece lies inside its map.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "migrate/stream.h"
#include "util/full_io.h"
#include "util/le.h"
#include "util/page.h"
#include "util/state_buf.h"

#define RAM_PAGES (1ull << 20)

static void check(int cond)
{
	if (!cond)
		abort();
}

static int stream_fd = -1;

/* The stream in @p as a file to read from the start. */
static int as_fd(const uint8_t *p, size_t len)
{
	if (stream_fd < 0)
		stream_fd = memfd_create("fuzz-stream", 0);
	check(stream_fd >= 0);
	check(!ftruncate(stream_fd, 0));
	check(!pwrite_full(stream_fd, p, len, 0));
	check(lseek(stream_fd, 0, SEEK_SET) == 0);
	return stream_fd;
}

struct walk {
	const uint8_t *stream;
	size_t stream_len;
	uint64_t next_page;	/* the next page @fn may see */
	uint64_t end_page;
	bool compressed;
	bool deferred;		/* the section's page data was not read */
};

/* The first byte's bit 2: the reader defers RAM sections' checksums and
 * page data (a lazy restore's way; the fd is a memfd, a regular file). */
static bool defer_ram;

static int page_fn(void *opaque, uint64_t page, const uint8_t *data,
		   uint64_t off)
{
	struct walk *w = opaque;

	check(page == w->next_page && page < w->end_page &&
	      page < RAM_PAGES);
	w->next_page++;
	check(off == 0 || (!w->compressed && (data != NULL) != w->deferred));
	if (off) {
		check(off <= w->stream_len && PAGE_SIZE <= w->stream_len - off);
		check(!data || !memcmp(w->stream + off, data, PAGE_SIZE));
	}
	return 0;
}

static void decode(const struct stream_section *s, struct walk *w)
{
	char name[STREAM_NAME_MAX + 1];
	struct errmsg err = { "" };
	const uint8_t *st;
	unsigned idx;
	size_t len;

	switch ((unsigned)s->type) {
	case STREAM_CPU:
		check(!stream_section_cpu(s, &idx, &st, &len, &err));
		check(st + len == s->data + s->len);
		break;
	case STREAM_DEVICE:
		check(!stream_section_device(s, name, &st, &len, &err));
		check(strlen(name) >= 1 && strlen(name) <= STREAM_NAME_MAX);
		for (size_t i = 0; name[i]; i++)
			check(name[i] >= 0x20 && name[i] <= 0x7e);
		check(st + len == s->data + s->len);
		break;
	case STREAM_PENDING: {
		const uint8_t *bits;
		uint64_t first;
		uint32_t n;

		if (stream_section_pending(s, RAM_PAGES, &first, &n, &bits,
					   &err)) {
			check(err.text[0]);
			break;
		}
		check(n >= 1 && first + n <= RAM_PAGES);
		check(bits + (n + 7) / 8 == s->data + s->len);
		check(n % 8 == 0 || !(bits[n / 8] >> (n % 8)));
		break;
	}
	case STREAM_PAGEMAP: {
		const uint8_t *bytes;
		uint64_t total, at;
		size_t n;

		if (stream_section_pagemap(s, &total, &at, &bytes, &n, &err)) {
			check(err.text[0]);
			break;
		}
		check(n >= 1 && at < total && n <= total - at);
		check(bytes + n == s->data + s->len);
		break;
	}
	case STREAM_RAM:
		check(s->len >= 16);
		w->next_page = get_le64(s->data);
		w->end_page = w->next_page + get_le32(s->data + 8);
		w->compressed = s->compressed;
		w->deferred = s->deferred;
		if (stream_section_pages(s, RAM_PAGES, page_fn, w, &err))
			check(err.text[0] && w->next_page == get_le64(s->data));
		else
			check(w->next_page == w->end_page);
		break;
	default:
		break;
	}
}

static void read_stream(const uint8_t *p, size_t len)
{
	struct walk w = { .stream = p, .stream_len = len };
	struct errmsg err = { "" };
	struct stream_reader *r;
	struct stream_section s;
	int ret, last = -1;

	int fd = as_fd(p, len);

	ret = stream_reader_create(fd, &r, &err);
	if (ret) {
		check(ret == -EBADMSG || ret == -ENODATA ||
		      ret == -EPROTONOSUPPORT);
		check(err.text[0]);
		return;
	}
	if (defer_ram)
		check(!stream_reader_defer_ram(r));
	while (!(ret = stream_next(r, &s, &err))) {
		if (s.deferred) {
			struct errmsg why = { "" };
			int v;

			check(defer_ram && s.type == STREAM_RAM && !s.compressed);
			v = stream_verify_deferred(fd, &s.check, &why);
			check(v == 0 || (v == -EBADMSG && why.text[0]));
		}
		check((int)s.index > last && s.len <= STREAM_SECTION_MAX);
		check((s.index == 0) == (s.type == STREAM_CONFIG));
		check(!s.compressed || s.type == STREAM_RAM);
		last = (int)s.index;
		decode(&s, &w);
		if (s.type == STREAM_END)
			break;
	}
	if (!ret)
		ret = stream_reader_finish(r, &err);
	check(ret == 0 || ret == -EBADMSG || ret == -ENODATA ||
	      ret == -EPROTO);
	check(ret == 0 || err.text[0]);
	/* once failed, always failed */
	if (ret)
		check(stream_next(r, &s, &err) == ret || ret == -ENODATA);
	stream_reader_destroy(r);
}

/* Records to sections, as described at the top. */
static void frame(const uint8_t *in, size_t len, bool zstd_header)
{
	static uint8_t z[ZSTD_COMPRESSBOUND(70000)], page[PAGE_SIZE];
	struct state_buf b, payload;
	unsigned index = 0;
	size_t start;

	state_buf_init(&b);
	state_put_bytes(&b, "\x89rackvm\n", 8);
	state_put_u32(&b, STREAM_VERSION);
	state_put_u32(&b, zstd_header);
	state_put_u16(&b, 4);
	state_put_bytes(&b, "fuzz", 4);
	state_put_u64(&b, XXH3_64bits(b.data, b.len));
	while (len >= 4) {
		unsigned type = in[0], flags = in[1] & 3;
		size_t n = get_le16(in + 2);
		const uint8_t *data;

		n = n < len - 4 ? n : len - 4;
		state_buf_init(&payload);
		if (n)	/* state_put_bytes(): NULL + 0 on an empty buffer */
			state_put_bytes(&payload, in + 4, n);
		if ((in[1] & 0x40) && n >= 16) {
			uint32_t pages = get_le32(in + 4 + 8) & 0x1ff, zero = 0;

			for (size_t i = 16; i < n && i < 16 + 32; i++)
				zero += (uint32_t)__builtin_popcount(in[4 + i]);
			/* at most 16 pages of data: more only slows the
			 * fuzzer down (a wrong count is refused as well) */
			for (uint32_t i = zero; i < pages && i < zero + 16;
			     i++) {
				memset(page, (int)i, PAGE_SIZE);
				state_put_bytes(&payload, page, PAGE_SIZE);
			}
		}
		data = payload.data;
		n = payload.len;
		if ((in[1] & 0x80) && n <= 70000) {
			n = ZSTD_compress(z, sizeof(z), payload.data, n, 1);
			check(!ZSTD_isError(n));
			data = z;
			flags |= 1;
		}
		start = b.len;
		state_put_u16(&b, (uint16_t)type);
		state_put_u16(&b, (uint16_t)flags);
		state_put_u32(&b, (uint32_t)n);
		if (n)
			state_put_bytes(&b, data, n);
		state_put_u64(&b, XXH3_64bits_withSeed(b.data + start, 8 + n,
						       index++));
		state_buf_release(&payload);
		n = 4 + (size_t)get_le16(in + 2);
		n = n < len ? n : len;
		in += n;
		len -= n;
	}
	check(!state_buf_error(&b));
	read_stream(b.data, b.len);
	state_buf_release(&b);
}

static uint8_t pages[8 * PAGE_SIZE], back[8 * PAGE_SIZE];

static int restore_page(void *opaque, uint64_t page, const uint8_t *data,
			uint64_t off)
{
	uint8_t *dst = back + (page - 3) * PAGE_SIZE;

	(void)opaque;
	check(page >= 3 && page < 3 + 8 && (off % PAGE_SIZE) == 0);
	if (data)
		memcpy(dst, data, PAGE_SIZE);
	else
		memset(dst, 0, PAGE_SIZE);
	return 0;
}

/* Eight bytes of bitmap from the input (zeros past its end). */
static const uint8_t *in_bits(const uint8_t *in, size_t len)
{
	static uint8_t bits[8];

	memset(bits, 0, sizeof(bits));
	memcpy(bits, in, len < sizeof(bits) ? len : sizeof(bits));
	return bits;
}

/* The writer's own output reads back as the pages that went in, and
 * post-copy's sections as they went in. */
static void write_and_read(const uint8_t *in, size_t len)
{
	struct stream_options opt = { .compress = len && (in[0] & 1) };
	uint32_t n = (uint32_t)((len + PAGE_SIZE - 1) / PAGE_SIZE), zero = 0;
	struct stream_counts wc, rc;
	const uint8_t *bits;
	uint64_t first;
	uint32_t nbits;
	struct stream_writer *w;
	struct stream_reader *r;
	struct stream_section s;
	int fd = memfd_create("fuzz-writer", 0);

	n = n < 1 ? 1 : n > 8 ? 8 : n;
	memset(pages, 0, sizeof(pages));
	memcpy(pages, in, len < sizeof(pages) ? len : sizeof(pages));
	memset(back, 0xaa, sizeof(back));
	for (uint32_t i = 0; i < n; i++) {
		uint8_t z[PAGE_SIZE] = { 0 };

		zero += !memcmp(pages + i * PAGE_SIZE, z, PAGE_SIZE);
	}
	check(fd >= 0);
	check(!stream_writer_create(fd, "fuzz", &opt, &w, NULL));
	check(!stream_put(w, STREAM_CONFIG, "{}", 2, NULL));
	check(!stream_put_pages(w, 3, pages, n, NULL));
	/* the input's first bytes as post-copy's pending bits */
	check(!stream_put_pending(w, 5, in_bits(in, len), 8 * 8 - 3, NULL));
	check(!stream_put(w, (enum stream_type)STREAM_HANDOVER, NULL, 0, NULL));
	check(!stream_put(w, (enum stream_type)STREAM_GO, NULL, 0, NULL));
	check(!stream_put(w, (enum stream_type)STREAM_SYNC, NULL, 0, NULL));
	/* the input as a page map (one piece: inputs are short) */
	if (len)
		check(len <= STREAM_PAGEMAP_PIECE &&
		      !stream_put_pagemap(w, in, len, NULL));
	else
		check(stream_put_pagemap(w, in, 0, NULL) == -EINVAL);
	check(!stream_finish(w, NULL));
	stream_writer_counts(w, &wc);
	stream_writer_destroy(w);
	check(wc.pages == n && wc.zero_pages == zero &&
	      wc.sections == 7 + (len > 0));
	check(lseek(fd, 0, SEEK_SET) == 0);
	check(!stream_reader_create(fd, &r, NULL));
	check(!stream_next(r, &s, NULL) && s.type == STREAM_CONFIG);
	check(!stream_next(r, &s, NULL) && s.type == STREAM_RAM);
	check(!stream_section_pages(&s, 3 + n, restore_page, NULL, NULL));
	check(!memcmp(back, pages, n * PAGE_SIZE));
	check(!stream_next(r, &s, NULL) && (unsigned)s.type == STREAM_PENDING);
	check(!stream_section_pending(&s, 5 + 61, &first, &nbits, &bits, NULL));
	check(first == 5 && nbits == 61);
	check(!memcmp(bits, in_bits(in, len), 7) &&
	      bits[7] == (in_bits(in, len)[7] & 0x1f));
	check(stream_section_pending(&s, 5 + 60, &first, &nbits, &bits, NULL) ==
	      -EBADMSG);
	check(!stream_next(r, &s, NULL) && (unsigned)s.type == STREAM_HANDOVER);
	check(!stream_next(r, &s, NULL) && (unsigned)s.type == STREAM_GO);
	check(!stream_next(r, &s, NULL) && (unsigned)s.type == STREAM_SYNC);
	if (len) {
		const uint8_t *map;
		uint64_t total, at;
		size_t got;

		check(!stream_next(r, &s, NULL) &&
		      (unsigned)s.type == STREAM_PAGEMAP);
		check(!stream_section_pagemap(&s, &total, &at, &map, &got, NULL));
		check(total == len && at == 0 && got == len &&
		      !memcmp(map, in, len));
	}
	check(!stream_next(r, &s, NULL) && s.type == STREAM_END);
	check(!stream_reader_finish(r, NULL));
	stream_reader_counts(r, &rc);
	check(!memcmp(&rc, &wc, sizeof(rc)));
	stream_reader_destroy(r);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	defer_ram = data[0] != 0xff && (data[0] & 4);
	if (data[0] == 0xff)
		write_and_read(data + 1, size - 1);
	else if (data[0] & 1)
		frame(data + 1, size - 1, data[0] & 2);
	else
		read_stream(data + 1, size - 1);
	return 0;
}
