// SPDX-License-Identifier: MIT
/*
 * A reader that defers RAM checksums (stream_reader_defer_ram(), a lazy
 * restore's), without KVM: it gives the pages and offsets a full read
 * gives, without reading page data (a flipped data byte passes the read
 * and fails the later stream_verify_deferred(), which names the
 * section); it still refuses at once whatever the RAM header, bitmap or
 * padding break, and a stream that ends inside a section; compressed
 * sections, and every section of a pipe, are checked in full as before.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "harness.h"
#include "migrate/stream.h"
#include "util/full_io.h"
#include "util/page.h"
#include "util/state_buf.h"

#define PAGES 700u		/* 3 RAM sections: 256, 256, 188 pages */

struct seen {
	uint64_t off[PAGES];	/* 0: zero page */
	bool set[PAGES];
	unsigned raw, compressed, deferred;
	struct stream_deferred check[8];
	struct stream_counts counts;
};

/* Pages in turn random, zero, and text (which zstd shrinks); the first
 * 256 random (stay raw even compressed). */
static void make_ram(uint8_t *ram)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned pg = 0; pg < PAGES; pg++) {
		uint8_t *p = ram + (size_t)pg * PAGE_SIZE;
		unsigned kind = pg < 256 ? 0 : pg % 3;

		memset(p, 0, PAGE_SIZE);
		for (size_t i = 0; kind == 0 && i < PAGE_SIZE; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(p + i, &x, 8);
		}
		for (size_t i = 0; kind == 2 && i + 16 < PAGE_SIZE; i += 16)
			snprintf((char *)p + i, 17, "page %09u ", pg);
	}
}

