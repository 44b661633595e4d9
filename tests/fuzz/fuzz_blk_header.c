// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the virtio-blk request parser.  Input layout:
 *	[16 header bytes] [readable le32] [writable le32] [capacity le64]
 *	[read-only byte] [discard/write-zeroes segments...]
 * Checks what the executor relies on: an accepted read or write is a
 * whole number of sectors inside the disk and inside the chain, an
 * accepted range is inside the disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/blk.h"

#define PREFIX (16 + 4 + 4 + 8 + 1)

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_ranges(const uint8_t *segs, size_t n, uint32_t type,
			 uint64_t capacity)
{
	struct virtio_blk_range r;

	for (size_t i = 0; i < n; i++) {
		if (virtio_blk_parse_range(segs + i * 16, type, capacity, &r) !=
		    VIRTIO_BLK_S_OK)
			continue;
		check(r.sector <= capacity);
		check(r.num_sectors <= capacity - r.sector);
		check(type != VIRTIO_BLK_T_DISCARD || r.flags == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_blk_req req;
	uint32_t readable, writable;
	uint64_t capacity;
	bool ro;
	int st;

	if (size < PREFIX)
		return 0;
	memcpy(&readable, data + 16, 4);
	memcpy(&writable, data + 20, 4);
	memcpy(&capacity, data + 24, 8);
	ro = data[32] & 1;
	st = virtio_blk_parse_header(data, readable, writable, capacity, ro,
				     &req);
	if (st != VIRTIO_BLK_S_OK)
		return 0;
	check(writable > 0 && readable >= VIRTIO_BLK_HDR_SIZE);
	switch (req.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		check(req.data_len % VIRTIO_BLK_SECTOR_SIZE == 0);
		check(req.sector <= capacity);
		check(req.data_len / VIRTIO_BLK_SECTOR_SIZE <= capacity - req.sector);
		if (req.type == VIRTIO_BLK_T_IN)
			check(req.data_len < writable);
		else
			check(!ro && req.data_len <= readable - VIRTIO_BLK_HDR_SIZE);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		check(!ro && req.data_len % VIRTIO_BLK_RANGE_SIZE == 0);
		check(req.data_len / VIRTIO_BLK_RANGE_SIZE <= VIRTIO_BLK_MAX_RANGES);
		check_ranges(data + PREFIX, (size - PREFIX) / 16, req.type,
			     capacity);
		break;
	case VIRTIO_BLK_T_GET_ID:
	case VIRTIO_BLK_T_FLUSH:
		break;
	default:
		abort();	/* anything else must be UNSUPP */
	}
	return 0;
}
