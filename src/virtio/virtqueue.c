// SPDX-License-Identifier: MIT
/*
 * Split virtqueues, device side (virtio 1.2 §2.7).  See virtqueue.h for
 * the rules against a hostile driver.
 *
 * Ring offsets (all little-endian, x86 host):
 *   available: flags @0, idx @2, ring[size] @4, used_event @4 + 2*size
 *   used:      flags @0, idx @2, ring[size] @4 (8 bytes each),
 *              avail_event @4 + 8*size
 */
#include <errno.h>
#include <string.h>

#include "virtio/virtqueue.h"

/* Compiler barrier: a local copy of guest data stays a copy (no re-read
 * of guest memory the guest may have changed in between). */
#define guest_copy_barrier() __asm__ __volatile__("" ::: "memory")

static const char *const error_names[] = {
	[VIRTQ_OK] = "ok",
	[VIRTQ_ERR_LAYOUT] = "bad queue layout",
	[VIRTQ_ERR_HEAD_INDEX] = "available ring entry out of range",
	[VIRTQ_ERR_NEXT_INDEX] = "descriptor next index out of range",
	[VIRTQ_ERR_CHAIN_TOO_LONG] = "descriptor chain too long (loop)",
	[VIRTQ_ERR_BUFFER] = "buffer outside guest RAM",
	[VIRTQ_ERR_INDIRECT] = "bad indirect descriptor table",
	[VIRTQ_ERR_LENGTH] = "chain length overflows",
	[VIRTQ_ERR_AVAIL_IDX] = "available index too far ahead",
	[VIRTQ_ERR_DEVICE] = "chain malformed for the device type",
};

const char *virtq_error_name(enum virtq_error e)
{
	if ((unsigned)e < sizeof(error_names) / sizeof(error_names[0]))
		return error_names[e];
	return "unknown";
}

void virtq_init(struct virtq *vq, const struct guest_mem *mem)
{
	uint64_t requests = vq->requests, bytes = vq->bytes;

	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->requests = requests;
	vq->bytes = bytes;
}

void virtq_set_broken(struct virtq *vq, enum virtq_error e)
{
	if (vq->error == VIRTQ_OK)
		vq->error = e;
}

static bool is_power_of_2(unsigned v)
{
	return v && !(v & (v - 1));
}

int virtq_enable(struct virtq *vq, uint16_t max_size, bool event_idx,
		 bool indirect)
{
	const struct virtq_layout *l = &vq->layout;

	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used_valid = false;
	if (!is_power_of_2(l->size) || l->size > max_size ||
	    l->desc % 16 || l->avail % 2 || l->used % 4)
		goto bad;
	vq->desc = guest_mem_ptr(vq->mem, l->desc, virtq_desc_bytes(l->size));
	vq->avail = guest_mem_ptr(vq->mem, l->avail,
				  virtq_avail_bytes(l->size));
	vq->used = guest_mem_ptr(vq->mem, l->used, virtq_used_bytes(l->size));
	if (!vq->desc || !vq->avail || !vq->used)
		goto bad;
	vq->ready = true;
	return 0;
bad:
	vq->desc = vq->avail = vq->used = NULL;
	virtq_set_broken(vq, VIRTQ_ERR_LAYOUT);
	return -EINVAL;
}

static uint16_t *avail_idx_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->avail + 2);
}

static uint16_t *avail_ring_ptr(const struct virtq *vq, uint16_t slot)
{
	return (uint16_t *)(vq->avail + 4 + 2 * (slot % vq->layout.size));
}

static uint16_t *used_event_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->avail + 4 + 2 * vq->layout.size);
}

static uint16_t *used_idx_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->used + 2);
}

static uint16_t *avail_event_ptr(const struct virtq *vq)
{
	return (uint16_t *)(vq->used + 4 + 8 * vq->layout.size);
}

static void read_desc(const uint8_t *table, uint32_t index,
		      struct virtq_desc *d)
{
	memcpy(d, table + 16 * (size_t)index, sizeof(*d));
	guest_copy_barrier();
}

static enum virtq_error add_segment(struct virtq *vq, struct virtq_chain *c,
				    const struct virtq_desc *d,
				    uint64_t *readable, uint64_t *writable)
{
	uint8_t *p = guest_mem_ptr(vq->mem, d->addr, d->len);
	bool is_write = d->flags & VIRTQ_DESC_F_WRITE;

	if (!p)
		return VIRTQ_ERR_BUFFER;
	if (c->nsegs >= VIRTQ_MAX_SEGS)
		return VIRTQ_ERR_CHAIN_TOO_LONG;
	c->segs[c->nsegs++] = (struct virtq_seg){ p, d->len, is_write };
	if (is_write) {
		/* a migration resends it once the device has quiesced */
		guest_mem_note_device_write(vq->mem, p, d->len);
		*writable += d->len;
	}
	else
		*readable += d->len;
	if (*readable > UINT32_MAX || *writable > UINT32_MAX)
		return VIRTQ_ERR_LENGTH;
	return VIRTQ_OK;
}

