/* SPDX-License-Identifier: MIT */
/*
 * What the virtio state tests (test_virtio_state*.c) share: a disk image
 * whose sector n is filled with byte n, a virtio-blk on it, and a small
 * driver for device @index of a bare VM that sets the device up and posts
 * block requests on the test ring (virtio_test_util.h), at addresses that
 * depend only on the request's number: a copy of guest RAM holds the same
 * requests for a second VM.
 */
#ifndef RACKVM_TESTS_TEST_VIRTIO_STATE_H
#define RACKVM_TESTS_TEST_VIRTIO_STATE_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio_test_util.h"

#define VS_MEM_SIZE (16ull << 20)
#define VS_QSIZE 16
#define VS_DISK_SECTORS 64u
#define VS_LIVE (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
		 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)
#define VS_SLOTS 5u		/* requests of 3 descriptors in flight */

static inline int vs_make_disk(char *path, size_t size)
{
	uint8_t sector[512];
	int fd;

	snprintf(path, size, "%s/vstate-XXXXXX", harness_tmpdir());
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	for (unsigned s = 0; s < VS_DISK_SECTORS; s++) {
		memset(sector, (int)s, sizeof(sector));
		if (pwrite(fd, sector, sizeof(sector), s * 512ll) != 512) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

static inline int vs_blk_create(struct vm *vm, unsigned index,
				const char *path)
{
	struct virtio_blk_options opt = { .path = path };

	return virtio_blk_create(vm, index, &opt, NULL);
}

struct vs_drv {
	struct vm *vm;
	unsigned index;
	uint64_t base;
	struct test_ring ring;
};

static inline uint32_t vs_rd(struct vs_drv *d, uint64_t off)
{
	return mmio_rd32(&d->vm->mmio_bus, d->base, off);
}

static inline void vs_wr(struct vs_drv *d, uint64_t off, uint32_t v)
{
	mmio_wr32(&d->vm->mmio_bus, d->base, off, v);
}

static inline void vs_drv_init(struct vs_drv *d, struct vm *vm,
			       unsigned index)
{
	d->vm = vm;
	d->index = index;
	d->base = virtio_mmio_base(index);
	tr_init(&d->ring, &vm->mem, VS_QSIZE);
}

/* What a driver does at probe: features, queue 0 on the test ring, and
 * DRIVER_OK if @live. */
static inline void vs_drv_setup(struct vs_drv *d, uint64_t features,
				bool live)
{
	vs_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	vs_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	      VIRTIO_STATUS_DRIVER);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vs_wr(d, VIRTIO_MMIO_STATUS, VS_LIVE & ~VIRTIO_STATUS_DRIVER_OK);
	vs_wr(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	vs_wr(d, VIRTIO_MMIO_QUEUE_NUM, VS_QSIZE);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, TR_DESC);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, TR_AVAIL);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TR_USED);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	vs_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (live)
		vs_wr(d, VIRTIO_MMIO_STATUS, VS_LIVE);
}

/* Request @n: header (+ status byte at +0x100) and a sector of data. */
static inline uint64_t vs_blk_hdr_gpa(unsigned n)
{
	return TR_DATA + 0x10000ull * (n % VS_SLOTS);
}

static inline uint64_t vs_blk_data_gpa(unsigned n)
{
	return vs_blk_hdr_gpa(n) + 0x1000;
}

static inline uint16_t vs_blk_head(unsigned n)
{
	return (uint16_t)(3 * (n % VS_SLOTS));
}

/* Posts request @n (@out: the sector to write for VIRTIO_BLK_T_OUT)
 * and kicks. */
static inline void vs_blk_post(struct vs_drv *d, unsigned n, uint32_t type,
			       uint64_t sector, const uint8_t *out)
{
	uint64_t hdr = vs_blk_hdr_gpa(n), data = vs_blk_data_gpa(n);
	uint16_t head = vs_blk_head(n);
	uint8_t h[VIRTIO_BLK_HDR_SIZE] = { 0 }, status = 0xee;
	uint16_t data_flags = VIRTQ_DESC_F_NEXT |
			      (type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0);

	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	guest_mem_write(&d->vm->mem, hdr, h, sizeof(h));
	guest_mem_write(&d->vm->mem, hdr + 0x100, &status, 1);
	if (out)
		guest_mem_write(&d->vm->mem, data, out, 512);
	tr_desc(&d->ring, head, hdr, sizeof(h), VIRTQ_DESC_F_NEXT, head + 1);
	tr_desc(&d->ring, head + 1u, data, 512, data_flags, head + 2);
	tr_desc(&d->ring, head + 2u, hdr + 0x100, 1, VIRTQ_DESC_F_WRITE, 0);
	/* EVENT_IDX: an interrupt for every completion from here on, as a
	 * driver that re-enables its callback asks */
	tr_write16(&d->ring, tr_used_event_gpa(&d->ring), tr_used_idx(&d->ring));
	tr_publish(&d->ring, head);
	vs_wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static inline uint8_t vs_blk_status(struct vs_drv *d, unsigned n)
{
	uint8_t s = 0xff;

	guest_mem_read(&d->vm->mem, vs_blk_hdr_gpa(n) + 0x100, &s, 1);
	return s;
}

static inline void vs_blk_data(struct vs_drv *d, unsigned n, uint8_t *out)
{
	guest_mem_read(&d->vm->mem, vs_blk_data_gpa(n), out, 512);
}

/* Up to 5 s for the used index to reach @idx. */
static inline bool vs_wait_used(struct vs_drv *d, uint16_t idx)
{
	for (int i = 0; i < 5000; i++) {
		if (__atomic_load_n((uint16_t *)guest_mem_ptr(&d->vm->mem,
							      TR_USED + 2, 2),
				    __ATOMIC_ACQUIRE) == idx)
			return true;
		usleep(1000);
	}
	return false;
}

static inline int vs_irq_fd(const struct vm *vm, unsigned index)
{
	return virtio_mmio_irq_fd(vstate_entry(vm, index)->opaque);
}

/* Waits (up to 5 s) for an interrupt and consumes it. */
static inline bool vs_wait_irq(const struct vm *vm, unsigned index)
{
	struct pollfd p = { .fd = vs_irq_fd(vm, index), .events = POLLIN };
	eventfd_t v;

	if (poll(&p, 1, 5000) != 1)
		return false;
	return eventfd_read(p.fd, &v) == 0;
}

static inline void vs_drain_irq(const struct vm *vm, unsigned index)
{
	eventfd_t v;

	(void)eventfd_read(vs_irq_fd(vm, index), &v);
}

static inline void vs_ack_irq(struct vs_drv *d)
{
	vs_wr(d, VIRTIO_MMIO_INTERRUPT_ACK,
	      vs_rd(d, VIRTIO_MMIO_INTERRUPT_STATUS));
}

#endif
