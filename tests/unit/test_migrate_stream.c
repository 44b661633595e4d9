// SPDX-License-Identifier: MIT
/*
 * The snapshot/migration stream (migrate/stream.h), without KVM: every
 * section type makes the round trip through a file, a pipe and a socket,
 * raw and compressed, with zero pages as bitmap bits and page offsets
 * that point at the page's bytes; and the reader refuses what the format
 * (docs/stream-format.md) says it must, naming the section
 * (test_migrate_stream_reject.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "migrate/stream.h"
#include "util/full_io.h"
#include "util/page.h"

#define GUEST_PAGES 600ull
#define SAMPLE_SECTIONS 10	/* config, vm, 2 cpus, 2 devices, 3 ram, end */

static const char config_json[] = "{\"memory\":\"2400K\",\"cpus\":2}";
static const uint8_t vm_state[] = { 1, 0, 0, 0, 'i', 'r', 'q' };

/* --- a guest's RAM and a stream of it ----------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Pages 0..255 random, 256..511 zero, 512.. in turn zero, random and
 * text (compressible).  Returns the number of zero pages. */
static uint64_t make_ram(uint8_t *ram)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull, zero = 0;

	for (uint64_t pg = 0; pg < GUEST_PAGES; pg++) {
		uint8_t *p = ram + pg * PAGE_SIZE;
		unsigned kind = pg < 256 ? 1 : pg < 512 ? 0 : pg % 3;

		memset(p, 0, PAGE_SIZE);
		if (kind == 0)
			zero++;
		for (size_t i = 0; kind == 1 && i < PAGE_SIZE; i += 8) {
			uint64_t v = rng_next(&seed);

			memcpy(p + i, &v, 8);
		}
		for (size_t i = 0; kind == 2 && i + 16 < PAGE_SIZE; i += 16)
			snprintf((char *)p + i, 17, "page %09llu ", (unsigned long long)pg);
	}
	return zero;
}

static int write_sample(int fd, bool compress, const uint8_t *ram,
			struct stream_counts *counts, struct errmsg *err)
{
	struct stream_options opt = { .compress = compress };
	struct stream_writer *w;
	int ret;

	ret = stream_writer_create(fd, "rackvm test", &opt, &w, err);
	if (ret)
		return ret;
	ret = stream_put(w, STREAM_CONFIG, config_json, strlen(config_json),
			 err);
	if (!ret)
		ret = stream_put(w, STREAM_VM, vm_state, sizeof(vm_state), err);
	for (unsigned i = 0; !ret && i < 2; i++)
		ret = stream_put_cpu(w, i, "cpu-state", 9 + i, err);
	if (!ret)
		ret = stream_put_device(w, "uart@0x3f8", "u", 1, err);
	if (!ret)
		ret = stream_put_device(w, "virtio-mmio@2", NULL, 0, err);
	for (uint64_t pg = 0; !ret && pg < GUEST_PAGES; pg += 256) {
		uint32_t n = GUEST_PAGES - pg < 256 ? GUEST_PAGES - pg : 256;

		ret = stream_put_pages(w, pg, ram + pg * PAGE_SIZE, n, err);
	}
	if (!ret)
		ret = stream_finish(w, err);
	stream_writer_counts(w, counts);
	stream_writer_destroy(w);
	return ret;
}

struct restore {
	uint8_t *ram;
	int fd;			/* -1: do not check stream offsets */
	unsigned compressed;	/* RAM sections */
	unsigned raw;
	bool section_compressed;
	bool open_ended;	/* a connection goes on after END: never look */
};

static int put_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t off)
{
	struct restore *r = opaque;
	uint8_t back[PAGE_SIZE];

	if (!data) {
		memset(r->ram + page * PAGE_SIZE, 0, PAGE_SIZE);
		return off ? -EFAULT : 0;
	}
	memcpy(r->ram + page * PAGE_SIZE, data, PAGE_SIZE);
	if (r->section_compressed)
		return off ? -EFAULT : 0;
	/* page-aligned in a file (a lazy restore reads them in place) */
	if (!off || (r->fd >= 0 && off % PAGE_SIZE))
		return -EFAULT;
	if (r->fd >= 0 && (pread_full(r->fd, back, PAGE_SIZE, off) ||
			   memcmp(back, data, PAGE_SIZE)))
		return -EFAULT;
	return 0;
}

