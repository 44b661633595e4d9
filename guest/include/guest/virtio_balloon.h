/* SPDX-License-Identifier: MIT */
/*
 * virtio-balloon driver (virtio 1.2 section 5.5), polled.
 *
 * Queues, by index: 0 inflateq, 1 deflateq, then statsq if the device
 * offers STATS_VQ, free_page_vq if it offers FREE_PAGE_HINT (never used
 * here), then reporting_vq if it offers PAGE_REPORTING.  Indexes follow
 * what the device offers, not what is negotiated: that is how QEMU
 * numbers them, and Linux (which negotiates everything offered) agrees.
 *
 * Inflate and deflate requests are one device-readable buffer of up to
 * VIRTIO_BALLOON_PFNS_PER_REQ little-endian 32-bit page frame numbers
 * (4 KiB pages whatever the guest page size); the call returns once the
 * device has used the buffer.  Inflated pages must not be touched until
 * deflated (MUST_TELL_HOST or not, the driver always tells first).
 * The driver never writes `actual' on its own: the caller does, after
 * the pages moved.
 *
 * Statistics: one buffer of struct virtio_balloon_stat entries is
 * posted at init; the device returns it (used, 0 bytes) when it wants
 * fresh figures, and virtio_balloon_poll_stats() refills and reposts
 * it.  Free page reporting: device-writable buffers, one per run of
 * contiguous free pages; the device may discard their contents, so the
 * pages read back as anything (zeroes on QEMU) once the request is used.
 *
 * Functions return 0 or a negative VIRTIO_E* code (guest/virtio_mmio.h).
 */
#ifndef GUEST_VIRTIO_BALLOON_H
#define GUEST_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/virtqueue.h"

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST		0
#define VIRTIO_BALLOON_F_STATS_VQ		1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM		2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT		3
#define VIRTIO_BALLOON_F_PAGE_POISON		4
#define VIRTIO_BALLOON_F_PAGE_REPORTING		5

/* Configuration layout (byte offsets, le32). */
#define VIRTIO_BALLOON_CFG_NUM_PAGES	0	/* target, set by the device */
#define VIRTIO_BALLOON_CFG_ACTUAL	4	/* pages in the balloon, ours */

/* Statistics tags (5.5.6.3). */
#define VIRTIO_BALLOON_S_SWAP_IN	0
#define VIRTIO_BALLOON_S_SWAP_OUT	1
#define VIRTIO_BALLOON_S_MAJFLT		2
#define VIRTIO_BALLOON_S_MINFLT		3
#define VIRTIO_BALLOON_S_MEMFREE	4	/* bytes */
#define VIRTIO_BALLOON_S_MEMTOT		5	/* bytes */
#define VIRTIO_BALLOON_S_AVAIL		6	/* bytes */
#define VIRTIO_BALLOON_S_CACHES		7	/* bytes */
#define VIRTIO_BALLOON_S_HTLB_PGALLOC	8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL	9
#define VIRTIO_BALLOON_S_NR		10

#define VIRTIO_BALLOON_PFN_SHIFT	12
#define VIRTIO_BALLOON_PFNS_PER_REQ	256
#define VIRTIO_BALLOON_REPORT_BUFS	VQ_MAX_CHAIN	/* runs per request */

struct virtio_balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

struct virtio_balloon {
	struct virtio_dev *dev;
	struct virtqueue inflateq, deflateq, statsq, reportq;
	bool stats_vq, reporting, deflate_on_oom, must_tell_host;
	uint32_t pfns[VIRTIO_BALLOON_PFNS_PER_REQ];
	/* Values reported on the next stats request, by tag. */
	uint64_t stat_val[VIRTIO_BALLOON_S_NR];
	uint16_t stat_set;		/* bit per tag with a value */
	struct virtio_balloon_stat stats[VIRTIO_BALLOON_S_NR];
	bool stats_posted;
	uint64_t stats_requests;	/* buffers the device took back */
	uint64_t inflate_reqs, deflate_reqs, report_reqs;
};

/* Initialises the @nth balloon device, acknowledging DEFLATE_ON_OOM,
 * STATS_VQ and PAGE_REPORTING when offered.  Set the statistics with
 * virtio_balloon_set_stat() first: the first stats buffer is posted
 * here. */
int virtio_balloon_init(struct virtio_balloon *b, const struct cmdline *c,
			unsigned int nth);

void virtio_balloon_set_stat(struct virtio_balloon *b, uint16_t tag,
			     uint64_t val);

/* num_pages: how many pages the device wants in the balloon. */
uint32_t virtio_balloon_target(struct virtio_balloon *b);

/* Writes `actual'. */
void virtio_balloon_set_actual(struct virtio_balloon *b, uint32_t pages);

/* Gives @n (<= VIRTIO_BALLOON_PFNS_PER_REQ) pages to the device, or
 * takes them back; returns once the device used the request. */
int virtio_balloon_inflate(struct virtio_balloon *b, const uint64_t *addrs,
			   unsigned int n);
int virtio_balloon_deflate(struct virtio_balloon *b, const uint64_t *addrs,
			   unsigned int n);

/* Answers a pending stats request with the current values: 1 if there
 * was one, 0 if not, or a negative error. */
int virtio_balloon_poll_stats(struct virtio_balloon *b);

/* Reports @n (<= VIRTIO_BALLOON_REPORT_BUFS) runs of free pages
 * (page-aligned address and length in bytes); returns once the device
 * used them. */
int virtio_balloon_report(struct virtio_balloon *b, const uint64_t *addrs,
			  const uint32_t *lens, unsigned int n);

#endif
