// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: virtio-net receive placement and transmit gathering
 * against a hostile driver.  Input: byte 0 picks the queue size (1..128),
 * mergeable or not, and the features; bytes 1-2 the length of a frame
 * to receive; the rest is the start of guest RAM, which holds the
 * available ring (0x0), the descriptor table (0x200) and the used ring
 * (0xc00), as in fuzz_virtqueue.c.  The same ring is used as a receive
 * queue (frames placed until it runs out) and then as a transmit queue.
 * Besides the sanitizers it checks what the device reports: used entries
 * whose lengths add up to the frame, nothing consumed when nothing was
 * placed, iovecs inside guest RAM or the device's own buffers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net.h"
#include "virtio/virtqueue.h"

#define RAM_SIZE GUEST_MEM_MIN_SIZE
#define MAX_FRAMES 16
#define MAX_IOV 8

static struct guest_mem mem;
static struct virtq_chain chain;
static uint8_t pkt[VIRTIO_NET_PACKET_MAX];
static uint8_t bounce[VIRTIO_NET_FRAME_MAX];
static bool ready;

#include <stdio.h>
#define check(cond) check_at(cond, __LINE__)
static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_virtio_net: check at line %d failed\n", line);
		abort();
	}
}

static uint16_t used_idx(void)
{
	uint16_t v;

	memcpy(&v, mem.base + 0xc00 + 2, 2);
	return v;
}

static void check_placed(const struct virtq *vq, uint16_t before,
			 unsigned nbufs, uint32_t len)
{
	uint32_t total = 0;

	check(nbufs >= 1 && nbufs <= vq->layout.size);
	check((uint16_t)(vq->used_idx - before) == nbufs);
	check(used_idx() == vq->used_idx);
	for (unsigned i = 0; i < nbufs; i++) {
		struct virtq_used_elem e;

		memcpy(&e, mem.base + 0xc00 + 4 +
		       8 * ((before + i) % vq->layout.size), sizeof(e));
		check(e.id < vq->layout.size);
		check(e.len > 0 && (i || e.len >= VIRTIO_NET_HDR_SIZE));
		total += e.len;
	}
	check(total == len);
}

static bool in_ram(const void *p, size_t len)
{
	const uint8_t *b = p;

	return b >= mem.base && b + len <= mem.base + RAM_SIZE;
}

static void fuzz_tx(struct virtq *vq)
{
	uint8_t hdr[VIRTIO_NET_HDR_SIZE];
	struct iovec iov[MAX_IOV];
	uint64_t total;
	int n;

	for (int i = 0; i < MAX_FRAMES && virtq_pop(vq, &chain) == 1; i++) {
		n = virtio_net_tx_gather(&chain, hdr, iov, MAX_IOV, bounce);
		if (n < 0) {
			check(chain.writable || chain.readable < VIRTIO_NET_HDR_SIZE ||
			      chain.readable > VIRTIO_NET_PACKET_MAX);
			continue;
		}
		check(n >= 1 && n <= MAX_IOV && iov[0].iov_base == hdr);
		total = 0;
		for (int j = 0; j < n; j++) {
			total += iov[j].iov_len;
			if (j && iov[j].iov_base != bounce)
				check(in_ram(iov[j].iov_base, iov[j].iov_len));
		}
		check(total == chain.readable);
		virtio_net_hdr_allowed(hdr, chain.readable - VIRTIO_NET_HDR_SIZE,
				       ~0ull, false);
		virtq_push(vq, chain.head, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	uint32_t len;
	unsigned nbufs;
	uint16_t before, last;
	bool mergeable;
	int r;

	if (!ready) {
		if (guest_mem_init(&mem, RAM_SIZE, false, NULL))
			abort();
		for (size_t i = 0; i < sizeof(pkt); i++)
			pkt[i] = (uint8_t)(i * 7);
		ready = true;
	}
	if (size < 3)
		return 0;
	mergeable = data[0] & 0x40;
	len = (uint32_t)(data[1] | data[2] << 8) * (data[0] & 0x80 ? 2 : 1);
	memset(mem.base, 0, 0x10000);
	memcpy(mem.base, data + 3, size - 3 > 0x10000 ? 0x10000 : size - 3);

	virtq_init(&vq, &mem);
	vq.layout = (struct virtq_layout){ .size = (uint16_t)(1u << (data[0] & 7)),
					   .desc = 0x200, .avail = 0,
					   .used = 0xc00 };
	if (virtq_enable(&vq, VIRTQ_MAX_SIZE, data[0] & 0x10, data[0] & 0x20))
		abort();
	for (int i = 0; i < MAX_FRAMES; i++) {
		before = vq.used_idx;
		last = vq.last_avail;
		r = virtio_net_rx_place(&vq, &chain, pkt, len, mergeable, &nbufs);
		if (r == VIRTIO_NET_RX_PLACED) {
			check_placed(&vq, before, nbufs, len);
			continue;
		}
		/* (the guest's memory may have changed: a receive buffer
		 * may overlap the rings, and was written into) */
		check(vq.used_idx == before);
		if (r == -EIO) {
			check(virtq_broken(&vq));
			return 0;
		}
		check(r == VIRTIO_NET_RX_NO_ROOM || r == VIRTIO_NET_RX_DROP);
		check(vq.last_avail == last);
		break;
	}
	fuzz_tx(&vq);
	return 0;
}
