// SPDX-License-Identifier: MIT
/*
 * netecho: sends frames=N Ethernet frames of size=S bytes (header
 * included, FCS not) through the virtio-net driver and expects each one
 * back from a peer that swaps the MAC addresses (the host-side test runs
 * a reflector on the TAP device).  Up to depth=D frames are in flight.
 *
 * Frame layout:
 *   dst  NETECHO_PEER_MAC (02:72:6b:76:6d:fe), src our MAC (config space)
 *   type NETECHO_ETHERTYPE (0x88b5, IEEE 802 local experimental)
 *   payload: le32 magic "rkne", le32 sequence, le32 size, then
 *            byte i = pattern(seq, i)
 * A frame comes back valid if its addresses are swapped, its length,
 * sequence (not seen before) and every payload byte match.  Frames of
 * another EtherType (the host's own chatter) are counted and ignored.
 *
 * mrg=1 posts small receive buffers (rxbuf=B, default 256 bytes) so that
 * each echoed frame must arrive through several merged buffers; it needs
 * MRG_RXBUF and fails if any frame arrived in a single buffer.
 * mrg_rxbuf=0 does not ask for MRG_RXBUF (whole-frame buffers).
 * offload=0 asks for no checksum/TSO offloads (default 1: CSUM,
 * GUEST_CSUM, HOST_TSO4/6 if the device offers them).
 */
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_net.h"
#include "guest/workload.h"

#define NETECHO_ETHERTYPE	0x88b5
#define NETECHO_MAGIC		0x656e6b72u	/* "rkne" */
#define NETECHO_PAYLOAD_HDR	12
#define NETECHO_MAX_FRAMES	(1u << 20)
#define NETECHO_MAX_DEPTH	64

static const uint8_t peer_mac[ETH_ALEN] = { 0x02, 0x72, 0x6b, 0x76, 0x6d,
					    0xfe };

static struct virtio_net net;
static uint8_t tx_frame[ETH_FRAME_MAX];
static uint8_t rx_frame[VIRTIO_NET_RX_FRAME_MAX];
static uint8_t seen[NETECHO_MAX_FRAMES / 8];

static uint8_t pattern(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31u + i * 7u + (i >> 8));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void build_frame(uint8_t *f, uint32_t seq, uint32_t size)
{
	uint32_t i;

	memcpy(f, peer_mac, ETH_ALEN);
	memcpy(f + ETH_ALEN, net.mac, ETH_ALEN);
	f[12] = NETECHO_ETHERTYPE >> 8;
	f[13] = NETECHO_ETHERTYPE & 0xff;
	put_le32(f + ETH_HLEN, NETECHO_MAGIC);
	put_le32(f + ETH_HLEN + 4, seq);
	put_le32(f + ETH_HLEN + 8, size);
	for (i = ETH_HLEN + NETECHO_PAYLOAD_HDR; i < size; i++)
		f[i] = pattern(seq, i);
}

static bool is_echo(const uint8_t *f, uint32_t len)
{
	return len >= ETH_HLEN + NETECHO_PAYLOAD_HDR &&
	       f[12] == NETECHO_ETHERTYPE >> 8 &&
	       f[13] == (NETECHO_ETHERTYPE & 0xff);
}

/* Checks one echoed frame; returns its sequence number. */
static uint32_t check_echo(const uint8_t *f, uint32_t len, uint32_t frames,
			   uint32_t size)
{
	uint32_t seq, i;

	GUEST_ASSERT_MSG(!memcmp(f, net.mac, ETH_ALEN) &&
			 !memcmp(f + ETH_ALEN, peer_mac, ETH_ALEN),
			 "netecho: echoed frame with unswapped addresses");
	GUEST_ASSERT_MSG(get_le32(f + ETH_HLEN) == NETECHO_MAGIC,
			 "netecho: echoed frame without the magic");
	seq = get_le32(f + ETH_HLEN + 4);
	GUEST_ASSERT_MSG(len == size && get_le32(f + ETH_HLEN + 8) == size,
			 "netecho: frame %u came back with %u bytes, sent %u",
			 seq, len, size);
	GUEST_ASSERT_MSG(seq < frames && !(seen[seq / 8] & (1u << seq % 8)),
			 "netecho: frame %u unexpected or echoed twice", seq);
	seen[seq / 8] |= 1u << seq % 8;
	for (i = ETH_HLEN + NETECHO_PAYLOAD_HDR; i < len; i++)
		GUEST_ASSERT_MSG(f[i] == pattern(seq, i),
				 "netecho: frame %u byte %u is 0x%02x, sent "
				 "0x%02x", seq, i, f[i], pattern(seq, i));
	return seq;
}

