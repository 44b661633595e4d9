/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (virtio 1.2 §5.1) on a host TAP device.
 *
 * Queues: receive (0) and transmit (1), no control queue.  Config: the
 * MAC and the link status (always up).  Every frame on either queue is
 * preceded by the 12-byte struct virtio_net_hdr (VERSION_1 always has
 * num_buffers).  The TAP is opened with IFF_VNET_HDR and a 12-byte vnet
 * header, so the guest's header is the TAP's: checksum and TSO offloads
 * pass through to the host kernel without rackvm touching the frames.
 *
 * Offloads: HOST_* (the guest sends partial checksums / TSO frames) are
 * offered when the TAP takes a vnet header, which is what makes the
 * kernel finish them; GUEST_* (the guest takes them) only if the TAP
 * accepts the matching TUNSETOFFLOAD, which is set from what the driver
 * negotiated before the first frame is received, and reset to none on a
 * device reset.  Every header is checked against the negotiated
 * features in both directions; a frame that does not match is dropped
 * and counted (a frame the kernel queued before a renegotiation, a
 * driver sending TSO it did not negotiate).
 *
 * Receive placement is a pure function of the queue and the frame
 * (virtio_net_rx_place, fuzzed): one buffer per frame, or with
 * MRG_RXBUF as many as it takes, all published with one used->idx
 * store.  A frame that finds too few buffers stays pending and the TAP
 * is not read again until the driver kicks the receive queue.
 */
#ifndef RACKVM_VIRTIO_NET_H
#define RACKVM_VIRTIO_NET_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/errmsg.h"
#include "virtio/virtqueue.h"
#include "vm/vm.h"

/* Feature bits (§5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* Config space (§5.1.4) */
#define VIRTIO_NET_CFG_MAC 0
#define VIRTIO_NET_CFG_STATUS 6
#define VIRTIO_NET_CONFIG_SIZE 8
#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr (§5.1.6), little-endian fields at these offsets */
#define VIRTIO_NET_HDR_SIZE 12
#define VIRTIO_NET_HDR_FLAGS 0
#define VIRTIO_NET_HDR_GSO_TYPE 1
#define VIRTIO_NET_HDR_HDR_LEN 2
#define VIRTIO_NET_HDR_GSO_SIZE 4
#define VIRTIO_NET_HDR_CSUM_START 6
#define VIRTIO_NET_HDR_CSUM_OFFSET 8
#define VIRTIO_NET_HDR_NUM_BUFFERS 10

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

#define VIRTIO_NET_RX_QUEUE 0
#define VIRTIO_NET_TX_QUEUE 1
/* The largest frame either way: a 64 KiB GSO frame and its Ethernet
 * header (65536 + 14).  A TX chain longer than this plus the header is
 * malformed. */
#define VIRTIO_NET_FRAME_MAX 65550u
#define VIRTIO_NET_PACKET_MAX (VIRTIO_NET_HDR_SIZE + VIRTIO_NET_FRAME_MAX)

#define ETH_ADDR_LEN 6

struct virtio_net_options {
	const char *tap;		/* host interface name */
	bool has_mac;
	uint8_t mac[ETH_ADDR_LEN];	/* default: virtio_net_default_mac() */
	bool no_offloads;		/* offer no checksum/TSO offloads */
};

/* "52:54:00:12:34:56" (hex pairs, ':' separated): -EINVAL otherwise, or
 * for a multicast address. */
int virtio_net_parse_mac(const char *text, uint8_t mac[ETH_ADDR_LEN]);
/* 52:54:00:72:6b:<index>: locally administered, stable per device. */
void virtio_net_default_mac(unsigned index, uint8_t mac[ETH_ADDR_LEN]);

/* virtio_net_rx_place() results */
#define VIRTIO_NET_RX_PLACED 1
#define VIRTIO_NET_RX_NO_ROOM 0		/* too few buffers yet: keep it */
#define VIRTIO_NET_RX_DROP (-EMSGSIZE)	/* can never fit: drop it */

/*
 * Pure (guest memory and the ring only): places @len bytes of @pkt (the
 * 12-byte header, then the frame; @len >= VIRTIO_NET_HDR_SIZE) into the
 * receive queue @vq, using @chain as scratch.  Without @mergeable: one
 * buffer that holds it all (a smaller one is left in the ring and the
 * frame dropped).  With it: consecutive buffers, each filled, num_buffers
 * written into the first.  The used entries are published together with
 * their exact lengths.  Returns VIRTIO_NET_RX_PLACED (with the count of
 * buffers in *@nbufs), _NO_ROOM (nothing consumed), _DROP (nothing
 * consumed), or -EIO if the queue is (now) broken: a buffer with
 * device-readable parts, an empty one, or a first one shorter than the
 * header.
 */
int virtio_net_rx_place(struct virtq *vq, struct virtq_chain *chain,
			const uint8_t *pkt, uint32_t len, bool mergeable,
			unsigned *nbufs);

/*
 * Pure: checks TX @chain (device-readable only, a header and at most
 * VIRTIO_NET_FRAME_MAX bytes) and gathers it for writev(): the header is
 * copied into @hdr (so that what is checked is what is sent), iov[0]
 * points at it and the frame follows in iov[1..].  If the frame needs
 * more than @max_iov - 1 entries it is copied into @bounce
 * (VIRTIO_NET_FRAME_MAX bytes).  Returns the number of iov entries, or
 * -EINVAL for a malformed chain (the queue is to be broken).
 */
int virtio_net_tx_gather(const struct virtq_chain *chain,
			 uint8_t hdr[VIRTIO_NET_HDR_SIZE], struct iovec *iov,
			 unsigned max_iov, uint8_t *bounce);
/*
 * Pure: may a frame of @frame_len bytes with header @hdr go out (TX,
 * @to_guest false) or in (RX, true) under the negotiated @features?
 * Checksum requests need (GUEST_)CSUM and must lie inside the frame,
 * GSO types need the matching TSO feature (and ECN); UFO is never
 * offered.
 */
bool virtio_net_hdr_allowed(const uint8_t hdr[VIRTIO_NET_HDR_SIZE],
			    uint32_t frame_len, uint64_t features,
			    bool to_guest);

struct virtio_net_stats {
	uint64_t tx_frames, tx_dropped, tx_errors;
	uint64_t rx_frames, rx_dropped, rx_merged, rx_stalls;
};

struct virtio_net;
struct virtio_mmio;

/* Opens the TAP and creates virtio-mmio device @index on it.  Errors
 * name the interface ("tap NAME: ...: errno text").  @out (may be NULL)
 * receives the device, which the VM owns, for tests. */
int virtio_net_create(struct vm *vm, unsigned index,
		      const struct virtio_net_options *opt,
		      struct virtio_net **out, struct errmsg *err);
/* Counters so far (any thread). */
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s);
/* The device's transport (tests drive its registers). */
struct virtio_mmio *virtio_net_transport(struct virtio_net *n);

#endif
