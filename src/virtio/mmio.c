// SPDX-License-Identifier: MIT
/*
 * virtio-mmio version 2: the register file, feature negotiation, status
 * and reset, queue setup, and the I/O thread that serves kicks.  See
 * mmio.h for the layout and the interrupt model.
 *
 * Locking: t->lock guards the register state and the virtqueues.  vCPU
 * threads take it for register and config accesses; the I/O thread holds
 * it while a device serves a queue, so a reset waits for the request in
 * flight.  InterruptStatus/InterruptACK are atomics outside the lock: an
 * interrupt handler never waits for disk I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "virtio/mmio.h"
#include "virtio/virtqueue.h"
#include "util/le.h"

#define STOP_EVENT UINT32_MAX	/* epoll tag of the stop eventfd */
#define WATCH_EVENT_BASE 0x100u	/* epoll tags of backend fds: base + tag */

struct virtio_mmio {
	struct vm *vm;
	unsigned index;
	uint64_t base;
	unsigned gsi;
	const struct virtio_device_ops *ops;
	void *dev;
	char name[32];

	pthread_mutex_t lock;
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t config_generation;	/* atomic */
	uint32_t interrupt_status;	/* atomic */
	struct virtq queues[VIRTIO_MAX_QUEUES];

	int kick_fds[VIRTIO_MAX_QUEUES];
	bool ioeventfd_assigned[VIRTIO_MAX_QUEUES];
	int irq_fd;
	bool irqfd_assigned;
	int stop_fd;
	int epoll_fd;
	int watch_fds[VIRTIO_MMIO_MAX_WATCHES];	/* the device's, not ours */
	pthread_t thread;
	bool thread_started;
};

static void raise_interrupt(struct virtio_mmio *t, uint32_t bit)
{
	__atomic_fetch_or(&t->interrupt_status, bit, __ATOMIC_SEQ_CST);
	/* can only fail on counter overflow, which means "still pending" */
	(void)eventfd_write(t->irq_fd, 1);
}

