/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport, version 2 (modern) only (virtio 1.2 §4.2).
 *
 * Layout: device i sits at VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE (in the
 * 32-bit MMIO hole, below the IOAPIC) and interrupts on GSI
 * VIRTIO_MMIO_GSI_BASE + i: at most 16 devices, GSIs 5..20, all inside
 * the in-kernel IOAPIC's 24 pins.  Guests learn this from the ACPI DSDT
 * (one "LNRO0005" device each, from virtio_mmio_describe(); how Linux's
 * virtio_mmio driver finds them when built without
 * VIRTIO_MMIO_CMDLINE_DEVICES, as distribution kernels are) and from the
 * kernel command line: one "virtio_mmio.device=4K@<base>:<gsi>" per
 * device (Linux's format), which virtio_mmio_cmdline() appends, for the
 * bundled guest and kernels built with that option.
 *
 * Kicks: a KVM_IOEVENTFD per queue on QueueNotify (4-byte write, data =
 * queue index), so a kick never exits to userspace; the device's own I/O
 * thread waits on those eventfds (epoll) and calls the device's
 * queue_notify.  Interrupts: the transport sets InterruptStatus bit 0
 * (used buffer) or bit 1 (config change) and then signals a KVM_IRQFD
 * bound to the device's GSI.
 *
 * Why edge-triggered: an irqfd without a resample fd pulses the pin
 * (assert, deassert).  The InterruptStatus bits, not the line, carry the
 * state: the driver reads them, handles, writes InterruptACK to clear
 * them; ACK does not touch the line.  A completion arriving while the
 * driver is in its handler sets its bit again and pulses again, which the
 * IOAPIC latches (edge) or re-delivers after EOI, so nothing is lost and
 * no EOI ever has to exit to userspace (a level-triggered line would need
 * KVM_IRQFD_FLAG_RESAMPLE and an exit per EOI).  Linux's virtio_mmio
 * handler tolerates the spurious interrupt this can cause (status 0).
 *
 * Without KVM (vm_init_bare(), unit tests), QueueNotify writes reach the
 * bus handler, which signals the same eventfd; the irq eventfd is then
 * not bound to a GSI and tests read it to see interrupts.
 */
#ifndef RACKVM_VIRTIO_MMIO_H
#define RACKVM_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "util/errmsg.h"
#include "virtio/virtio.h"
#include "vm/vm.h"

#define VIRTIO_MMIO_BASE 0xd0000000ull
#define VIRTIO_MMIO_SIZE 0x1000ull
#define VIRTIO_MMIO_GSI_BASE 5u
#define VIRTIO_MMIO_MAX_DEVICES 16u

static inline uint64_t virtio_mmio_base(unsigned index)
{
	return VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_SIZE;
}

static inline unsigned virtio_mmio_gsi(unsigned index)
{
	return VIRTIO_MMIO_GSI_BASE + index;
}

/* Register offsets (§4.2.2) */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u	/* "virt" */
#define VIRTIO_MMIO_VERSION_MODERN 2u

#define VIRTIO_MMIO_INT_VRING 0x1
#define VIRTIO_MMIO_INT_CONFIG 0x2

struct virtio_mmio;

/*
 * Creates device @index (< VIRTIO_MMIO_MAX_DEVICES) of type @ops with
 * state @dev: registers its range on vm->mmio_bus, its ioeventfds and
 * irqfd (with a KVM VM), and starts its I/O thread.  Takes ownership of
 * @dev in every case (ops->destroy on failure); the VM owns the result.
 * @out (may be NULL) receives the transport, for tests.
 */
int virtio_mmio_create(struct vm *vm, unsigned index,
		       const struct virtio_device_ops *ops, void *dev,
		       struct virtio_mmio **out, struct errmsg *err);

/* From queue_notify after a batch of virtq_push(): interrupts the driver
 * if the queue's notification suppression allows. */
void virtio_mmio_used(struct virtio_mmio *t, struct virtq *vq);
/* The device changed its config space: a new generation, and a config
 * interrupt once the driver has set DRIVER_OK (before, it reads the
 * config when it gets there). */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/* Host-side fds a device may have its I/O thread watch (per device). */
#define VIRTIO_MMIO_MAX_WATCHES 4

/*
 * Adds @fd to the device's I/O thread: ops->backend_ready(dev, t, @tag)
 * runs whenever it is readable.  @tag < VIRTIO_MMIO_MAX_WATCHES, one fd
 * per tag; the device keeps owning @fd and must not close it before the
 * transport is destroyed.  Call from the device's create function.
 */
int virtio_mmio_watch_fd(struct virtio_mmio *t, int fd, unsigned tag);
/* Pauses (@enabled false) or resumes watching @tag's fd.  Any thread. */
int virtio_mmio_set_watch(struct virtio_mmio *t, unsigned tag, bool enabled);
/* True when the driver is DRIVER_OK and the device does not need a reset:
 * only then may a device use its queues.  Call with the lock held (from
 * the ops callbacks). */
bool virtio_mmio_live_locked(const struct virtio_mmio *t);
/* The feature bits the driver accepted (valid once FEATURES_OK): a device
 * whose queue layout depends on them (virtio-balloon) asks from its ops
 * callbacks, with the lock held. */
uint64_t virtio_mmio_driver_features_locked(const struct virtio_mmio *t);
/* Queue @q (< ops->nqueues, else NULL), for a device that serves a queue
 * from backend_ready before the driver ever kicked it.  Lock held. */
struct virtq *virtio_mmio_queue_locked(struct virtio_mmio *t, unsigned q);

/* What a report or the API shows of one device. */
struct virtio_mmio_queue_stats {
	uint16_t size;
	bool ready;
	bool broken;		/* the driver broke the ring: until reset */
	uint64_t requests;	/* chains completed (used ring entries) */
	uint64_t bytes;		/* bytes the device wrote into them */
};

struct virtio_mmio_stats {
	char name[32];		/* "virtio-blk0" */
	uint32_t status;	/* the device status register */
	bool needs_reset;	/* DEVICE_NEEDS_RESET: the device gave up */
	uint64_t kicks;		/* notifications from the driver */
	uint64_t interrupts;	/* interrupts raised to the driver */
	unsigned nqueues;
	struct virtio_mmio_queue_stats queues[VIRTIO_MAX_QUEUES];
};

/* Device @index of @vm, found on its MMIO bus: -ENOENT if there is no
 * virtio-mmio device there.  Counters run from the device's creation,
 * across resets (and, for a loaded device, from its source's).  Any
 * thread once the VM is assembled. */
int virtio_mmio_get_stats(struct vm *vm, unsigned index,
			  struct virtio_mmio_stats *out);

/*
 * Snapshots and migration (mmio_state.c).  virtio_mmio_create()
 * registers every device with the VM's state registry (vm/vm_state.h)
 * as "virtio-mmio@<index>", index as given to it (stable for a config).
 *
 * quiesce: the request being served ends (used ring and interrupt
 * included), then the I/O thread takes no new kick or backend data
 * (a TAP frame waits in the TAP, console input in its fd) until
 * unquiesce, which serves what came meanwhile (the two do not nest:
 * one unquiesce ends any number of quiesces).  -ETIMEDOUT if the
 * request does not end within VIRTIO_MMIO_QUIESCE_TIMEOUT_MS (a disk
 * that hangs); the device is then not quiesced.  A change from outside
 * while quiesced (a balloon target from the API) does not wait: it is
 * in the running device, not in a state saved before it.
 *
 * The blob, little-endian (layout version 1):
 *   u32 version, u32 device id, u32 number of queues
 *   u64 driver features, u32 device/driver features select,
 *   u32 queue select, u32 status, u32 config generation,
 *   u32 interrupt status, u64 kicks, u64 interrupts
 *   each queue: virtqueue_state.c's layout
 *   u32 length + the device's part (ops->save: its own version first;
 *   empty for a device without one)
 *
 * load checks it all against this device (type, queue count, features
 * it offers, queue sizes and rings in guest RAM), applies nothing on an
 * error, and then goes on as if the driver had made its writes: queues
 * ready, a live driver's queues looked at at once (buffers the source
 * had not taken are served), an interrupt the driver had not yet
 * handled signalled again.  Guest RAM must hold the saved contents
 * before the load (or be served lazily): a live device reads its rings
 * right away.  Load may run on a quiesced device; its I/O thread then
 * waits for unquiesce.
 */
#define VIRTIO_MMIO_QUIESCE_TIMEOUT_MS 5000u
/* Another quiesce timeout for @t (tests). */
void virtio_mmio_set_quiesce_timeout(struct virtio_mmio *t, unsigned ms);

/* Device status and the eventfd interrupts are signalled on (tests). */
uint32_t virtio_mmio_status(struct virtio_mmio *t);
int virtio_mmio_irq_fd(const struct virtio_mmio *t);

/*
 * Writes @cmdline (may be NULL or empty) followed by
 * " virtio_mmio.device=4K@0x<base>:<gsi>" for devices 0..@ndevices-1
 * into @buf.  -E2BIG if it does not fit in @size (with the NUL),
 * -EINVAL if @ndevices > VIRTIO_MMIO_MAX_DEVICES.
 */
int virtio_mmio_cmdline(char *buf, size_t size, const char *cmdline,
			unsigned ndevices);

/* Fills @out[0..@ndevices-1] with devices 0..@ndevices-1 for the boot
 * loaders' firmware tables.  -EINVAL if @ndevices >
 * VIRTIO_MMIO_MAX_DEVICES. */
int virtio_mmio_describe(struct boot_virtio_mmio *out, unsigned ndevices);

#endif
