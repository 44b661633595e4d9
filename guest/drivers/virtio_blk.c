// SPDX-License-Identifier: MIT
/* virtio-blk driver (guest/virtio_blk.h). */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_blk.h"

/* Generous: a host under load, or a slow emulated path, must not turn
 * into a spurious failure. */
#define BLK_TIMEOUT_NS (30 * NSEC_PER_SEC)

#define BLK_WANTED (VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |			\
		    VIRTIO_BIT(VIRTIO_BLK_F_RO) |			\
		    VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |			\
		    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |			\
		    VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |			\
		    VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |		\
		    VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |		\
		    VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

static uint32_t config_u32(const struct virtio_blk *b, unsigned int off)
{
	uint32_t v;

	virtio_config_read(b->dev, off, &v, sizeof(v));
	return v;
}

int virtio_blk_init(struct virtio_blk *b, const struct cmdline *c,
		    unsigned int nth)
{
	struct virtio_dev *d;
	int err;

	memset(b, 0, sizeof(*b));
	virtio_mmio_discover(c);
	d = virtio_find(VIRTIO_ID_BLOCK, nth);
	if (!d) {
		uart_printf("virtio-blk: no block device #%u on the command "
			    "line\n", nth);
		return -VIRTIO_ENODEV;
	}
	err = virtio_dev_init(d, BLK_WANTED, 0);
	if (err)
		return err;
	b->dev = d;
	virtio_config_read(d, VIRTIO_BLK_CFG_CAPACITY, &b->capacity,
			   sizeof(b->capacity));
	b->blk_size = VIRTIO_BLK_SECTOR_SIZE;
	if (virtio_has_feature(d, VIRTIO_BLK_F_BLK_SIZE))
		b->blk_size = config_u32(b, VIRTIO_BLK_CFG_BLK_SIZE);
	if (virtio_has_feature(d, VIRTIO_BLK_F_SEG_MAX))
		b->seg_max = config_u32(b, VIRTIO_BLK_CFG_SEG_MAX);
	b->read_only = virtio_has_feature(d, VIRTIO_BLK_F_RO);
	b->flush = virtio_has_feature(d, VIRTIO_BLK_F_FLUSH);
	b->discard = virtio_has_feature(d, VIRTIO_BLK_F_DISCARD);
	b->write_zeroes = virtio_has_feature(d, VIRTIO_BLK_F_WRITE_ZEROES);
	if (b->discard)
		b->max_discard_sectors =
			config_u32(b, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS);
	if (b->write_zeroes)
		b->max_write_zeroes_sectors =
			config_u32(b, VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS);

	err = vq_setup(&b->vq, d, 0, 0);
	if (err)
		return err;
	virtio_driver_ok(d);
	return 0;
}

unsigned int virtio_blk_room(const struct virtio_blk *b)
{
	return vq_room(&b->vq, 3);
}

static struct virtio_blk_slot *get_slot(struct virtio_blk *b)
{
	unsigned int i;

	for (i = 0; i < b->vq.size; i++) {
		if (!b->slots[i].busy)
			return &b->slots[i];
	}
	return NULL;
}

int virtio_blk_submit(struct virtio_blk *b, uint32_t type, uint64_t sector,
		      void *buf, uint32_t len, void *cookie)
{
	struct virtio_blk_slot *s;
	struct vq_buf bufs[3];
	unsigned int n = 0;
	int err;

	s = get_slot(b);
	if (!s || virtio_blk_room(b) == 0)
		return -VIRTIO_ENOSPC;
	s->hdr.type = type;
	s->hdr.reserved = 0;
	s->hdr.sector = sector;
	s->status = 0xff;	/* the device always overwrites it */
	s->cookie = cookie;

	bufs[n++] = (struct vq_buf){ (uintptr_t)&s->hdr, sizeof(s->hdr),
				     false };
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		bufs[n++] = (struct vq_buf){ (uintptr_t)buf, len, true };
		break;
	case VIRTIO_BLK_T_OUT:
		bufs[n++] = (struct vq_buf){ (uintptr_t)buf, len, false };
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* The range is the request's data; @buf is unused. */
		s->hdr.sector = 0;
		bufs[n++] = (struct vq_buf){ (uintptr_t)&s->range,
					     sizeof(s->range), false };
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	default:
		return -VIRTIO_EINVAL;
	}
	bufs[n++] = (struct vq_buf){ (uintptr_t)&s->status, 1, true };
	err = vq_add(&b->vq, bufs, n, s);
	if (err)
		return err;
	s->busy = true;
	return 0;
}

