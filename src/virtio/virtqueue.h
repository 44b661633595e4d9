/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2 §2.7), device side.
 *
 * The rings live in guest RAM and the guest is untrusted: every address
 * and length read from them goes through guest_mem_ptr() (whole range),
 * every descriptor is read once into a local copy (the guest may change
 * it under us), and chains are bounded.  A malformed chain (address
 * outside RAM, a loop, a chain longer than the queue, a bad indirect
 * table, an index out of range, a length sum past 4 GiB) marks the queue
 * broken: the transport then sets DEVICE_NEEDS_RESET and raises a config
 * interrupt; nothing else happens to the queue until a reset.
 *
 * Threads: a virtq is used by one thread at a time (the transport's lock).
 */
#ifndef RACKVM_VIRTIO_VIRTQUEUE_H
#define RACKVM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/state_buf.h"
#include "vm/guest_mem.h"

#define VIRTQ_MAX_SIZE 256		/* largest QueueNumMax we offer */
#define VIRTQ_INDIRECT_MAX 1024		/* entries in one indirect table */
/* A direct part (<= queue size) plus one indirect table. */
#define VIRTQ_MAX_SEGS (VIRTQ_MAX_SIZE + VIRTQ_INDIRECT_MAX)

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* What the driver wrote to the queue registers. */
struct virtq_layout {
	uint16_t size;		/* QueueNum: a power of 2, <= max */
	uint64_t desc;		/* QueueDesc: 16-byte aligned */
	uint64_t avail;		/* QueueDriver: 2-byte aligned */
	uint64_t used;		/* QueueDevice: 4-byte aligned */
};

enum virtq_error {
	VIRTQ_OK = 0,
	VIRTQ_ERR_LAYOUT,	/* bad size/alignment, rings not in RAM */
	VIRTQ_ERR_HEAD_INDEX,	/* avail ring entry >= size */
	VIRTQ_ERR_NEXT_INDEX,	/* next >= size (or table length) */
	VIRTQ_ERR_CHAIN_TOO_LONG, /* longer than the queue: a loop */
	VIRTQ_ERR_BUFFER,	/* a buffer not entirely in guest RAM */
	VIRTQ_ERR_INDIRECT,	/* bad table length, nested, or with NEXT */
	VIRTQ_ERR_LENGTH,	/* total length does not fit 32 bits */
	VIRTQ_ERR_AVAIL_IDX,	/* more buffers available than the size */
	VIRTQ_ERR_DEVICE,	/* a chain the device type cannot take
				 * (e.g. a writable buffer on a TX queue) */
};

struct virtq {
	const struct guest_mem *mem;
	struct virtq_layout layout;
	bool event_idx;		/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;		/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool ready;
	enum virtq_error error;	/* != VIRTQ_OK: broken until reset */

	/* host views of the rings, resolved and checked at enable */
	uint8_t *desc;
	uint8_t *avail;		/* flags, idx, ring[size], used_event */
	uint8_t *used;		/* flags, idx, ring[size], avail_event */

	uint16_t last_avail;	/* next avail ring slot we consume */
	uint16_t used_idx;	/* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last notify decision */
	bool signalled_used_valid;

	/* chains completed and bytes the device wrote into them since the
	 * transport was created (virtq_init() keeps them across resets) */
	uint64_t requests;
	uint64_t bytes;
};

/* One buffer of a chain, already translated and checked. */
struct virtq_seg {
	uint8_t *ptr;
	uint32_t len;
	bool is_write;		/* device-writable */
};

struct virtq_chain {
	uint16_t head;		/* what goes back in the used ring */
	unsigned nsegs;
	uint32_t readable;	/* total bytes the device may read */
	uint32_t writable;	/* total bytes the device may write */
	struct virtq_seg segs[VIRTQ_MAX_SEGS];
};

/* Resets @vq to "not ready, nothing configured" for @mem. */
void virtq_init(struct virtq *vq, const struct guest_mem *mem);
/*
 * QueueReady = 1: checks the layout (size a power of 2 in [1, @max_size],
 * alignment, all three rings inside RAM) and resolves the rings.  On
 * failure returns -EINVAL and the queue is broken (VIRTQ_ERR_LAYOUT).
 */
int virtq_enable(struct virtq *vq, uint16_t max_size, bool event_idx,
		 bool indirect);
void virtq_set_broken(struct virtq *vq, enum virtq_error e);
static inline bool virtq_broken(const struct virtq *vq)
{
	return vq->error != VIRTQ_OK;
}
const char *virtq_error_name(enum virtq_error e);

/*
 * Takes the next available chain and walks it into @chain.  Returns 1
 * with a chain, 0 if the ring is empty (with EVENT_IDX, avail_event was
 * updated and the ring rechecked, so no kick is lost), -EIO if the queue
 * is (now) broken.
 */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain);
/*
 * Gives back the last @n chains virtq_pop() returned and that were not
 * pushed: the next virtq_pop() walks them again (from the guest's
 * current descriptors).  For a device that needs several chains for
 * one request and found too few (virtio-net's mergeable RX buffers).
 */
void virtq_unpop(struct virtq *vq, uint16_t n);
/* Puts @head back with @written bytes written by the device (release
 * store of used->idx: the entry is visible before the index). */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);
/* Puts @n (<= the queue size) entries back and publishes them with one
 * used->idx store: the driver sees all of them or none (a frame spread
 * over several mergeable RX buffers). */
void virtq_push_n(struct virtq *vq, const struct virtq_used_elem *elems,
		  unsigned n);
/* After a batch of pushes: does the driver want an interrupt?
 * (EVENT_IDX: used_event crossed; else: no VIRTQ_AVAIL_F_NO_INTERRUPT.) */
bool virtq_should_notify(struct virtq *vq);

/* virtio 1.2 §2.7.10: true if @event_idx lies in [old, new_idx). */
static inline bool virtq_need_event(uint16_t event_idx, uint16_t new_idx,
				    uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/*
 * Snapshots and migration (virtqueue_state.c).  virtq_save() writes what
 * the driver configured and where the device stands: the layout, ready,
 * the negotiated ring features, the error, the indexes and the
 * counters.  virtq_load() reads it into @out, a queue of its own for
 * @mem (the caller commits it): a ready queue must pass virtq_enable()'s
 * checks against @max_size and @mem (resolved again, since host
 * addresses differ), and may not have given the device more chains than
 * it has entries; a queue that is not ready keeps its registers and no
 * ring.  -EBADMSG with the reason in @err (nothing applied anywhere).
 */
void virtq_save(const struct virtq *vq, struct state_buf *out);
int virtq_load(struct virtq *out, const struct guest_mem *mem,
	       struct state_reader *in, uint16_t max_size, struct errmsg *err);

/* Bytes of the three rings for a queue of @size entries. */
static inline uint64_t virtq_desc_bytes(uint16_t size)
{
	return 16ull * size;
}
static inline uint64_t virtq_avail_bytes(uint16_t size)
{
	return 6ull + 2ull * size;
}
static inline uint64_t virtq_used_bytes(uint16_t size)
{
	return 6ull + 8ull * size;
}

#endif
