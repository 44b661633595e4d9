// SPDX-License-Identifier: MIT
/*
 * A virtqueue's state for snapshots and migration (virtqueue.h).
 *
 * Layout, little-endian, in this order:
 *   u16 size, u64 desc, u64 avail, u64 used	the driver's registers
 *   bool ready, bool event_idx, bool indirect
 *   u8 error					enum virtq_error
 *   u16 last_avail, u16 used_idx, u16 signalled_used,
 *   bool signalled_used_valid
 *   u64 requests, u64 bytes			counters
 * The transport writes the version; a change here bumps it.
 */
#include <errno.h>

#include "virtio/virtqueue.h"

void virtq_save(const struct virtq *vq, struct state_buf *out)
{
	state_put_u16(out, vq->layout.size);
	state_put_u64(out, vq->layout.desc);
	state_put_u64(out, vq->layout.avail);
	state_put_u64(out, vq->layout.used);
	state_put_bool(out, vq->ready);
	state_put_bool(out, vq->event_idx);
	state_put_bool(out, vq->indirect);
	state_put_u8(out, (uint8_t)vq->error);
	state_put_u16(out, vq->last_avail);
	state_put_u16(out, vq->used_idx);
	state_put_u16(out, vq->signalled_used);
	state_put_bool(out, vq->signalled_used_valid);
	state_put_u64(out, vq->requests);
	state_put_u64(out, vq->bytes);
}

/* What virtq_load() reads before it checks anything; the flags as the
 * bytes they were, so that a value other than 0 or 1 gets its name. */
struct saved_queue {
	struct virtq_layout layout;
	uint8_t ready, event_idx, indirect, error;
	uint16_t last_avail, used_idx, signalled_used;
	uint8_t signalled_used_valid;
	uint64_t requests, bytes;
};

static void get_fields(struct saved_queue *s, struct state_reader *in)
{
	state_get_u16(in, &s->layout.size);
	state_get_u64(in, &s->layout.desc);
	state_get_u64(in, &s->layout.avail);
	state_get_u64(in, &s->layout.used);
	state_get_u8(in, &s->ready);
	state_get_u8(in, &s->event_idx);
	state_get_u8(in, &s->indirect);
	state_get_u8(in, &s->error);
	state_get_u16(in, &s->last_avail);
	state_get_u16(in, &s->used_idx);
	state_get_u16(in, &s->signalled_used);
	state_get_u8(in, &s->signalled_used_valid);
	state_get_u64(in, &s->requests);
	state_get_u64(in, &s->bytes);
}

static int check_fields(const struct saved_queue *s, struct errmsg *err)
{
	static const char *const names[] = {
		"ready", "event_idx", "indirect", "signalled_used_valid",
	};
	const uint8_t flags[] = {
		s->ready, s->event_idx, s->indirect, s->signalled_used_valid,
	};

	for (unsigned i = 0; i < sizeof(flags); i++)
		if (flags[i] > 1)
			return errmsg_set(err, -EBADMSG, "%s is %u, not 0 or 1",
					  names[i], flags[i]);
	if (s->error > VIRTQ_ERR_DEVICE)
		return errmsg_set(err, -EBADMSG, "unknown error state %u",
				  s->error);
	return 0;
}

/* The rings of a ready queue, checked as QueueReady checks them. */
static int enable_again(struct virtq *q, uint16_t max_size,
			struct errmsg *err)
{
	const struct virtq_layout *l = &q->layout;

	if (!virtq_enable(q, max_size, q->event_idx, q->indirect))
		return 0;
	return errmsg_set(err, -EBADMSG,
			  "ready queue of size %u (at most %u) with rings at "
			  "%#llx/%#llx/%#llx: misaligned or not in guest RAM",
			  l->size, max_size, (unsigned long long)l->desc,
			  (unsigned long long)l->avail,
			  (unsigned long long)l->used);
}

int virtq_load(struct virtq *out, const struct guest_mem *mem,
	       struct state_reader *in, uint16_t max_size, struct errmsg *err)
{
	struct saved_queue s;
	struct virtq q = { .mem = mem };
	uint16_t out_chains;
	int ret;

	get_fields(&s, in);
	if (state_reader_error(in))
		return errmsg_set(err, -EBADMSG, "truncated");
	ret = check_fields(&s, err);
	if (ret)
		return ret;
	q.layout = s.layout;
	q.event_idx = s.event_idx;
	q.indirect = s.indirect;
	if (s.ready) {
		ret = enable_again(&q, max_size, err);
		if (ret)
			return ret;
		/* after quiesce only a held buffer (the balloon's
		 * statistics) is still the device's; never more than fit */
		out_chains = (uint16_t)(s.last_avail - s.used_idx);
		if (out_chains > q.layout.size)
			return errmsg_set(err, -EBADMSG,
					  "%u chains taken and not returned, "
					  "in a queue of %u", out_chains,
					  q.layout.size);
	}
	q.error = (enum virtq_error)s.error;
	q.last_avail = s.last_avail;
	q.used_idx = s.used_idx;
	q.signalled_used = s.signalled_used;
	q.signalled_used_valid = s.signalled_used_valid;
	q.requests = s.requests;
	q.bytes = s.bytes;
	*out = q;
	return 0;
}
