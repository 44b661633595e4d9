// SPDX-License-Identifier: MIT
/* virtio-rng driver (guest/virtio_rng.h). */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/virtio_rng.h"

#define RNG_TIMEOUT_NS (10 * NSEC_PER_SEC)

int virtio_rng_init(struct virtio_rng *r, const struct cmdline *c)
{
	struct virtio_dev *d;
	int err;

	memset(r, 0, sizeof(*r));
	virtio_mmio_discover(c);
	d = virtio_find(VIRTIO_ID_RNG, 0);
	if (!d) {
		uart_printf("virtio-rng: no entropy device on the command "
			    "line\n");
		return -VIRTIO_ENODEV;
	}
	err = virtio_dev_init(d, VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 0);
	if (err)
		return err;
	r->dev = d;
	err = vq_setup(&r->vq, d, 0, 16);
	if (err)
		return err;
	virtio_driver_ok(d);
	return 0;
}

int virtio_rng_read(struct virtio_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	struct vq_buf b;
	uint32_t got;
	size_t chunk;
	int err;

	while (len) {
		chunk = len > 65536 ? 65536 : len;
		b = (struct vq_buf){ (uintptr_t)p, chunk, true };
		err = vq_exec(&r->vq, &b, 1, &got, RNG_TIMEOUT_NS);
		if (err)
			return err;
		r->requests++;
		if (got > chunk) {
			uart_printf("virtio-rng: device claims %u bytes in a "
				    "%u-byte buffer\n", got,
				    (unsigned int)chunk);
			return -VIRTIO_EIO;
		}
		p += got;
		len -= got;
	}
	return 0;
}
