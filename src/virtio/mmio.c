// SPDX-License-Identifier: MIT
/*
 * virtio-mmio version 2, the register file the guest sees: feature
 * negotiation, status and reset, queue setup, config-space access,
 * interrupt status, and the layout the firmware tables and the command
 * line describe.  mmio_io.c owns the fds, the I/O thread and the
 * transport's lifetime; mmio_internal.h has the locking contract, mmio.h
 * the layout and the interrupt model.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>

#include "util/le.h"
#include "virtio/mmio_internal.h"

static void raise_interrupt(struct virtio_mmio *t, uint32_t bit)
{
	__atomic_fetch_or(&t->interrupt_status, bit, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&t->interrupts, 1, __ATOMIC_RELAXED);
	/* can only fail on counter overflow, which means "still pending" */
	(void)eventfd_write(t->irq_fd, 1);
}

void virtio_mmio_used(struct virtio_mmio *t, struct virtq *vq)
{
	if (virtq_should_notify(vq))
		raise_interrupt(t, VIRTIO_MMIO_INT_VRING);
}

/*
 * A driver that has not set DRIVER_OK is not told: it reads the config
 * when it gets there (Linux's virtio_balloon looks at num_pages right
 * after virtio_device_ready()), and until a guest has programmed its
 * interrupt controllers an interrupt can do harm.  Measured: a balloon
 * target set while Debian's kernel was still in early boot raised GSI 5
 * before it had set up the PIC and IOAPIC, and the kernel died in its
 * idle task ("Attempted to kill the idle task!").
 */
void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
	pthread_mutex_unlock(&t->lock);
}

uint32_t virtio_mmio_status(struct virtio_mmio *t)
{
	uint32_t s;

	pthread_mutex_lock(&t->lock);
	s = t->status;
	pthread_mutex_unlock(&t->lock);
	return s;
}

int virtio_mmio_irq_fd(const struct virtio_mmio *t)
{
	return t->irq_fd;
}

/* Once per breakage, on rackvm's log: a driver that sees NEEDS_RESET may
 * just wait (Linux's console spins on its transmit queue), so without
 * this line a user would see a hung guest and no reason. */
static void log_needs_reset(const struct virtio_mmio *t)
{
	char why[160] = "";
	size_t len = 0;

	for (unsigned q = 0; q < t->ops->nqueues && len < sizeof(why); q++) {
		enum virtq_error e = t->queues[q].error;

		if (e != VIRTQ_OK)
			len += (size_t)snprintf(why + len, sizeof(why) - len,
						"%squeue %u: %s", len ? ", " : "",
						q, virtq_error_name(e));
	}
	fprintf(stderr, "%s: the device stopped and needs a reset (%s)\n",
		t->name, len ? why : "the device gave up on a request");
}

void virtio_mmio_needs_reset_locked(struct virtio_mmio *t)
{
	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	log_needs_reset(t);
	/* the driver's own doing (a bad queue, a hostile chain): told at
	 * once, set up or not */
	__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
}

static void reset_locked(struct virtio_mmio *t)
{
	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		virtq_init(&t->queues[q], &t->vm->mem);
	t->driver_features = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->queue_sel = 0;
	t->status = 0;
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
}

static bool negotiated(const struct virtio_mmio *t, unsigned bit)
{
	return t->driver_features & (1ull << bit);
}

bool virtio_mmio_features_acceptable(const struct virtio_mmio *t,
				     uint64_t features)
{
	return !(features & ~t->device_features) &&
	       (features & (1ull << VIRTIO_F_VERSION_1));
}

/* Kicks that came before DRIVER_OK were not served (the queues were not
 * live yet); a driver may post buffers (RX!) and kick only once before
 * setting DRIVER_OK, so the I/O thread looks at every queue when the
 * driver goes live.  Serving an empty queue costs nothing. */
void virtio_mmio_kick_all(struct virtio_mmio *t)
{
	for (unsigned q = 0; q < t->ops->nqueues; q++)
		(void)eventfd_write(t->kick_fds[q], 1);
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		reset_locked(t);
		return;
	}
	/* §2.2.2: FEATURES_OK stays clear if we cannot work with the
	 * driver's subset; the driver re-reads Status to find out */
	if ((v & VIRTIO_STATUS_FEATURES_OK) &&
	    !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_mmio_features_acceptable(t, t->driver_features))
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	/* only the device sets or clears NEEDS_RESET */
	v &= ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_DRIVER_OK))
		virtio_mmio_kick_all(t);
	t->status = (v & 0xff) | (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->nqueues ? &t->queues[t->queue_sel] : NULL;
}

