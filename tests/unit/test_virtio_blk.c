// SPDX-License-Identifier: MIT
/* virtio-blk: the pure header/segment parsers, and request execution on
 * a temporary image file with hand-made chains (host buffers). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/blk.h"

#define DISK_SECTORS 64u

static void make_hdr(uint8_t *h, uint32_t type, uint64_t sector)
{
	memset(h, 0, VIRTIO_BLK_HDR_SIZE);
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
}

TEST(blk_parse_header_read_write)
{
	struct virtio_blk_req req;
	uint8_t h[16];

	make_hdr(h, VIRTIO_BLK_T_IN, 3);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 1025, 64, false, &req),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(req.type, VIRTIO_BLK_T_IN);
	CHECK_EQ(req.sector, 3);
	CHECK_EQ(req.data_len, 1024);
	/* the last sector exactly */
	make_hdr(h, VIRTIO_BLK_T_OUT, 63);
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 512, 1, 64, false, &req),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(req.data_len, 512);
	/* one past the end */
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 1024, 1, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);
	make_hdr(h, VIRTIO_BLK_T_IN, 64);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 513, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);
	/* a zero-length read at the end is fine */
	CHECK_EQ(virtio_blk_parse_header(h, 16, 1, 64, false, &req),
		 VIRTIO_BLK_S_OK);
	/* sector * 512 + length would wrap */
	make_hdr(h, VIRTIO_BLK_T_IN, UINT64_MAX / 512);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 513, UINT64_MAX / 512, false,
					 &req), VIRTIO_BLK_S_IOERR);
	make_hdr(h, VIRTIO_BLK_T_IN, UINT64_MAX);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 513, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);
	/* not whole sectors */
	make_hdr(h, VIRTIO_BLK_T_IN, 0);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 100, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);
	/* read-only disk */
	make_hdr(h, VIRTIO_BLK_T_OUT, 0);
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 512, 1, 64, true, &req),
		 VIRTIO_BLK_S_IOERR);
	make_hdr(h, VIRTIO_BLK_T_IN, 0);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 513, 64, true, &req),
		 VIRTIO_BLK_S_OK);
}

TEST(blk_parse_header_malformed)
{
	struct virtio_blk_req req;
	uint8_t h[16];

	make_hdr(h, VIRTIO_BLK_T_IN, 0);
	/* no status byte: nothing to answer */
	CHECK_EQ(virtio_blk_parse_header(h, 16, 0, 64, false, &req), -EINVAL);
	/* short header */
	CHECK_EQ(virtio_blk_parse_header(h, 15, 513, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);
	make_hdr(h, 99, 0);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 1, 64, false, &req),
		 VIRTIO_BLK_S_UNSUPP);
	make_hdr(h, VIRTIO_BLK_T_FLUSH, 12345);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 1, 64, true, &req),
		 VIRTIO_BLK_S_OK);
	make_hdr(h, VIRTIO_BLK_T_DISCARD, 0);
	CHECK_EQ(virtio_blk_parse_header(h, 16, 1, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);		/* no segment */
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 24, 1, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);		/* half a segment */
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 17 * 16, 1, 64, false, &req),
		 VIRTIO_BLK_S_IOERR);		/* too many segments */
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 32, 1, 64, false, &req),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(virtio_blk_parse_header(h, 16 + 32, 1, 64, true, &req),
		 VIRTIO_BLK_S_IOERR);
}

static void make_range(uint8_t *s, uint64_t sector, uint32_t n, uint32_t flags)
{
	memcpy(s, &sector, 8);
	memcpy(s + 8, &n, 4);
	memcpy(s + 12, &flags, 4);
}

TEST(blk_parse_range)
{
	struct virtio_blk_range r;
	uint8_t s[16];

	make_range(s, 8, 8, 0);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_DISCARD, 64, &r),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(r.sector, 8);
	CHECK_EQ(r.num_sectors, 8);
	make_range(s, 8, 8, VIRTIO_BLK_WRITE_ZEROES_UNMAP);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_DISCARD, 64, &r),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_WRITE_ZEROES, 64, &r),
		 VIRTIO_BLK_S_OK);
	make_range(s, 8, 8, 4);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_WRITE_ZEROES, 64, &r),
		 VIRTIO_BLK_S_UNSUPP);
	make_range(s, 60, 5, 0);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_DISCARD, 64, &r),
		 VIRTIO_BLK_S_IOERR);
	make_range(s, UINT64_MAX, 2, 0);
	CHECK_EQ(virtio_blk_parse_range(s, VIRTIO_BLK_T_DISCARD, UINT64_MAX, &r),
		 VIRTIO_BLK_S_IOERR);
}

