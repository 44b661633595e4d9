/* SPDX-License-Identifier: MIT */
/*
 * The virtio device side: constants of the virtio 1.2 specification that
 * the transport and the devices share, and the contract between the
 * virtio-mmio transport (mmio.c, mmio_io.c) and a device type (blk.c,
 * rng.c, ...).
 *
 * A device type is a small ops table (kvmtool style).  The transport owns
 * the register file, the virtqueues, the ioeventfds/irqfd and the I/O
 * thread; the device only sees its configuration space and, on its I/O
 * thread, "queue N has new buffers".  For snapshots and migration the
 * transport saves its registers and queues, and the device adds its own
 * part through save/load (mmio.h has the blob's layout).
 */
#ifndef RACKVM_VIRTIO_VIRTIO_H
#define RACKVM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/state_buf.h"

/* Device status (virtio 1.2 §2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Reserved feature bits (§6) every device here offers */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_TRANSPORT_FEATURES                                         \
	((1ull << VIRTIO_RING_F_INDIRECT_DESC) |                          \
	 (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_F_VERSION_1))

/* Device IDs (§5) */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5

/* "RKVM": what a guest reads as VendorID */
#define VIRTIO_RACKVM_VENDOR_ID 0x4d564b52u

#define VIRTIO_MAX_QUEUES 8

struct virtq;
struct virtio_mmio;

struct virtio_device_ops {
	const char *name;		/* for bus ranges and messages */
	uint32_t device_id;
	unsigned nqueues;		/* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size;	/* a power of 2, <= VIRTQ_MAX_SIZE */
	uint32_t config_size;		/* bytes of config space at 0x100 */

	/* Device-specific feature bits; the transport adds its own. */
	uint64_t (*features)(void *dev);
	/* Config space accesses, already bounds-checked against
	 * config_size.  config_write may be NULL (writes ignored). */
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data,
			    unsigned len);
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data,
			     unsigned len);
	/*
	 * Called on the device's I/O thread when the driver kicked @vq
	 * (index @q), with the transport's lock held: the queue is ready,
	 * the driver is DRIVER_OK and the queue is not broken.  The device
	 * pops chains, pushes them back and calls virtio_mmio_used() once
	 * per batch.  A chain the device finds malformed: virtq_set_broken().
	 */
	void (*queue_notify)(void *dev, struct virtio_mmio *t, struct virtq *vq,
			     unsigned q);
	/*
	 * A host-side fd the device registered with virtio_mmio_watch_fd()
	 * is readable (a TAP device, a console input).  Runs on the I/O
	 * thread with the transport's lock held.  The watch is level-
	 * triggered: a device that cannot take the data now (no guest
	 * buffers) pauses the watch with virtio_mmio_set_watch() and resumes
	 * it from queue_notify.  May be NULL if the device watches nothing.
	 */
	void (*backend_ready)(void *dev, struct virtio_mmio *t, unsigned tag);
	/* Driver wrote 0 to Status (may be NULL). */
	void (*reset)(void *dev);
	/* Frees @dev; called after the I/O thread stopped. */
	void (*destroy)(void *dev);

	/*
	 * Snapshots and migration (both may be NULL: nothing beyond the
	 * transport's state).  They run with the transport's lock held,
	 * the device quiesced (no request half done: every callback above
	 * runs to its end under the lock).  save appends the device's part,
	 * a u32 layout version first.  load runs once the transport's own
	 * part is in place, so the device may ask it what the driver
	 * negotiated and where its queues are; it must read all of @in
	 * (virtio_state_end()), check every value (the bytes are
	 * untrusted), and on any error apply nothing and say why in @err
	 * (the transport then takes its own part back).  After a load the
	 * transport kicks every queue of a live driver, as DRIVER_OK does:
	 * a device re-arms its watches from queue_notify as usual.
	 */
	void (*save)(void *dev, struct virtio_mmio *t, struct state_buf *out);
	int (*load)(void *dev, struct virtio_mmio *t, struct state_reader *in,
		    struct errmsg *err);
};

/* For the device parts' load functions: -EBADMSG if the blob has no
 * version, -EPROTONOSUPPORT if it is not @version. */
int virtio_state_version(struct state_reader *in, uint32_t version,
			 struct errmsg *err);
/* After the last field: -EBADMSG if a field ran past the end of the
 * part, or bytes are left over. */
int virtio_state_end(const struct state_reader *in, struct errmsg *err);

#endif
