// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: virtqueue descriptor-chain walking against a hostile
 * driver.  The input is the first bytes of guest RAM, which hold the
 * available ring (0x0) and the descriptor table (0x200), then the used
 * ring (0xc00), all within libFuzzer's default 4 KiB inputs; its first
 * byte picks the queue size (1..128) and the negotiated features.
 * Besides the sanitizers, it checks that every segment the device is
 * given lies inside guest RAM and that the lengths add up.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtqueue.h"

#define RAM_SIZE GUEST_MEM_MIN_SIZE
#define MAX_POPS 64

static struct guest_mem mem;
static struct virtq_chain chain;
static bool mem_ready;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_chain(const struct virtq_chain *c, uint16_t size)
{
	uint64_t readable = 0, writable = 0;

	check(c->head < size);
	check(c->nsegs <= VIRTQ_MAX_SEGS);
	for (unsigned i = 0; i < c->nsegs; i++) {
		const struct virtq_seg *s = &c->segs[i];

		check(s->ptr >= mem.base);
		check(s->ptr + s->len <= mem.base + RAM_SIZE);
		if (s->is_write)
			writable += s->len;
		else
			readable += s->len;
	}
	check(readable == c->readable && writable == c->writable);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	uint8_t cfg;
	int ret;

	if (!mem_ready) {
		if (guest_mem_init(&mem, RAM_SIZE, false, NULL))
			abort();
		mem_ready = true;
	}
	if (size < 1)
		return 0;
	cfg = data[0];
	memset(mem.base, 0, 0x10000);
	memcpy(mem.base, data + 1, size - 1 > 0x10000 ? 0x10000 : size - 1);

	virtq_init(&vq, &mem);
	vq.layout = (struct virtq_layout){ .size = (uint16_t)(1u << (cfg & 7)),
					   .desc = 0x200, .avail = 0,
					   .used = 0xc00 };
	if (virtq_enable(&vq, VIRTQ_MAX_SIZE, cfg & 0x10, cfg & 0x20))
		abort();	/* the layout above is always valid */
	for (int i = 0; i < MAX_POPS; i++) {
		ret = virtq_pop(&vq, &chain);
		if (ret != 1)
			break;
		check_chain(&chain, vq.layout.size);
		virtq_push(&vq, chain.head, chain.writable);
		virtq_should_notify(&vq);
	}
	check(ret != -EIO || virtq_broken(&vq));
	return 0;
}
