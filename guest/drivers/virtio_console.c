// SPDX-License-Identifier: MIT
/* virtio-console driver, port 0 (guest/virtio_console.h). */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/virtio_console.h"

#define CONSOLE_TIMEOUT_NS (10 * NSEC_PER_SEC)

#define RX_QUEUE 0
#define TX_QUEUE 1

int virtio_console_init(struct virtio_console *con, const struct cmdline *c)
{
	struct virtio_dev *d;
	int err;

	memset(con, 0, sizeof(*con));
	virtio_mmio_discover(c);
	d = virtio_find(VIRTIO_ID_CONSOLE, 0);
	if (!d) {
		uart_printf("virtio-console: no console device on the "
			    "command line\n");
		return -VIRTIO_ENODEV;
	}
	err = virtio_dev_init(d, VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			      VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 0);
	if (err)
		return err;
	con->dev = d;
	err = vq_setup(&con->rx, d, RX_QUEUE, 4);
	if (!err)
		err = vq_setup(&con->tx, d, TX_QUEUE, 4);
	if (err)
		return err;
	virtio_driver_ok(d);
	return 0;
}

int virtio_console_write(struct virtio_console *con, const void *buf,
			 size_t len)
{
	struct vq_buf b = { (uintptr_t)buf, len, false };

	return vq_exec(&con->tx, &b, 1, NULL, CONSOLE_TIMEOUT_NS);
}

int virtio_console_read(struct virtio_console *con, void *buf, size_t len,
			uint64_t timeout_ns)
{
	struct vq_buf b = { (uintptr_t)con->rx_buf, sizeof(con->rx_buf),
			    true };
	uint32_t got;
	int err;

	/* One receive buffer stays posted, so that bytes the host sends
	 * between reads are not refused. */
	if (!con->rx_posted) {
		err = vq_add(&con->rx, &b, 1, con->rx_buf);
		if (err)
			return err;
		vq_kick(&con->rx);
		con->rx_posted = true;
	}
	if (!vq_wait(&con->rx, &got, timeout_ns, &err))
		return err == -VIRTIO_ETIMEDOUT ? 0 : err;
	con->rx_posted = false;
	if (got > len)
		got = len;	/* the rest is dropped: a small console */
	memcpy(buf, con->rx_buf, got);
	return got;
}
