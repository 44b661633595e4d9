/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (entropy device, virtio 1.2 section 5.4): one queue of
 * device-writable buffers that come back filled with random bytes.  The
 * device may return fewer bytes than asked; virtio_rng_read() asks again
 * until the buffer is full.
 */
#ifndef GUEST_VIRTIO_RNG_H
#define GUEST_VIRTIO_RNG_H

#include <stddef.h>

#include "guest/cmdline.h"
#include "guest/virtqueue.h"

struct virtio_rng {
	struct virtio_dev *dev;
	struct virtqueue vq;
	uint64_t requests;	/* how many it took */
};

int virtio_rng_init(struct virtio_rng *r, const struct cmdline *c);

/* Fills @buf; 0 or a negative VIRTIO_E* error. */
int virtio_rng_read(struct virtio_rng *r, void *buf, size_t len);

#endif
