/* SPDX-License-Identifier: MIT */
/*
 * Shared by the two halves of the virtio-mmio transport and by nothing
 * else: mmio.c (the register file the guest sees) and mmio_io.c (the
 * transport's fds, its KVM binding, its I/O thread and its lifetime).
 * Devices see only the opaque struct virtio_mmio of mmio.h.
 *
 * Contract: t->lock guards the register state and the virtqueues.  vCPU
 * threads take it for register and config accesses (mmio.c); the I/O
 * thread holds it while a device serves a queue (mmio_io.c), so a reset
 * waits for the request in flight.  interrupt_status and
 * config_generation are atomics outside the lock: an interrupt handler
 * never waits for disk I/O.  The fds are open before the range is on
 * the bus and closed only once the vCPUs and the I/O thread are gone, so
 * both halves use them without the lock.
 *
 * Quiesce (mmio_state.c): `quiesced' is set before the lock is taken, so
 * the I/O thread, which reads it before it takes the lock for the next
 * event (and again once it has it), parks on park_cond instead of
 * competing for the lock; the request it was serving ends first.  A
 * parked thread leaves when unquiesced, or when `stopping' (teardown).
 * The kick it had read is served once it goes on; kicks and backend
 * data that come meanwhile wait in their fds.
 */
#ifndef RACKVM_VIRTIO_MMIO_INTERNAL_H
#define RACKVM_VIRTIO_MMIO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/mmio.h"
#include "virtio/virtqueue.h"

struct virtio_mmio {
	struct vm *vm;
	unsigned index;
	uint64_t base;
	unsigned gsi;
	const struct virtio_device_ops *ops;
	void *dev;
	char name[32];

	/* the register file (mmio.c), under the lock but for the atomics */
	pthread_mutex_t lock;
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t config_generation;	/* atomic */
	uint32_t interrupt_status;	/* atomic */
	uint64_t kicks;			/* atomic: driver notifications */
	uint64_t interrupts;		/* atomic: eventfd signals raised */
	struct virtq queues[VIRTIO_MAX_QUEUES];

	/* set up and torn down by mmio_io.c; mmio.c signals kick_fds and
	 * irq_fd */
	int kick_fds[VIRTIO_MAX_QUEUES];
	bool ioeventfd_assigned[VIRTIO_MAX_QUEUES];
	int irq_fd;
	bool irqfd_assigned;
	int stop_fd;
	int epoll_fd;
	int watch_fds[VIRTIO_MMIO_MAX_WATCHES];	/* the device's, not ours */
	pthread_t thread;
	bool thread_started;

	/* quiesce (mmio_state.c, mmio_io.c) */
	pthread_mutex_t park_lock;	/* guards stopping, the cond */
	pthread_cond_t park_cond;
	bool quiesced;			/* atomic */
	bool stopping;
	unsigned quiesce_timeout_ms;
};

/* The bus handler for the device's MMIO range (vCPU threads). */
void virtio_mmio_bus_access(void *opaque, unsigned vcpu_id, uint64_t off,
			    uint8_t *data, unsigned len, bool is_write);

/* Lock held: the device stops serving the driver until it resets it
 * (virtio 1.2 §2.1.1: DEVICE_NEEDS_RESET, then a config interrupt). */
void virtio_mmio_needs_reset_locked(struct virtio_mmio *t);

/* mmio.c: may the driver have accepted @features (a subset of what the
 * device offers, VERSION_1 among them)? */
bool virtio_mmio_features_acceptable(const struct virtio_mmio *t,
				     uint64_t features);
/* mmio.c: has the I/O thread look at every queue (DRIVER_OK, a load). */
void virtio_mmio_kick_all(struct virtio_mmio *t);

/* mmio_state.c, from the I/O thread before it serves an event: waits
 * while the device is quiesced and returns with the lock held, or
 * returns false (lock not held) when the transport is being torn down. */
bool virtio_mmio_lock_unless_stopping(struct virtio_mmio *t);
/* mmio_state.c, from teardown: a parked I/O thread leaves. */
void virtio_mmio_stop_parking(struct virtio_mmio *t);
/* mmio_state.c: registers the device's state as "virtio-mmio@<index>"
 * (vm/vm_state.h), once the transport runs. */
int virtio_mmio_register_state(struct virtio_mmio *t, struct errmsg *err);

#endif
