// SPDX-License-Identifier: MIT
/*
 * virtio-console, one port, see console.h.
 *
 * Input flow: the I/O thread reads what the input fd has into a small
 * pending buffer only when it has somewhere to put it, copies it into
 * receive buffers, and pauses the watch while bytes are left over (no
 * guest buffers): the level-triggered watch would spin otherwise.
 * queue_notify on the receive queue drains the pending bytes and
 * resumes the watch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"
#include "util/full_io.h"

#define QUEUE_SIZE 64
#define INPUT_TAG 0
#define PENDING_MAX 4096

struct virtio_console {
	int out_fd;
	int in_fd;			/* -1: no input */
	bool in_eof;			/* the input ended: stop watching */
	bool watching;
	uint8_t pending[PENDING_MAX];
	size_t pending_off, pending_len;
	struct virtq_chain chain;
};

static void set_watch(struct virtio_console *c, struct virtio_mmio *t,
		      bool on)
{
	if (c->in_fd < 0 || c->in_eof || c->watching == on)
		return;
	if (virtio_mmio_set_watch(t, INPUT_TAG, on) == 0)
		c->watching = on;
}

/* Moves pending input into the guest's receive buffers. */
static void deliver(struct virtio_console *c, struct virtio_mmio *t,
		    struct virtq *rx)
{
	bool pushed = false;

	while (c->pending_len && virtq_pop(rx, &c->chain) == 1) {
		uint32_t written = 0;

		for (unsigned i = 0; i < c->chain.nsegs && c->pending_len; i++) {
			const struct virtq_seg *s = &c->chain.segs[i];
			size_t n = s->len < c->pending_len ? s->len : c->pending_len;

			if (!s->is_write)
				continue;
			memcpy(s->ptr, c->pending + c->pending_off, n);
			c->pending_off += n;
			c->pending_len -= n;
			written += (uint32_t)n;
		}
		virtq_push(rx, c->chain.head, written);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_used(t, rx);
	/* leftovers wait for buffers; the input stays where it is */
	set_watch(c, t, c->pending_len == 0);
}

static void console_queue_notify(void *dev, struct virtio_mmio *t,
				 struct virtq *vq, unsigned q)
{
	struct virtio_console *c = dev;

	if (q == VIRTIO_CONSOLE_Q_TX) {
		bool pushed = false;

		while (virtq_pop(vq, &c->chain) == 1) {
			for (unsigned i = 0; i < c->chain.nsegs; i++)
				/* a full disk or a closed pipe loses the
				 * guest's bytes, as a console may; the guest
				 * keeps running */
				if (!c->chain.segs[i].is_write)
					(void)write_full(c->out_fd,
							 c->chain.segs[i].ptr,
							 c->chain.segs[i].len);
			virtq_push(vq, c->chain.head, 0);
			pushed = true;
		}
		if (pushed)
			virtio_mmio_used(t, vq);
		return;
	}
	deliver(c, t, vq);
}

static void console_backend_ready(void *dev, struct virtio_mmio *t,
				  unsigned tag)
{
	struct virtio_console *c = dev;
	struct virtq *rx = virtio_mmio_queue_locked(t, VIRTIO_CONSOLE_Q_RX);
	ssize_t n;

	if (tag != INPUT_TAG || c->in_fd < 0)
		return;
	/* nowhere to put it yet: pause until the driver kicks the receive
	 * queue (queue_notify resumes the watch) */
	if (!virtio_mmio_live_locked(t) || !rx->ready || virtq_broken(rx)) {
		set_watch(c, t, false);
		return;
	}
	if (!c->pending_len) {
		n = read(c->in_fd, c->pending, sizeof(c->pending));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			/* end of input (or an error): nothing more will come */
			set_watch(c, t, false);
			c->in_eof = true;
			return;
		}
		c->pending_off = 0;
		c->pending_len = (size_t)n;
	}
	deliver(c, t, rx);
}

static uint64_t console_features(void *dev)
{
	(void)dev;
	return 0;	/* no SIZE, no MULTIPORT, no EMERG_WRITE */
}

