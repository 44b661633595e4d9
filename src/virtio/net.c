// SPDX-License-Identifier: MIT
/*
 * virtio-net on a TAP device, see net.h: the TAP, the receive and
 * transmit queues, the device's ops and creation.  What a frame may say
 * and where it goes in guest buffers is net_frames.c's.
 *
 * Threads: everything but creation runs on the device's I/O thread with
 * the transport's lock held (queue_notify, backend_ready), except reset,
 * which a vCPU thread calls with the same lock held.  The counters are
 * atomics so that tests may read them while the device runs.
 *
 * Receive flow control: the TAP fd is watched level-triggered.  When a
 * frame read from it finds too few guest buffers, it stays pending in
 * rx_buf and the watch is paused until the driver kicks the receive
 * queue (EVENT_IDX: virtq_pop() has asked for exactly that kick); the
 * kernel queues what arrives meanwhile, and drops beyond its queue, as
 * a NIC without descriptors would.  Before the driver is live, the
 * watch is paused too; its first kick (of either queue) resumes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/virtio.h"

#define QUEUE_SIZE VIRTQ_MAX_SIZE
#define TAP_WATCH 0		/* our only watched fd */
#define RX_BUDGET 64		/* frames per wakeup: TX kicks get a turn */
#define TX_MAX_IOV 64		/* header + frame pieces; more: bounce */
#define ETH_HDR_LEN 14

#define BIT(f) (1ull << (f))
/* What the transmit side needs from the TAP: a vnet header, nothing else
 * (the kernel completes checksums and segments what it is given). */
#define HOST_OFFLOADS (BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_HOST_TSO4) | \
		       BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN))

enum rx_pause_reason {
	RX_RUNNING,
	RX_NOT_LIVE,		/* driver not ready: any kick resumes */
	RX_NO_BUFFERS,		/* only a receive-queue kick resumes */
};

struct virtio_net {
	int tap_fd;
	char ifname[IFNAMSIZ];
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	uint64_t features;		/* offered, device-specific part */
	unsigned tun_ok;		/* TUN_F_* the TAP accepted when probed */
	struct virtio_mmio *t;

	/* under the transport's lock */
	bool offloads_set;		/* TUNSETOFFLOAD done since the reset */
	uint64_t negotiated;		/* the driver's features, once live */
	enum rx_pause_reason rx_paused;
	uint32_t pending_len;		/* a frame in rx_buf not yet placed */
	uint8_t *rx_buf;		/* VIRTIO_NET_PACKET_MAX bytes */
	uint8_t *tx_bounce;		/* VIRTIO_NET_FRAME_MAX bytes */
	struct iovec iov[TX_MAX_IOV];
	struct virtq_chain chain;

	struct virtio_net_stats stats;	/* atomics */
};

#define STAT_INC(n, field) \
	__atomic_fetch_add(&(n)->stats.field, 1, __ATOMIC_RELAXED)

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int virtio_net_parse_mac(const char *text, uint8_t mac[ETH_ADDR_LEN])
{
	uint8_t m[ETH_ADDR_LEN];

	for (unsigned i = 0; i < ETH_ADDR_LEN; i++) {
		int hi = hex_digit(text[0]), lo = hi < 0 ? -1 : hex_digit(text[1]);

		if (lo < 0)
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
		text += 2;
		if (*text != (i + 1 < ETH_ADDR_LEN ? ':' : '\0'))
			return -EINVAL;
		text++;
	}
	/* a station address: the group bit would make it multicast */
	if (m[0] & 1)
		return -EINVAL;
	memcpy(mac, m, ETH_ADDR_LEN);
	return 0;
}

void virtio_net_default_mac(unsigned index, uint8_t mac[ETH_ADDR_LEN])
{
	/* 0x52 has the locally administered bit set, the group bit clear */
	static const uint8_t prefix[5] = { 0x52, 0x54, 0x00, 0x72, 0x6b };

	memcpy(mac, prefix, sizeof(prefix));
	mac[5] = (uint8_t)index;
}