/* ---- execution on a temporary image ----------------------------------- */

struct blk_fixture {
	char path[256];
	int fd;			/* our own view of the image */
	struct virtio_blk *b;
	struct virtq_chain *c;
	uint8_t hdr[16];
	uint8_t status;
};

static int blk_setup(struct blk_fixture *f, bool read_only, bool direct,
		     struct errmsg *err)
{
	struct virtio_blk_options opt = { .read_only = read_only,
					  .direct = direct };
	const char *dir = harness_tmpdir();
	uint8_t pattern[512];

	/* O_DIRECT needs a file system that has it: the test host's tmpfs
	 * (Linux < 6.6) does not, its scratch disk does */
	if (direct && getenv("RACK_SCRATCH"))
		dir = getenv("RACK_SCRATCH");
	snprintf(f->path, sizeof(f->path), "%s/blk-XXXXXX", dir);
	f->fd = mkstemp(f->path);
	if (f->fd < 0)
		return -errno;
	/* sector n is filled with byte n */
	for (unsigned s = 0; s < DISK_SECTORS; s++) {
		memset(pattern, (int)s, sizeof(pattern));
		if (pwrite(f->fd, pattern, 512, s * 512) != 512)
			return -EIO;
	}
	f->c = calloc(1, sizeof(*f->c));
	opt.path = f->path;
	return virtio_blk_open(&opt, &f->b, err);
}

static void blk_teardown(struct blk_fixture *f)
{
	if (f->b)
		virtio_blk_close(f->b);
	free(f->c);
	close(f->fd);
	unlink(f->path);
}

static void chain_reset(struct blk_fixture *f)
{
	f->c->nsegs = 0;
	f->c->readable = f->c->writable = 0;
	f->status = 0xee;
}

static void chain_add(struct blk_fixture *f, void *p, uint32_t len,
		      bool is_write)
{
	f->c->segs[f->c->nsegs++] = (struct virtq_seg){ p, len, is_write };
	if (is_write)
		f->c->writable += len;
	else
		f->c->readable += len;
}

/* header [+ data] + status, the usual three-descriptor shape */
static uint32_t run_req(struct blk_fixture *f, uint32_t type, uint64_t sector,
			void *data, uint32_t len, bool data_is_write)
{
	chain_reset(f);
	make_hdr(f->hdr, type, sector);
	chain_add(f, f->hdr, 16, false);
	if (len)
		chain_add(f, data, len, data_is_write);
	chain_add(f, &f->status, 1, true);
	return virtio_blk_execute(f->b, f->c);
}

TEST(blk_read_write_flush)
{
	static uint8_t buf[1024], back[1024];
	struct blk_fixture f = { 0 };

	CHECK_EQ(blk_setup(&f, false, false, NULL), 0);
	CHECK_EQ(virtio_blk_capacity(f.b), DISK_SECTORS);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_IN, 5, buf, 1024, true), 1025);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(buf[0], 5);
	CHECK_EQ(buf[1023], 6);

	memset(buf, 0xab, sizeof(buf));
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_OUT, 10, buf, 1024, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	/* on the file as soon as it completed */
	CHECK_EQ(pread(f.fd, back, 1024, 10 * 512), 1024);
	CHECK(memcmp(buf, back, 1024) == 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	blk_teardown(&f);
}

TEST(blk_header_split_across_buffers)
{
	static uint8_t data[512];
	struct blk_fixture f = { 0 };

	CHECK_EQ(blk_setup(&f, false, false, NULL), 0);
	chain_reset(&f);
	make_hdr(f.hdr, VIRTIO_BLK_T_IN, 7);
	chain_add(&f, f.hdr, 5, false);
	chain_add(&f, f.hdr + 5, 11, false);
	chain_add(&f, data, 200, true);
	chain_add(&f, data + 200, 312, true);
	chain_add(&f, &f.status, 1, true);
	CHECK_EQ(virtio_blk_execute(f.b, f.c), 513);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(data[0], 7);
	CHECK_EQ(data[511], 7);
	blk_teardown(&f);
}