static int temp_file(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/defer-XXXXXX", harness_tmpdir());
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* config, vm, 3 RAM sections, end: into a new temporary file. */
static int write_stream(bool compress, const uint8_t *ram)
{
	struct stream_options opt = { .compress = compress };
	struct stream_writer *w;
	struct errmsg err;
	int fd = temp_file(), ret;

	if (fd < 0)
		return -1;
	ret = stream_writer_create(fd, "rackvm test", &opt, &w, &err);
	if (!ret)
		ret = stream_put(w, STREAM_CONFIG, "{}", 2, &err);
	if (!ret)
		ret = stream_put(w, STREAM_VM, "vm", 2, &err);
	for (unsigned pg = 0; !ret && pg < PAGES; pg += 256)
		ret = stream_put_pages(w, pg, ram + (size_t)pg * PAGE_SIZE,
				       PAGES - pg < 256 ? PAGES - pg : 256,
				       &err);
	if (!ret)
		ret = stream_finish(w, &err);
	stream_writer_destroy(w);
	if (ret || lseek(fd, 0, SEEK_SET)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int note_page(void *opaque, uint64_t page, const uint8_t *data,
		     uint64_t off)
{
	struct seen *s = opaque;

	if (page >= PAGES || s->set[page])
		return -EEXIST;
	s->set[page] = true;
	s->off[page] = data || off ? off : 0;
	return 0;
}

/* Reads the stream on @fd from its start, deferring when @defer, and
 * notes every page's offset. */
static int read_stream(int fd, bool defer, struct seen *s, struct errmsg *err)
{
	struct stream_reader *r;
	struct stream_section sec;
	int ret;

	memset(s, 0, sizeof(*s));
	if (lseek(fd, 0, SEEK_SET))
		return -errno;
	ret = stream_reader_create(fd, &r, err);
	if (ret)
		return ret;
	if (defer && stream_reader_defer_ram(r))
		ret = errmsg_set(err, -ESPIPE, "cannot defer");
	while (!ret) {
		ret = stream_next(r, &sec, err);
		if (ret || sec.type == STREAM_END)
			break;
		if (sec.type != STREAM_RAM)
			continue;
		*(sec.compressed ? &s->compressed : &s->raw) += 1;
		if (sec.deferred && s->deferred < 8)
			s->check[s->deferred++] = sec.check;
		ret = stream_section_pages(&sec, PAGES, note_page, s, err);
	}
	if (!ret)
		ret = stream_reader_finish(r, err);
	stream_reader_counts(r, &s->counts);
	stream_reader_destroy(r);
	return ret;
}

#define READ_OK(fd, defer, s)                                                  \
	do {                                                                   \
		struct errmsg e_ = { "" };                                     \
		if (read_stream((fd), (defer), (s), &e_)) {                    \
			harness_fail(__FILE__, __LINE__, "read: %s", e_.text); \
			return;                                                \
		}                                                              \
	} while (0)

static void flip(int fd, uint64_t off)
{
	uint8_t b;

	CHECK_EQ(pread_full(fd, &b, 1, off), 0);
	b ^= 0xff;
	CHECK_EQ(pwrite_full(fd, &b, 1, off), 0);
}

TEST(stream_defer_gives_the_pages_of_a_full_read_and_checks_later)
{
	uint8_t *ram = malloc((size_t)PAGES * PAGE_SIZE);
	struct seen *full = calloc(1, sizeof(*full));
	struct seen *lazy = calloc(1, sizeof(*lazy));
	struct errmsg err = { "" };
	char want[96];
	int fd;

	CHECK(ram && full && lazy);
	make_ram(ram);
	fd = write_stream(false, ram);
	CHECK(fd >= 0);
	READ_OK(fd, false, full);
	READ_OK(fd, true, lazy);
	CHECK_EQ(full->raw, 3);
	CHECK_EQ(full->deferred, 0);
	CHECK_EQ(lazy->deferred, 3);
	CHECK(!memcmp(full->off, lazy->off, sizeof(full->off)));
	CHECK(!memcmp(full->set, lazy->set, sizeof(full->set)));
	CHECK(!memcmp(&full->counts, &lazy->counts, sizeof(full->counts)));
	CHECK_EQ(lazy->counts.pages, PAGES);
	CHECK_EQ(lazy->off[256], 0);		/* zero page */
	CHECK(lazy->off[257] && lazy->off[257] % PAGE_SIZE == 0);
	for (unsigned i = 0; i < 3; i++) {
		CHECK_EQ(lazy->check[i].index, 2 + i);
		CHECK_EQ(stream_verify_deferred(fd, &lazy->check[i], &err), 0);
	}
	if (harness_failed())
		return;

	/* one byte of page 300's data: the full read refuses the file, the
	 * deferred one does not read it, and only that section's check
	 * fails, naming it */
	flip(fd, lazy->off[300] + 123);
	CHECK_EQ(read_stream(fd, false, full, &err), -EBADMSG);
	CHECK(strstr(err.text, "section 3 (ram)") &&
	      strstr(err.text, "checksum mismatch"));
	READ_OK(fd, true, lazy);
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[0], &err), 0);
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[2], &err), 0);
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[1], &err), -EBADMSG);
	snprintf(want, sizeof(want), "section 3 (ram) at byte %llu: checksum "
		 "mismatch", (unsigned long long)lazy->check[1].start);
	CHECK(!strcmp(err.text, want));
	flip(fd, lazy->off[300] + 123);
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[1], &err), 0);

	/* a file cut inside the section since; a descriptor no reader gives */
	CHECK_EQ(ftruncate(fd, (off_t)lazy->off[300]), 0);
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[1], &err), -ENODATA);
	CHECK(strstr(err.text, "section 3 (ram) at byte") &&
	      strstr(err.text, "ends inside it"));
	lazy->check[0].len = STREAM_SECTION_MAX + 1;
	CHECK_EQ(stream_verify_deferred(fd, &lazy->check[0], &err), -EINVAL);
	close(fd);
	free(ram);
	free(full);
	free(lazy);
}

/* Compressed RAM sections are read and checked in full: a flipped byte
 * in one is refused by stream_next() itself. */