/*
 * Walks the chain at @head.  Bounds: at most size descriptors in the
 * descriptor table (more means a loop), then at most one indirect table
 * of at most VIRTQ_INDIRECT_MAX entries, walked with the same rule.
 */
static enum virtq_error walk_chain(struct virtq *vq, uint16_t head,
				   struct virtq_chain *c)
{
	const uint8_t *table = vq->desc;
	uint32_t table_size = vq->layout.size, index = head, count = 0;
	uint64_t readable = 0, writable = 0;
	bool in_indirect = false;
	enum virtq_error e;
	struct virtq_desc d;

	c->head = head;
	c->nsegs = 0;
	if (head >= table_size)
		return VIRTQ_ERR_HEAD_INDEX;
	for (;;) {
		if (index >= table_size)
			return VIRTQ_ERR_NEXT_INDEX;
		if (++count > table_size)
			return VIRTQ_ERR_CHAIN_TOO_LONG;
		read_desc(table, index, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect ||
			    (d.flags & VIRTQ_DESC_F_NEXT) || d.len == 0 ||
			    d.len % 16 || d.len / 16 > VIRTQ_INDIRECT_MAX)
				return VIRTQ_ERR_INDIRECT;
			table = guest_mem_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return VIRTQ_ERR_BUFFER;
			table_size = d.len / 16;
			index = 0;
			count = 0;
			in_indirect = true;
			continue;
		}
		e = add_segment(vq, c, &d, &readable, &writable);
		if (e)
			return e;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		index = d.next;
	}
	c->readable = (uint32_t)readable;
	c->writable = (uint32_t)writable;
	return VIRTQ_OK;
}

/* The driver's available index, read with acquire: ring entries and
 * descriptors it published before are then visible. */
static uint16_t load_avail_idx(const struct virtq *vq)
{
	return __atomic_load_n(avail_idx_ptr(vq), __ATOMIC_ACQUIRE);
}

static bool avail_empty(struct virtq *vq, uint16_t *avail_idx)
{
	*avail_idx = load_avail_idx(vq);
	if (*avail_idx != vq->last_avail || !vq->event_idx)
		return *avail_idx == vq->last_avail;
	/* Tell the driver where to kick next, then look again: a buffer
	 * made available before it saw avail_event would get no kick. */
	__atomic_store_n(avail_event_ptr(vq), vq->last_avail, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*avail_idx = load_avail_idx(vq);
	return *avail_idx == vq->last_avail;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain)
{
	uint16_t avail_idx, head;
	enum virtq_error e;

	if (virtq_broken(vq) || !vq->ready)
		return -EIO;
	if (avail_empty(vq, &avail_idx))
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->layout.size) {
		virtq_set_broken(vq, VIRTQ_ERR_AVAIL_IDX);
		return -EIO;
	}
	head = __atomic_load_n(avail_ring_ptr(vq, vq->last_avail),
			       __ATOMIC_RELAXED);
	vq->last_avail++;
	e = walk_chain(vq, head, chain);
	if (e) {
		virtq_set_broken(vq, e);
		return -EIO;
	}
	return 1;
}

void virtq_unpop(struct virtq *vq, uint16_t n)
{
	vq->last_avail -= n;
}

void virtq_push_n(struct virtq *vq, const struct virtq_used_elem *elems,
		  unsigned n)
{
	uint8_t *slot;

	if (!vq->ready)
		return;
	for (unsigned i = 0; i < n; i++) {
		slot = vq->used + 4 +
		       8 * (size_t)(vq->used_idx % vq->layout.size);
		memcpy(slot, &elems[i], sizeof(elems[i]));
		vq->used_idx++;
		vq->bytes += elems[i].len;
	}
	vq->requests += n;
	guest_mem_note_device_write(vq->mem, vq->used,
				    virtq_used_bytes(vq->layout.size));
	/* release: the elements are visible before the index covering them */
	__atomic_store_n(used_idx_ptr(vq), vq->used_idx, __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	struct virtq_used_elem elem = { .id = head, .len = written };

	virtq_push_n(vq, &elem, 1);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, event;
	bool valid = vq->signalled_used_valid;

	if (!vq->ready)
		return false;
	/* nothing pushed since the last decision (or ever: old starts at
	 * 0 like used_idx; a batch never pushes 65536 entries) */
	if (old == vq->used_idx)
		return false;
	vq->signalled_used = vq->used_idx;
	vq->signalled_used_valid = true;
	/* our used->idx store must be visible before we read the driver's
	 * suppression state, or both sides may skip the interrupt */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n((uint16_t *)vq->avail, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	event = __atomic_load_n(used_event_ptr(vq), __ATOMIC_RELAXED);
	return virtq_need_event(event, vq->used_idx, old);
}
