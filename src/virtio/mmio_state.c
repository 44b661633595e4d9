// SPDX-License-Identifier: MIT
/*
 * A virtio-mmio device's state for snapshots and migration: quiesce,
 * save, unquiesce and load, registered with the VM as
 * "virtio-mmio@<index>" (vm/vm_state.h).  The locking around quiesce is
 * in mmio_internal.h; mmio.h has the layout of the blob.
 *
 * Why holding the lock is "drained": every device finishes a request
 * (pop, I/O, push, interrupt) inside one queue_notify or backend_ready
 * call, which the I/O thread makes with the lock held.  Once quiesce
 * has had the lock, nothing is half done, and the I/O thread is parked
 * before its next event.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>

#include "util/clock.h"
#include "virtio/mmio_internal.h"
#include "vm/vm_state.h"

#define STATE_VERSION 1u
/* the largest device part: virtio-net's pending frame and a little */
#define DEVICE_PART_MAX (1u << 20)

int virtio_state_version(struct state_reader *in, uint32_t version,
			 struct errmsg *err)
{
	return state_check_version(in, NULL, version, err);
}

int virtio_state_end(const struct state_reader *in, struct errmsg *err)
{
	return state_check_end(in, NULL, err);
}

/* ---- quiesce ------------------------------------------------------------ */

static bool is_quiesced(struct virtio_mmio *t)
{
	return __atomic_load_n(&t->quiesced, __ATOMIC_SEQ_CST);
}

/* Parks while quiesced; false if the transport is going away. */
static bool park(struct virtio_mmio *t)
{
	bool stopping;

	pthread_mutex_lock(&t->park_lock);
	while (is_quiesced(t) && !t->stopping)
		pthread_cond_wait(&t->park_cond, &t->park_lock);
	stopping = t->stopping;
	pthread_mutex_unlock(&t->park_lock);
	return !stopping;
}

bool virtio_mmio_lock_unless_stopping(struct virtio_mmio *t)
{
	for (;;) {
		if (is_quiesced(t) && !park(t))
			return false;
		pthread_mutex_lock(&t->lock);
		/* quiesce may have come between the check and the lock */
		if (!is_quiesced(t))
			return true;
		pthread_mutex_unlock(&t->lock);
	}
}

void virtio_mmio_stop_parking(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->park_lock);
	t->stopping = true;
	pthread_cond_broadcast(&t->park_cond);
	pthread_mutex_unlock(&t->park_lock);
}

static void transport_unquiesce(void *opaque)
{
	struct virtio_mmio *t = opaque;

	pthread_mutex_lock(&t->park_lock);
	__atomic_store_n(&t->quiesced, false, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&t->park_cond);
	pthread_mutex_unlock(&t->park_lock);
}

static int transport_quiesce(void *opaque)
{
	struct virtio_mmio *t = opaque;
	struct timespec deadline;
	int ret;

	/* first: the I/O thread stops taking the lock for new events */
	__atomic_store_n(&t->quiesced, true, __ATOMIC_SEQ_CST);
	deadline = monotonic_deadline((uint64_t)t->quiesce_timeout_ms * 1000000);
	/* then the request in flight, which holds the lock, ends */
	ret = pthread_mutex_clocklock(&t->lock, CLOCK_MONOTONIC, &deadline);
	if (ret) {
		transport_unquiesce(t);
		return -ret;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void virtio_mmio_set_quiesce_timeout(struct virtio_mmio *t, unsigned ms)
{
	t->quiesce_timeout_ms = ms;
}

/* ---- save --------------------------------------------------------------- */

static void put_registers(struct virtio_mmio *t, struct state_buf *out)
{
	state_put_u32(out, STATE_VERSION);
	state_put_u32(out, t->ops->device_id);
	state_put_u32(out, t->ops->nqueues);
	state_put_u64(out, t->driver_features);
	state_put_u32(out, t->device_features_sel);
	state_put_u32(out, t->driver_features_sel);
	state_put_u32(out, t->queue_sel);
	state_put_u32(out, t->status);
	state_put_u32(out, __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST));
	state_put_u32(out, __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST));
	state_put_u64(out, __atomic_load_n(&t->kicks, __ATOMIC_RELAXED));
	state_put_u64(out, __atomic_load_n(&t->interrupts, __ATOMIC_RELAXED));
}