TEST(stream_defer_checks_compressed_sections_at_once)
{
	uint8_t *ram = malloc((size_t)PAGES * PAGE_SIZE);
	struct seen *s = calloc(1, sizeof(*s));
	struct errmsg err = { "" };
	int fd;

	CHECK(ram && s);
	make_ram(ram);
	fd = write_stream(true, ram);
	CHECK(fd >= 0);
	READ_OK(fd, true, s);
	CHECK_EQ(s->compressed, 2);
	CHECK_EQ(s->deferred, 1);		/* the random pages, raw */
	CHECK_EQ(s->counts.pages, PAGES);
	/* the last section before END is a compressed RAM one */
	flip(fd, (uint64_t)lseek(fd, 0, SEEK_END) - 16 - 8 - 20);
	CHECK_EQ(read_stream(fd, true, s, &err), -EBADMSG);
	CHECK(strstr(err.text, "section 4 (ram)") &&
	      strstr(err.text, "checksum mismatch"));
	close(fd);
	free(ram);
	free(s);
}

/* A pipe cannot seek: the reader says so and reads as it always did. */
TEST(stream_defer_refused_on_a_pipe)
{
	uint8_t *ram = malloc((size_t)PAGES * PAGE_SIZE);
	uint8_t *bytes = malloc(4u << 20);
	struct stream_reader *r;
	struct stream_section sec;
	struct errmsg err = { "" };
	unsigned deferred = 0, ram_sections = 0;
	int fds[2], fd;
	off_t len;

	CHECK(ram && bytes);
	make_ram(ram);
	fd = write_stream(false, ram);
	CHECK(fd >= 0);
	len = lseek(fd, 0, SEEK_END);
	CHECK(len > 0 && len < (4 << 20));
	CHECK_EQ(pread_full(fd, bytes, (size_t)len, 0), 0);
	close(fd);
	CHECK_EQ(pipe(fds), 0);
	if (fork() == 0) {
		close(fds[0]);
		_exit(write_full(fds[1], bytes, (size_t)len) ? 1 : 0);
	}
	close(fds[1]);
	CHECK_EQ(stream_reader_create(fds[0], &r, &err), 0);
	CHECK_EQ(stream_reader_defer_ram(r), -ESPIPE);
	while (!stream_next(r, &sec, &err) && sec.type != STREAM_END) {
		ram_sections += sec.type == STREAM_RAM;
		deferred += sec.deferred;
	}
	CHECK_EQ(stream_reader_finish(r, &err), 0);
	CHECK_EQ(ram_sections, 3);
	CHECK_EQ(deferred, 0);
	stream_reader_destroy(r);
	close(fds[0]);
	wait(NULL);
	free(ram);
	free(bytes);
}

/* --- hostile RAM heads, built from docs/stream-format.md ---------------- */

static void raw_section(struct state_buf *b, unsigned index, unsigned type,
			const void *p, size_t len)
{
	size_t start = b->len;

	state_put_u16(b, (uint16_t)type);
	state_put_u16(b, 0);
	state_put_u32(b, (uint32_t)len);
	if (len)
		state_put_bytes(b, p, len);
	state_put_u64(b, XXH3_64bits_withSeed(b->data + start, 8 + len, index));
}

/* Header, config, a RAM section with @p's payload, END: @cut bytes
 * short of all that. */
static int ram_fd(const struct state_buf *p, size_t cut)
{
	struct state_buf b;
	int fd = memfd_create("defer", 0);

	state_buf_init(&b);
	state_put_bytes(&b, "\x89rackvm\n", 8);
	state_put_u32(&b, 1);
	state_put_u32(&b, 0);
	state_put_u16(&b, 4);
	state_put_bytes(&b, "test", 4);
	state_put_u64(&b, XXH3_64bits(b.data, b.len));
	raw_section(&b, 0, STREAM_CONFIG, "{}", 2);
	raw_section(&b, 1, STREAM_RAM, p->data, p->len);
	raw_section(&b, 2, STREAM_END, NULL, 0);
	if (fd >= 0 && write_full(fd, b.data, b.len - cut)) {
		close(fd);
		fd = -1;
	}
	state_buf_release(&b);
	return fd;
}

