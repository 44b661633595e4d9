/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport, modern (version 2) only, as virtio 1.2
 * section 4.2.2 defines it.
 *
 * Devices are found the way Linux finds them: kernel command line entries
 * "virtio_mmio.device=<size>@<base>:<irq>[:<id>]" (size decimal or hex
 * with an optional K/M/G suffix, base hex).  rackvm and QEMU's microvm
 * both append them.  A legacy (version 1) transport is refused with a
 * message saying so: its queue layout (QueuePFN) is not supported here.
 *
 * Everything runs in ring 3: the runtime identity maps all memory, so a
 * buffer's address is the address the device is given, and MMIO accesses
 * from ring 3 reach the VMM directly.  Interrupts are not used (the
 * runtime runs with IF=0); drivers poll the used rings.
 *
 * Functions return 0 or a negative VIRTIO_E* code; failures are also
 * printed on the UART with the device's address, so that a workload can
 * simply assert success.
 */
#ifndef GUEST_VIRTIO_MMIO_H
#define GUEST_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/cmdline.h"

/* Registers (byte offsets); every one is 32 bits wide and must be
 * accessed as such.  The device-specific configuration starts at
 * VIRTIO_MMIO_CONFIG and may be accessed in 8, 16 or 32-bit units. */
#define VIRTIO_MMIO_MAGIC		0x000	/* "virt" */
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL	0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL	0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090	/* the avail ring */
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0	/* the used ring */
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC_VALUE		0x74726976u
#define VIRTIO_MMIO_VERSION_LEGACY	1
#define VIRTIO_MMIO_VERSION_MODERN	2

/* Device status bits (virtio 1.2 section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* Device-independent feature bits (virtio 1.2 section 6). */
#define VIRTIO_F_INDIRECT_DESC		28
#define VIRTIO_F_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32

#define VIRTIO_BIT(n)			(1ull << (n))

/* Device IDs (virtio 1.2 section 5). */
#define VIRTIO_ID_NET			1
#define VIRTIO_ID_BLOCK			2
#define VIRTIO_ID_CONSOLE		3
#define VIRTIO_ID_RNG			4
#define VIRTIO_ID_BALLOON		5

/* Error codes (negative on return). */
#define VIRTIO_ENODEV		1	/* no such device / bad magic */
#define VIRTIO_ELEGACY		2	/* version 1 transport */
#define VIRTIO_EFEATURES	3	/* features refused, or one we need missing */
#define VIRTIO_EQUEUE		4	/* queue absent, in use, or too small */
#define VIRTIO_ERESET		5	/* device set DEVICE_NEEDS_RESET */
#define VIRTIO_ETIMEDOUT	6	/* no completion in time */
#define VIRTIO_ENOSPC		7	/* no room in the queue */
#define VIRTIO_EINVAL		8	/* bad argument */
#define VIRTIO_EIO		9	/* the device reported an error */

#define VIRTIO_MAX_DEVICES	16

struct virtio_dev {
	uintptr_t base;
	uint64_t size;
	unsigned int irq;
	uint32_t version;
	uint32_t device_id;	/* 0: placeholder transport, no device */
	uint32_t vendor_id;
	uint64_t device_features;
	uint64_t features;	/* negotiated */
	bool claimed;		/* a driver initialised it */
};

/* Parses the value of one virtio_mmio.device= entry (after the '=');
 * false if it is malformed. */
bool virtio_mmio_parse_spec(const char *spec, uint64_t *size, uint64_t *base,
			    unsigned int *irq);

/* Finds the devices named on @c (idempotent: once is enough, later calls
 * return the same count).  Placeholder transports (device ID 0) and bad
 * magic are skipped; legacy transports are listed with version 1, and
 * refused when a driver tries to use them.  Returns the number found. */
unsigned int virtio_mmio_discover(const struct cmdline *c);

/* The @nth (from 0) discovered device with @device_id, or NULL. */
struct virtio_dev *virtio_find(uint32_t device_id, unsigned int nth);

/* Prints one line per discovered device. */
void virtio_list_devices(void);

/* Resets the device and negotiates features: ACKNOWLEDGE, DRIVER, then
 * offers (device features & @wanted) | VERSION_1 and checks that
 * FEATURES_OK sticks.  Fails if the device lacks VERSION_1 or any of
 * @required.  The driver then sets up queues and calls
 * virtio_driver_ok(). */
int virtio_dev_init(struct virtio_dev *d, uint64_t wanted, uint64_t required);

void virtio_driver_ok(struct virtio_dev *d);

/* Writes 0 to Status (the device forgets queues and features) and waits
 * up to 1 s for it to read back 0: 0 or -VIRTIO_ETIMEDOUT. */
int virtio_dev_reset(struct virtio_dev *d);

/* Reads Status; true (and says so on the UART, once) if the device
 * has set DEVICE_NEEDS_RESET. */
bool virtio_needs_reset(struct virtio_dev *d);

static inline bool virtio_has_feature(const struct virtio_dev *d,
				      unsigned int bit)
{
	return d->features & VIRTIO_BIT(bit);
}

uint32_t virtio_read32(const struct virtio_dev *d, unsigned int reg);
void virtio_write32(const struct virtio_dev *d, unsigned int reg, uint32_t v);

/* Device-specific configuration, read consistently: repeated until
 * ConfigGeneration is the same before and after. */
void virtio_config_read(const struct virtio_dev *d, unsigned int offset,
			void *buf, unsigned int len);
void virtio_config_write8(const struct virtio_dev *d, unsigned int offset,
			  uint8_t v);

const char *virtio_strerror(int err);

#endif
