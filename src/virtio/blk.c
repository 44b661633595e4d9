// SPDX-License-Identifier: MIT
/*
 * virtio-blk on a raw image file, see blk.h.
 *
 * Durability: writes are pwritev() on the file, so a write the guest saw
 * complete is in the file (page cache, or the disk with O_DIRECT); FLUSH
 * is fdatasync(), which the guest uses for its barriers.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "util/le.h"

#define BOUNCE_SIZE (1u << 20)		/* O_DIRECT bounce / zero buffer */
#define DIRECT_ALIGN 4096u		/* buffer alignment for O_DIRECT */
#define QUEUE_SIZE VIRTQ_MAX_SIZE

struct virtio_blk {
	int fd;
	bool read_only;
	bool direct;
	uint64_t capacity;		/* sectors */
	char id[VIRTIO_BLK_ID_BYTES];
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
	uint8_t *bounce;		/* BOUNCE_SIZE, DIRECT_ALIGN-aligned */
	struct iovec iov[VIRTQ_MAX_SEGS];
	struct virtq_chain chain;
};

/* [sector, sector + count) inside a disk of @capacity sectors; written
 * so that nothing can overflow. */
static bool range_inside(uint64_t sector, uint64_t count, uint64_t capacity)
{
	return sector <= capacity && count <= capacity - sector;
}