void virtio_blk_kick(struct virtio_blk *b)
{
	vq_kick(&b->vq);
}

int virtio_blk_complete(struct virtio_blk *b, void **cookie)
{
	struct virtio_blk_slot *s;
	uint32_t len;
	int err;

	s = vq_wait(&b->vq, &len, BLK_TIMEOUT_NS, &err);
	if (!s)
		return err;
	s->busy = false;
	if (cookie)
		*cookie = s->cookie;
	/* At least the status byte must have been written. */
	GUEST_ASSERT_MSG(len >= 1, "virtio-blk: completion with used len 0");
	return s->status;
}

static int sync_request(struct virtio_blk *b, uint32_t type, uint64_t sector,
			void *buf, uint32_t len)
{
	static char token;
	int ret;

	GUEST_ASSERT_MSG(vq_in_flight(&b->vq) == 0,
			 "virtio-blk: synchronous request with requests in "
			 "flight");
	ret = virtio_blk_submit(b, type, sector, buf, len, &token);
	if (ret)
		return ret;
	virtio_blk_kick(b);
	return virtio_blk_complete(b, NULL);
}

int virtio_blk_read(struct virtio_blk *b, uint64_t sector, void *buf,
		    uint32_t len)
{
	return sync_request(b, VIRTIO_BLK_T_IN, sector, buf, len);
}

int virtio_blk_write(struct virtio_blk *b, uint64_t sector, const void *buf,
		     uint32_t len)
{
	return sync_request(b, VIRTIO_BLK_T_OUT, sector, (void *)buf, len);
}

int virtio_blk_flush(struct virtio_blk *b)
{
	/* Without VIRTIO_BLK_F_FLUSH the device has no volatile cache to
	 * flush (5.2.6.2): every completed write is already stable. */
	if (!b->flush)
		return VIRTIO_BLK_S_OK;
	return sync_request(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
}

int virtio_blk_get_id(struct virtio_blk *b, char id[VIRTIO_BLK_ID_BYTES + 1])
{
	int ret;

	memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
	ret = sync_request(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES);
	/* The string is NUL-padded, and not terminated when 20 long. */
	id[VIRTIO_BLK_ID_BYTES] = '\0';
	return ret;
}

static int range_request(struct virtio_blk *b, uint32_t type, uint64_t sector,
			 uint32_t sectors, uint32_t flags)
{
	struct virtio_blk_slot *s = get_slot(b);

	if (!s)
		return -VIRTIO_ENOSPC;
	/* get_slot() returns the first free slot; sync_request() will take
	 * the same one, so its range can be filled in now. */
	s->range.sector = sector;
	s->range.num_sectors = sectors;
	s->range.flags = flags;
	return sync_request(b, type, 0, NULL, 0);
}

int virtio_blk_discard(struct virtio_blk *b, uint64_t sector,
		       uint32_t sectors)
{
	if (!b->discard)
		return VIRTIO_BLK_S_UNSUPP;
	return range_request(b, VIRTIO_BLK_T_DISCARD, sector, sectors, 0);
}

int virtio_blk_write_zeroes(struct virtio_blk *b, uint64_t sector,
			    uint32_t sectors, bool unmap)
{
	if (!b->write_zeroes)
		return VIRTIO_BLK_S_UNSUPP;
	return range_request(b, VIRTIO_BLK_T_WRITE_ZEROES, sector, sectors,
			     unmap ? 1 : 0);
}

const char *virtio_blk_status_name(int status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	}
	return status < 0 ? virtio_strerror(status) : "bad status";
}
