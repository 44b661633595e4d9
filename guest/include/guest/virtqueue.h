/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2 section 2.7), driver side, polled.
 *
 * A request is a chain of buffers, device-readable ones first, then
 * device-writable ones.  vq_add() places it in the descriptor table (as
 * one indirect descriptor when INDIRECT_DESC was negotiated and the chain
 * has more than one buffer, so each request costs one ring slot), and
 * vq_kick() publishes everything added since the last kick and notifies
 * the device through QueueNotify unless the device said it does not need
 * it (VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX).  vq_get()
 * takes the next completion off the used ring.
 *
 * Interrupts are not wanted (the runtime polls), so the driver asks the
 * device not to send them: VIRTQ_AVAIL_F_NO_INTERRUPT, or with EVENT_IDX
 * a used_event the device will not reach for 65535 completions.
 *
 * Ring memory comes from a static pool of page-aligned blocks; the image
 * is identity mapped, so their addresses are what the device is given.
 * A queue is used by one CPU at a time.
 */
#ifndef GUEST_VIRTQUEUE_H
#define GUEST_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/virtio_mmio.h"

#define VQ_MAX_SIZE	256	/* descriptors per queue (power of two) */
#define VQ_MAX_CHAIN	8	/* buffers per request */
#define VQ_POOL_QUEUES	8	/* queues the pool can back */

#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4

#define VIRTQ_AVAIL_F_NO_INTERRUPT	1
#define VIRTQ_USED_F_NO_NOTIFY		1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* ring[size] is used_event (EVENT_IDX). */
struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* After ring[size] comes avail_event (EVENT_IDX), as a uint16_t. */
struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
};

struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

struct vq_mem;

struct virtqueue {
	struct virtio_dev *dev;
	unsigned int index;
	uint16_t size;
	bool event_idx;
	bool indirect;
	struct vq_mem *mem;
	struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	volatile uint16_t *used_event;	/* in the avail ring */
	volatile uint16_t *avail_event;	/* in the used ring */
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_idx;	/* ours, published by vq_kick() */
	uint16_t kicked_idx;	/* avail idx at the last kick */
	uint16_t last_used;
	uint16_t chain_len[VQ_MAX_SIZE];	/* ring descriptors per head */
	void *cookie[VQ_MAX_SIZE];
	/* Statistics, for workloads that report exits. */
	uint64_t notifies;
	uint64_t notifies_suppressed;
};

/* Sets up queue @index of @d (after virtio_dev_init(), before
 * virtio_driver_ok()) with at most @max_size descriptors (0: as many as
 * the device allows, up to VQ_MAX_SIZE).  INDIRECT_DESC and EVENT_IDX are
 * used if they were negotiated. */
int vq_setup(struct virtqueue *vq, struct virtio_dev *d, unsigned int index,
	     unsigned int max_size);

/* Adds one request; @cookie (non-NULL) comes back from vq_get().  Not
 * visible to the device before vq_kick().  -VIRTIO_ENOSPC if the queue
 * is full, -VIRTIO_EINVAL for a bad chain. */
int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned int n,
	   void *cookie);

/* Requests vq_add() can take before the queue is full. */
unsigned int vq_room(const struct virtqueue *vq, unsigned int nbufs);

/* Publishes the added requests and notifies the device if needed. */
void vq_kick(struct virtqueue *vq);

/* The next completed request's cookie (and bytes the device wrote into
 * its buffers in @len), or NULL if none completed yet. */
void *vq_get(struct virtqueue *vq, uint32_t *len);

/* vq_get(), polling for up to @timeout_ns; checks DEVICE_NEEDS_RESET now
 * and then.  On failure returns NULL with -VIRTIO_ERESET or
 * -VIRTIO_ETIMEDOUT in @err. */
void *vq_wait(struct virtqueue *vq, uint32_t *len, uint64_t timeout_ns,
	      int *err);

/* Adds, kicks and waits for one request: 0, or a negative error. */
int vq_exec(struct virtqueue *vq, const struct vq_buf *bufs, unsigned int n,
	    uint32_t *len, uint64_t timeout_ns);

/* Requests added but not completed. */
static inline unsigned int vq_in_flight(const struct virtqueue *vq)
{
	return (uint16_t)(vq->avail_idx - vq->last_used);
}

/* True if the device wants to be notified after the avail index moved
 * from @old to @new_idx, given its event index (virtio 1.2 2.7.10). */
static inline bool vring_need_event(uint16_t event, uint16_t new_idx,
				    uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Full barrier: orders the avail index store before the avail_event
 * load (x86 reorders a store with a later load). */
static inline void virtio_mb(void)
{
	asm volatile("lock; addl $0, -8(%%rsp)" ::: "memory", "cc");
}

/* Stores and loads are not reordered among themselves on x86; only the
 * compiler has to be stopped. */
static inline void virtio_wmb(void)
{
	asm volatile("" ::: "memory");
}

static inline void virtio_rmb(void)
{
	asm volatile("" ::: "memory");
}

#endif