static void ram_payload(struct state_buf *p, uint64_t first, uint32_t npages,
			uint32_t pad, uint8_t bits, size_t bm,
			uint32_t data_pages)
{
	state_buf_init(p);
	state_put_u64(p, first);
	state_put_u32(p, npages);
	state_put_u32(p, pad);
	for (size_t i = 0; i < bm; i++)
		state_put_u8(p, bits);
	for (uint32_t i = 0; i < pad; i++)
		state_put_u8(p, 0);
	for (size_t i = 0; i < data_pages * PAGE_SIZE; i++)
		state_put_u8(p, 0x11);
}

/* The stream of @p, @cut bytes short, read deferring: its error. */
static int read_ram(const struct state_buf *p, size_t cut, unsigned *deferred,
		    struct errmsg *err)
{
	struct seen *s = calloc(1, sizeof(*s));
	int fd = ram_fd(p, cut), ret;

	if (!s || fd < 0)
		ret = -ENOMEM;
	else
		ret = read_stream(fd, true, s, err);
	*deferred = s ? s->deferred : 0;
	if (fd >= 0)
		close(fd);
	free(s);
	return ret;
}

TEST(stream_defer_refuses_bad_ram_heads_at_once)
{
	struct {
		uint64_t first;
		uint32_t npages, pad, bm, data_pages;
		uint8_t bits;
		size_t cut;
		int want;
		const char *why;
	} cases[] = {
		{ 0, 0, 0, 0, 0, 0xff, 0, -EBADMSG, "0 pages, not 1..256" },
		{ 0, 257, 0, 32, 0, 0xff, 0, -EBADMSG, "257 pages, not 1..256" },
		{ UINT64_MAX - 1, 1, 0, 1, 0, 0xff, 0, -EBADMSG,
		  "first page 0xfffffffffffffffe beyond any address" },
		{ 0, 1, 4096, 1, 0, 0xff, 0, -EBADMSG, "padding of 4096 bytes" },
		{ 0, 4, 0, 1, 0, 0xff, 0, -EBADMSG,
		  "zero-page bits set past page 4" },
		{ 0, 8, 0, 1, 1, 0xff, 0, -EBADMSG,
		  "4096 bytes of page data for 0 non-zero pages" },
		{ 0, 8, 0, 1, 1, 0xfe, 0, 0, "" },
		{ 0, 8, 0, 1, 2, 0xfe, 0, -EBADMSG,
		  "8192 bytes of page data for 1 non-zero pages" },
		{ 0, 16, 0, 1, 0, 0xff, 0, -EBADMSG,
		  "17 bytes, short of its bitmap and padding" },
		/* cut inside the page data, or its checksum */
		{ 0, 8, 0, 1, 1, 0xfe, 16 + 8 + 100, -ENODATA,
		  "the stream ends inside section 1 (ram)" },
		{ 0, 8, 0, 1, 1, 0xfe, 16 + 3, -ENODATA,
		  "the stream ends inside section 1 (ram)" },
	};
	const char *where = "section 1 (ram) at byte 48: ";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errmsg err = { "" };
		struct state_buf p;
		unsigned deferred;
		char want[128];
		int ret;

		ram_payload(&p, cases[i].first, cases[i].npages, cases[i].pad,
			    cases[i].bits, cases[i].bm, cases[i].data_pages);
		ret = read_ram(&p, cases[i].cut, &deferred, &err);
		state_buf_release(&p);
		snprintf(want, sizeof(want), "%s%s", cases[i].cut ? "" : where,
			 cases[i].why);
		if (ret != cases[i].want ||
		    (ret && !strstr(err.text, want)) || (!ret && deferred != 1))
			harness_fail(__FILE__, __LINE__, "case %zu: got %d \"%s\""
				     ", want %d \"%s\"", i, ret, err.text,
				     cases[i].want, want);
	}
}
