// SPDX-License-Identifier: MIT
/*
 * blkro: a read-only virtio-blk device (VIRTIO_BLK_F_RO) must refuse a
 * write with IOERR or UNSUPP, leave the block as it was, and still
 * serve reads.  The driver sends the write regardless of the feature
 * bit, so this checks the device, not the driver.
 */
#include "guest/string.h"
#include "guest/ucall.h"
#include "guest/virtio_blk.h"
#include "guest/workload.h"

static struct virtio_blk blk;
static uint8_t before[4096] __attribute__((aligned(4096)));
static uint8_t data[4096] __attribute__((aligned(4096)));

static void blkro_run(const struct cmdline *c)
{
	int st, wst;

	st = virtio_blk_init(&blk, c, 0);
	GUEST_ASSERT_MSG(st == 0, "blkro: virtio-blk: %s",
			 virtio_strerror(st));
	GUEST_ASSERT_MSG(blk.read_only,
			 "blkro: the device does not offer VIRTIO_BLK_F_RO");
	st = virtio_blk_read(&blk, 0, before, sizeof(before));
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkro: read: %s",
			 virtio_blk_status_name(st));
	memset(data, 0xee, sizeof(data));
	wst = virtio_blk_write(&blk, 0, data, sizeof(data));
	GUEST_ASSERT_MSG(wst == VIRTIO_BLK_S_IOERR ||
			 wst == VIRTIO_BLK_S_UNSUPP,
			 "blkro: write to a read-only disk: %s",
			 virtio_blk_status_name(wst));
	st = virtio_blk_read(&blk, 0, data, sizeof(data));
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkro: read: %s",
			 virtio_blk_status_name(st));
	GUEST_ASSERT_MSG(!memcmp(before, data, sizeof(data)),
			 "blkro: the refused write changed the disk");
	guest_result("blkro ro=1 write_status=%s read_status=OK",
		     virtio_blk_status_name(wst));
	guest_done(0);
}

const struct workload workload_blkro = {
	.name = "blkro",
	.usage = "writes to a read-only virtio-blk disk must fail",
	.run = blkro_run,
};
