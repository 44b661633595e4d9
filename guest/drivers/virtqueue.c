// SPDX-License-Identifier: MIT
/* Split virtqueues, driver side (guest/virtqueue.h). */
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtqueue.h"

/* How often a waiting driver looks at Status for DEVICE_NEEDS_RESET: an
 * MMIO read is a VM exit, the used ring is plain memory. */
#define RESET_CHECK_NS (10 * NSEC_PER_MSEC)

/*
 * One queue's memory.  The spec asks for 16-byte alignment of the
 * descriptor table, 2 of the avail ring and 4 of the used ring; each part
 * gets its own page so that the device's writes (used ring) and ours
 * (avail ring) never share a cache line.
 */
struct vq_mem {
	struct virtq_desc desc[VQ_MAX_SIZE];
	uint8_t avail[4096];
	uint8_t used[4096];
	/* Indirect tables, one per possible head descriptor. */
	struct virtq_desc indirect[VQ_MAX_SIZE][VQ_MAX_CHAIN];
} __attribute__((aligned(4096)));

_Static_assert(sizeof(struct virtq_desc) == 16, "descriptor layout");
_Static_assert(sizeof(((struct vq_mem *)0)->desc) == 4096, "table size");
_Static_assert(4 + 2 * VQ_MAX_SIZE + 2 <= 4096, "avail ring fits");
_Static_assert(4 + 8 * VQ_MAX_SIZE + 2 <= 4096, "used ring fits");

static struct vq_mem pool[VQ_POOL_QUEUES];
static unsigned int pool_used;

static void split_write64(struct virtio_dev *d, unsigned int low_reg,
			  uint64_t v)
{
	virtio_write32(d, low_reg, (uint32_t)v);
	virtio_write32(d, low_reg + 4, v >> 32);
}

int vq_setup(struct virtqueue *vq, struct virtio_dev *d, unsigned int index,
	     unsigned int max_size)
{
	uint32_t num_max;
	unsigned int size, i;

	memset(vq, 0, sizeof(*vq));
	virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio_read32(d, VIRTIO_MMIO_QUEUE_READY)) {
		uart_printf("virtio: queue %u of device %u already live\n",
			    index, d->device_id);
		return -VIRTIO_EQUEUE;
	}
	num_max = virtio_read32(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (num_max == 0) {
		uart_printf("virtio: device %u has no queue %u\n",
			    d->device_id, index);
		return -VIRTIO_EQUEUE;
	}
	if (pool_used == VQ_POOL_QUEUES) {
		uart_printf("virtio: more than %d queues\n", VQ_POOL_QUEUES);
		return -VIRTIO_EQUEUE;
	}
	if (!max_size || max_size > VQ_MAX_SIZE)
		max_size = VQ_MAX_SIZE;
	if (max_size > num_max)
		max_size = num_max;
	/* Split queue sizes are powers of two (2.7). */
	for (size = 1; size * 2 <= max_size; size *= 2)
		;

	vq->dev = d;
	vq->index = index;
	vq->size = size;
	vq->mem = &pool[pool_used++];
	memset(vq->mem, 0, sizeof(*vq->mem));
	vq->desc = vq->mem->desc;
	vq->avail = (volatile struct virtq_avail *)vq->mem->avail;
	vq->used = (volatile struct virtq_used *)vq->mem->used;
	vq->used_event = &vq->avail->ring[size];
	vq->avail_event = (volatile uint16_t *)&vq->used->ring[size];
	vq->event_idx = virtio_has_feature(d, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_has_feature(d, VIRTIO_F_INDIRECT_DESC);
	for (i = 0; i < size; i++)
		vq->desc[i].next = i + 1;
	vq->free_head = 0;
	vq->num_free = size;

	/* Polled: ask for no used-buffer notifications.  With EVENT_IDX
	 * the flag means nothing; a used_event one behind our position
	 * is only crossed after 65535 more completions, and vq_get()
	 * keeps it there. */
	if (vq->event_idx)
		*vq->used_event = (uint16_t)(vq->last_used - 1);
	else
		vq->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, size);
	split_write64(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uintptr_t)vq->desc);
	split_write64(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
		      (uintptr_t)vq->mem->avail);
	split_write64(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW,
		      (uintptr_t)vq->mem->used);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return 0;
}

/* Ring descriptors a request of @nbufs buffers takes. */
static unsigned int ring_descs(const struct virtqueue *vq, unsigned int nbufs)
{
	return vq->indirect && nbufs > 1 ? 1 : nbufs;
}

unsigned int vq_room(const struct virtqueue *vq, unsigned int nbufs)
{
	return vq->num_free / ring_descs(vq, nbufs);
}

static void fill_desc(struct virtq_desc *d, const struct vq_buf *b)
{
	d->addr = b->addr;
	d->len = b->len;
	d->flags = b->device_writes ? VIRTQ_DESC_F_WRITE : 0;
}