static int transport_save(void *opaque, struct state_buf *out)
{
	struct virtio_mmio *t = opaque;
	struct state_buf dev;
	int ret;

	state_buf_init(&dev);
	pthread_mutex_lock(&t->lock);
	put_registers(t, out);
	for (unsigned q = 0; q < t->ops->nqueues; q++)
		virtq_save(&t->queues[q], out);
	if (t->ops->save)
		t->ops->save(t->dev, t, &dev);
	pthread_mutex_unlock(&t->lock);
	state_put_blob(out, dev.data, dev.len);
	ret = state_buf_error(&dev) ? state_buf_error(&dev) : state_buf_error(out);
	state_buf_release(&dev);
	return ret;
}

/* ---- load --------------------------------------------------------------- */

/* What a load replaces: the register file and the queues. */
struct registers {
	uint64_t driver_features;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status;
	uint32_t config_generation;
	uint32_t interrupt_status;
	uint64_t kicks;
	uint64_t interrupts;
	struct virtq queues[VIRTIO_MAX_QUEUES];
};

/* Lock held. */
static void registers_get(struct virtio_mmio *t, struct registers *r)
{
	r->driver_features = t->driver_features;
	r->device_features_sel = t->device_features_sel;
	r->driver_features_sel = t->driver_features_sel;
	r->queue_sel = t->queue_sel;
	r->status = t->status;
	r->config_generation = __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST);
	r->interrupt_status = __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
	r->kicks = __atomic_load_n(&t->kicks, __ATOMIC_RELAXED);
	r->interrupts = __atomic_load_n(&t->interrupts, __ATOMIC_RELAXED);
	memcpy(r->queues, t->queues, sizeof(r->queues));
}

/* Lock held. */
static void registers_set(struct virtio_mmio *t, const struct registers *r)
{
	t->driver_features = r->driver_features;
	t->device_features_sel = r->device_features_sel;
	t->driver_features_sel = r->driver_features_sel;
	t->queue_sel = r->queue_sel;
	t->status = r->status;
	__atomic_store_n(&t->config_generation, r->config_generation, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->interrupt_status, r->interrupt_status, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->kicks, r->kicks, __ATOMIC_RELAXED);
	__atomic_store_n(&t->interrupts, r->interrupts, __ATOMIC_RELAXED);
	memcpy(t->queues, r->queues, sizeof(t->queues));
}

static int get_identity(struct virtio_mmio *t, struct state_reader *in,
			struct errmsg *err)
{
	uint32_t id, nqueues;
	int ret = virtio_state_version(in, STATE_VERSION, err);

	if (ret)
		return ret;
	state_get_u32(in, &id);
	state_get_u32(in, &nqueues);
	if (state_reader_error(in))
		return virtio_state_end(in, err);
	if (id != t->ops->device_id || nqueues != t->ops->nqueues)
		return errmsg_set(err, -EINVAL,
				  "state of a virtio device %u with %u queues, "
				  "this one is %s (device %u, %u queues)", id,
				  nqueues, t->ops->name, t->ops->device_id,
				  t->ops->nqueues);
	return 0;
}

/* Values a driver's writes could not have produced. */
static int check_registers(struct virtio_mmio *t, const struct registers *r,
			   struct errmsg *err)
{
	if (r->status & ~0xffu)
		return errmsg_set(err, -EBADMSG, "device status %#x has unknown bits",
				  r->status);
	/* FEATURES_OK is only ever set for features the device offers */
	if ((r->status & VIRTIO_STATUS_FEATURES_OK) &&
	    !virtio_mmio_features_acceptable(t, r->driver_features))
		return errmsg_set(err, -EINVAL,
				  "the driver accepted features %#llx, this device "
				  "offers %#llx",
				  (unsigned long long)r->driver_features,
				  (unsigned long long)t->device_features);
	if (r->interrupt_status & ~(uint32_t)(VIRTIO_MMIO_INT_VRING |
					      VIRTIO_MMIO_INT_CONFIG))
		return errmsg_set(err, -EBADMSG, "interrupt status %#x has unknown bits",
				  r->interrupt_status);
	return 0;
}