static void console_config_read(void *dev, uint32_t offset, uint8_t *data,
				unsigned len)
{
	(void)dev;
	(void)offset;
	(void)data;
	(void)len;	/* no config space: config_size is 0 */
}

static void console_destroy(void *dev)
{
	struct virtio_console *c = dev;

	if (c->out_fd >= 0)
		close(c->out_fd);
	if (c->in_fd >= 0)
		close(c->in_fd);
	free(c);
}

/*
 * The device's part: u32 version, then a u32 length and the input read
 * from the input fd and not yet delivered (at most PENDING_MAX bytes):
 * the guest gets it on the other side.  Input still in the fd stays
 * with the source's; so does an end of input (the restored device has
 * an input of its own).
 */
#define CONSOLE_STATE_VERSION 1u

static void console_save(void *dev, struct virtio_mmio *t,
			 struct state_buf *out)
{
	struct virtio_console *c = dev;

	(void)t;
	state_put_u32(out, CONSOLE_STATE_VERSION);
	state_put_blob(out, c->pending + c->pending_off, c->pending_len);
}

static int console_load(void *dev, struct virtio_mmio *t,
			struct state_reader *in, struct errmsg *err)
{
	struct virtio_console *c = dev;
	const uint8_t *bytes;
	size_t len;
	int ret = virtio_state_version(in, CONSOLE_STATE_VERSION, err);

	if (ret)
		return ret;
	state_get_blob(in, &bytes, &len, PENDING_MAX);
	ret = virtio_state_end(in, err);
	if (ret)
		return ret;
	if (len)
		memcpy(c->pending, bytes, len);
	c->pending_off = 0;
	c->pending_len = len;
	/* leftovers first: the receive queue's kick delivers them and
	 * resumes the watch */
	set_watch(c, t, len == 0);
	return 0;
}

static const struct virtio_device_ops console_ops = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.nqueues = 2,
	.queue_max_size = QUEUE_SIZE,
	.config_size = 0,
	.features = console_features,
	.config_read = console_config_read,
	.queue_notify = console_queue_notify,
	.backend_ready = console_backend_ready,
	.destroy = console_destroy,
	.save = console_save,
	.load = console_load,
};

static int open_input(const char *path, struct errmsg *err)
{
	struct stat st;
	int fd, flags = O_RDONLY;

	if (stat(path, &st) < 0)
		return errmsg_set(err, -errno, "virtio-console input %s: %s",
				  path, strerror(errno));
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
		return errmsg_set(err, -EINVAL, "virtio-console input %s: give a FIFO, "
				  "socket or terminal, not a regular file", path);
	/* read-write: we are a writer too, so a FIFO never reports end of
	 * file when one of its writers closes */
	if (S_ISFIFO(st.st_mode))
		flags = O_RDWR;
	fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errmsg_set(err, -errno, "virtio-console input %s: %s",
				  path, strerror(errno));
	return fd;
}

int virtio_console_create(struct vm *vm, unsigned index,
			  const struct virtio_console_options *opt,
			  struct errmsg *err)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	struct virtio_mmio *t;
	int ret;

	if (!c)
		return -ENOMEM;
	c->in_fd = -1;
	c->out_fd = open(opt->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			 0644);
	if (c->out_fd < 0) {
		ret = -errno;
		console_destroy(c);
		return errmsg_set(err, ret, "virtio-console output %s: %s",
				  opt->out_path, strerror(-ret));
	}
	if (opt->in_path) {
		c->in_fd = open_input(opt->in_path, err);
		if (c->in_fd < 0) {
			ret = c->in_fd;
			c->in_fd = -1;
			console_destroy(c);
			return ret;
		}
	}
	/* before the I/O thread can see the fd */
	c->watching = c->in_fd >= 0;
	/* the transport owns c from here, even on failure */
	ret = virtio_mmio_create(vm, index, &console_ops, c, &t, err);
	if (ret || c->in_fd < 0)
		return ret;
	ret = virtio_mmio_watch_fd(t, c->in_fd, INPUT_TAG);
	if (ret)
		return errmsg_set(err, ret, "virtio-console input %s: cannot watch it: %s",
				  opt->in_path, strerror(-ret));
	return 0;
}
