// SPDX-License-Identifier: MIT
/*
 * virtio-net's frame handling that depends on guest memory and the ring
 * alone, not on the TAP or the transport: what a header may ask for
 * under the negotiated features, where a received frame goes in the
 * driver's buffers, how a transmitted chain is gathered for writev().
 * It sees every byte the guest controls, so it is kept pure to be
 * unit-tested and fuzzed (tests/fuzz/fuzz_virtio_net.c) without a
 * device; net.c calls it with the transport's lock held.
 */
#include <errno.h>
#include <string.h>

#include "util/le.h"
#include "virtio/net.h"

/* Each offload has a bit per direction: what the guest may receive
 * (GUEST_*) and what it may send (HOST_* and plain CSUM). */
static uint64_t direction_bit(bool to_guest, unsigned guest_bit,
			      unsigned host_bit)
{
	return 1ull << (to_guest ? guest_bit : host_bit);
}

bool virtio_net_hdr_allowed(const uint8_t hdr[VIRTIO_NET_HDR_SIZE],
			    uint32_t frame_len, uint64_t features,
			    bool to_guest)
{
	uint8_t flags = hdr[VIRTIO_NET_HDR_FLAGS];
	uint8_t gso = hdr[VIRTIO_NET_HDR_GSO_TYPE];
	uint8_t known = VIRTIO_NET_HDR_F_NEEDS_CSUM |
			(to_guest ? VIRTIO_NET_HDR_F_DATA_VALID : 0);
	uint64_t csum = direction_bit(to_guest, VIRTIO_NET_F_GUEST_CSUM,
				      VIRTIO_NET_F_CSUM);
	uint64_t tso4 = direction_bit(to_guest, VIRTIO_NET_F_GUEST_TSO4,
				      VIRTIO_NET_F_HOST_TSO4);
	uint64_t tso6 = direction_bit(to_guest, VIRTIO_NET_F_GUEST_TSO6,
				      VIRTIO_NET_F_HOST_TSO6);
	uint64_t ecn = direction_bit(to_guest, VIRTIO_NET_F_GUEST_ECN,
				     VIRTIO_NET_F_HOST_ECN);

	if (flags & ~known)
		return false;
	if ((flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) &&
	    !(features & csum))
		return false;
	if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (uint32_t)get_le16(hdr + VIRTIO_NET_HDR_CSUM_START) +
	    get_le16(hdr + VIRTIO_NET_HDR_CSUM_OFFSET) + 2 > frame_len)
		return false;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !(features & ecn))
		return false;
	if (get_le16(hdr + VIRTIO_NET_HDR_GSO_SIZE) == 0)
		return false;
	switch (gso & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return features & tso4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return features & tso6;
	}
	return false;	/* UFO and unknown types: never offered */
}

/*
 * Copies @len bytes (<= c->writable) into the writable segments of @c.
 * @nb (may be NULL) receives where bytes VIRTIO_NET_HDR_NUM_BUFFERS and
 * the next one landed: the header may be split across segments.
 */
static void copy_to_chain(const struct virtq_chain *c, const uint8_t *src,
			  uint32_t len, uint8_t *nb[2])
{
	uint32_t pos = 0;

	for (unsigned i = 0; i < c->nsegs && pos < len; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint32_t take = len - pos < s->len ? len - pos : s->len;

		for (unsigned b = 0; nb && b < 2; b++) {
			uint32_t at = VIRTIO_NET_HDR_NUM_BUFFERS + b;

			if (at >= pos && at < pos + s->len)
				nb[b] = s->ptr + (at - pos);
		}
		memcpy(s->ptr, src + pos, take);
		pos += take;
	}
}

int virtio_net_rx_place(struct virtq *vq, struct virtq_chain *chain,
			const uint8_t *pkt, uint32_t len, bool mergeable,
			unsigned *nbufs)
{
	struct virtq_used_elem used[VIRTQ_MAX_SIZE];
	uint8_t *nb[2] = { NULL, NULL };
	uint32_t off = 0, take;
	uint16_t n = 0;
	int r;

	if (nbufs)
		*nbufs = 0;
	if (len < VIRTIO_NET_HDR_SIZE || len > VIRTIO_NET_PACKET_MAX)
		return VIRTIO_NET_RX_DROP;
	while (off < len) {
		/* every buffer the ring can hold would not be enough */
		if (n == vq->layout.size) {
			virtq_unpop(vq, n);
			return VIRTIO_NET_RX_DROP;
		}
		r = virtq_pop(vq, chain);
		if (r < 0)
			return -EIO;
		if (r == 0) {
			virtq_unpop(vq, n);
			return VIRTIO_NET_RX_NO_ROOM;
		}
		/* §5.1.6.3.1: receive buffers are device-writable and hold
		 * at least a header each */
		if (chain->readable || chain->writable < VIRTIO_NET_HDR_SIZE) {
			virtq_set_broken(vq, VIRTQ_ERR_DEVICE);
			return -EIO;
		}
		if (!mergeable && chain->writable < len) {
			/* leave the buffer for a frame it can hold */
			virtq_unpop(vq, 1);
			return VIRTIO_NET_RX_DROP;
		}
		take = len - off < chain->writable ? len - off : chain->writable;
		copy_to_chain(chain, pkt + off, take, n ? NULL : nb);
		used[n] = (struct virtq_used_elem){ .id = chain->head,
						     .len = take };
		n++;
		off += take;
	}
	/* num_buffers is ours to write (the TAP leaves those bytes alone);
	 * it is 1 without MRG_RXBUF (§5.1.6.4) */
	nb[0][0] = (uint8_t)n;
	nb[1][0] = (uint8_t)(n >> 8);
	virtq_push_n(vq, used, n);
	if (nbufs)
		*nbufs = n;
	return VIRTIO_NET_RX_PLACED;
}

int virtio_net_tx_gather(const struct virtq_chain *c,
			 uint8_t hdr[VIRTIO_NET_HDR_SIZE], struct iovec *iov,
			 unsigned max_iov, uint8_t *bounce)
{
	uint32_t hdr_got = 0, copied = 0;
	unsigned n = 1, pieces = 0;

	if (c->writable || c->readable < VIRTIO_NET_HDR_SIZE ||
	    c->readable > VIRTIO_NET_PACKET_MAX || max_iov < 2)
		return -EINVAL;
	for (unsigned i = 0; i < c->nsegs; i++) {
		uint32_t skip = VIRTIO_NET_HDR_SIZE - hdr_got;

		if (skip > c->segs[i].len)
			skip = c->segs[i].len;
		hdr_got += skip;
		if (c->segs[i].len > skip)
			pieces++;
	}
	hdr_got = 0;
	for (unsigned i = 0; i < c->nsegs; i++) {
		const struct virtq_seg *s = &c->segs[i];
		uint32_t skip = VIRTIO_NET_HDR_SIZE - hdr_got;

		if (skip > s->len)
			skip = s->len;
		/* a copy: the guest may rewrite the header after the check */
		memcpy(hdr + hdr_got, s->ptr, skip);
		hdr_got += skip;
		if (s->len == skip)
			continue;
		if (pieces < max_iov) {
			iov[n++] = (struct iovec){ s->ptr + skip, s->len - skip };
		} else {
			memcpy(bounce + copied, s->ptr + skip, s->len - skip);
			copied += s->len - skip;
		}
	}
	if (pieces >= max_iov)
		iov[n++] = (struct iovec){ bounce, copied };
	iov[0] = (struct iovec){ hdr, VIRTIO_NET_HDR_SIZE };
	return (int)n;
}
