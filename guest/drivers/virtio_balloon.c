// SPDX-License-Identifier: MIT
/* virtio-balloon driver (guest/virtio_balloon.h). */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/virtio_balloon.h"

#define BALLOON_TIMEOUT_NS (10 * NSEC_PER_SEC)

#define INFLATE_QUEUE	0
#define DEFLATE_QUEUE	1

_Static_assert(sizeof(struct virtio_balloon_stat) == 10, "stat layout");

void virtio_balloon_set_stat(struct virtio_balloon *b, uint16_t tag,
			     uint64_t val)
{
	if (tag >= VIRTIO_BALLOON_S_NR)
		return;
	b->stat_val[tag] = val;
	b->stat_set |= 1u << tag;
}

static int post_stats(struct virtio_balloon *b)
{
	struct vq_buf buf;
	unsigned int tag, n = 0;
	int err;

	for (tag = 0; tag < VIRTIO_BALLOON_S_NR; tag++) {
		if (!(b->stat_set & (1u << tag)))
			continue;
		b->stats[n].tag = tag;
		b->stats[n].val = b->stat_val[tag];
		n++;
	}
	/* An empty buffer would be a malformed request: report at least
	 * one (zero) figure. */
	if (!n) {
		b->stats[0].tag = VIRTIO_BALLOON_S_SWAP_IN;
		b->stats[0].val = 0;
		n = 1;
	}
	buf = (struct vq_buf){ (uintptr_t)b->stats, n * sizeof(b->stats[0]),
			       false };
	err = vq_add(&b->statsq, &buf, 1, b->stats);
	if (err)
		return err;
	vq_kick(&b->statsq);
	b->stats_posted = true;
	return 0;
}

int virtio_balloon_init(struct virtio_balloon *b, const struct cmdline *c,
			unsigned int nth)
{
	uint64_t wanted = VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			  VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			  VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING);
	unsigned int next_queue = DEFLATE_QUEUE + 1;
	uint64_t saved_val[VIRTIO_BALLOON_S_NR];
	uint16_t saved_set = b->stat_set;
	struct virtio_dev *d;
	int err;

	memcpy(saved_val, b->stat_val, sizeof(saved_val));
	memset(b, 0, sizeof(*b));
	memcpy(b->stat_val, saved_val, sizeof(saved_val));
	b->stat_set = saved_set;
	virtio_mmio_discover(c);
	d = virtio_find(VIRTIO_ID_BALLOON, nth);
	if (!d) {
		uart_printf("virtio-balloon: no balloon device %u on the "
			    "command line\n", nth);
		return -VIRTIO_ENODEV;
	}
	err = virtio_dev_init(d, wanted, 0);
	if (err)
		return err;
	b->dev = d;
	b->must_tell_host = virtio_has_feature(d,
					VIRTIO_BALLOON_F_MUST_TELL_HOST);
	b->deflate_on_oom = virtio_has_feature(d,
					VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	b->stats_vq = virtio_has_feature(d, VIRTIO_BALLOON_F_STATS_VQ);
	b->reporting = virtio_has_feature(d, VIRTIO_BALLOON_F_PAGE_REPORTING);

	err = vq_setup(&b->inflateq, d, INFLATE_QUEUE, 16);
	if (!err)
		err = vq_setup(&b->deflateq, d, DEFLATE_QUEUE, 16);
	if (err)
		return err;
	/* See the header: numbered by what the device offers. */
	if (d->device_features & VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ)) {
		if (b->stats_vq) {
			err = vq_setup(&b->statsq, d, next_queue, 2);
			if (err)
				return err;
		}
		next_queue++;
	}
	if (d->device_features & VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		next_queue++;
	if (b->reporting) {
		err = vq_setup(&b->reportq, d, next_queue, 16);
		if (err)
			return err;
	}
	virtio_driver_ok(d);
	/* The device learns that the driver has statistics from the first
	 * buffer (5.5.6.3): post it now. */
	if (b->stats_vq)
		return post_stats(b);
	return 0;
}

uint32_t virtio_balloon_target(struct virtio_balloon *b)
{
	uint32_t v;

	virtio_config_read(b->dev, VIRTIO_BALLOON_CFG_NUM_PAGES, &v, 4);
	return v;
}

void virtio_balloon_set_actual(struct virtio_balloon *b, uint32_t pages)
{
	virtio_write32(b->dev, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL,
		       pages);
}

static int pfn_request(struct virtio_balloon *b, struct virtqueue *vq,
		       const uint64_t *addrs, unsigned int n)
{
	struct vq_buf buf;
	unsigned int i;

	if (n == 0 || n > VIRTIO_BALLOON_PFNS_PER_REQ)
		return -VIRTIO_EINVAL;
	for (i = 0; i < n; i++) {
		if ((addrs[i] & ((1ull << VIRTIO_BALLOON_PFN_SHIFT) - 1)) ||
		    (addrs[i] >> VIRTIO_BALLOON_PFN_SHIFT) > UINT32_MAX)
			return -VIRTIO_EINVAL;
		b->pfns[i] = addrs[i] >> VIRTIO_BALLOON_PFN_SHIFT;
	}
	buf = (struct vq_buf){ (uintptr_t)b->pfns, n * sizeof(b->pfns[0]),
			       false };
	return vq_exec(vq, &buf, 1, NULL, BALLOON_TIMEOUT_NS);
}

int virtio_balloon_inflate(struct virtio_balloon *b, const uint64_t *addrs,
			   unsigned int n)
{
	b->inflate_reqs++;
	return pfn_request(b, &b->inflateq, addrs, n);
}

int virtio_balloon_deflate(struct virtio_balloon *b, const uint64_t *addrs,
			   unsigned int n)
{
	b->deflate_reqs++;
	return pfn_request(b, &b->deflateq, addrs, n);
}

int virtio_balloon_poll_stats(struct virtio_balloon *b)
{
	int err;

	if (!b->stats_vq)
		return 0;
	if (b->stats_posted) {
		if (!vq_get(&b->statsq, NULL))
			return 0;
		b->stats_posted = false;
		b->stats_requests++;
	}
	err = post_stats(b);
	return err ? err : 1;
}

int virtio_balloon_report(struct virtio_balloon *b, const uint64_t *addrs,
			  const uint32_t *lens, unsigned int n)
{
	struct vq_buf bufs[VIRTIO_BALLOON_REPORT_BUFS];
	unsigned int i;

	if (!b->reporting)
		return -VIRTIO_EFEATURES;
	if (n == 0 || n > VIRTIO_BALLOON_REPORT_BUFS)
		return -VIRTIO_EINVAL;
	for (i = 0; i < n; i++)
		bufs[i] = (struct vq_buf){ addrs[i], lens[i], true };
	b->report_reqs++;
	return vq_exec(&b->reportq, bufs, n, NULL, BALLOON_TIMEOUT_NS);
}