static void set_low(uint64_t *reg, uint32_t v)
{
	*reg = (*reg & ~0xffffffffull) | v;
}

static void set_high(uint64_t *reg, uint32_t v)
{
	*reg = (*reg & 0xffffffffull) | (uint64_t)v << 32;
}

static void write_queue_ready(struct virtio_mmio *t, struct virtq *vq,
			      uint32_t v)
{
	if (!v) {
		vq->ready = false;
		return;
	}
	if (vq->ready)
		return;
	if (virtq_enable(vq, t->ops->queue_max_size,
			 negotiated(t, VIRTIO_RING_F_EVENT_IDX),
			 negotiated(t, VIRTIO_RING_F_INDIRECT_DESC)))
		virtio_mmio_needs_reset_locked(t);
}

/* Queue registers: ignored for a queue that does not exist or is live
 * (the driver must not change a ready queue, §4.2.2.2). */
static void write_queue_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *vq = selected_queue(t);
	struct virtq_layout *l;

	if (!vq)
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		write_queue_ready(t, vq, v);
		return;
	}
	if (vq->ready)
		return;
	l = &vq->layout;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		l->size = v > UINT16_MAX ? 0 : (uint16_t)v;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_low(&l->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_high(&l->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: set_low(&l->avail, v); break;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: set_high(&l->avail, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: set_low(&l->used, v); break;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: set_high(&l->used, v); break;
	}
}

static void write_reg_locked(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* frozen once accepted (§3.1.1) */
		if (t->status & VIRTIO_STATUS_FEATURES_OK)
			break;
		if (t->driver_features_sel == 0)
			set_low(&t->driver_features, v);
		else if (t->driver_features_sel == 1)
			set_high(&t->driver_features, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		break;
	default:
		write_queue_reg(t, off, v);
		break;
	}
}

static uint32_t read_queue_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *vq = selected_queue(t);

	if (!vq)
		return 0;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return t->ops->queue_max_size;
	case VIRTIO_MMIO_QUEUE_NUM: return vq->layout.size;
	case VIRTIO_MMIO_QUEUE_READY: return vq->ready;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return (uint32_t)vq->layout.desc;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return vq->layout.desc >> 32;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW: return (uint32_t)vq->layout.avail;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: return vq->layout.avail >> 32;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW: return (uint32_t)vq->layout.used;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: return vq->layout.used >> 32;
	}
	return 0;
}

static uint32_t read_reg_locked(struct virtio_mmio *t, uint64_t off)
{
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_DEVICE_ID: return t->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_RACKVM_VENDOR_ID;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return t->device_features >> (32 * t->device_features_sel);
	case VIRTIO_MMIO_STATUS: return t->status;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST);
	}
	return read_queue_reg(t, off);
}

static void notify_queue(struct virtio_mmio *t, uint32_t q)
{
	/* the same eventfd KVM signals: one path to the I/O thread */
	if (q < t->ops->nqueues)
		(void)eventfd_write(t->kick_fds[q], 1);
}