/* Reads a sample stream back into r->ram, checking every section. */
static int read_sample(int fd, struct restore *r, struct stream_counts *c,
		       struct errmsg *err)
{
	struct stream_reader *sr;
	struct stream_section s;
	char name[STREAM_NAME_MAX + 1];
	const uint8_t *st;
	unsigned idx, cpus = 0, devs = 0;
	size_t len;
	int ret;

	ret = stream_reader_create(fd, &sr, err);
	if (ret)
		return ret;
	if (strcmp(stream_reader_producer(sr), "rackvm test"))
		ret = -EINVAL;
	for (unsigned i = 0; !ret; i++) {
		ret = stream_next(sr, &s, err);
		if (ret || s.index != i || s.payload_offset < 30 ||
		    (s.type == STREAM_END) != (i == SAMPLE_SECTIONS - 1))
			break;
		if (s.type == STREAM_CONFIG &&
		    (s.len != strlen(config_json) ||
		     memcmp(s.data, config_json, s.len)))
			ret = -EINVAL;
		if (s.type == STREAM_VM && (s.len != sizeof(vm_state) ||
					    memcmp(s.data, vm_state, s.len)))
			ret = -EINVAL;
		if (s.type == STREAM_CPU &&
		    !(ret = stream_section_cpu(&s, &idx, &st, &len, err)) &&
		    (idx != cpus || len != 9 + cpus++ || memcmp(st, "cpu-state", 9)))
			ret = -EINVAL;
		if (s.type == STREAM_DEVICE &&
		    !(ret = stream_section_device(&s, name, &st, &len, err)) &&
		    strcmp(name, devs++ ? "virtio-mmio@2" : "uart@0x3f8"))
			ret = -EINVAL;
		if (s.type == STREAM_RAM) {
			r->section_compressed = s.compressed;
			*(s.compressed ? &r->compressed : &r->raw) += 1;
			ret = stream_section_pages(&s, GUEST_PAGES, put_page,
						   r, err);
		}
		if (s.type == STREAM_END)
			break;
	}
	if (!ret && !r->open_ended)
		ret = stream_reader_finish(sr, err);
	stream_reader_counts(sr, c);
	stream_reader_destroy(sr);
	return ret;
}

static int temp_file(void)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/stream-XXXXXX", harness_tmpdir());
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static bool counts_equal(const struct stream_counts *a,
			 const struct stream_counts *b)
{
	return a->bytes == b->bytes && a->sections == b->sections &&
	       a->pages == b->pages && a->zero_pages == b->zero_pages;
}

/* The sample through a file: written, read back page for page. */
static void round_trip_file(bool compress, uint64_t *bytes)
{
	uint8_t *ram = malloc(GUEST_PAGES * PAGE_SIZE);
	uint8_t *back = malloc(GUEST_PAGES * PAGE_SIZE);
	struct restore r = { .ram = back };
	struct stream_counts wc, rc;
	struct errmsg err = { "" };
	uint64_t zero;
	int fd = temp_file();

	CHECK(ram && back && fd >= 0);
	zero = make_ram(ram);
	memset(back, 0xaa, GUEST_PAGES * PAGE_SIZE);
	CHECK_EQ(write_sample(fd, compress, ram, &wc, &err), 0);
	CHECK_EQ(wc.sections, SAMPLE_SECTIONS);
	CHECK_EQ(wc.pages, GUEST_PAGES);
	CHECK_EQ(wc.zero_pages, zero);
	CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)wc.bytes);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	r.fd = fd;
	if (read_sample(fd, &r, &rc, &err))
		harness_fail(__FILE__, __LINE__, "read: %s", err.text);
	CHECK(counts_equal(&wc, &rc));
	CHECK(!memcmp(ram, back, GUEST_PAGES * PAGE_SIZE));
	/* random pages stay raw; zero and text pages compress */
	CHECK_EQ(r.raw, compress ? 1 : 3);
	CHECK_EQ(r.compressed, compress ? 2 : 0);
	*bytes = wc.bytes;
	close(fd);
	free(ram);
	free(back);
}