int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned int n,
	   void *cookie)
{
	struct virtq_desc *table;
	unsigned int i, need;
	uint16_t head, idx;

	if (n == 0 || n > VQ_MAX_CHAIN || !cookie)
		return -VIRTIO_EINVAL;
	need = ring_descs(vq, n);
	if (vq->num_free < need)
		return -VIRTIO_ENOSPC;

	head = vq->free_head;
	if (need == 1 && n > 1) {
		/* One ring slot whatever the chain length: the chain
		 * lives in this head's indirect table. */
		table = vq->mem->indirect[head];
		for (i = 0; i < n; i++) {
			fill_desc(&table[i], &bufs[i]);
			if (i + 1 < n) {
				table[i].flags |= VIRTQ_DESC_F_NEXT;
				table[i].next = i + 1;
			} else {
				table[i].next = 0;
			}
		}
		vq->desc[head].addr = (uintptr_t)table;
		vq->desc[head].len = n * sizeof(*table);
		vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
	} else {
		/* The last descriptor's next still points into the free
		 * list; vq_get() relies on that to give the chain back. */
		idx = head;
		for (i = 0; i < n; i++) {
			fill_desc(&vq->desc[idx], &bufs[i]);
			if (i + 1 < n)
				vq->desc[idx].flags |= VIRTQ_DESC_F_NEXT;
			idx = vq->desc[idx].next;
		}
		vq->free_head = idx;
	}
	vq->num_free -= need;
	vq->chain_len[head] = need;
	vq->cookie[head] = cookie;
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	vq->avail_idx++;
	return 0;
}

void vq_kick(struct virtqueue *vq)
{
	uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;
	bool notify;

	if (old == new_idx)
		return;
	/* Descriptors and ring entries before the index that covers them. */
	virtio_wmb();
	vq->avail->idx = new_idx;
	vq->kicked_idx = new_idx;
	/* The index store must be visible before we read whether the
	 * device wants a notification, or we could both wait. */
	virtio_mb();
	if (vq->event_idx)
		notify = vring_need_event(*vq->avail_event, new_idx, old);
	else
		notify = !(vq->used->flags & VIRTQ_USED_F_NO_NOTIFY);
	if (notify) {
		virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
		vq->notifies++;
	} else {
		vq->notifies_suppressed++;
	}
}

void *vq_get(struct virtqueue *vq, uint32_t *len)
{
	struct virtq_used_elem elem;
	unsigned int n, i;
	uint16_t idx;
	void *cookie;

	if (vq->last_used == vq->used->idx)
		return NULL;
	/* The entry is read only after the index that published it. */
	virtio_rmb();
	elem.id = vq->used->ring[vq->last_used & (vq->size - 1)].id;
	elem.len = vq->used->ring[vq->last_used & (vq->size - 1)].len;
	GUEST_ASSERT_MSG(elem.id < vq->size && vq->cookie[elem.id],
			 "virtio: device %u queue %u returned descriptor %u, "
			 "which is not in flight", vq->dev->device_id,
			 vq->index, elem.id);
	cookie = vq->cookie[elem.id];
	vq->cookie[elem.id] = NULL;
	n = vq->chain_len[elem.id];
	idx = elem.id;
	for (i = 1; i < n; i++)
		idx = vq->desc[idx].next;
	vq->desc[idx].next = vq->free_head;
	vq->free_head = elem.id;
	vq->num_free += n;
	vq->last_used++;
	if (vq->event_idx)
		*vq->used_event = (uint16_t)(vq->last_used - 1);
	if (len)
		*len = elem.len;
	return cookie;
}

void *vq_wait(struct virtqueue *vq, uint32_t *len, uint64_t timeout_ns,
	      int *err)
{
	uint64_t now, deadline, next_check, check_every;
	void *cookie;

	cookie = vq_get(vq, len);
	if (cookie)
		return cookie;
	now = rdtsc();
	check_every = ns_to_tsc(RESET_CHECK_NS);
	deadline = now + ns_to_tsc(timeout_ns);
	next_check = now + check_every;
	for (;;) {
		cookie = vq_get(vq, len);
		if (cookie)
			return cookie;
		cpu_relax();
		now = rdtsc();
		if (now < next_check)
			continue;
		next_check = now + check_every;
		if (virtio_needs_reset(vq->dev)) {
			*err = -VIRTIO_ERESET;
			return NULL;
		}
		if (now >= deadline) {
			uart_printf("virtio: device %u queue %u: no completion "
				    "in " SECONDS_FMT " s (%u in flight)\n",
				    vq->dev->device_id, vq->index,
				    SECONDS_ARGS(timeout_ns),
				    vq_in_flight(vq));
			*err = -VIRTIO_ETIMEDOUT;
			return NULL;
		}
	}
}

int vq_exec(struct virtqueue *vq, const struct vq_buf *bufs, unsigned int n,
	    uint32_t *len, uint64_t timeout_ns)
{
	static char token;	/* any non-NULL cookie */
	void *cookie;
	int err;

	GUEST_ASSERT_MSG(vq_in_flight(vq) == 0,
			 "vq_exec with requests in flight");
	err = vq_add(vq, bufs, n, &token);
	if (err)
		return err;
	vq_kick(vq);
	cookie = vq_wait(vq, len, timeout_ns, &err);
	return cookie ? 0 : err;
}
