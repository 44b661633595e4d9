// SPDX-License-Identifier: MIT
/*
 * virtio-rng (virtio 1.2 §5.4): one queue; every device-writable buffer
 * the driver posts is filled from getrandom() (the host kernel's CSPRNG;
 * it blocks only before the host's pool is initialised).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio/mmio.h"
#include "virtio/rng.h"
#include "virtio/virtqueue.h"

#define RNG_QUEUE_SIZE 64

struct virtio_rng {
	struct virtq_chain chain;
};

static int fill_random(uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint32_t virtio_rng_fill(const struct virtq_chain *c)
{
	uint32_t written = 0;

	for (unsigned i = 0; i < c->nsegs; i++) {
		if (!c->segs[i].is_write)
			continue;
		if (fill_random(c->segs[i].ptr, c->segs[i].len))
			break;
		written += c->segs[i].len;
	}
	return written;
}

static uint64_t rng_features(void *dev)
{
	(void)dev;
	return 0;
}

static void rng_config_read(void *dev, uint32_t offset, uint8_t *data,
			    unsigned len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len;	/* no config space: config_size is 0 */
}

static void rng_queue_notify(void *dev, struct virtio_mmio *t,
			     struct virtq *vq, unsigned q)
{
	struct virtio_rng *r = dev;

	(void)q;
	while (virtq_pop(vq, &r->chain) == 1)
		virtq_push(vq, r->chain.head, virtio_rng_fill(&r->chain));
	virtio_mmio_used(t, vq);
}

static const struct virtio_device_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.nqueues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.config_size = 0,
	.features = rng_features,
	.config_read = rng_config_read,
	.queue_notify = rng_queue_notify,
	.destroy = free,
};

int virtio_rng_create(struct vm *vm, unsigned index, struct errmsg *err)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	return virtio_mmio_create(vm, index, &rng_ops, r, NULL, err);
}