TEST(stream_round_trip_file)
{
	uint64_t raw = 0, zstd = 0;

	round_trip_file(false, &raw);
	if (harness_failed())
		return;
	round_trip_file(true, &zstd);
	if (harness_failed())
		return;
	/* 600 pages minus the zero ones as data, a little framing */
	CHECK(raw > (GUEST_PAGES - 286) * PAGE_SIZE);
	CHECK(raw < (GUEST_PAGES - 286 + 6) * PAGE_SIZE);
	CHECK(zstd < raw - 25 * PAGE_SIZE);	/* 29 text pages compress */
}

struct pipe_writer {
	int fd;
	bool compress;
	const uint8_t *ram;
	struct stream_counts counts;
	int ret;
	struct errmsg err;
};

static void *pipe_writer_main(void *arg)
{
	struct pipe_writer *p = arg;

	p->ret = write_sample(p->fd, p->compress, p->ram, &p->counts, &p->err);
	close(p->fd);
	return NULL;
}

/* A pipe and a socket carry 64 KiB or so at a time: the reader gets
 * sections in pieces, the writer gets short writes.  Their raw pages are
 * not padded to page boundaries, as they are in a file. */
TEST(stream_round_trip_pipe_and_socket)
{
	uint8_t *ram = malloc(GUEST_PAGES * PAGE_SIZE);
	uint8_t *back = malloc(GUEST_PAGES * PAGE_SIZE);
	struct stream_counts in_file;
	struct errmsg ferr = { "" };
	int fd = temp_file();

	CHECK(ram && back && fd >= 0);
	make_ram(ram);
	CHECK_EQ(write_sample(fd, false, ram, &in_file, &ferr), 0);
	close(fd);
	for (int i = 0; i < 4; i++) {
		struct pipe_writer p = { .compress = i & 1, .ram = ram };
		struct restore r = { .ram = back, .fd = -1 };
		struct stream_counts rc;
		struct errmsg err = { "" };
		pthread_t t;
		int fds[2];

		CHECK_EQ(i < 2 ? pipe(fds) :
			 socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		p.fd = fds[1];
		memset(back, 0xaa, GUEST_PAGES * PAGE_SIZE);
		CHECK_EQ(pthread_create(&t, NULL, pipe_writer_main, &p), 0);
		if (read_sample(fds[0], &r, &rc, &err))
			harness_fail(__FILE__, __LINE__, "read: %s", err.text);
		pthread_join(t, NULL);
		close(fds[0]);
		CHECK_EQ(p.ret, 0);
		CHECK(counts_equal(&p.counts, &rc));
		CHECK(!memcmp(ram, back, GUEST_PAGES * PAGE_SIZE));
		/* three RAM sections, each up to a page of padding less */
		if (!p.compress)
			CHECK(p.counts.bytes < in_file.bytes &&
			      p.counts.bytes > in_file.bytes - 3 * PAGE_SIZE);
	}
	free(ram);
	free(back);
}

/* A writer whose peer went away fails with -EPIPE (no SIGPIPE kills the
 * test) and keeps failing; the writer refuses what breaks the format. */
TEST(stream_writer_errors)
{
	static uint8_t page[PAGE_SIZE];
	char big_name[STREAM_NAME_MAX + 2];
	struct stream_writer *w;
	struct errmsg err = { "" };
	void *big = calloc(1, STREAM_SECTION_MAX + 1);
	int fds[2];

	CHECK(big);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	CHECK_EQ(stream_writer_create(fds[0], "bad\nproducer", NULL, &w, &err),
		 -EINVAL);
	CHECK_EQ(stream_writer_create(fds[0], "rackvm test", NULL, &w, &err), 0);
	CHECK_EQ(stream_put(w, STREAM_VM, "x", 1, &err), -EINVAL);
	CHECK_EQ(stream_put_pages(w, 0, page, 1, &err), -EINVAL);
	CHECK_EQ(stream_put(w, STREAM_CONFIG, "{}", 2, &err), 0);
	CHECK_EQ(stream_put(w, STREAM_CONFIG, "{}", 2, &err), -EINVAL);
	CHECK_EQ(stream_put(w, STREAM_RAM, "x", 1, &err), -EINVAL);
	CHECK_EQ(stream_put(w, STREAM_VM, big, STREAM_SECTION_MAX + 1, &err),
		 -EMSGSIZE);
	memset(big_name, 'n', sizeof(big_name) - 1);
	big_name[sizeof(big_name) - 1] = '\0';
	CHECK_EQ(stream_put_device(w, big_name, "", 0, &err), -EINVAL);
	CHECK_EQ(stream_put_device(w, "tab\tname", "", 0, &err), -EINVAL);
	CHECK_EQ(stream_put_pages(w, 0, page, 0, &err), -EINVAL);
	CHECK_EQ(stream_put_pages(w, 0, page, STREAM_PAGES_MAX + 1, &err),
		 -EINVAL);
	close(fds[1]);
	CHECK_EQ(stream_put_pages(w, 0, page, 1, &err), -EPIPE);
	CHECK(strstr(err.text, "section 1 (ram)"));
	CHECK_EQ(stream_finish(w, &err), -EPIPE);
	stream_writer_destroy(w);
	close(fds[0]);

	CHECK_EQ(stream_writer_create(-1, "rackvm test", NULL, &w, &err),
		 -EBADF);
	CHECK_EQ(stream_writer_create(1, "rackvm test",
				      &(struct stream_options){ true, 99 },
				      &w, &err), -EINVAL);
	free(big);
}

/* Batched, single-page RAM sections wait in the writer until a section
 * of another type or the batch's end, then go out in order. */
TEST(stream_batch_holds_small_ram_sections_and_keeps_the_order)
{
	uint8_t *ram = malloc(GUEST_PAGES * PAGE_SIZE);
	uint8_t *back = malloc(GUEST_PAGES * PAGE_SIZE);
	struct restore r = { .ram = back, .fd = -1 };
	struct stream_counts wc, before, rc;
	struct errmsg err = { "" };
	struct stream_writer *w;
	int fd = temp_file();

	CHECK(ram && back && fd >= 0);
	make_ram(ram);
	memset(back, 0xaa, GUEST_PAGES * PAGE_SIZE);
	CHECK_EQ(stream_writer_create(fd, "rackvm test", NULL, &w, &err), 0);
	CHECK_EQ(stream_put(w, STREAM_CONFIG, config_json,
			    strlen(config_json), &err), 0);
	CHECK_EQ(stream_put(w, STREAM_VM, vm_state, sizeof(vm_state), &err), 0);
	stream_writer_counts(w, &before);
	CHECK_EQ(stream_writer_batch(w, true, &err), 0);
	for (uint64_t pg = 0; pg < 40; pg += 2)	/* every other page */
		CHECK_EQ(stream_put_pages(w, pg, ram + pg * PAGE_SIZE, 1, &err), 0);
	/* nothing of them written yet */
	CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)before.bytes);
	for (unsigned i = 0; i < 2; i++)	/* a CPU section writes them first */
		CHECK_EQ(stream_put_cpu(w, i, "cpu-state", 9 + i, &err), 0);
	stream_writer_counts(w, &wc);
	CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)wc.bytes);
	for (uint64_t pg = 1; pg < 40; pg += 2)
		CHECK_EQ(stream_put_pages(w, pg, ram + pg * PAGE_SIZE, 1, &err), 0);
	/* a large section goes after them, straight from where it is */
	CHECK_EQ(stream_put_pages(w, 40, ram + 40 * PAGE_SIZE, 256, &err), 0);
	CHECK_EQ(stream_writer_batch(w, false, &err), 0);
	CHECK_EQ(stream_put_pages(w, 296, ram + 296 * PAGE_SIZE, 256, &err), 0);
	CHECK_EQ(stream_put_pages(w, 552, ram + 552 * PAGE_SIZE,
				  GUEST_PAGES - 552, &err), 0);
	CHECK_EQ(stream_put_device(w, "uart@0x3f8", "u", 1, &err), 0);
	CHECK_EQ(stream_put_device(w, "virtio-mmio@2", NULL, 0, &err), 0);
	CHECK_EQ(stream_finish(w, &err), 0);
	stream_writer_counts(w, &wc);
	stream_writer_destroy(w);
	CHECK_EQ(lseek(fd, 0, SEEK_END), (off_t)wc.bytes);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(wc.sections, 4 + 40 + 3 + 2 + 1);
	{
		struct stream_reader *sr;
		struct stream_section s;

		CHECK_EQ(stream_reader_create(fd, &sr, &err), 0);
		for (unsigned i = 0; i < wc.sections; i++) {
			if (stream_next(sr, &s, &err))
				harness_fail(__FILE__, __LINE__, "read: %s", err.text);
			CHECK_EQ(s.index, i);
			/* the odd pages after the CPUs, the even before */
			if (i >= 2 && i < 22)
				CHECK(s.type == STREAM_RAM);
			if (i >= 22 && i < 24)
				CHECK(s.type == STREAM_CPU);
			if (s.type == STREAM_RAM)
				CHECK_EQ(stream_section_pages(&s, GUEST_PAGES,
							      put_page, &r, &err), 0);
		}
		CHECK(s.type == STREAM_END);
		CHECK_EQ(stream_reader_finish(sr, &err), 0);
		stream_reader_counts(sr, &rc);
		stream_reader_destroy(sr);
	}
	CHECK(counts_equal(&wc, &rc));
	CHECK(!memcmp(ram, back, GUEST_PAGES * PAGE_SIZE));
	close(fd);
	free(ram);
	free(back);
}

