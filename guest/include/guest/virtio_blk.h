/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk driver (virtio 1.2 section 5.2), one request queue, polled.
 *
 * Requests are header + data + status byte; the header and status of
 * each request live in the driver's own slot array, so a caller only
 * provides the data buffer (any identity-mapped memory).  Asynchronous
 * use: blk_submit() as many as blk_room() allows, blk_kick(), then
 * blk_complete() each.  The synchronous helpers do one request at a time.
 *
 * Results: the device's status byte (VIRTIO_BLK_S_OK, _IOERR, _UNSUPP),
 * or a negative VIRTIO_E* transport error (guest/virtio_mmio.h).  The
 * driver does not refuse writes to a read-only device itself, so that a
 * test can see what the device answers.
 */
#ifndef GUEST_VIRTIO_BLK_H
#define GUEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/virtqueue.h"

/* Feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX		1
#define VIRTIO_BLK_F_SEG_MAX		2
#define VIRTIO_BLK_F_GEOMETRY		4
#define VIRTIO_BLK_F_RO			5
#define VIRTIO_BLK_F_BLK_SIZE		6
#define VIRTIO_BLK_F_FLUSH		9
#define VIRTIO_BLK_F_TOPOLOGY		10
#define VIRTIO_BLK_F_CONFIG_WCE		11
#define VIRTIO_BLK_F_MQ			12
#define VIRTIO_BLK_F_DISCARD		13
#define VIRTIO_BLK_F_WRITE_ZEROES	14

/* Configuration layout (byte offsets). */
#define VIRTIO_BLK_CFG_CAPACITY		0	/* u64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX		8
#define VIRTIO_BLK_CFG_SEG_MAX		12
#define VIRTIO_BLK_CFG_BLK_SIZE		20
#define VIRTIO_BLK_CFG_WRITEBACK	32	/* u8 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS	36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG		40
#define VIRTIO_BLK_CFG_DISCARD_ALIGNMENT	44
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS	48
#define VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SEG	52

/* Request types. */
#define VIRTIO_BLK_T_IN			0
#define VIRTIO_BLK_T_OUT		1
#define VIRTIO_BLK_T_FLUSH		4
#define VIRTIO_BLK_T_GET_ID		8
#define VIRTIO_BLK_T_DISCARD		11
#define VIRTIO_BLK_T_WRITE_ZEROES	13

/* Status byte. */
#define VIRTIO_BLK_S_OK			0
#define VIRTIO_BLK_S_IOERR		1
#define VIRTIO_BLK_S_UNSUPP		2

#define VIRTIO_BLK_SECTOR_SIZE		512
#define VIRTIO_BLK_ID_BYTES		20

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* Discard / write-zeroes range. */
struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;		/* bit 0: unmap (write-zeroes) */
};

struct virtio_blk_slot {
	struct virtio_blk_req_hdr hdr;
	struct virtio_blk_range range;
	volatile uint8_t status;
	bool busy;
	void *cookie;
};

struct virtio_blk {
	struct virtio_dev *dev;
	struct virtqueue vq;
	uint64_t capacity;	/* sectors */
	uint32_t blk_size;	/* logical block size, bytes */
	uint32_t seg_max;
	uint32_t max_discard_sectors;
	uint32_t max_write_zeroes_sectors;
	bool read_only;
	bool flush;
	bool discard;
	bool write_zeroes;
	struct virtio_blk_slot slots[VQ_MAX_SIZE];
};

/* Initialises the @nth block device found on the command line. */
int virtio_blk_init(struct virtio_blk *b, const struct cmdline *c,
		    unsigned int nth);

/* Requests that can be submitted now. */
unsigned int virtio_blk_room(const struct virtio_blk *b);

/* Queues one request (not visible to the device before
 * virtio_blk_kick()).  @buf/@len: the data (none for FLUSH). */
int virtio_blk_submit(struct virtio_blk *b, uint32_t type, uint64_t sector,
		      void *buf, uint32_t len, void *cookie);

void virtio_blk_kick(struct virtio_blk *b);

/* Waits for the next completion: returns its status byte and sets
 * @cookie, or a negative transport error. */
int virtio_blk_complete(struct virtio_blk *b, void **cookie);

/* Synchronous requests: status byte or negative error. */
int virtio_blk_read(struct virtio_blk *b, uint64_t sector, void *buf,
		    uint32_t len);
int virtio_blk_write(struct virtio_blk *b, uint64_t sector, const void *buf,
		     uint32_t len);
int virtio_blk_flush(struct virtio_blk *b);
/* @id gets the device's ID string, NUL-terminated (up to 20 bytes). */
int virtio_blk_get_id(struct virtio_blk *b, char id[VIRTIO_BLK_ID_BYTES + 1]);
int virtio_blk_discard(struct virtio_blk *b, uint64_t sector,
		       uint32_t sectors);
int virtio_blk_write_zeroes(struct virtio_blk *b, uint64_t sector,
			    uint32_t sectors, bool unmap);

const char *virtio_blk_status_name(int status);

#endif