static void config_access(struct virtio_mmio *t, uint64_t off, uint8_t *data,
			  unsigned len, bool is_write)
{
	bool in_range = off + len <= t->ops->config_size;

	pthread_mutex_lock(&t->lock);
	if (!is_write && in_range)
		t->ops->config_read(t->dev, (uint32_t)off, data, len);
	else if (!is_write)
		memset(data, 0, len);
	else if (in_range && t->ops->config_write)
		t->ops->config_write(t->dev, (uint32_t)off, data, len);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_bus_access(void *opaque, unsigned vcpu_id, uint64_t off,
			    uint8_t *data, unsigned len, bool is_write)
{
	struct virtio_mmio *t = opaque;
	uint32_t v = 0;

	(void)vcpu_id;
	if (off >= VIRTIO_MMIO_CONFIG) {
		config_access(t, off - VIRTIO_MMIO_CONFIG, data, len, is_write);
		return;
	}
	/* registers are 32 bits wide and aligned (§4.2.2.2) */
	if (len != 4 || off % 4) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (!is_write) {
		if (off == VIRTIO_MMIO_INTERRUPT_STATUS) {
			v = __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
		} else {
			pthread_mutex_lock(&t->lock);
			v = read_reg_locked(t, off);
			pthread_mutex_unlock(&t->lock);
		}
		put_le32(data, v);
		return;
	}
	v = get_le32(data);
	if (off == VIRTIO_MMIO_QUEUE_NOTIFY) {
		notify_queue(t, v);
	} else if (off == VIRTIO_MMIO_INTERRUPT_ACK) {
		__atomic_fetch_and(&t->interrupt_status, ~v, __ATOMIC_SEQ_CST);
	} else {
		pthread_mutex_lock(&t->lock);
		write_reg_locked(t, off, v);
		pthread_mutex_unlock(&t->lock);
	}
}

bool virtio_mmio_live_locked(const struct virtio_mmio *t)
{
	uint32_t live = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET;

	return (t->status & live) == VIRTIO_STATUS_DRIVER_OK;
}

uint64_t virtio_mmio_driver_features_locked(const struct virtio_mmio *t)
{
	return t->driver_features;
}

struct virtq *virtio_mmio_queue_locked(struct virtio_mmio *t, unsigned q)
{
	return q < t->ops->nqueues ? &t->queues[q] : NULL;
}

int virtio_mmio_cmdline(char *buf, size_t size, const char *cmdline,
			unsigned ndevices)
{
	size_t used;
	int n;

	if (ndevices > VIRTIO_MMIO_MAX_DEVICES)
		return -EINVAL;
	n = snprintf(buf, size, "%s", cmdline ? cmdline : "");
	if (n < 0 || (size_t)n >= size)
		return -E2BIG;
	used = (size_t)n;
	for (unsigned i = 0; i < ndevices; i++) {
		n = snprintf(buf + used, size - used, "%svirtio_mmio.device=4K@0x%llx:%u",
			     used ? " " : "",
			     (unsigned long long)virtio_mmio_base(i),
			     virtio_mmio_gsi(i));
		if (n < 0 || (size_t)n >= size - used)
			return -E2BIG;
		used += (size_t)n;
	}
	return 0;
}

_Static_assert(VIRTIO_MMIO_MAX_DEVICES <= BOOT_MAX_VIRTIO_MMIO,
	       "the firmware tables must be able to describe every device");

int virtio_mmio_describe(struct boot_virtio_mmio *out, unsigned ndevices)
{
	if (ndevices > VIRTIO_MMIO_MAX_DEVICES)
		return -EINVAL;
	for (unsigned i = 0; i < ndevices; i++)
		out[i] = (struct boot_virtio_mmio){
			.base = virtio_mmio_base(i),
			.size = VIRTIO_MMIO_SIZE,
			.gsi = virtio_mmio_gsi(i),
		};
	return 0;
}

int virtio_mmio_get_stats(struct vm *vm, unsigned index,
			  struct virtio_mmio_stats *out)
{
	const struct bus_range *r;
	struct virtio_mmio *t;

	if (index >= VIRTIO_MMIO_MAX_DEVICES)
		return -ENOENT;
	/* the bus changes only while the VM is assembled */
	r = bus_find(&vm->mmio_bus, virtio_mmio_base(index));
	if (!r || r->handler != virtio_mmio_bus_access)
		return -ENOENT;
	t = r->opaque;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", t->name);
	out->kicks = __atomic_load_n(&t->kicks, __ATOMIC_RELAXED);
	out->interrupts = __atomic_load_n(&t->interrupts, __ATOMIC_RELAXED);
	pthread_mutex_lock(&t->lock);
	out->status = t->status;
	out->needs_reset = t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	out->nqueues = t->ops->nqueues;
	for (unsigned q = 0; q < out->nqueues && q < VIRTIO_MAX_QUEUES; q++) {
		const struct virtq *vq = &t->queues[q];

		out->queues[q] = (struct virtio_mmio_queue_stats){
			.size = vq->layout.size, .ready = vq->ready,
			.broken = vq->error != VIRTQ_OK,
			.requests = vq->requests, .bytes = vq->bytes,
		};
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}