void virtio_mmio_used(struct virtio_mmio *t, struct virtq *vq)
{
	if (virtq_should_notify(vq))
		raise_interrupt(t, VIRTIO_MMIO_INT_VRING);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	__atomic_fetch_add(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
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

/* Called with the lock held: the device stops serving the driver until
 * it resets it (§2.1.1: DEVICE_NEEDS_RESET, then a config interrupt). */
static void needs_reset_locked(struct virtio_mmio *t)
{
	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	virtio_mmio_config_changed(t);
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

static bool features_acceptable(const struct virtio_mmio *t)
{
	return !(t->driver_features & ~t->device_features) &&
	       negotiated(t, VIRTIO_F_VERSION_1);
}

/* Kicks that came before DRIVER_OK were not served (the queues were not
 * live yet); a driver may post buffers (RX!) and kick only once before
 * setting DRIVER_OK, so the I/O thread looks at every queue when the
 * driver goes live.  Serving an empty queue costs nothing. */
static void kick_all_queues(struct virtio_mmio *t)
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
	    !(t->status & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(t))
		v &= ~VIRTIO_STATUS_FEATURES_OK;
	/* only the device sets or clears NEEDS_RESET */
	v &= ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_DRIVER_OK))
		kick_all_queues(t);
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
		needs_reset_locked(t);
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

static void mmio_access(void *opaque, unsigned vcpu_id, uint64_t off,
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

static void serve_queue(struct virtio_mmio *t, unsigned q)
{
	struct virtq *vq = &t->queues[q];
	uint32_t live = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET;

	pthread_mutex_lock(&t->lock);
	if ((t->status & live) == VIRTIO_STATUS_DRIVER_OK && vq->ready &&
	    !virtq_broken(vq)) {
		t->ops->queue_notify(t->dev, t, vq, q);
		if (virtq_broken(vq))
			needs_reset_locked(t);
	}
	pthread_mutex_unlock(&t->lock);
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

static void serve_backend(struct virtio_mmio *t, unsigned tag)
{
	pthread_mutex_lock(&t->lock);
	t->ops->backend_ready(t->dev, t, tag);
	for (unsigned q = 0; q < t->ops->nqueues; q++)
		if (virtq_broken(&t->queues[q]))
			needs_reset_locked(t);
	pthread_mutex_unlock(&t->lock);
}

#define IO_THREAD_EVENTS (VIRTIO_MAX_QUEUES + VIRTIO_MMIO_MAX_WATCHES + 1)

static void *io_thread(void *arg)
{
	struct virtio_mmio *t = arg;
	struct epoll_event events[IO_THREAD_EVENTS];
	eventfd_t count;

	for (;;) {
		int n = epoll_wait(t->epoll_fd, events, IO_THREAD_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		for (int i = 0; i < n; i++) {
			uint32_t tag = events[i].data.u32;

			if (tag == STOP_EVENT)
				return NULL;
			if (tag >= WATCH_EVENT_BASE)
				serve_backend(t, tag - WATCH_EVENT_BASE);
			else if (eventfd_read(t->kick_fds[tag], &count) == 0)
				serve_queue(t, tag);
		}
	}
}

static int kvm_ioeventfd(struct virtio_mmio *t, unsigned q, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = q,
		.addr = t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = t->kick_fds[q],
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(t->vm->fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int kvm_irqfd(struct virtio_mmio *t, bool assign)
{
	struct kvm_irqfd irq = {
		.fd = (uint32_t)t->irq_fd,
		.gsi = t->gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(t->vm->fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void transport_destroy(void *obj)
{
	struct virtio_mmio *t = obj;

	if (t->thread_started) {
		(void)eventfd_write(t->stop_fd, 1);
		pthread_join(t->thread, NULL);
	}
	for (unsigned q = 0; q < t->ops->nqueues; q++) {
		if (t->ioeventfd_assigned[q])
			kvm_ioeventfd(t, q, false);
		close_fd(&t->kick_fds[q]);
	}
	if (t->irqfd_assigned)
		kvm_irqfd(t, false);
	close_fd(&t->irq_fd);
	close_fd(&t->stop_fd);
	close_fd(&t->epoll_fd);
	t->ops->destroy(t->dev);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int watch_fd(struct virtio_mmio *t, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int open_fds(struct virtio_mmio *t, struct errmsg *err)
{
	int ret;

	t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->epoll_fd < 0 || t->stop_fd < 0 || t->irq_fd < 0)
		return errmsg_set(err, -errno, "%s: eventfd/epoll: %s", t->name,
				  strerror(errno));
	ret = watch_fd(t, t->stop_fd, STOP_EVENT);
	for (unsigned q = 0; !ret && q < t->ops->nqueues; q++) {
		t->kick_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->kick_fds[q] < 0)
			ret = -errno;
		else
			ret = watch_fd(t, t->kick_fds[q], q);
	}
	if (ret)
		return errmsg_set(err, ret, "%s: eventfd/epoll: %s", t->name,
				  strerror(-ret));
	return 0;
}

/* Binds kicks and the interrupt to KVM; skipped for a bare VM. */
static int bind_to_kvm(struct virtio_mmio *t, struct errmsg *err)
{
	int ret;

	if (t->vm->fd < 0)
		return 0;
	for (unsigned q = 0; q < t->ops->nqueues; q++) {
		ret = kvm_ioeventfd(t, q, true);
		if (ret)
			return errmsg_set(err, ret, "%s: KVM_IOEVENTFD: %s",
					  t->name, strerror(-ret));
		t->ioeventfd_assigned[q] = true;
	}
	ret = kvm_irqfd(t, true);
	if (ret)
		return errmsg_set(err, ret, "%s: KVM_IRQFD on GSI %u: %s",
				  t->name, t->gsi, strerror(-ret));
	t->irqfd_assigned = true;
	return 0;
}

static struct virtio_mmio *transport_alloc(struct vm *vm, unsigned index,
					   const struct virtio_device_ops *ops,
					   void *dev)
{
	struct virtio_mmio *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->vm = vm;
	t->index = index;
	t->base = virtio_mmio_base(index);
	t->gsi = virtio_mmio_gsi(index);
	t->ops = ops;
	t->dev = dev;
	t->device_features = ops->features(dev) | VIRTIO_TRANSPORT_FEATURES;
	snprintf(t->name, sizeof(t->name), "virtio-%s%u", ops->name, index);
	t->epoll_fd = t->stop_fd = t->irq_fd = -1;
	for (unsigned w = 0; w < VIRTIO_MMIO_MAX_WATCHES; w++)
		t->watch_fds[w] = -1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		t->kick_fds[q] = -1;
		virtq_init(&t->queues[q], &vm->mem);
	}
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

int virtio_mmio_create(struct vm *vm, unsigned index,
		       const struct virtio_device_ops *ops, void *dev,
		       struct virtio_mmio **out, struct errmsg *err)
{
	struct virtio_mmio *t;
	int ret;

	if (index >= VIRTIO_MMIO_MAX_DEVICES || ops->nqueues == 0 ||
	    ops->nqueues > VIRTIO_MAX_QUEUES ||
	    ops->queue_max_size > VIRTQ_MAX_SIZE ||
	    ops->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG) {
		ops->destroy(dev);
		return errmsg_set(err, -EINVAL, "virtio device %u: bad index or ops",
				  index);
	}
	t = transport_alloc(vm, index, ops, dev);
	if (!t) {
		ops->destroy(dev);
		return -ENOMEM;
	}
	/* owned first: from here every failure is undone by vm_destroy() */
	ret = vm_own(vm, transport_destroy, t);
	if (ret) {
		transport_destroy(t);
		return ret;
	}
	ret = open_fds(t, err);
	if (!ret)
		ret = bind_to_kvm(t, err);
	if (!ret) {
		ret = bus_register(&vm->mmio_bus, t->base, VIRTIO_MMIO_SIZE,
				   mmio_access, t, t->name);
		if (ret)
			errmsg_set(err, ret, "%s: MMIO range 0x%llx is taken",
				   t->name, (unsigned long long)t->base);
	}
	if (ret)
		return ret;
	ret = -pthread_create(&t->thread, NULL, io_thread, t);
	if (ret)
		return errmsg_set(err, ret, "%s: I/O thread: %s", t->name,
				  strerror(-ret));
	t->thread_started = true;
	if (out)
		*out = t;
	return 0;
}

int virtio_mmio_watch_fd(struct virtio_mmio *t, int fd, unsigned tag)
{
	int ret;

	if (tag >= VIRTIO_MMIO_MAX_WATCHES || fd < 0 || !t->ops->backend_ready ||
	    t->watch_fds[tag] >= 0)
		return -EINVAL;
	ret = watch_fd(t, fd, WATCH_EVENT_BASE + tag);
	if (!ret)
		t->watch_fds[tag] = fd;
	return ret;
}

int virtio_mmio_set_watch(struct virtio_mmio *t, unsigned tag, bool enabled)
{
	struct epoll_event ev = { .events = enabled ? EPOLLIN : 0,
				  .data.u32 = WATCH_EVENT_BASE + tag };

	if (tag >= VIRTIO_MMIO_MAX_WATCHES || t->watch_fds[tag] < 0)
		return -EINVAL;
	return epoll_ctl(t->epoll_fd, EPOLL_CTL_MOD, t->watch_fds[tag], &ev) < 0 ?
		-errno : 0;
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