static int get_registers(struct virtio_mmio *t, struct state_reader *in,
			 struct registers *r, struct errmsg *err)
{
	struct errmsg why = { "" };
	int ret = get_identity(t, in, err);

	if (ret)
		return ret;
	state_get_u64(in, &r->driver_features);
	state_get_u32(in, &r->device_features_sel);
	state_get_u32(in, &r->driver_features_sel);
	state_get_u32(in, &r->queue_sel);
	state_get_u32(in, &r->status);
	state_get_u32(in, &r->config_generation);
	state_get_u32(in, &r->interrupt_status);
	state_get_u64(in, &r->kicks);
	state_get_u64(in, &r->interrupts);
	if (state_reader_error(in))
		return virtio_state_end(in, err);
	ret = check_registers(t, r, err);
	for (unsigned q = 0; !ret && q < t->ops->nqueues; q++) {
		ret = virtq_load(&r->queues[q], &t->vm->mem, in,
				 t->ops->queue_max_size, &why);
		if (ret)
			errmsg_set(err, ret, "queue %u: %s", q, why.text);
	}
	return ret;
}

/* Lock held, the new registers in place: the device's own part. */
static int load_device(struct virtio_mmio *t, const uint8_t *part, size_t len,
		       struct errmsg *err)
{
	struct state_reader in;

	if (!t->ops->load)
		return len ? errmsg_set(err, -EBADMSG,
					"%zu bytes of device state for a device "
					"that has none", len) : 0;
	state_reader_init(&in, part, len);
	return t->ops->load(t->dev, t, &in, err);
}

/* Lock held, everything loaded: what the driver's writes had set going. */
static void resume_loaded(struct virtio_mmio *t)
{
	/* the rings may hold buffers whose kick the source took */
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_kick_all(t);
	/* an interrupt the driver had not handled: told again (a spurious
	 * one is harmless, a lost one hangs the driver) */
	if (__atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST))
		(void)eventfd_write(t->irq_fd, 1);
}

static int transport_load(void *opaque, struct state_reader *in,
			  struct errmsg *err)
{
	struct virtio_mmio *t = opaque;
	struct errmsg why = { "" };
	struct registers r = { 0 }, old;
	const uint8_t *part;
	size_t len;
	int ret;

	ret = get_registers(t, in, &r, &why);
	if (!ret && state_get_blob(in, &part, &len, DEVICE_PART_MAX))
		ret = errmsg_set(&why, -EBADMSG,
				 "device part truncated or over %u bytes",
				 DEVICE_PART_MAX);
	if (!ret)
		ret = virtio_state_end(in, &why);
	if (ret)
		return errmsg_set(err, ret, "%s: %s", t->name, why.text);
	pthread_mutex_lock(&t->lock);
	registers_get(t, &old);
	/* the queues past nqueues are never used: keep them as they are */
	memcpy(r.queues + t->ops->nqueues, old.queues + t->ops->nqueues,
	       (VIRTIO_MAX_QUEUES - t->ops->nqueues) * sizeof(r.queues[0]));
	registers_set(t, &r);
	ret = load_device(t, part, len, &why);
	if (ret)
		registers_set(t, &old);
	else
		resume_loaded(t);
	pthread_mutex_unlock(&t->lock);
	if (ret)
		return errmsg_set(err, ret, "%s: %s", t->name, why.text);
	return 0;
}

static const struct vm_state_ops transport_state_ops = {
	.quiesce = transport_quiesce,
	.unquiesce = transport_unquiesce,
	.save = transport_save,
	.load = transport_load,
};

int virtio_mmio_register_state(struct virtio_mmio *t, struct errmsg *err)
{
	char name[VM_STATE_NAME_MAX];
	int ret;

	snprintf(name, sizeof(name), "virtio-mmio@%u", t->index);
	ret = vm_state_register(t->vm, name, &transport_state_ops, t);
	if (ret)
		return errmsg_set(err, ret, "%s: registering its state as %s: %s",
				  t->name, name, strerror(-ret));
	return 0;
}