TEST(blk_out_of_range_and_unsupported)
{
	static uint8_t buf[1024];
	struct blk_fixture f = { 0 };

	CHECK_EQ(blk_setup(&f, false, false, NULL), 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_IN, DISK_SECTORS - 1, buf, 1024, true), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_IOERR);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, buf, 512, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_IOERR);
	CHECK_EQ(run_req(&f, 42, 0, NULL, 0, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_UNSUPP);
	/* no status byte at all: the request is dropped, nothing written */
	chain_reset(&f);
	chain_add(&f, f.hdr, 16, false);
	CHECK_EQ(virtio_blk_execute(f.b, f.c), 0);
	blk_teardown(&f);
}

TEST(blk_get_id)
{
	char id[20];
	struct blk_fixture f = { 0 };
	const char *name;

	CHECK_EQ(blk_setup(&f, false, false, NULL), 0);
	name = strrchr(f.path, '/') + 1;
	memset(id, 'x', sizeof(id));
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_GET_ID, 0, id, 20, true), 21);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK(strncmp(id, name, 20) == 0);
	CHECK_EQ(id[strlen(name)], 0);	/* zero-padded */
	blk_teardown(&f);
}

TEST(blk_discard_and_write_zeroes)
{
	static uint8_t back[4096], zero[4096];
	struct blk_fixture f = { 0 };
	uint8_t seg[32];

	CHECK_EQ(blk_setup(&f, false, false, NULL), 0);
	make_range(seg, 8, 8, VIRTIO_BLK_WRITE_ZEROES_UNMAP);
	make_range(seg + 16, 20, 2, 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 32, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(pread(f.fd, back, 4096, 8 * 512), 4096);
	CHECK(memcmp(back, zero, 4096) == 0);
	CHECK_EQ(pread(f.fd, back, 1024, 20 * 512), 1024);
	CHECK(memcmp(back, zero, 1024) == 0);
	CHECK_EQ(pread(f.fd, back, 1, 22 * 512), 1);
	CHECK_EQ(back[0], 22);		/* untouched after the range */

	/* discard: succeeds (a hint), keeps the size */
	make_range(seg, 32, 8, 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(lseek(f.fd, 0, SEEK_END), DISK_SECTORS * 512);
	/* a bad second segment fails the request before anything changes */
	make_range(seg, 40, 1, 0);
	make_range(seg + 16, DISK_SECTORS, 1, 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_WRITE_ZEROES, 0, seg, 32, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_IOERR);
	CHECK_EQ(pread(f.fd, back, 1, 40 * 512), 1);
	CHECK_EQ(back[0], 40);
	blk_teardown(&f);
}

TEST(blk_read_only)
{
	static uint8_t buf[512];
	struct blk_fixture f = { 0 };
	uint8_t seg[16];

	CHECK_EQ(blk_setup(&f, true, false, NULL), 0);
	memset(buf, 0x77, sizeof(buf));
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_OUT, 1, buf, 512, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_IOERR);
	make_range(seg, 1, 1, 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_DISCARD, 0, seg, 16, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_IOERR);
	CHECK_EQ(pread(f.fd, buf, 512, 512), 512);
	CHECK_EQ(buf[0], 1);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_IN, 1, buf, 512, true), 513);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	blk_teardown(&f);
}

TEST(blk_direct_with_unaligned_buffers)
{
	static uint8_t raw[4096 + 1];
	uint8_t *buf = raw + 1;		/* deliberately not sector-aligned */
	struct blk_fixture f = { 0 };
	struct errmsg err = { "" };
	uint8_t back[1024];
	int ret;

	ret = blk_setup(&f, false, true, &err);
	if (ret == -EINVAL) {
		blk_teardown(&f);
		SKIP("the temporary directory's file system has no O_DIRECT");
	}
	CHECK_EQ(ret, 0);
	memset(buf, 0x5c, 1024);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_OUT, 3, buf, 1024, false), 1);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(pread(f.fd, back, 1024, 3 * 512), 1024);
	CHECK(memcmp(back, buf, 1024) == 0);
	CHECK_EQ(run_req(&f, VIRTIO_BLK_T_IN, 9, buf, 512, true), 513);
	CHECK_EQ(f.status, VIRTIO_BLK_S_OK);
	CHECK_EQ(buf[0], 9);
	CHECK_EQ(buf[511], 9);
	blk_teardown(&f);
}
