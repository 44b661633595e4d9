// SPDX-License-Identifier: MIT
/*
 * virtio-balloon's part of a snapshot (balloon_internal.h).
 *
 * What the guest and the host agreed on: the target and what the driver
 * says it holds, and whether the device holds the driver's statistics
 * buffer (and which, so that it can be returned on the other side: the
 * driver posts no other).  The pages in the balloon are holes in guest
 * RAM, which carries them; free page reporting holds nothing between
 * requests.  The counters and the last statistics come along so that
 * what the API shows goes on.
 *
 * Layout: u32 version, u32 target, u32 actual, bool stats held,
 * u16 stats queue, u16 stats head, u64 inflated, deflated, discarded
 * bytes, reported bytes, bad requests, discard errors, stats updates,
 * then the statistics: u64 val[VIRTIO_BALLOON_STAT_TAGS], u32 valid,
 * u32 unknown.
 */
#include <errno.h>

#include "virtio/balloon_internal.h"
#include "virtio/mmio.h"

#define BALLOON_STATE_VERSION 1u

static void put_info(const struct virtio_balloon_info *i, struct state_buf *out)
{
	state_put_u64(out, i->inflated_pages);
	state_put_u64(out, i->deflated_pages);
	state_put_u64(out, i->discarded_bytes);
	state_put_u64(out, i->reported_bytes);
	state_put_u64(out, i->bad_requests);
	state_put_u64(out, i->discard_errors);
	state_put_u64(out, i->stats_updates);
	for (unsigned tag = 0; tag < VIRTIO_BALLOON_STAT_TAGS; tag++)
		state_put_u64(out, i->stats.val[tag]);
	state_put_u32(out, i->stats.valid);
	state_put_u32(out, i->stats.unknown);
}

void virtio_balloon_save(void *dev, struct virtio_mmio *t,
			 struct state_buf *out)
{
	struct virtio_balloon *b = dev;
	struct virtio_balloon_info info;

	(void)t;
	pthread_mutex_lock(&b->lock);
	info = b->info;
	pthread_mutex_unlock(&b->lock);
	state_put_u32(out, BALLOON_STATE_VERSION);
	state_put_u32(out, __atomic_load_n(&b->target, __ATOMIC_SEQ_CST));
	state_put_u32(out, __atomic_load_n(&b->actual, __ATOMIC_SEQ_CST));
	state_put_bool(out, b->stats_held);
	/* the statistics queue is always queue 2 (balloon.h) */
	state_put_u16(out, b->stats_held ? VIRTIO_BALLOON_Q_STATS : 0);
	state_put_u16(out, b->stats_held ? b->stats_head : 0);
	put_info(&info, out);
}

static void get_info(struct virtio_balloon_info *i, struct state_reader *in)
{
	unsigned unknown;

	state_get_u64(in, &i->inflated_pages);
	state_get_u64(in, &i->deflated_pages);
	state_get_u64(in, &i->discarded_bytes);
	state_get_u64(in, &i->reported_bytes);
	state_get_u64(in, &i->bad_requests);
	state_get_u64(in, &i->discard_errors);
	state_get_u64(in, &i->stats_updates);
	for (unsigned tag = 0; tag < VIRTIO_BALLOON_STAT_TAGS; tag++)
		state_get_u64(in, &i->stats.val[tag]);
	state_get_u32(in, &i->stats.valid);
	state_get_u32(in, &unknown);
	i->stats.unknown = unknown;
}

/* A held statistics buffer must be one the driver can have given: on
 * the statistics queue, which it set up, and the one chain of that
 * queue the device has not returned. */
static int check_held(struct virtio_mmio *t, uint16_t q, uint16_t head,
		      struct errmsg *err)
{
	uint64_t f = virtio_mmio_driver_features_locked(t);
	struct virtq *vq = virtio_mmio_queue_locked(t, q);

	if (q != VIRTIO_BALLOON_Q_STATS || !(f & (1ull << VIRTIO_BALLOON_F_STATS_VQ)))
		return errmsg_set(err, -EBADMSG,
				  "statistics buffer held on queue %u, which is "
				  "not the statistics queue", q);
	if (!vq->ready || head >= vq->layout.size ||
	    (uint16_t)(vq->last_avail - vq->used_idx) != 1)
		return errmsg_set(err, -EBADMSG,
				  "statistics buffer %u held, but the statistics "
				  "queue (size %u, %s) has %u chains out", head,
				  vq->layout.size, vq->ready ? "ready" : "not ready",
				  (uint16_t)(vq->last_avail - vq->used_idx));
	return 0;
}

int virtio_balloon_load(void *dev, struct virtio_mmio *t,
			struct state_reader *in, struct errmsg *err)
{
	struct virtio_balloon *b = dev;
	struct virtio_balloon_info info = { 0 };
	uint32_t target, actual;
	uint16_t q, head;
	bool held;
	int ret = virtio_state_version(in, BALLOON_STATE_VERSION, err);

	if (ret)
		return ret;
	state_get_u32(in, &target);
	state_get_u32(in, &actual);
	state_get_bool(in, &held);
	state_get_u16(in, &q);
	state_get_u16(in, &head);
	get_info(&info, in);
	ret = virtio_state_end(in, err);
	if (ret)
		return ret;
	if (target > virtio_balloon_ram_pages(b))
		return errmsg_set(err, -EINVAL,
				  "target of %u pages, guest RAM has %llu", target,
				  (unsigned long long)virtio_balloon_ram_pages(b));
	if (info.stats.valid >> VIRTIO_BALLOON_STAT_TAGS)
		return errmsg_set(err, -EBADMSG, "statistics mask %#x has unknown tags",
				  info.stats.valid);
	ret = held ? check_held(t, q, head, err) : 0;
	if (ret)
		return ret;
	__atomic_store_n(&b->target, target, __ATOMIC_SEQ_CST);
	__atomic_store_n(&b->actual, actual, __ATOMIC_SEQ_CST);
	b->stats_held = held;
	b->stats_vq = held ? virtio_mmio_queue_locked(t, q) : NULL;
	b->stats_head = head;
	pthread_mutex_lock(&b->lock);
	b->info = info;
	pthread_mutex_unlock(&b->lock);
	return 0;
}
