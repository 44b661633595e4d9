/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2 section 5.3), port 0 only: MULTIPORT is not
 * negotiated, so queue 0 receives and queue 1 transmits for the one
 * console port.  Polled: a write returns once the device has consumed
 * the bytes; a read waits for the host to send something.
 */
#ifndef GUEST_VIRTIO_CONSOLE_H
#define GUEST_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "guest/cmdline.h"
#include "guest/virtqueue.h"

#define VIRTIO_CONSOLE_F_SIZE		0
#define VIRTIO_CONSOLE_F_MULTIPORT	1
#define VIRTIO_CONSOLE_F_EMERG_WRITE	2

#define VIRTIO_CONSOLE_RX_BUF	256

struct virtio_console {
	struct virtio_dev *dev;
	struct virtqueue rx;
	struct virtqueue tx;
	bool rx_posted;
	char rx_buf[VIRTIO_CONSOLE_RX_BUF];
};

int virtio_console_init(struct virtio_console *con, const struct cmdline *c);

/* 0 or a negative VIRTIO_E* error. */
int virtio_console_write(struct virtio_console *con, const void *buf,
			 size_t len);

/* Bytes the host sent (at most @len, up to VIRTIO_CONSOLE_RX_BUF at a
 * time), 0 if nothing came within @timeout_ns, or a negative error. */
int virtio_console_read(struct virtio_console *con, void *buf, size_t len,
			uint64_t timeout_ns);

#endif
