/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (virtio 1.2 §5.2) on a raw image file.
 *
 * A request is a chain: a 16-byte header (type, reserved, sector) in the
 * device-readable part, then data (readable for OUT / DISCARD /
 * WRITE_ZEROES, writable for IN / GET_ID), and the status byte as the
 * last writable byte.  The header may be split across buffers (no
 * framing is assumed, §2.6.4).  Checking a header is a pure function
 * (virtio_blk_parse_header, fuzzed); executing it does the file I/O.
 */
#ifndef RACKVM_VIRTIO_BLK_H
#define RACKVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "virtio/virtqueue.h"
#include "vm/vm.h"

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_HDR_SIZE 16u
#define VIRTIO_BLK_ID_BYTES 20u
#define VIRTIO_BLK_RANGE_SIZE 16u	/* one discard/write-zeroes segment */
#define VIRTIO_BLK_MAX_RANGES 16u	/* max_discard_seg, max_write_zeroes_seg */
#define VIRTIO_BLK_MAX_RANGE_SECTORS 0x400000u	/* 2 GiB per segment */
#define VIRTIO_BLK_WRITE_ZEROES_UNMAP 1u

/* Config space offsets (§5.2.4) */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGNMENT 44
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG 52
#define VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP 56
#define VIRTIO_BLK_CONFIG_SIZE 60

struct virtio_blk_options {
	const char *path;
	bool read_only;
	bool direct;		/* O_DIRECT: bypass the host page cache */
};

/* What the header and the chain's sizes say; see the parser. */
struct virtio_blk_req {
	uint32_t type;
	uint64_t sector;
	/* IN, GET_ID: writable bytes before the status byte; OUT: readable
	 * bytes after the header; DISCARD, WRITE_ZEROES: segment bytes */
	uint32_t data_len;
};

struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/*
 * Pure: checks the 16 header bytes @hdr (only @readable of them are
 * valid if fewer) of a chain with @readable device-readable and
 * @writable device-writable bytes, for a disk of @capacity sectors.
 * Returns -EINVAL if the chain has no room for a status byte (nothing
 * can be answered), else the status the request gets if it fails before
 * any I/O (VIRTIO_BLK_S_IOERR / _UNSUPP), or VIRTIO_BLK_S_OK with @req
 * filled: the data lies inside the disk (no sector * 512 + length
 * overflow) and is a whole number of sectors.
 */
int virtio_blk_parse_header(const uint8_t *hdr, uint32_t readable,
			    uint32_t writable, uint64_t capacity,
			    bool read_only, struct virtio_blk_req *req);
/* Pure: one DISCARD / WRITE_ZEROES segment (16 bytes); a status. */
int virtio_blk_parse_range(const uint8_t *seg, uint32_t type,
			   uint64_t capacity, struct virtio_blk_range *out);

struct virtio_blk;

/* Opens the image; capacity = file size / 512. */
int virtio_blk_open(const struct virtio_blk_options *opt,
		    struct virtio_blk **out, struct errmsg *err);
void virtio_blk_close(struct virtio_blk *b);
uint64_t virtio_blk_capacity(const struct virtio_blk *b);
/* Executes one request chain; returns the bytes written into it (the
 * used length).  The status byte is written last. */
uint32_t virtio_blk_execute(struct virtio_blk *b, const struct virtq_chain *c);

/* Opens the image and creates virtio-mmio device @index for it. */
int virtio_blk_create(struct vm *vm, unsigned index,
		      const struct virtio_blk_options *opt, struct errmsg *err);

#endif
