// SPDX-License-Identifier: MIT
/*
 * The virtio-mmio transport's machinery around the register file: its
 * eventfds and epoll set, the KVM ioeventfds and irqfd they are bound to,
 * the per-device I/O thread that serves kicks and the device's watched
 * fds, and creation and teardown.  The registers are mmio.c's; the
 * locking contract is in mmio_internal.h.
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

#include "util/page.h"
#include "vm/ram_sigbus.h"
#include "vm/vm.h"
#include "virtio/mmio_internal.h"

#define STOP_EVENT UINT32_MAX	/* epoll tag of the stop eventfd */
#define WATCH_EVENT_BASE 0x100u	/* epoll tags of backend fds: base + tag */

/* What the I/O thread asks of the device: a queue's kick or a backend's
 * readiness (@queue NULL), for ram_sigbus_call(). */
struct io_call {
	struct virtio_mmio *t;
	struct virtq *queue;
	unsigned index;			/* the queue's, or the backend's tag */
};

static void io_call_run(void *arg)
{
	struct io_call *c = arg;

	if (c->queue)
		c->t->ops->queue_notify(c->t->dev, c->t, c->queue, c->index);
	else
		c->t->ops->backend_ready(c->t->dev, c->t, c->index);
}

/*
 * Lock held.  The device touched a guest page that cannot be had (lost
 * by the pager, or a memory error) and got SIGBUS; ram_sigbus_call()
 * abandoned the request where it stood.  The devices take no lock of
 * their own and allocate nothing while touching guest RAM (the transport
 * lock, which we hold, is the only one), so nothing is left locked.  The
 * half-served queue cannot be trusted: the device needs a reset, and the
 * VM ends (the pager, where it lost the page, asked first and its
 * message names the page).
 */
static void guest_ram_unusable(struct virtio_mmio *t, uint64_t offset)
{
	virtio_mmio_needs_reset_locked(t);
	vm_request_exit(t->vm, VM_EXIT_HOST_ERROR, EFAULT, 0,
			"%s: guest page %llu (memfd offset %#llx) is unusable "
			"(SIGBUS: lost by the pager, or a memory error)", t->name,
			(unsigned long long)(offset / PAGE_SIZE),
			(unsigned long long)(offset & ~(PAGE_SIZE - 1)));
}

static void serve_guarded(struct io_call *c)
{
	uint64_t offset = 0;

	if (ram_sigbus_call(&c->t->vm->mem, io_call_run, c, &offset))
		guest_ram_unusable(c->t, offset);
}

static void serve_queue(struct virtio_mmio *t, unsigned q)
{
	struct io_call c = { .t = t, .queue = &t->queues[q], .index = q };

	if (!virtio_mmio_lock_unless_stopping(t))
		return;
	if (virtio_mmio_live_locked(t) && c.queue->ready &&
	    !virtq_broken(c.queue)) {
		serve_guarded(&c);
		if (virtq_broken(c.queue))
			virtio_mmio_needs_reset_locked(t);
	}
	pthread_mutex_unlock(&t->lock);
}

static void serve_backend(struct virtio_mmio *t, unsigned tag)
{
	struct io_call c = { .t = t, .index = tag };

	if (!virtio_mmio_lock_unless_stopping(t))
		return;
	serve_guarded(&c);
	for (unsigned q = 0; q < t->ops->nqueues; q++)
		if (virtq_broken(&t->queues[q]))
			virtio_mmio_needs_reset_locked(t);
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
			else if (eventfd_read(t->kick_fds[tag], &count) == 0) {
				__atomic_fetch_add(&t->kicks, count,
						   __ATOMIC_RELAXED);
				serve_queue(t, tag);
			}
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
		virtio_mmio_stop_parking(t);
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
	pthread_cond_destroy(&t->park_cond);
	pthread_mutex_destroy(&t->park_lock);
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
	pthread_mutex_init(&t->park_lock, NULL);
	pthread_cond_init(&t->park_cond, NULL);
	t->quiesce_timeout_ms = VIRTIO_MMIO_QUIESCE_TIMEOUT_MS;
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
	/* before the I/O thread can touch guest RAM */
	ret = ram_sigbus_install(err);
	if (ret) {
		ops->destroy(dev);
		return ret;
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
				   virtio_mmio_bus_access, t, t->name);
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
	ret = virtio_mmio_register_state(t, err);
	if (ret)
		return ret;
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

