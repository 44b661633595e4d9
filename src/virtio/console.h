/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (virtio 1.2 §5.3) with one port and no MULTIPORT:
 * queue 0 receives (host to guest), queue 1 transmits (guest to host).
 *
 * Output: every byte the guest transmits is written to the output file.
 * Input (optional): a FIFO, socket or terminal watched by the device's
 * I/O thread; bytes go into the guest's receive buffers as they come.
 * A FIFO is opened read-write so that writers may come and go without
 * the device seeing an end of file.  Without free receive buffers the
 * watch pauses (the bytes wait in the FIFO) until the guest posts some.
 */
#ifndef RACKVM_VIRTIO_CONSOLE_H
#define RACKVM_VIRTIO_CONSOLE_H

#include "util/errmsg.h"
#include "vm/vm.h"

#define VIRTIO_CONSOLE_Q_RX 0
#define VIRTIO_CONSOLE_Q_TX 1

struct virtio_console_options {
	const char *out_path;	/* created or truncated */
	const char *in_path;	/* may be NULL: output only */
};

/* Opens the files and creates virtio-mmio device @index. */
int virtio_console_create(struct vm *vm, unsigned index,
			  const struct virtio_console_options *opt,
			  struct errmsg *err);

#endif
