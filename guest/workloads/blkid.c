// SPDX-License-Identifier: MIT
/*
 * blkid: what the first virtio-blk device says about itself: its ID
 * string (GET_ID, the host's serial), capacity and features.  Then the
 * optional commands it offers are exercised on its last 8 sectors:
 * write-zeroes must leave zeroes there, discard must complete.  With
 * expect=STR the ID must be STR.
 */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/ucall.h"
#include "guest/virtio_blk.h"
#include "guest/workload.h"

#define TAIL_SECTORS 8

static struct virtio_blk blk;
static uint8_t buf[TAIL_SECTORS * VIRTIO_BLK_SECTOR_SIZE]
	__attribute__((aligned(4096)));

static const char *try_write_zeroes(uint64_t sector)
{
	unsigned int i;
	int st;

	if (!blk.write_zeroes || blk.read_only)
		return "none";
	memset(buf, 0x5a, sizeof(buf));
	st = virtio_blk_write(&blk, sector, buf, sizeof(buf));
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: write: %s",
			 virtio_blk_status_name(st));
	st = virtio_blk_write_zeroes(&blk, sector, TAIL_SECTORS, false);
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: write-zeroes: %s",
			 virtio_blk_status_name(st));
	st = virtio_blk_read(&blk, sector, buf, sizeof(buf));
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: read: %s",
			 virtio_blk_status_name(st));
	for (i = 0; i < sizeof(buf); i++)
		GUEST_ASSERT_MSG(buf[i] == 0, "blkid: byte %u after "
				 "write-zeroes is 0x%02x", i, buf[i]);
	return "ok";
}

static const char *try_discard(uint64_t sector)
{
	int st;

	if (!blk.discard || blk.read_only)
		return "none";
	st = virtio_blk_discard(&blk, sector, TAIL_SECTORS);
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: discard: %s",
			 virtio_blk_status_name(st));
	return "ok";
}

static void blkid_run(const struct cmdline *c)
{
	const char *expect = cmdline_get(c, "expect");
	char id[VIRTIO_BLK_ID_BYTES + 1];
	const char *wz, *dc;
	uint64_t tail;
	int st;

	st = virtio_blk_init(&blk, c, 0);
	GUEST_ASSERT_MSG(st == 0, "blkid: virtio-blk: %s",
			 virtio_strerror(st));
	st = virtio_blk_get_id(&blk, id);
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: GET_ID: %s",
			 virtio_blk_status_name(st));
	GUEST_ASSERT_MSG(!expect || !strcmp(id, expect),
			 "blkid: ID is '%s', expected '%s'", id, expect);
	st = virtio_blk_flush(&blk);
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "blkid: flush: %s",
			 virtio_blk_status_name(st));
	GUEST_ASSERT_MSG(blk.capacity >= TAIL_SECTORS, "blkid: disk too small");
	tail = blk.capacity - TAIL_SECTORS;
	wz = try_write_zeroes(tail);
	dc = try_discard(tail);
	guest_result("blkid id=%s capacity=%llu blk_size=%u ro=%d flush=%d "
		     "write_zeroes=%s discard=%s", id,
		     (unsigned long long)blk.capacity, blk.blk_size,
		     blk.read_only, blk.flush, wz, dc);
	guest_done(0);
}

static const char *const blkid_params[] = { "expect", NULL };

const struct workload workload_blkid = {
	.name = "blkid",
	.usage = "expect=ID: the virtio-blk ID string, capacity, features",
	.params = blkid_params,
	.run = blkid_run,
};