static void rx_pause(struct virtio_net *n, struct virtio_mmio *t,
		     enum rx_pause_reason why)
{
	if (n->rx_paused == RX_RUNNING &&
	    virtio_mmio_set_watch(t, TAP_WATCH, false) != 0)
		return;	/* cannot fail for a registered fd; stay safe */
	n->rx_paused = why;
}

static void rx_resume(struct virtio_net *n, struct virtio_mmio *t)
{
	if (n->rx_paused != RX_RUNNING &&
	    virtio_mmio_set_watch(t, TAP_WATCH, true) == 0)
		n->rx_paused = RX_RUNNING;
}

/* What the TAP may hand us follows what the driver takes (§5.1.6.4):
 * partial checksums with GUEST_CSUM, TSO frames with GUEST_TSO*. */
static unsigned tun_offloads(uint64_t f)
{
	unsigned tun = 0;

	if (!(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	tun |= TUN_F_CSUM;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO4))
		tun |= TUN_F_TSO4;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO6))
		tun |= TUN_F_TSO6;
	if ((tun & (TUN_F_TSO4 | TUN_F_TSO6)) &&
	    (f & BIT(VIRTIO_NET_F_GUEST_ECN)))
		tun |= TUN_F_TSO_ECN;
	return tun;
}

/* Once per negotiation, before the first frame goes to the driver. */
static void apply_offloads(struct virtio_net *n, struct virtio_mmio *t)
{
	if (n->offloads_set)
		return;
	n->negotiated = virtio_mmio_driver_features_locked(t);
	/* if the TAP refuses, frames it made before still get checked
	 * against the features one by one */
	(void)ioctl(n->tap_fd, TUNSETOFFLOAD, tun_offloads(n->negotiated) & n->tun_ok);
	n->offloads_set = true;
}

/* Reads (or keeps) frames from the TAP and places them; lock held, the
 * driver live and @rxq usable. */
static void rx_process(struct virtio_net *n, struct virtio_mmio *t,
		       struct virtq *rxq)
{
	bool mrg = n->negotiated & BIT(VIRTIO_NET_F_MRG_RXBUF);
	unsigned placed = 0, nbufs;
	ssize_t got;
	int r;

	for (unsigned budget = RX_BUDGET; budget; budget--) {
		if (!n->pending_len) {
			got = read(n->tap_fd, n->rx_buf, VIRTIO_NET_PACKET_MAX);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				break;	/* EAGAIN: drained */
			if (got < VIRTIO_NET_HDR_SIZE + ETH_HDR_LEN) {
				STAT_INC(n, rx_dropped);
				continue;
			}
			if (!(n->negotiated & BIT(VIRTIO_NET_F_GUEST_CSUM)))
				n->rx_buf[VIRTIO_NET_HDR_FLAGS] &=
					~VIRTIO_NET_HDR_F_DATA_VALID;
			if (!virtio_net_hdr_allowed(n->rx_buf,
						    (uint32_t)got - VIRTIO_NET_HDR_SIZE,
						    n->negotiated, true)) {
				STAT_INC(n, rx_dropped);
				continue;
			}
			n->pending_len = (uint32_t)got;
		}
		r = virtio_net_rx_place(rxq, &n->chain, n->rx_buf,
					n->pending_len, mrg, &nbufs);
		if (r == VIRTIO_NET_RX_NO_ROOM) {
			STAT_INC(n, rx_stalls);
			rx_pause(n, t, RX_NO_BUFFERS);
			break;
		}
		if (r == -EIO) {	/* broken: the transport resets it */
			rx_pause(n, t, RX_NOT_LIVE);
			break;
		}
		if (r == VIRTIO_NET_RX_DROP) {
			STAT_INC(n, rx_dropped);
		} else {
			STAT_INC(n, rx_frames);
			if (nbufs > 1)
				STAT_INC(n, rx_merged);
			placed++;
		}
		n->pending_len = 0;
	}
	if (placed)
		virtio_mmio_used(t, rxq);
}

