/* SPDX-License-Identifier: MIT */
/*
 * A tiny virtio "driver" for unit tests: builds split rings in a real
 * struct guest_mem at fixed guest addresses and reads the used ring back.
 */
#ifndef RACKVM_TESTS_VIRTIO_TEST_UTIL_H
#define RACKVM_TESTS_VIRTIO_TEST_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/state_buf.h"
#include "virtio/virtqueue.h"
#include "vm/bus.h"
#include "vm/guest_mem.h"
#include "vm/vm_state.h"

#define TR_DESC 0x10000ull
#define TR_AVAIL 0x20000ull
#define TR_USED 0x30000ull
#define TR_INDIRECT 0x40000ull
#define TR_DATA 0x100000ull	/* buffers from here on */

/* 32-bit register access to the virtio-mmio device at @base, as a vCPU
 * would make it (through the VM's MMIO bus). */
static inline uint32_t mmio_rd32(const struct bus *mmio, uint64_t base,
				 uint64_t off)
{
	uint8_t d[4] = { 0 };

	bus_access(mmio, 0, base + off, d, 4, false);
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void mmio_wr32(const struct bus *mmio, uint64_t base,
			     uint64_t off, uint32_t v)
{
	uint8_t d[4] = { v, v >> 8, v >> 16, v >> 24 };

	bus_access(mmio, 0, base + off, d, 4, true);
}

struct test_ring {
	struct guest_mem *mem;
	uint16_t size;
	uint16_t avail_idx;
};

static inline void tr_init(struct test_ring *r, struct guest_mem *m,
			   uint16_t size)
{
	r->mem = m;
	r->size = size;
	r->avail_idx = 0;
	memset(guest_mem_ptr(m, TR_DESC, 0x40000), 0, 0x40000);
}

static inline struct virtq_layout tr_layout(const struct test_ring *r)
{
	return (struct virtq_layout){ .size = r->size, .desc = TR_DESC,
				      .avail = TR_AVAIL, .used = TR_USED };
}

static inline void tr_desc_at(struct test_ring *r, uint64_t table,
			      unsigned i, uint64_t addr, uint32_t len,
			      uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { addr, len, flags, next };

	guest_mem_write(r->mem, table + 16ull * i, &d, sizeof(d));
}

static inline void tr_desc(struct test_ring *r, unsigned i, uint64_t addr,
			   uint32_t len, uint16_t flags, uint16_t next)
{
	tr_desc_at(r, TR_DESC, i, addr, len, flags, next);
}

static inline void tr_publish(struct test_ring *r, uint16_t head)
{
	uint16_t slot = r->avail_idx % r->size;

	guest_mem_write(r->mem, TR_AVAIL + 4 + 2ull * slot, &head, 2);
	r->avail_idx++;
	guest_mem_write(r->mem, TR_AVAIL + 2, &r->avail_idx, 2);
}

static inline uint16_t tr_read16(struct test_ring *r, uint64_t gpa)
{
	uint16_t v = 0;

	guest_mem_read(r->mem, gpa, &v, 2);
	return v;
}

static inline void tr_write16(struct test_ring *r, uint64_t gpa, uint16_t v)
{
	guest_mem_write(r->mem, gpa, &v, 2);
}

static inline uint16_t tr_used_idx(struct test_ring *r)
{
	return tr_read16(r, TR_USED + 2);
}

static inline struct virtq_used_elem tr_used_elem(struct test_ring *r,
						  uint16_t i)
{
	struct virtq_used_elem e = { 0 };

	guest_mem_read(r->mem, TR_USED + 4 + 8ull * (i % r->size), &e,
		       sizeof(e));
	return e;
}

/* used_event lives after the available ring, avail_event after used */
static inline uint64_t tr_used_event_gpa(const struct test_ring *r)
{
	return TR_AVAIL + 4 + 2ull * r->size;
}

static inline uint64_t tr_avail_event_gpa(const struct test_ring *r)
{
	return TR_USED + 4 + 8ull * r->size;
}

/* The state registry's entry of virtio-mmio device @index of @vm. */
static inline const struct vm_state_entry *vstate_entry(const struct vm *vm,
							unsigned index)
{
	char name[VM_STATE_NAME_MAX];

	snprintf(name, sizeof(name), "virtio-mmio@%u", index);
	return vm_state_find(vm, name);
}

/* Device @index's saved state into @b (state_buf_init'ed by us). */
static inline int vstate_save(const struct vm *vm, unsigned index,
			      struct state_buf *b)
{
	const struct vm_state_entry *e = vstate_entry(vm, index);

	state_buf_init(b);
	return e ? e->ops->save(e->opaque, b) : -ENOENT;
}

/* Loads @len bytes of @data into device @index of @vm, as a restore
 * would (every byte read, or it failed). */
static inline int vstate_load(const struct vm *vm, unsigned index,
			      const void *data, size_t len, struct errmsg *err)
{
	const struct vm_state_entry *e = vstate_entry(vm, index);
	struct state_reader r;
	int ret;

	if (!e)
		return -ENOENT;
	state_reader_init(&r, data, len);
	ret = e->ops->load(e->opaque, &r, err);
	if (!ret && state_reader_left(&r))
		return -EBADMSG;
	return ret;
}

#endif