static int check_data(const struct virtio_blk_req *req, uint64_t capacity)
{
	if (req->data_len % VIRTIO_BLK_SECTOR_SIZE)
		return VIRTIO_BLK_S_IOERR;
	if (!range_inside(req->sector, req->data_len / VIRTIO_BLK_SECTOR_SIZE,
			  capacity))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

static int check_ranges(uint32_t len)
{
	if (len == 0 || len % VIRTIO_BLK_RANGE_SIZE ||
	    len / VIRTIO_BLK_RANGE_SIZE > VIRTIO_BLK_MAX_RANGES)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

int virtio_blk_parse_header(const uint8_t *hdr, uint32_t readable,
			    uint32_t writable, uint64_t capacity,
			    bool read_only, struct virtio_blk_req *req)
{
	if (writable == 0)
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	if (readable < VIRTIO_BLK_HDR_SIZE)
		return VIRTIO_BLK_S_IOERR;
	req->type = get_le32(hdr);
	req->sector = get_le64(hdr + 8);
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		req->data_len = writable - 1;
		return check_data(req, capacity);
	case VIRTIO_BLK_T_OUT:
		if (read_only)
			return VIRTIO_BLK_S_IOERR;
		req->data_len = readable - VIRTIO_BLK_HDR_SIZE;
		return check_data(req, capacity);
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		req->data_len = writable - 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (read_only)
			return VIRTIO_BLK_S_IOERR;
		req->data_len = readable - VIRTIO_BLK_HDR_SIZE;
		return check_ranges(req->data_len);
	}
	return VIRTIO_BLK_S_UNSUPP;
}

int virtio_blk_parse_range(const uint8_t *seg, uint32_t type,
			   uint64_t capacity, struct virtio_blk_range *out)
{
	out->sector = get_le64(seg);
	out->num_sectors = get_le32(seg + 8);
	out->flags = get_le32(seg + 12);
	/* §5.2.6.2: discard with unmap, or unknown flags, are unsupported */
	if (out->flags & ~VIRTIO_BLK_WRITE_ZEROES_UNMAP)
		return VIRTIO_BLK_S_UNSUPP;
	if (type == VIRTIO_BLK_T_DISCARD && out->flags)
		return VIRTIO_BLK_S_UNSUPP;
	if (out->num_sectors > VIRTIO_BLK_MAX_RANGE_SECTORS ||
	    !range_inside(out->sector, out->num_sectors, capacity))
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

/* ---- chain data streams ----------------------------------------------- */

/*
 * Fills b->iov with the [skip, skip + len) bytes of the chain's readable
 * (or writable) stream; returns the number of entries.  The parser made
 * sure the stream holds them.
 */
static int stream_iov(struct virtio_blk *b, const struct virtq_chain *c,
		      bool writable, uint64_t skip, uint64_t len)
{
	int n = 0;

	for (unsigned i = 0; i < c->nsegs && len; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint64_t take;

		if (s->is_write != writable)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		take = s->len - skip;
		if (take > len)
			take = len;
		if (take)
			b->iov[n++] = (struct iovec){ s->ptr + skip, take };
		len -= take;
		skip = 0;
	}
	return n;
}

/* Copies the first @len bytes of the readable stream after @skip. */
static void read_stream(struct virtio_blk *b, const struct virtq_chain *c,
			uint64_t skip, uint8_t *dst, uint64_t len)
{
	int n = stream_iov(b, c, false, skip, len);

	for (int i = 0; i < n; i++) {
		memcpy(dst, b->iov[i].iov_base, b->iov[i].iov_len);
		dst += b->iov[i].iov_len;
	}
}

static uint8_t *status_byte(const struct virtq_chain *c)
{
	for (unsigned i = c->nsegs; i-- > 0;)
		if (c->segs[i].is_write && c->segs[i].len)
			return c->segs[i].ptr + c->segs[i].len - 1;
	return NULL;
}

/* ---- file I/O ------------------------------------------------------------ */

/* Drops @done bytes from the front of iov[*first..n). */
static void iov_advance(struct iovec *iov, int n, int *first, size_t done)
{
	while (*first < n && done >= iov[*first].iov_len) {
		done -= iov[*first].iov_len;
		(*first)++;
	}
	if (*first < n && done) {
		iov[*first].iov_base = (uint8_t *)iov[*first].iov_base + done;
		iov[*first].iov_len -= done;
	}
}

/* The whole vector, retrying short transfers; -EIO if the file ended. */
static int rw_full(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	int first = 0;

	while (first < n) {
		int cnt = n - first > IOV_MAX ? IOV_MAX : n - first;
		ssize_t r = write ? pwritev(fd, iov + first, cnt, (off_t)off)
				  : preadv(fd, iov + first, cnt, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
		iov_advance(iov, n, &first, (size_t)r);
	}
	return 0;
}

static bool iov_aligned(const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++)
		if ((uintptr_t)iov[i].iov_base % VIRTIO_BLK_SECTOR_SIZE ||
		    iov[i].iov_len % VIRTIO_BLK_SECTOR_SIZE)
			return false;
	return true;
}

/* Copies between the guest vector and the bounce buffer. */
static void bounce_copy(struct iovec *iov, int n, int *first, uint8_t *buf,
			size_t len, bool to_bounce)
{
	size_t done = 0;

	while (done < len && *first < n) {
		size_t take = iov[*first].iov_len;

		if (take > len - done)
			take = len - done;
		if (to_bounce)
			memcpy(buf + done, iov[*first].iov_base, take);
		else
			memcpy(iov[*first].iov_base, buf + done, take);
		done += take;
		iov_advance(iov, n, first, take);
	}
}

/* O_DIRECT with guest buffers that are not sector-aligned: through the
 * aligned bounce buffer, a chunk at a time. */
static int rw_bounced(struct virtio_blk *b, int n, uint64_t off, uint64_t len,
		      bool write)
{
	int first = 0, ret;

	while (len) {
		size_t chunk = len > BOUNCE_SIZE ? BOUNCE_SIZE : (size_t)len;
		struct iovec one = { b->bounce, chunk };

		if (write)
			bounce_copy(b->iov, n, &first, b->bounce, chunk, true);
		ret = rw_full(b->fd, &one, 1, off, write);
		if (ret)
			return ret;
		if (!write)
			bounce_copy(b->iov, n, &first, b->bounce, chunk, false);
		off += chunk;
		len -= chunk;
	}
	return 0;
}

static int do_rw(struct virtio_blk *b, const struct virtq_chain *c,
		 const struct virtio_blk_req *req, bool write)
{
	uint64_t off = req->sector * VIRTIO_BLK_SECTOR_SIZE;
	int n;

	if (!req->data_len)
		return 0;
	n = write ? stream_iov(b, c, false, VIRTIO_BLK_HDR_SIZE, req->data_len)
		  : stream_iov(b, c, true, 0, req->data_len);
	if (b->direct && !iov_aligned(b->iov, n))
		return rw_bounced(b, n, off, req->data_len, write);
	return rw_full(b->fd, b->iov, n, off, write);
}

static int write_zeroes_slowly(struct virtio_blk *b, uint64_t off,
			       uint64_t len)
{
	memset(b->bounce, 0, BOUNCE_SIZE);
	while (len) {
		size_t chunk = len > BOUNCE_SIZE ? BOUNCE_SIZE : (size_t)len;
		struct iovec one = { b->bounce, chunk };
		int ret = rw_full(b->fd, &one, 1, off, true);

		if (ret)
			return ret;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

static int do_range(struct virtio_blk *b, uint32_t type,
		    const struct virtio_blk_range *r)
{
	off_t off = (off_t)(r->sector * VIRTIO_BLK_SECTOR_SIZE);
	off_t len = (off_t)r->num_sectors * VIRTIO_BLK_SECTOR_SIZE;
	int mode;

	if (!len)
		return 0;
	if (type == VIRTIO_BLK_T_DISCARD) {
		/* a hint: a file system without hole punching ignores it */
		if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      off, len) < 0 && errno != EOPNOTSUPP)
			return -errno;
		return 0;
	}
	mode = (r->flags & VIRTIO_BLK_WRITE_ZEROES_UNMAP) ?
		FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;
	if (fallocate(b->fd, mode | FALLOC_FL_KEEP_SIZE, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return write_zeroes_slowly(b, (uint64_t)off, (uint64_t)len);
}

static int do_ranges(struct virtio_blk *b, const struct virtq_chain *c,
		     const struct virtio_blk_req *req)
{
	uint8_t segs[VIRTIO_BLK_MAX_RANGES * VIRTIO_BLK_RANGE_SIZE];
	unsigned nranges = req->data_len / VIRTIO_BLK_RANGE_SIZE;
	struct virtio_blk_range r;
	int status;

	read_stream(b, c, VIRTIO_BLK_HDR_SIZE, segs, req->data_len);
	/* check every segment before changing anything */
	for (unsigned i = 0; i < nranges; i++) {
		status = virtio_blk_parse_range(segs + i * VIRTIO_BLK_RANGE_SIZE,
						req->type, b->capacity, &r);
		if (status != VIRTIO_BLK_S_OK)
			return status;
	}
	for (unsigned i = 0; i < nranges; i++) {
		virtio_blk_parse_range(segs + i * VIRTIO_BLK_RANGE_SIZE,
				       req->type, b->capacity, &r);
		if (do_range(b, req->type, &r))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint32_t do_get_id(struct virtio_blk *b, const struct virtq_chain *c,
			  const struct virtio_blk_req *req)
{
	uint32_t len = req->data_len < VIRTIO_BLK_ID_BYTES ?
		       req->data_len : VIRTIO_BLK_ID_BYTES;
	int n = stream_iov(b, c, true, 0, len);
	const char *src = b->id;

	for (int i = 0; i < n; i++) {
		memcpy(b->iov[i].iov_base, src, b->iov[i].iov_len);
		src += b->iov[i].iov_len;
	}
	return len;
}

uint32_t virtio_blk_execute(struct virtio_blk *b, const struct virtq_chain *c)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE] = { 0 };
	struct virtio_blk_req req;
	uint8_t *status_ptr = status_byte(c);
	uint32_t written = 0;
	int status;

	read_stream(b, c, 0, hdr,
		    c->readable < sizeof(hdr) ? c->readable : sizeof(hdr));
	status = virtio_blk_parse_header(hdr, c->readable, c->writable,
					 b->capacity, b->read_only, &req);
	if (status < 0 || !status_ptr)
		return 0;	/* no status byte: nothing to answer with */
	if (status == VIRTIO_BLK_S_OK) {
		switch (req.type) {
		case VIRTIO_BLK_T_IN:
			if (do_rw(b, c, &req, false))
				status = VIRTIO_BLK_S_IOERR;
			else
				written = req.data_len;
			break;
		case VIRTIO_BLK_T_OUT:
			if (do_rw(b, c, &req, true))
				status = VIRTIO_BLK_S_IOERR;
			break;
		case VIRTIO_BLK_T_FLUSH:
			if (fdatasync(b->fd) < 0)
				status = VIRTIO_BLK_S_IOERR;
			break;
		case VIRTIO_BLK_T_GET_ID:
			written = do_get_id(b, c, &req);
			break;
		default:
			status = do_ranges(b, c, &req);
			break;
		}
	}
	/* last, after the data: the driver may look at it as soon as the
	 * used entry is visible, and not before (virtq_push releases) */
	*status_ptr = (uint8_t)status;
	return written + 1;
}

/* ---- device --------------------------------------------------------------- */

static void build_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;

	put_le64(c + VIRTIO_BLK_CFG_CAPACITY, b->capacity);
	/* two descriptors go to the header and the status byte */
	put_le32(c + VIRTIO_BLK_CFG_SEG_MAX, QUEUE_SIZE - 2);
	put_le32(c + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE);
	put_le32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
		 VIRTIO_BLK_MAX_RANGE_SECTORS);
	put_le32(c + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_RANGES);
	put_le32(c + VIRTIO_BLK_CFG_DISCARD_ALIGNMENT, 1);
	put_le32(c + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS,
		 VIRTIO_BLK_MAX_RANGE_SECTORS);
	put_le32(c + VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG, VIRTIO_BLK_MAX_RANGES);
	c[VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP] = 1;
}

/* The serial GET_ID returns: the image's file name, cut to 20 bytes. */
static void build_id(struct virtio_blk *b, const char *path)
{
	const char *name = strrchr(path, '/');

	size_t len;

	name = name ? name + 1 : path;
	len = strlen(name);
	/* zero-padded; no NUL when it fills all 20 bytes (§5.2.6) */
	memcpy(b->id, name, len < sizeof(b->id) ? len : sizeof(b->id));
}

static int open_image(struct virtio_blk *b, const struct virtio_blk_options *opt,
		      struct errmsg *err)
{
	int flags = (opt->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		    (opt->direct ? O_DIRECT : 0);
	struct stat st;
	off_t size;

	b->fd = open(opt->path, flags);
	if (b->fd < 0 && errno == EINVAL && opt->direct)
		return errmsg_set(err, -EINVAL, "disk %s: the file system does not support O_DIRECT",
				  opt->path);
	if (b->fd < 0)
		return errmsg_set(err, -errno, "disk %s: %s", opt->path,
				  strerror(errno));
	if (fstat(b->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return errmsg_set(err, -EINVAL, "disk %s: not a regular file or block device",
				  opt->path);
	size = lseek(b->fd, 0, SEEK_END);
	if (size < 0)
		return errmsg_set(err, -errno, "disk %s: %s", opt->path,
				  strerror(errno));
	b->capacity = (uint64_t)size / VIRTIO_BLK_SECTOR_SIZE;
	return 0;
}

int virtio_blk_open(const struct virtio_blk_options *opt,
		    struct virtio_blk **out, struct errmsg *err)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	int ret;

	if (!b)
		return -ENOMEM;
	b->fd = -1;
	b->read_only = opt->read_only;
	b->direct = opt->direct;
	if (posix_memalign((void **)&b->bounce, DIRECT_ALIGN, BOUNCE_SIZE)) {
		b->bounce = NULL;
		virtio_blk_close(b);
		return -ENOMEM;
	}
	ret = open_image(b, opt, err);
	if (ret) {
		virtio_blk_close(b);
		return ret;
	}
	build_id(b, opt->path);
	build_config(b);
	*out = b;
	return 0;
}

void virtio_blk_close(struct virtio_blk *b)
{
	if (b->fd >= 0)
		close(b->fd);
	free(b->bounce);
	free(b);
}

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
	return b->capacity;
}

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH);

	if (b->read_only)
		return f | (1ull << VIRTIO_BLK_F_RO);
	return f | (1ull << VIRTIO_BLK_F_DISCARD) |
	       (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
}

static void blk_config_read(void *dev, uint32_t offset, uint8_t *data,
			    unsigned len)
{
	struct virtio_blk *b = dev;

	memcpy(data, b->config + offset, len);
}

static void blk_queue_notify(void *dev, struct virtio_mmio *t,
			     struct virtq *vq, unsigned q)
{
	struct virtio_blk *b = dev;

	(void)q;
	while (virtq_pop(vq, &b->chain) == 1)
		virtq_push(vq, b->chain.head, virtio_blk_execute(b, &b->chain));
	virtio_mmio_used(t, vq);
}

static void blk_destroy(void *dev)
{
	virtio_blk_close(dev);
}

/* Nothing is in flight once quiesced and the rest is config: the part
 * is what the guest was shown, so that a restore onto another image
 * (resized, read-only) is refused rather than corrupt its file system.
 * Layout: u32 version, u64 capacity (sectors), bool read-only. */
#define BLK_STATE_VERSION 1u

static void blk_save(void *dev, struct virtio_mmio *t, struct state_buf *out)
{
	struct virtio_blk *b = dev;

	(void)t;
	state_put_u32(out, BLK_STATE_VERSION);
	state_put_u64(out, b->capacity);
	state_put_bool(out, b->read_only);
}

static int blk_load(void *dev, struct virtio_mmio *t, struct state_reader *in,
		    struct errmsg *err)
{
	struct virtio_blk *b = dev;
	uint64_t capacity;
	bool read_only;
	int ret = virtio_state_version(in, BLK_STATE_VERSION, err);

	(void)t;
	if (ret)
		return ret;
	state_get_u64(in, &capacity);
	state_get_bool(in, &read_only);
	ret = virtio_state_end(in, err);
	if (ret)
		return ret;
	if (capacity != b->capacity || read_only != b->read_only)
		return errmsg_set(err, -EINVAL,
				  "the guest saw a %s disk of %llu sectors, this "
				  "one is %s with %llu", read_only ? "read-only" :
				  "writable", (unsigned long long)capacity,
				  b->read_only ? "read-only" : "writable",
				  (unsigned long long)b->capacity);
	return 0;
}

static const struct virtio_device_ops blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.queue_max_size = QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.features = blk_features,
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
	.destroy = blk_destroy,
	.save = blk_save,
	.load = blk_load,
};

int virtio_blk_create(struct vm *vm, unsigned index,
		      const struct virtio_blk_options *opt, struct errmsg *err)
{
	struct virtio_blk *b;
	int ret;

	ret = virtio_blk_open(opt, &b, err);
	if (ret)
		return ret;
	return virtio_mmio_create(vm, index, &blk_ops, b, NULL, err);
}