static bool rx_usable(struct virtio_mmio *t, struct virtq **rxq)
{
	*rxq = virtio_mmio_queue_locked(t, VIRTIO_NET_RX_QUEUE);
	return virtio_mmio_live_locked(t) && *rxq && (*rxq)->ready &&
	       !virtq_broken(*rxq);
}

static void net_backend_ready(void *dev, struct virtio_mmio *t, unsigned tag)
{
	struct virtio_net *n = dev;
	struct virtq *rxq;

	(void)tag;
	if (!rx_usable(t, &rxq)) {
		rx_pause(n, t, RX_NOT_LIVE);
		return;
	}
	apply_offloads(n, t);
	rx_process(n, t, rxq);
}

static ssize_t tap_write(int fd, const struct iovec *iov, int niov)
{
	ssize_t r;

	do
		r = writev(fd, iov, niov);
	while (r < 0 && errno == EINTR);
	return r;
}

static void tx_process(struct virtio_net *n, struct virtio_mmio *t,
		       struct virtq *vq)
{
	uint8_t hdr[VIRTIO_NET_HDR_SIZE];
	unsigned done = 0;
	int niov;

	while (virtq_pop(vq, &n->chain) == 1) {
		niov = virtio_net_tx_gather(&n->chain, hdr, n->iov, TX_MAX_IOV,
					    n->tx_bounce);
		if (niov < 0) {
			virtq_set_broken(vq, VIRTQ_ERR_DEVICE);
			break;
		}
		if (!virtio_net_hdr_allowed(hdr, n->chain.readable -
					    VIRTIO_NET_HDR_SIZE,
					    n->negotiated, false))
			STAT_INC(n, tx_dropped);
		else if (tap_write(n->tap_fd, n->iov, niov) < 0)
			STAT_INC(n, tx_errors);	/* link down, queue full: lost */
		else
			STAT_INC(n, tx_frames);
		/* the device writes nothing into a TX buffer */
		virtq_push(vq, n->chain.head, 0);
		done++;
	}
	if (done)
		virtio_mmio_used(t, vq);
}

static void net_queue_notify(void *dev, struct virtio_mmio *t,
			     struct virtq *vq, unsigned q)
{
	struct virtio_net *n = dev;
	struct virtq *rxq;

	apply_offloads(n, t);
	if (q == VIRTIO_NET_TX_QUEUE)
		tx_process(n, t, vq);
	/* a TX kick does not bring receive buffers: it only resumes a
	 * receiver that waited for the driver to come up */
	if (n->rx_paused == RX_RUNNING ||
	    (q == VIRTIO_NET_TX_QUEUE && n->rx_paused == RX_NO_BUFFERS))
		return;
	if (rx_usable(t, &rxq)) {
		rx_resume(n, t);
		rx_process(n, t, rxq);
	}
}

static uint64_t net_features(void *dev)
{
	return ((struct virtio_net *)dev)->features;
}

static void net_config_read(void *dev, uint32_t offset, uint8_t *data,
			    unsigned len)
{
	struct virtio_net *n = dev;

	memcpy(data, n->config + offset, len);
}

static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	/* the queues are gone with the frame's destination; the next
	 * driver may take fewer offloads, so the TAP makes none until then */
	n->pending_len = 0;
	n->negotiated = 0;
	n->offloads_set = false;
	(void)ioctl(n->tap_fd, TUNSETOFFLOAD, 0);
}

static void net_destroy(void *dev)
{
	struct virtio_net *n = dev;

	if (n->tap_fd >= 0)
		close(n->tap_fd);
	free(n->rx_buf);
	free(n->tx_bounce);
	free(n);
}

