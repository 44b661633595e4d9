/* SPDX-License-Identifier: MIT */
/*
 * virtio-net driver (virtio 1.2 section 5.1): receive queue 0, transmit
 * queue 1, no control queue, polled.
 *
 * Every frame on either queue is preceded by the 12-byte struct
 * virtio_net_hdr (VERSION_1 always uses the 12-byte form, num_buffers
 * included).  The driver puts header and frame in one buffer on both
 * queues (VERSION_1 allows any descriptor layout, 5.1.6.6).
 *
 * Receive: the queue is filled at init with single-descriptor,
 * device-writable buffers of rx_buf_size bytes each.  With MRG_RXBUF a
 * frame may span num_buffers consecutive used entries (only the first
 * carries the header); without it each buffer must hold a whole frame
 * plus header, so rx_buf_size is then at least VIRTIO_NET_RX_MIN_FULL.
 * virtio_net_recv() copies a frame out, gives its buffers back to the
 * device at once, and completes a partial checksum (NEEDS_CSUM, only
 * possible with GUEST_CSUM) in software, so callers always get frames
 * with valid checksums whatever was negotiated.
 *
 * Transmit: virtio_net_send() copies the frame into one of the driver's
 * slots (header + frame) and returns once it is queued; completed slots
 * are reclaimed as needed.  A checksum request (csum_start/csum_offset)
 * is handed to the device when CSUM was negotiated and computed here
 * otherwise; a GSO request is refused (-VIRTIO_EINVAL) unless the
 * matching HOST_TSO feature was negotiated.
 *
 * Functions return 0 or a negative VIRTIO_E* code (guest/virtio_mmio.h).
 */
#ifndef GUEST_VIRTIO_NET_H
#define GUEST_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/virtqueue.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM		0	/* device completes TX csums */
#define VIRTIO_NET_F_GUEST_CSUM		1	/* driver takes partial RX csums */
#define VIRTIO_NET_F_MTU		3
#define VIRTIO_NET_F_MAC		5
#define VIRTIO_NET_F_GUEST_TSO4		7
#define VIRTIO_NET_F_GUEST_TSO6		8
#define VIRTIO_NET_F_HOST_TSO4		11	/* device segments TCPv4 */
#define VIRTIO_NET_F_HOST_TSO6		12
#define VIRTIO_NET_F_MRG_RXBUF		15
#define VIRTIO_NET_F_STATUS		16
#define VIRTIO_NET_F_CTRL_VQ		17

/* Configuration layout (byte offsets). */
#define VIRTIO_NET_CFG_MAC		0	/* u8[6] */
#define VIRTIO_NET_CFG_STATUS		6	/* le16, with F_STATUS */
#define VIRTIO_NET_CFG_MTU		10	/* le16, with F_MTU */

#define VIRTIO_NET_S_LINK_UP		1

/* virtio_net_hdr.flags */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM	1
#define VIRTIO_NET_HDR_F_DATA_VALID	2

/* virtio_net_hdr.gso_type */
#define VIRTIO_NET_HDR_GSO_NONE		0
#define VIRTIO_NET_HDR_GSO_TCPV4	1
#define VIRTIO_NET_HDR_GSO_TCPV6	4

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;	/* length of the headers to copy per segment */
	uint16_t gso_size;	/* payload bytes per segment */
	uint16_t csum_start;	/* checksum from here to the end ... */
	uint16_t csum_offset;	/* ... stored at csum_start + this */
	uint16_t num_buffers;	/* RX with MRG_RXBUF: used entries taken */
} __attribute__((packed));

#define VIRTIO_NET_HDR_SIZE		12
#define ETH_ALEN			6
#define ETH_HLEN			14
#define ETH_ZLEN			60	/* shortest frame, without FCS */
#define ETH_FRAME_MAX			1514	/* MTU 1500 + header */

