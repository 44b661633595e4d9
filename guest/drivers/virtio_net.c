// SPDX-License-Identifier: MIT
/* virtio-net driver (guest/virtio_net.h). */
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/virtio_net.h"

_Static_assert(sizeof(struct virtio_net_hdr) == VIRTIO_NET_HDR_SIZE,
	       "virtio_net_hdr layout");

/* Receive buffers: one array carved into nr_rx_bufs buffers of
 * rx_buf_size bytes.  Only one device is driven at a time. */
static uint8_t rx_area[VIRTIO_NET_RX_BUFS * VIRTIO_NET_RX_BUF_MAX]
	__attribute__((aligned(4096)));
static struct virtio_net_tx_slot tx_slots[VIRTIO_NET_TX_SLOTS];

uint16_t inet_csum_partial(const void *data, uint32_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = sum;
	uint16_t w;

	/* Little-endian loads and stores give the right bytes: the
	 * one's-complement sum does not depend on byte order (RFC 1071). */
	for (; len >= 2; len -= 2, p += 2) {
		memcpy(&w, p, 2);
		acc += w;
	}
	if (len)
		acc += *p;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/* Completes the checksum a NEEDS_CSUM header describes: the field holds
 * the pseudo-header sum and is part of the summed range (5.1.6.2). */
static bool complete_csum(uint8_t *frame, uint32_t len, uint16_t start,
			  uint16_t offset)
{
	uint16_t c;

	if ((uint32_t)start + offset + 2 > len)
		return false;
	c = ~inet_csum_partial(frame + start, len - start, 0);
	memcpy(frame + start + offset, &c, 2);
	return true;
}

static int post_rx(struct virtio_net *n, uint8_t *buf)
{
	struct vq_buf b = { (uintptr_t)buf, n->rx_buf_size, true };

	return vq_add(&n->rx, &b, 1, buf);
}

int virtio_net_init(struct virtio_net *n, const struct cmdline *c,
		    unsigned int nth, const struct virtio_net_init_opts *o)
{
	uint64_t wanted = VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			  VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			  VIRTIO_BIT(VIRTIO_NET_F_MAC) |
			  VIRTIO_BIT(VIRTIO_NET_F_STATUS);
	struct virtio_dev *d;
	unsigned int i;
	int err;

	memset(n, 0, sizeof(*n));
	memset(tx_slots, 0, sizeof(tx_slots));
	virtio_mmio_discover(c);
	d = virtio_find(VIRTIO_ID_NET, nth);
	if (!d) {
		uart_printf("virtio-net: no network device %u on the command "
			    "line\n", nth);
		return -VIRTIO_ENODEV;
	}
	if (o->mrg_rxbuf)
		wanted |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (o->offloads)
		wanted |= VIRTIO_NET_OFFLOADS;
	err = virtio_dev_init(d, wanted, 0);
	if (err)
		return err;
	n->dev = d;
	n->mrg_rxbuf = virtio_has_feature(d, VIRTIO_NET_F_MRG_RXBUF);
	n->csum = virtio_has_feature(d, VIRTIO_NET_F_CSUM);
	n->guest_csum = virtio_has_feature(d, VIRTIO_NET_F_GUEST_CSUM);
	/* TSO without CSUM is not a valid combination (5.1.3.1); the
	 * device should have refused it, but do not rely on that. */
	n->host_tso4 = n->csum &&
		       virtio_has_feature(d, VIRTIO_NET_F_HOST_TSO4);
	n->host_tso6 = n->csum &&
		       virtio_has_feature(d, VIRTIO_NET_F_HOST_TSO6);

	n->rx_buf_size = o->rx_buf_size ? o->rx_buf_size
					: VIRTIO_NET_RX_BUF_MAX;
	if (n->rx_buf_size > VIRTIO_NET_RX_BUF_MAX ||
	    n->rx_buf_size < VIRTIO_NET_RX_BUF_MIN ||
	    (!n->mrg_rxbuf && n->rx_buf_size < VIRTIO_NET_RX_MIN_FULL)) {
		uart_printf("virtio-net: %u-byte receive buffers need "
			    "MRG_RXBUF (negotiated: %d) and %u..%u bytes\n",
			    n->rx_buf_size, n->mrg_rxbuf,
			    VIRTIO_NET_RX_BUF_MIN, VIRTIO_NET_RX_BUF_MAX);
		virtio_dev_reset(d);
		return -VIRTIO_EINVAL;
	}

	if (virtio_has_feature(d, VIRTIO_NET_F_MAC)) {
		virtio_config_read(d, VIRTIO_NET_CFG_MAC, n->mac, ETH_ALEN);
	} else {
		/* A locally administered address of our own. */
		static const uint8_t own[ETH_ALEN] = { 0x02, 0x72, 0x6b,
						       0x76, 0x6d, 0x01 };
		memcpy(n->mac, own, ETH_ALEN);
	}

	err = vq_setup(&n->rx, d, VIRTIO_NET_RX_QUEUE, 0);
	if (!err)
		err = vq_setup(&n->tx, d, VIRTIO_NET_TX_QUEUE,
			       VIRTIO_NET_TX_SLOTS);
	if (err)
		return err;
	/* Fill the receive queue before DRIVER_OK: a device may start
	 * receiving at once (5.1.5 step 4). */
	n->nr_rx_bufs = n->rx.size;
	for (i = 0; i < n->nr_rx_bufs; i++) {
		err = post_rx(n, rx_area + i * n->rx_buf_size);
		if (err)
			return err;
	}
	vq_kick(&n->rx);
	virtio_driver_ok(d);
	return 0;
}

unsigned int virtio_net_tx_reap(struct virtio_net *n)
{
	struct virtio_net_tx_slot *s;

	while ((s = vq_get(&n->tx, NULL)))
		s->busy = false;
	return vq_in_flight(&n->tx);
}

static int fill_tx_hdr(struct virtio_net *n, struct virtio_net_hdr *h,
		       uint8_t *frame, uint32_t len,
		       const struct virtio_net_tx_opts *o)
{
	memset(h, 0, sizeof(*h));
	if (!o)
		return 0;
	if (o->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		if (!o->csum || !o->gso_size ||
		    (o->gso_type == VIRTIO_NET_HDR_GSO_TCPV4 &&
		     !n->host_tso4) ||
		    (o->gso_type == VIRTIO_NET_HDR_GSO_TCPV6 &&
		     !n->host_tso6) ||
		    (o->gso_type != VIRTIO_NET_HDR_GSO_TCPV4 &&
		     o->gso_type != VIRTIO_NET_HDR_GSO_TCPV6))
			return -VIRTIO_EINVAL;
		h->gso_type = o->gso_type;
		h->gso_size = o->gso_size;
		h->hdr_len = o->hdr_len;
	}
	if (!o->csum)
		return 0;
	if ((uint32_t)o->csum_start + o->csum_offset + 2 > len)
		return -VIRTIO_EINVAL;
	if (n->csum) {
		h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->csum_start = o->csum_start;
		h->csum_offset = o->csum_offset;
		return 0;
	}
	/* The device will not do it: do it here, on our copy. */
	complete_csum(frame, len, o->csum_start, o->csum_offset);
	n->tx_csum_sw++;
	return 0;
}

int virtio_net_send(struct virtio_net *n, const void *frame, uint32_t len,
		    const struct virtio_net_tx_opts *opts, uint64_t timeout_ns)
{
	struct virtio_net_tx_slot *s;
	struct vq_buf b;
	uint64_t deadline = 0;
	int err;

	if (len < ETH_HLEN || len > VIRTIO_NET_TX_FRAME_MAX)
		return -VIRTIO_EINVAL;
	for (;;) {
		virtio_net_tx_reap(n);
		s = &tx_slots[n->next_tx];
		if (!s->busy && vq_room(&n->tx, 1))
			break;
		if (!deadline)
			deadline = rdtsc() + ns_to_tsc(timeout_ns);
		else if (rdtsc() > deadline)
			return virtio_needs_reset(n->dev) ? -VIRTIO_ERESET
							  : -VIRTIO_ENOSPC;
		cpu_relax();
	}
	memcpy(s->buf + VIRTIO_NET_HDR_SIZE, frame, len);
	err = fill_tx_hdr(n, (struct virtio_net_hdr *)s->buf,
			  s->buf + VIRTIO_NET_HDR_SIZE, len, opts);
	if (err)
		return err;
	b = (struct vq_buf){ (uintptr_t)s->buf, VIRTIO_NET_HDR_SIZE + len,
			     false };
	err = vq_add(&n->tx, &b, 1, s);
	if (err)
		return err;
	s->busy = true;
	n->next_tx = (n->next_tx + 1) % VIRTIO_NET_TX_SLOTS;
	vq_kick(&n->tx);
	n->tx_frames++;
	return 0;
}

/* Takes the next used RX buffer, waiting up to @timeout_ns; checks that
 * it is one of ours and that the device wrote no more than it holds. */
static int rx_take(struct virtio_net *n, uint8_t **buf, uint32_t *len,
		   uint64_t timeout_ns)
{
	uintptr_t start = (uintptr_t)rx_area;
	int err = 0;

	*buf = vq_wait(&n->rx, len, timeout_ns, &err);
	if (!*buf)
		return err;
	if ((uintptr_t)*buf < start ||
	    ((uintptr_t)*buf - start) % n->rx_buf_size ||
	    *len > n->rx_buf_size) {
		uart_printf("virtio-net: bad RX completion (%u bytes)\n",
			    *len);
		return -VIRTIO_EIO;
	}
	return 0;
}

int virtio_net_recv(struct virtio_net *n, void *out, uint32_t cap,
		    uint32_t *len, unsigned int *nbufs, uint64_t timeout_ns)
{
	struct virtio_net_hdr h;
	uint32_t got, total = 0, piece;
	unsigned int want, i;
	uint8_t *buf, *dst = out;
	bool too_big = false;
	int err;

	err = rx_take(n, &buf, &got, timeout_ns);
	if (err)
		return err;
	if (got < VIRTIO_NET_HDR_SIZE) {
		uart_printf("virtio-net: RX completion of %u bytes, shorter "
			    "than the header\n", got);
		post_rx(n, buf);
		vq_kick(&n->rx);
		return -VIRTIO_EIO;
	}
	memcpy(&h, buf, sizeof(h));
	/* Without MRG_RXBUF the field is there but means nothing. */
	want = n->mrg_rxbuf ? h.num_buffers : 1;
	if (want == 0 || want > n->nr_rx_bufs) {
		uart_printf("virtio-net: num_buffers %u (of %u posted)\n",
			    want, n->nr_rx_bufs);
		post_rx(n, buf);
		vq_kick(&n->rx);
		return -VIRTIO_EIO;
	}
	piece = got - VIRTIO_NET_HDR_SIZE;
	for (i = 0;;) {
		if (total + piece > cap)
			too_big = true;
		else
			memcpy(dst + total, i ? buf : buf + VIRTIO_NET_HDR_SIZE,
			       piece);
		total += piece;
		/* Back to the device right away: the copy is ours. */
		post_rx(n, buf);
		if (++i == want)
			break;
		/* The rest of a merged frame is published with its first
		 * buffer; waiting is only for a slow device. */
		err = rx_take(n, &buf, &piece, timeout_ns);
		if (err) {
			vq_kick(&n->rx);
			return err == -VIRTIO_ETIMEDOUT ? -VIRTIO_EIO : err;
		}
	}
	vq_kick(&n->rx);
	if (too_big) {
		uart_printf("virtio-net: %u-byte frame dropped (room for "
			    "%u)\n", total, cap);
		return -VIRTIO_EIO;
	}
	if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!complete_csum(out, total, h.csum_start, h.csum_offset)) {
			uart_printf("virtio-net: csum_start %u offset %u "
				    "beyond a %u-byte frame\n", h.csum_start,
				    h.csum_offset, total);
			return -VIRTIO_EIO;
		}
		n->rx_csum_completed++;
	}
	n->rx_frames++;
	if (want > 1)
		n->rx_merged++;
	if (want > n->rx_bufs_max)
		n->rx_bufs_max = want;
	*len = total;
	if (nbufs)
		*nbufs = want;
	return 0;
}
