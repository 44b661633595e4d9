/* SPDX-License-Identifier: MIT */
/* virtio-rng: entropy from the host's getrandom(). */
#ifndef RACKVM_VIRTIO_RNG_H
#define RACKVM_VIRTIO_RNG_H

#include <stdint.h>

#include "util/errmsg.h"
#include "virtio/virtqueue.h"
#include "vm/vm.h"

/* Fills every device-writable buffer of @c; returns the bytes written. */
uint32_t virtio_rng_fill(const struct virtq_chain *c);

/* Creates virtio-mmio device @index as an entropy source. */
int virtio_rng_create(struct vm *vm, unsigned index, struct errmsg *err);

#endif