/*
 * The device's part: u32 version, the 8 config bytes (MAC, status), and
 * a u32 length and the frame read from the TAP that waits for receive
 * buffers (0 if none: it then stays in the TAP).  What the driver
 * negotiated (MRG_RXBUF, offloads) is the transport's: it is taken again
 * from there, and the TAP told, on the first kick after the load.  A
 * frame still in the TAP stays with the source's TAP (lost to a
 * migration, as on a link that went down for a moment).
 */
#define NET_STATE_VERSION 1u

static void net_save(void *dev, struct virtio_mmio *t, struct state_buf *out)
{
	struct virtio_net *n = dev;

	(void)t;
	state_put_u32(out, NET_STATE_VERSION);
	state_put_bytes(out, n->config, sizeof(n->config));
	state_put_blob(out, n->rx_buf, n->pending_len);
}

/* A saved pending frame as rx_process() would have kept it. */
static bool pending_ok(const uint8_t *frame, size_t len, uint64_t features)
{
	if (!len)
		return true;
	return len >= VIRTIO_NET_HDR_SIZE + ETH_HDR_LEN &&
	       len <= VIRTIO_NET_PACKET_MAX &&
	       virtio_net_hdr_allowed(frame, (uint32_t)(len - VIRTIO_NET_HDR_SIZE),
				      features, true);
}

static int net_load(void *dev, struct virtio_mmio *t, struct state_reader *in,
		    struct errmsg *err)
{
	struct virtio_net *n = dev;
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	const uint8_t *frame;
	size_t len;
	int ret = virtio_state_version(in, NET_STATE_VERSION, err);

	if (ret)
		return ret;
	state_get_bytes(in, config, sizeof(config));
	state_get_blob(in, &frame, &len, VIRTIO_NET_PACKET_MAX);
	ret = virtio_state_end(in, err);
	if (ret)
		return ret;
	/* the guest keeps the MAC it read: this device must have it too */
	if (memcmp(config, n->config, sizeof(config)))
		return errmsg_set(err, -EINVAL,
				  "the guest knows MAC %02x:%02x:%02x:%02x:%02x:%02x "
				  "(status %#x), this device has another config",
				  config[0], config[1], config[2], config[3],
				  config[4], config[5], config[VIRTIO_NET_CFG_STATUS]);
	if (!pending_ok(frame, len, virtio_mmio_driver_features_locked(t)))
		return errmsg_set(err, -EBADMSG,
				  "pending frame of %zu bytes does not fit the "
				  "negotiated features", len);
	if (len)
		memcpy(n->rx_buf, frame, len);
	n->pending_len = (uint32_t)len;
	/* as after a reset: the first kick takes the features again */
	n->negotiated = 0;
	n->offloads_set = false;
	(void)ioctl(n->tap_fd, TUNSETOFFLOAD, 0);
	rx_pause(n, t, RX_NOT_LIVE);
	return 0;
}

static const struct virtio_device_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.queue_max_size = QUEUE_SIZE,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.features = net_features,
	.config_read = net_config_read,
	.queue_notify = net_queue_notify,
	.backend_ready = net_backend_ready,
	.reset = net_reset,
	.destroy = net_destroy,
	.save = net_save,
	.load = net_load,
};

/* Which receive offloads the TAP takes; it is left with none. */
static void probe_offloads(struct virtio_net *n)
{
	static const unsigned sets[] = {
		TUN_F_CSUM,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
	};

	for (unsigned i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		if (ioctl(n->tap_fd, TUNSETOFFLOAD, sets[i]) < 0)
			break;
		n->tun_ok = sets[i];
	}
	(void)ioctl(n->tap_fd, TUNSETOFFLOAD, 0);
	if (n->tun_ok & TUN_F_CSUM)
		n->features |= BIT(VIRTIO_NET_F_GUEST_CSUM);
	if (n->tun_ok & TUN_F_TSO4)
		n->features |= BIT(VIRTIO_NET_F_GUEST_TSO4) |
			       BIT(VIRTIO_NET_F_GUEST_TSO6);
	if (n->tun_ok & TUN_F_TSO_ECN)
		n->features |= BIT(VIRTIO_NET_F_GUEST_ECN);
}

