/* SPDX-License-Identifier: MIT */
/*
 * Shared by virtio-balloon's two files and nothing else: balloon.c (the
 * device) and balloon_state.c (its part of a snapshot).  The locking
 * rules are balloon.c's: the transport's lock for the ops callbacks,
 * atomics for target and `actual', b->lock for info.
 */
#ifndef RACKVM_VIRTIO_BALLOON_INTERNAL_H
#define RACKVM_VIRTIO_BALLOON_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/state_buf.h"
#include "virtio/balloon.h"
#include "virtio/virtqueue.h"

struct virtio_mmio;

struct virtio_balloon {
	const struct guest_mem *mem;
	struct virtio_mmio *t;
	bool deflate_on_oom;
	bool reporting;
	unsigned stats_interval_ms;
	int timer_fd;			/* stats requests, watched by the I/O thread */

	uint32_t target;		/* atomic: num_pages */
	uint32_t actual;		/* atomic: written by the driver */

	/* I/O thread only (the transport's lock) */
	struct virtq *stats_vq;		/* where the held stats buffer lives */
	bool stats_held;		/* the driver's buffer is ours */
	uint16_t stats_head;
	struct virtq_chain chain;

	pthread_mutex_t lock;		/* guards info */
	struct virtio_balloon_info info;

	virtio_balloon_discard_fn discard;	/* atomic; NULL: we punch */
	void *discard_opaque;
};

/* The device's part of its transport's state (ops->save, ops->load). */
void virtio_balloon_save(void *dev, struct virtio_mmio *t,
			 struct state_buf *out);
int virtio_balloon_load(void *dev, struct virtio_mmio *t,
			struct state_reader *in, struct errmsg *err);

#endif