/* Queues, buffers and sizes. */
#define VIRTIO_NET_RX_QUEUE		0
#define VIRTIO_NET_TX_QUEUE		1
#define VIRTIO_NET_RX_MIN_FULL		(VIRTIO_NET_HDR_SIZE + ETH_FRAME_MAX)
#define VIRTIO_NET_RX_BUF_MAX		2048	/* bytes per RX buffer */
#define VIRTIO_NET_RX_BUF_MIN		64	/* with MRG_RXBUF */
#define VIRTIO_NET_RX_BUFS		VQ_MAX_SIZE
#define VIRTIO_NET_TX_SLOTS		128
#define VIRTIO_NET_TX_FRAME_MAX		(2048 - VIRTIO_NET_HDR_SIZE)
#define VIRTIO_NET_RX_FRAME_MAX		16384	/* what recv() reassembles */

/* Offloads asked for at init: masks of the VIRTIO_NET_F_* bits above. */
#define VIRTIO_NET_OFFLOADS	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) |	\
				 VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |	\
				 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |	\
				 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6))

struct virtio_net_init_opts {
	bool mrg_rxbuf;		/* ask for MRG_RXBUF */
	bool offloads;		/* ask for VIRTIO_NET_OFFLOADS */
	/* Bytes per RX buffer, header included (0: VIRTIO_NET_RX_BUF_MAX).
	 * Below VIRTIO_NET_RX_MIN_FULL only if MRG_RXBUF is negotiated;
	 * init fails otherwise. */
	unsigned int rx_buf_size;
};

/* A transmit request beyond "send these bytes". */
struct virtio_net_tx_opts {
	bool csum;		/* fill in the checksum described below */
	uint16_t csum_start;
	uint16_t csum_offset;
	uint8_t gso_type;	/* VIRTIO_NET_HDR_GSO_*, needs HOST_TSO* */
	uint16_t gso_size;
	uint16_t hdr_len;
};

struct virtio_net_tx_slot {
	uint8_t buf[VIRTIO_NET_HDR_SIZE + VIRTIO_NET_TX_FRAME_MAX];
	bool busy;
} __attribute__((aligned(64)));

struct virtio_net {
	struct virtio_dev *dev;
	struct virtqueue rx, tx;
	uint8_t mac[ETH_ALEN];
	bool mrg_rxbuf, csum, guest_csum, host_tso4, host_tso6;
	unsigned int rx_buf_size;
	unsigned int nr_rx_bufs;
	unsigned int next_tx;
	/* Statistics. */
	uint64_t rx_frames, rx_merged, rx_bufs_max, rx_csum_completed;
	uint64_t tx_frames, tx_csum_sw;
};

/* Initialises the @nth network device found on the command line. */
int virtio_net_init(struct virtio_net *n, const struct cmdline *c,
		    unsigned int nth, const struct virtio_net_init_opts *o);

/* Queues @frame (@len bytes, Ethernet header first) and notifies the
 * device.  @opts may be NULL.  -VIRTIO_ENOSPC if every slot is still in
 * flight after @timeout_ns. */
int virtio_net_send(struct virtio_net *n, const void *frame, uint32_t len,
		    const struct virtio_net_tx_opts *opts, uint64_t timeout_ns);

/* Reclaims transmitted slots; returns how many are still in flight. */
unsigned int virtio_net_tx_reap(struct virtio_net *n);

/* Waits up to @timeout_ns for the next frame and copies it into @buf
 * (@cap bytes): 0 with its length in @len and the number of RX buffers
 * it came in through in @nbufs (may be NULL), -VIRTIO_ETIMEDOUT, or
 * -VIRTIO_EIO for a malformed completion or a frame larger than @cap
 * (the frame is dropped, its buffers are reposted). */
int virtio_net_recv(struct virtio_net *n, void *buf, uint32_t cap,
		    uint32_t *len, unsigned int *nbufs, uint64_t timeout_ns);

/* The Internet checksum (RFC 1071) of @len bytes, folded, not inverted,
 * starting from @sum. */
uint16_t inet_csum_partial(const void *data, uint32_t len, uint32_t sum);

#endif