static int tap_open(struct virtio_net *n, const char *name, struct errmsg *err)
{
	struct ifreq ifr;
	int hdr_size = VIRTIO_NET_HDR_SIZE;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return errmsg_set(err, -EINVAL, "tap '%s': an interface name has 1 to %d characters",
				  name ? name : "", IFNAMSIZ - 1);
	snprintf(n->ifname, sizeof(n->ifname), "%s", name);
	n->tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (n->tap_fd < 0)
		return errmsg_set(err, -errno, "tap %s: cannot open /dev/net/tun: %s",
				  name, strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, n->ifname, sizeof(ifr.ifr_name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0)
		return errmsg_set(err, -errno, "tap %s: TUNSETIFF: %s", name,
				  strerror(errno));
	/* 12 bytes: the kernel fills the first 10 and skips num_buffers,
	 * so the guest's header and the TAP's are one and the same */
	if (ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
		return errmsg_set(err, -errno, "tap %s: TUNSETVNETHDRSZ: %s",
				  name, strerror(errno));
	return 0;
}

int virtio_net_create(struct vm *vm, unsigned index,
		      const struct virtio_net_options *opt,
		      struct virtio_net **out, struct errmsg *err)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	struct virtio_mmio *t;
	int ret;

	if (!n)
		return -ENOMEM;
	n->tap_fd = -1;
	n->rx_buf = malloc(VIRTIO_NET_PACKET_MAX);
	n->tx_bounce = malloc(VIRTIO_NET_FRAME_MAX);
	if (!n->rx_buf || !n->tx_bounce) {
		net_destroy(n);
		return -ENOMEM;
	}
	ret = tap_open(n, opt->tap, err);
	if (ret) {
		net_destroy(n);
		return ret;
	}
	n->features = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
		      BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (!opt->no_offloads) {
		n->features |= HOST_OFFLOADS;
		probe_offloads(n);
	}
	if (opt->has_mac)
		memcpy(n->config + VIRTIO_NET_CFG_MAC, opt->mac, ETH_ADDR_LEN);
	else
		virtio_net_default_mac(index, n->config + VIRTIO_NET_CFG_MAC);
	n->config[VIRTIO_NET_CFG_STATUS] = VIRTIO_NET_S_LINK_UP;
	/* nothing to read for a driver that is not there yet */
	n->rx_paused = RX_NOT_LIVE;
	ret = virtio_mmio_create(vm, index, &net_ops, n, &t, err);
	if (ret)
		return ret;	/* @n is gone */
	n->t = t;
	ret = virtio_mmio_watch_fd(t, n->tap_fd, TAP_WATCH);
	if (!ret)
		ret = virtio_mmio_set_watch(t, TAP_WATCH, false);
	if (ret)
		return errmsg_set(err, ret, "tap %s: watching it: %s", n->ifname,
				  strerror(-ret));
	if (out)
		*out = n;
	return 0;
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s)
{
	s->tx_frames = __atomic_load_n(&n->stats.tx_frames, __ATOMIC_RELAXED);
	s->tx_dropped = __atomic_load_n(&n->stats.tx_dropped, __ATOMIC_RELAXED);
	s->tx_errors = __atomic_load_n(&n->stats.tx_errors, __ATOMIC_RELAXED);
	s->rx_frames = __atomic_load_n(&n->stats.rx_frames, __ATOMIC_RELAXED);
	s->rx_dropped = __atomic_load_n(&n->stats.rx_dropped, __ATOMIC_RELAXED);
	s->rx_merged = __atomic_load_n(&n->stats.rx_merged, __ATOMIC_RELAXED);
	s->rx_stalls = __atomic_load_n(&n->stats.rx_stalls, __ATOMIC_RELAXED);
}

struct virtio_mmio *virtio_net_transport(struct virtio_net *n)
{
	return n->t;
}