struct trickle {
	int fd;
	const uint8_t *bytes;
	size_t len;
	size_t chunk;
};

/* A few bytes at a time, so that the reader finds a section's end and
 * the next header in every state of arrival. */
static void *trickle_main(void *arg)
{
	struct trickle *t = arg;

	for (size_t at = 0; at < t->len; at += t->chunk) {
		size_t n = t->len - at < t->chunk ? t->len - at : t->chunk;

		if (write_full(t->fd, t->bytes + at, n))
			break;
		if (at % 4096 < t->chunk)
			sched_yield();
	}
	return NULL;
}

/* The reader takes the next header along with a section when it is
 * there, but never a byte after END: what follows a migration stream on
 * its connection is the protocol's ("GO"). */
TEST(stream_reader_never_reads_past_the_end)
{
	uint8_t *ram = malloc(GUEST_PAGES * PAGE_SIZE);
	uint8_t *back = malloc(GUEST_PAGES * PAGE_SIZE);
	struct stream_counts wc, rc;
	struct errmsg err = { "" };
	uint8_t *bytes;
	off_t len;
	int fd = temp_file();

	CHECK(ram && back && fd >= 0);
	make_ram(ram);
	CHECK_EQ(write_sample(fd, false, ram, &wc, &err), 0);
	CHECK_EQ(write_full(fd, "GO\n", 3), 0);
	len = lseek(fd, 0, SEEK_END);
	bytes = malloc((size_t)len);
	CHECK(bytes && pread_full(fd, bytes, (size_t)len, 0) == 0);
	for (int trickled = 0; trickled < 2; trickled++) {
		struct trickle t = { .bytes = bytes, .len = (size_t)len,
				     .chunk = trickled ? 7 : (size_t)len };
		struct restore r = { .ram = back, .fd = -1, .open_ended = true };
		char after[4] = "";
		pthread_t th;
		int fds[2];

		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		t.fd = fds[1];
		memset(back, 0xaa, GUEST_PAGES * PAGE_SIZE);
		/* 7 bytes at a time, or as much as the socket takes */
		CHECK_EQ(pthread_create(&th, NULL, trickle_main, &t), 0);
		if (read_sample(fds[0], &r, &rc, &err))
			harness_fail(__FILE__, __LINE__, "read: %s", err.text);
		pthread_join(th, NULL);
		close(fds[1]);
		CHECK(counts_equal(&wc, &rc));
		CHECK(!memcmp(ram, back, GUEST_PAGES * PAGE_SIZE));
		CHECK_EQ(read_full(fds[0], after, 3), 0);
		CHECK(!memcmp(after, "GO\n", 3));
		close(fds[0]);
	}
	free(bytes);
	close(fd);
	free(ram);
	free(back);
}