static void netecho_run(const struct cmdline *c)
{
	uint64_t frames = cmdline_u64(c, "frames", 1000);
	uint64_t size = cmdline_u64(c, "size", 256);
	uint64_t depth = cmdline_u64(c, "depth", 8);
	uint64_t mrg = cmdline_u64(c, "mrg", 0);
	uint64_t timeout_ns = cmdline_u64(c, "timeout_ms", 5000) *
			      NSEC_PER_MSEC;
	struct virtio_net_init_opts o = {
		.mrg_rxbuf = cmdline_u64(c, "mrg_rxbuf", 1) != 0,
		.offloads = cmdline_u64(c, "offload", 1) != 0,
		.rx_buf_size = cmdline_u64(c, "rxbuf", mrg ? 256 : 0),
	};
	uint64_t sent = 0, received = 0, ignored = 0, t0, ns;
	uint32_t len;
	int err;

	GUEST_ASSERT_MSG(frames >= 1 && frames <= NETECHO_MAX_FRAMES,
			 "netecho: frames must be 1..%u", NETECHO_MAX_FRAMES);
	GUEST_ASSERT_MSG(size >= ETH_ZLEN && size <= ETH_FRAME_MAX,
			 "netecho: size must be %u..%u", ETH_ZLEN,
			 ETH_FRAME_MAX);
	GUEST_ASSERT_MSG(depth >= 1 && depth <= NETECHO_MAX_DEPTH,
			 "netecho: depth must be 1..%u", NETECHO_MAX_DEPTH);
	err = virtio_net_init(&net, c, 0, &o);
	GUEST_ASSERT_MSG(err == 0, "netecho: virtio-net: %s",
			 virtio_strerror(err));
	GUEST_PRINTF("netecho: mac %02x:%02x:%02x:%02x:%02x:%02x features "
		     "0x%llx rxbuf %u x %u", net.mac[0], net.mac[1],
		     net.mac[2], net.mac[3], net.mac[4], net.mac[5],
		     (unsigned long long)net.dev->features, net.nr_rx_bufs,
		     net.rx_buf_size);
	if (mrg) {
		GUEST_ASSERT_MSG(net.mrg_rxbuf, "netecho: mrg=1 but the "
				 "device did not offer MRG_RXBUF");
		GUEST_ASSERT_MSG(size + VIRTIO_NET_HDR_SIZE > net.rx_buf_size,
				 "netecho: mrg=1 needs size > rxbuf - %u",
				 VIRTIO_NET_HDR_SIZE);
	}

	tsc_hz();
	t0 = rdtsc();
	while (received < frames) {
		while (sent < frames && sent - received < depth) {
			build_frame(tx_frame, sent, size);
			err = virtio_net_send(&net, tx_frame, size, NULL,
					      timeout_ns);
			GUEST_ASSERT_MSG(err == 0, "netecho: send %llu: %s",
					 (unsigned long long)sent,
					 virtio_strerror(err));
			sent++;
		}
		err = virtio_net_recv(&net, rx_frame, sizeof(rx_frame), &len,
				      NULL, timeout_ns);
		GUEST_ASSERT_MSG(err == 0, "netecho: no echo (%s): sent %llu, "
				 "received %llu of %llu",
				 virtio_strerror(err),
				 (unsigned long long)sent,
				 (unsigned long long)received,
				 (unsigned long long)frames);
		if (!is_echo(rx_frame, len)) {
			ignored++;
			continue;
		}
		check_echo(rx_frame, len, frames, size);
		received++;
	}
	ns = tsc_to_ns(rdtsc() - t0);
	virtio_net_tx_reap(&net);
	if (mrg)
		GUEST_ASSERT_MSG(net.rx_merged >= received,
				 "netecho: only %llu of %llu frames came "
				 "through merged buffers",
				 (unsigned long long)net.rx_merged,
				 (unsigned long long)received);
	guest_result("netecho frames=%llu size=%llu seconds=" SECONDS_FMT
		     " pps=%llu mrg_rxbuf=%d csum=%d guest_csum=%d tso4=%d "
		     "rxbuf=%u merged=%llu max_bufs=%llu ignored=%llu "
		     "csum_completed=%llu",
		     (unsigned long long)frames, (unsigned long long)size,
		     SECONDS_ARGS(ns),
		     (unsigned long long)rate_per_sec(frames, ns),
		     net.mrg_rxbuf, net.csum, net.guest_csum, net.host_tso4,
		     net.rx_buf_size, (unsigned long long)net.rx_merged,
		     (unsigned long long)net.rx_bufs_max,
		     (unsigned long long)ignored,
		     (unsigned long long)net.rx_csum_completed);
	guest_done(0);
}

static const char *const netecho_params[] = {
	"frames", "size", "depth", "mrg", "mrg_rxbuf", "rxbuf", "offload",
	"timeout_ms", NULL
};

const struct workload workload_netecho = {
	.name = "netecho",
	.usage = "frames=N size=S depth=D mrg=0|1 mrg_rxbuf=0|1 rxbuf=B "
		 "offload=0|1 timeout_ms=T: frames echoed by a peer on "
		 "virtio-net",
	.params = netecho_params,
	.run = netecho_run,
};
