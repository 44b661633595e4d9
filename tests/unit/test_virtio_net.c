// SPDX-License-Identifier: MIT
/*
 * virtio-net: the pure parts (MAC parsing, header checks, receive
 * placement into mergeable and whole-frame buffers, transmit gathering)
 * on rings in a real guest_mem, then the device through the transport
 * on a bare VM and a real TAP (skipped without /dev/net/tun or the
 * right to create one): a frame out, a frame in across merged buffers,
 * back-pressure without buffers, and a bad TX chain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)
#define TEST_ETHERTYPE 0x88b5

static struct virtq_chain chain;

struct place_fixture {
	bool mapped;
	struct guest_mem mem;
	struct test_ring ring;
	struct virtq vq;
};

static void place_teardown(struct place_fixture *f)
{
	if (f->mapped)
		guest_mem_destroy(&f->mem);
	f->mapped = false;
}

/* (Re)starts @f with an empty ring of @size entries. */
static int place_setup(struct place_fixture *f, uint16_t size)
{
	place_teardown(f);
	if (guest_mem_init(&f->mem, MEM_SIZE, false, NULL))
		return -1;
	f->mapped = true;
	tr_init(&f->ring, &f->mem, size);
	virtq_init(&f->vq, &f->mem);
	f->vq.layout = tr_layout(&f->ring);
	return virtq_enable(&f->vq, VIRTQ_MAX_SIZE, false, true);
}

/* Posts writable buffer @i of @len bytes at TR_DATA + i * 4K. */
static void post_rx(struct place_fixture *f, unsigned i, uint32_t len)
{
	tr_desc(&f->ring, i, TR_DATA + 4096ull * i, len, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&f->ring, (uint16_t)i);
}

static void make_packet(uint8_t *p, uint32_t len)
{
	memset(p, 0, VIRTIO_NET_HDR_SIZE);
	p[VIRTIO_NET_HDR_NUM_BUFFERS] = 0xee;	/* must be overwritten */
	for (uint32_t i = VIRTIO_NET_HDR_SIZE; i < len; i++)
		p[i] = (uint8_t)(i * 13 + 5);
}

TEST(net_parse_mac)
{
	uint8_t mac[6];

	CHECK_EQ(virtio_net_parse_mac("52:54:00:12:34:AB", mac), 0);
	CHECK(!memcmp(mac, "\x52\x54\x00\x12\x34\xab", 6));
	CHECK_EQ(virtio_net_parse_mac("01:00:5e:00:00:01", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("52:54:00:12:34", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("52:54:00:12:34:56:", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("52:54:00:12:34:5", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("52-54-00-12-34-56", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("52:54:00:12:34:5g", mac), -EINVAL);
	CHECK_EQ(virtio_net_parse_mac("", mac), -EINVAL);
	CHECK(!memcmp(mac, "\x52\x54\x00\x12\x34\xab", 6));	/* untouched */
	virtio_net_default_mac(3, mac);
	CHECK(!memcmp(mac, "\x52\x54\x00\x72\x6b\x03", 6));
	CHECK((mac[0] & 3) == 2);	/* locally administered, unicast */
}

TEST(net_header_follows_negotiated_features)
{
	uint64_t all = (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
		       (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
		       (1ull << VIRTIO_NET_F_GUEST_TSO4);
	uint8_t h[VIRTIO_NET_HDR_SIZE] = { 0 };

	CHECK(virtio_net_hdr_allowed(h, 60, 0, false));
	h[VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h[VIRTIO_NET_HDR_CSUM_START] = 34;
	h[VIRTIO_NET_HDR_CSUM_OFFSET] = 6;
	CHECK(!virtio_net_hdr_allowed(h, 60, 0, false));
	CHECK(virtio_net_hdr_allowed(h, 60, all, false));
	CHECK(virtio_net_hdr_allowed(h, 42, all, false));
	CHECK(!virtio_net_hdr_allowed(h, 41, all, false));	/* past the end */
	/* DATA_VALID only means something on the way in */
	h[VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_DATA_VALID;
	CHECK(!virtio_net_hdr_allowed(h, 60, all, false));
	CHECK(virtio_net_hdr_allowed(h, 60, all, true));
	CHECK(!virtio_net_hdr_allowed(h, 60, 1ull << VIRTIO_NET_F_CSUM, true));
	h[VIRTIO_NET_HDR_FLAGS] = 0x80;
	CHECK(!virtio_net_hdr_allowed(h, 60, all, true));
	/* GSO: the matching TSO feature, a segment size, no UFO */
	h[VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h[VIRTIO_NET_HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_TCPV4;
	h[VIRTIO_NET_HDR_GSO_SIZE] = 0xb4;
	h[VIRTIO_NET_HDR_GSO_SIZE + 1] = 0x05;
	CHECK(virtio_net_hdr_allowed(h, 3000, all, false));
	CHECK(virtio_net_hdr_allowed(h, 3000, all, true));
	h[VIRTIO_NET_HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_TCPV6;
	CHECK(virtio_net_hdr_allowed(h, 3000, all, false));
	CHECK(!virtio_net_hdr_allowed(h, 3000, all, true));	/* no GUEST_TSO6 */
	h[VIRTIO_NET_HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
	CHECK(!virtio_net_hdr_allowed(h, 3000, all, false));
	CHECK(virtio_net_hdr_allowed(h, 3000, all | (1ull << VIRTIO_NET_F_HOST_ECN), false));
	h[VIRTIO_NET_HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_UDP;
	CHECK(!virtio_net_hdr_allowed(h, 3000, ~0ull, false));
	h[VIRTIO_NET_HDR_GSO_TYPE] = VIRTIO_NET_HDR_GSO_TCPV4;
	h[VIRTIO_NET_HDR_GSO_SIZE] = h[VIRTIO_NET_HDR_GSO_SIZE + 1] = 0;
	CHECK(!virtio_net_hdr_allowed(h, 3000, all, false));
}

TEST(net_rx_mergeable_spreads_a_frame_and_publishes_it_at_once)
{
	static uint8_t pkt[512];
	struct place_fixture f = { 0 };
	unsigned nbufs = 0;
	uint8_t got[512];

	CHECK_EQ(place_setup(&f, 8), 0);
	for (unsigned i = 0; i < 5; i++)
		post_rx(&f, i, 64);
	make_packet(pkt, 212);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 212, true, &nbufs),
		 VIRTIO_NET_RX_PLACED);
	CHECK_EQ(nbufs, 4);
	CHECK_EQ(tr_used_idx(&f.ring), 4);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(tr_used_elem(&f.ring, i).id, i);
		CHECK_EQ(tr_used_elem(&f.ring, i).len, i < 3 ? 64 : 20);
		guest_mem_read(&f.mem, TR_DATA + 4096ull * i, got + 64 * i,
			       tr_used_elem(&f.ring, i).len);
	}
	CHECK_EQ(got[VIRTIO_NET_HDR_NUM_BUFFERS], 4);
	CHECK_EQ(got[VIRTIO_NET_HDR_NUM_BUFFERS + 1], 0);
	CHECK(!memcmp(got + VIRTIO_NET_HDR_SIZE, pkt + VIRTIO_NET_HDR_SIZE,
		      212 - VIRTIO_NET_HDR_SIZE));
	/* nothing written past what each buffer was given */
	CHECK_EQ(*(uint8_t *)guest_mem_ptr(&f.mem, TR_DATA + 4096 * 3 + 20, 1), 0);
	CHECK_EQ(f.vq.last_avail, 4);
	place_teardown(&f);
}

TEST(net_rx_header_split_across_descriptors)
{
	static uint8_t pkt[128];
	struct place_fixture f = { 0 };
	unsigned nbufs = 0;

	CHECK_EQ(place_setup(&f, 8), 0);
	/* one buffer of three descriptors: 11 + 1 + 116 bytes */
	tr_desc(&f.ring, 0, TR_DATA, 11, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	tr_desc(&f.ring, 1, TR_DATA + 4096, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	tr_desc(&f.ring, 2, TR_DATA + 8192, 116, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&f.ring, 0);
	make_packet(pkt, 100);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 100, false, &nbufs),
		 VIRTIO_NET_RX_PLACED);
	CHECK_EQ(tr_used_elem(&f.ring, 0).len, 100);
	CHECK_EQ(*(uint8_t *)guest_mem_ptr(&f.mem, TR_DATA + 10, 1), 1);
	CHECK_EQ(*(uint8_t *)guest_mem_ptr(&f.mem, TR_DATA + 4096, 1), 0);
	CHECK_EQ(*(uint8_t *)guest_mem_ptr(&f.mem, TR_DATA + 8192, 1),
		 pkt[VIRTIO_NET_HDR_SIZE]);
	place_teardown(&f);
}

TEST(net_rx_waits_for_buffers_without_consuming)
{
	static uint8_t pkt[512];
	struct place_fixture f = { 0 };
	unsigned nbufs;

	CHECK_EQ(place_setup(&f, 8), 0);
	make_packet(pkt, 300);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 300, true, &nbufs),
		 VIRTIO_NET_RX_NO_ROOM);
	post_rx(&f, 0, 128);
	post_rx(&f, 1, 128);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 300, true, &nbufs),
		 VIRTIO_NET_RX_NO_ROOM);
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	CHECK_EQ(f.vq.last_avail, 0);
	post_rx(&f, 2, 128);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 300, true, &nbufs),
		 VIRTIO_NET_RX_PLACED);
	CHECK_EQ(nbufs, 3);
	CHECK_EQ(tr_used_idx(&f.ring), 3);
	CHECK_EQ(tr_used_elem(&f.ring, 2).len, 44);
	place_teardown(&f);
}

TEST(net_rx_drops_what_can_never_fit)
{
	static uint8_t pkt[2048];
	struct place_fixture f = { 0 };
	unsigned nbufs;

	/* whole-frame buffers: a small one stays for a small frame */
	CHECK_EQ(place_setup(&f, 4), 0);
	post_rx(&f, 0, 100);
	make_packet(pkt, 1526);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 1526, false, &nbufs),
		 VIRTIO_NET_RX_DROP);
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 100, false, &nbufs),
		 VIRTIO_NET_RX_PLACED);
	CHECK_EQ(tr_used_elem(&f.ring, 0).len, 100);
	CHECK_EQ(nbufs, 1);

	/* mergeable: every buffer of a full ring is not enough */
	CHECK_EQ(place_setup(&f, 4), 0);
	for (unsigned i = 0; i < 4; i++)
		post_rx(&f, i, 64);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 1526, true, &nbufs),
		 VIRTIO_NET_RX_DROP);
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 256, true, &nbufs),
		 VIRTIO_NET_RX_PLACED);
	CHECK_EQ(nbufs, 4);
	/* shorter than a header, longer than any frame */
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 11, true, &nbufs),
		 VIRTIO_NET_RX_DROP);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, VIRTIO_NET_PACKET_MAX + 1,
				     true, &nbufs), VIRTIO_NET_RX_DROP);
	place_teardown(&f);
}

TEST(net_rx_hostile_buffers_break_the_queue)
{
	static uint8_t pkt[128];
	struct place_fixture f = { 0 };
	unsigned nbufs;

	make_packet(pkt, 100);
	/* a device-readable receive buffer */
	CHECK_EQ(place_setup(&f, 4), 0);
	tr_desc(&f.ring, 0, TR_DATA, 128, 0, 0);
	tr_publish(&f.ring, 0);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 100, true, &nbufs), -EIO);
	CHECK(virtq_broken(&f.vq));
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	/* one shorter than the header */
	CHECK_EQ(place_setup(&f, 4), 0);
	post_rx(&f, 0, 64);
	post_rx(&f, 1, 8);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 100, true, &nbufs), -EIO);
	CHECK(virtq_broken(&f.vq));
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	/* outside guest RAM */
	CHECK_EQ(place_setup(&f, 4), 0);
	tr_desc(&f.ring, 0, MEM_SIZE - 64, 128, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&f.ring, 0);
	CHECK_EQ(virtio_net_rx_place(&f.vq, &chain, pkt, 100, true, &nbufs), -EIO);
	CHECK(virtq_broken(&f.vq));
	place_teardown(&f);
}

/* Builds a chain by hand from host buffers. */
static void add_seg(struct virtq_chain *c, uint8_t *p, uint32_t len, bool w)
{
	c->segs[c->nsegs++] = (struct virtq_seg){ p, len, w };
	if (w)
		c->writable += len;
	else
		c->readable += len;
}

TEST(net_tx_gather)
{
	static uint8_t a[64], b[64], bounce[VIRTIO_NET_FRAME_MAX];
	static uint8_t big[VIRTIO_NET_PACKET_MAX + 1];
	uint8_t hdr[VIRTIO_NET_HDR_SIZE];
	struct iovec iov[4];
	int n;

	for (unsigned i = 0; i < sizeof(a); i++) {
		a[i] = (uint8_t)i;
		b[i] = (uint8_t)(100 + i);
	}
	/* the header split 5 + 7, then the frame in two pieces */
	memset(&chain, 0, sizeof(chain));
	add_seg(&chain, a, 5, false);
	add_seg(&chain, b, 10, false);
	add_seg(&chain, a + 20, 30, false);
	n = virtio_net_tx_gather(&chain, hdr, iov, 4, bounce);
	CHECK_EQ(n, 3);
	CHECK(iov[0].iov_base == hdr && iov[0].iov_len == 12);
	CHECK(!memcmp(hdr, a, 5) && !memcmp(hdr + 5, b, 7));
	CHECK(iov[1].iov_base == b + 7 && iov[1].iov_len == 3);
	CHECK(iov[2].iov_base == a + 20 && iov[2].iov_len == 30);
	/* more pieces than iov entries: copied into the bounce buffer */
	n = virtio_net_tx_gather(&chain, hdr, iov, 2, bounce);
	CHECK_EQ(n, 2);
	CHECK(iov[1].iov_base == bounce && iov[1].iov_len == 33);
	CHECK(!memcmp(bounce, b + 7, 3) && !memcmp(bounce + 3, a + 20, 30));
	/* a writable part, no whole header, too long */
	add_seg(&chain, b, 1, true);
	CHECK_EQ(virtio_net_tx_gather(&chain, hdr, iov, 4, bounce), -EINVAL);
	memset(&chain, 0, sizeof(chain));
	add_seg(&chain, a, 11, false);
	CHECK_EQ(virtio_net_tx_gather(&chain, hdr, iov, 4, bounce), -EINVAL);
	memset(&chain, 0, sizeof(chain));
	add_seg(&chain, big, VIRTIO_NET_PACKET_MAX, false);
	CHECK_EQ(virtio_net_tx_gather(&chain, hdr, iov, 4, bounce), 2);
	memset(&chain, 0, sizeof(chain));
	add_seg(&chain, big, VIRTIO_NET_PACKET_MAX + 1, false);
	CHECK_EQ(virtio_net_tx_gather(&chain, hdr, iov, 4, bounce), -EINVAL);
}

/* ---- through the transport, on a real TAP ------------------------------ */

#define RXQ_BASE 0x10000ull	/* desc, avail, used at +0, +0x1000, +0x2000 */
#define TXQ_BASE 0x20000ull
#define QSIZE 16
#define RX_BUF(i) (0x100000ull + 0x1000ull * (i))
#define TX_BUF(i) (0x200000ull + 0x1000ull * (i))

struct ring {
	uint64_t base;
	uint16_t avail_idx;
	uint16_t used_seen;
};

struct tap_fixture {
	struct vm vm;
	struct virtio_net *net;
	struct virtio_mmio *t;
	char ifname[IFNAMSIZ];
	int pkt_fd;		/* AF_PACKET on the TAP's host side */
	struct ring rx, tx;
};

static uint32_t reg_rd(struct tap_fixture *f, uint64_t off)
{
	return mmio_rd32(&f->vm.mmio_bus, VIRTIO_MMIO_BASE, off);
}

static void reg_wr(struct tap_fixture *f, uint64_t off, uint32_t v)
{
	mmio_wr32(&f->vm.mmio_bus, VIRTIO_MMIO_BASE, off, v);
}

static void ring_desc(struct tap_fixture *f, struct ring *r, unsigned i,
		      uint64_t addr, uint32_t len, uint16_t flags)
{
	struct virtq_desc d = { addr, len, flags, 0 };

	guest_mem_write(&f->vm.mem, r->base + 16ull * i, &d, sizeof(d));
}

static void ring_publish(struct tap_fixture *f, struct ring *r, uint16_t head)
{
	uint64_t avail = r->base + 0x1000;

	guest_mem_write(&f->vm.mem, avail + 4 + 2ull * (r->avail_idx % QSIZE),
			&head, 2);
	r->avail_idx++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	guest_mem_write(&f->vm.mem, avail + 2, &r->avail_idx, 2);
}

static uint16_t ring_used_idx(struct tap_fixture *f, struct ring *r)
{
	uint16_t v;

	v = __atomic_load_n((uint16_t *)guest_mem_ptr(&f->vm.mem, r->base + 0x2002, 2),
			    __ATOMIC_ACQUIRE);
	return v;
}

static struct virtq_used_elem ring_used(struct tap_fixture *f, struct ring *r,
					uint16_t i)
{
	struct virtq_used_elem e;

	guest_mem_read(&f->vm.mem, r->base + 0x2004 + 8ull * (i % QSIZE), &e,
		       sizeof(e));
	return e;
}

/* Waits up to 5 s for the used index of @r to reach @idx. */
static bool wait_used(struct tap_fixture *f, struct ring *r, uint16_t idx)
{
	for (int i = 0; i < 5000; i++) {
		if ((uint16_t)(ring_used_idx(f, r) - idx) < 0x8000)
			return true;
		usleep(1000);
	}
	return false;
}

static void setup_ring(struct tap_fixture *f, unsigned q, struct ring *r)
{
	reg_wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	reg_wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->base);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)r->base + 0x1000);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)r->base + 0x2000);
	reg_wr(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	reg_wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static int set_if_up(const char *name)
{
	struct ifreq ifr = { 0 };
	char path[128];
	int s, ret = -1, fd;

	/* no IPv6 chatter from the host on the test's interface */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror(path);
		close(fd);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ret = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return ret;
}

static int open_packet_socket(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(TEST_ETHERTYPE) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(TEST_ETHERTYPE));

	if (s < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(name);
	if (!sll.sll_ifindex ||
	    bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static int driver_init(struct tap_fixture *f, uint64_t features);

/* 0 ready, 1 skip (reason in @why), -1 failure. */
static int tap_setup(struct tap_fixture *f, uint64_t features,
		     const char **why)
{
	struct virtio_net_options opt = { .tap = f->ifname };
	struct errmsg err = { "" };
	int ret;

	memset(f, 0, sizeof(*f));
	f->pkt_fd = -1;
	if (access("/dev/net/tun", R_OK | W_OK)) {
		*why = "no usable /dev/net/tun";
		return 1;
	}
	snprintf(f->ifname, sizeof(f->ifname), "rkvut%d", (int)getpid() % 1000000);
	opt.tap = f->ifname;
	vm_init_bare(&f->vm);
	if (guest_mem_init(&f->vm.mem, MEM_SIZE, false, NULL))
		return -1;
	ret = virtio_net_create(&f->vm, 0, &opt, &f->net, &err);
	if (ret == -EPERM || ret == -EACCES) {
		*why = "no permission to create a TAP device";
		vm_destroy(&f->vm);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "virtio_net_create: %s\n", err.text);
		return -1;
	}
	f->t = virtio_net_transport(f->net);
	if (set_if_up(f->ifname))
		return -1;
	f->pkt_fd = open_packet_socket(f->ifname);
	if (f->pkt_fd < 0)
		return -1;
	return driver_init(f, features);
}

/* What a driver does at probe (after a reset): rings empty again. */
static int driver_init(struct tap_fixture *f, uint64_t features)
{
	memset(guest_mem_ptr(&f->vm.mem, RXQ_BASE, 0x20000), 0, 0x20000);
	f->rx = (struct ring){ .base = RXQ_BASE };
	f->tx = (struct ring){ .base = TXQ_BASE };
	features |= 1ull << VIRTIO_F_VERSION_1;
	reg_wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	reg_wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	reg_wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	reg_wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	       VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(reg_rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return -1;
	setup_ring(f, VIRTIO_NET_RX_QUEUE, &f->rx);
	setup_ring(f, VIRTIO_NET_TX_QUEUE, &f->tx);
	reg_wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	       VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
	return 0;
}

static void tap_teardown(struct tap_fixture *f)
{
	if (f->pkt_fd >= 0)
		close(f->pkt_fd);
	vm_destroy(&f->vm);	/* closes the TAP: the interface goes away */
}

static void build_frame(uint8_t *p, uint32_t len, uint32_t tag)
{
	memset(p, 0xff, 6);			/* broadcast */
	memcpy(p + 6, "\x02\x72\x6b\x76\x6d\xfe", 6);
	p[12] = TEST_ETHERTYPE >> 8;
	p[13] = TEST_ETHERTYPE & 0xff;
	memcpy(p + 14, &tag, 4);
	for (uint32_t i = 18; i < len; i++)
		p[i] = (uint8_t)(i + tag);
}

/* Waits for a frame of our EtherType on the host side carrying @tag. */
static ssize_t host_recv(struct tap_fixture *f, uint8_t *buf, size_t cap,
			 uint32_t tag)
{
	struct pollfd p = { .fd = f->pkt_fd, .events = POLLIN };
	ssize_t n;

	while (poll(&p, 1, 5000) == 1) {
		n = recv(f->pkt_fd, buf, cap, 0);
		if (n >= 18 && !memcmp(buf + 14, &tag, 4))
			return n;
	}
	return -1;
}

#define SETUP_OR_SKIP(f, features)                                        \
	do {                                                              \
		const char *why_ = "";                                    \
		int r_ = tap_setup(f, features, &why_);                   \
		if (r_ > 0)                                               \
			SKIP(why_);                                       \
		CHECK_EQ(r_, 0);                                          \
	} while (0)

TEST(net_device_transmits_to_the_tap)
{
	static uint8_t frame[1600], got[2048];
	uint8_t hdr[VIRTIO_NET_HDR_SIZE] = { 0 };
	struct virtio_net_stats st;
	struct tap_fixture f;

	SETUP_OR_SKIP(&f, 0);
	CHECK_EQ(reg_rd(&f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	/* header and frame in separate descriptors, chained */
	build_frame(frame, 1000, 0x1234);
	guest_mem_write(&f.vm.mem, TX_BUF(0), hdr, sizeof(hdr));
	guest_mem_write(&f.vm.mem, TX_BUF(1), frame, 1000);
	guest_mem_write(&f.vm.mem, TXQ_BASE, &(struct virtq_desc){
			TX_BUF(0), 12, VIRTQ_DESC_F_NEXT, 1 }, 16);
	guest_mem_write(&f.vm.mem, TXQ_BASE + 16, &(struct virtq_desc){
			TX_BUF(1), 1000, 0, 0 }, 16);
	ring_publish(&f, &f.tx, 0);
	reg_wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TX_QUEUE);
	CHECK(wait_used(&f, &f.tx, 1));
	CHECK_EQ(ring_used(&f, &f.tx, 0).id, 0);
	CHECK_EQ(ring_used(&f, &f.tx, 0).len, 0);
	CHECK_EQ(host_recv(&f, got, sizeof(got), 0x1234), 1000);
	CHECK(!memcmp(got, frame, 1000));
	/* a checksum request without CSUM negotiated is dropped */
	hdr[VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr[VIRTIO_NET_HDR_CSUM_START] = 14;
	guest_mem_write(&f.vm.mem, TX_BUF(2), hdr, sizeof(hdr));
	guest_mem_write(&f.vm.mem, TX_BUF(2) + 12, frame, 100);
	ring_desc(&f, &f.tx, 2, TX_BUF(2), 112, 0);
	ring_publish(&f, &f.tx, 2);
	reg_wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TX_QUEUE);
	CHECK(wait_used(&f, &f.tx, 2));
	virtio_net_get_stats(f.net, &st);
	CHECK_EQ(st.tx_frames, 1);
	CHECK_EQ(st.tx_dropped, 1);
	CHECK_EQ(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	tap_teardown(&f);
}

/* Sends @len bytes from the host side; the TAP hands them to the device. */
static bool host_send(struct tap_fixture *f, const uint8_t *frame, size_t len)
{
	return send(f->pkt_fd, frame, len, 0) == (ssize_t)len;
}

/* Collects one frame out of the RX used ring (mergeable), from entry
 * *@next on; returns its length (without the header) or -1. */
static int guest_recv(struct tap_fixture *f, uint16_t *next, uint8_t *out,
		      unsigned *nbufs)
{
	struct virtq_used_elem e;
	uint8_t hdr[VIRTIO_NET_HDR_SIZE];
	uint16_t want;
	uint32_t total = 0;

	if (!wait_used(f, &f->rx, (uint16_t)(*next + 1)))
		return -1;
	e = ring_used(f, &f->rx, *next);
	guest_mem_read(&f->vm.mem, RX_BUF(e.id), hdr, sizeof(hdr));
	want = (uint16_t)(hdr[10] | hdr[11] << 8);
	/* published together: all of them are there already */
	if ((uint16_t)(ring_used_idx(f, &f->rx) - *next) < want)
		return -1;
	for (uint16_t i = 0; i < want; i++) {
		uint32_t skip = i ? 0 : VIRTIO_NET_HDR_SIZE;

		e = ring_used(f, &f->rx, (uint16_t)(*next + i));
		guest_mem_read(&f->vm.mem, RX_BUF(e.id) + skip, out + total,
			       e.len - skip);
		total += e.len - skip;
	}
	*next = (uint16_t)(*next + want);
	*nbufs = want;
	return (int)total;
}

static void post_guest_rx(struct tap_fixture *f, unsigned first, unsigned n,
			  uint32_t len)
{
	for (unsigned i = first; i < first + n; i++) {
		ring_desc(f, &f->rx, i % QSIZE, RX_BUF(i % QSIZE), len,
			  VIRTQ_DESC_F_WRITE);
		ring_publish(f, &f->rx, (uint16_t)(i % QSIZE));
	}
	reg_wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RX_QUEUE);
}

TEST(net_device_receives_into_merged_buffers_with_backpressure)
{
	static uint8_t frame[1600], got[4096];
	struct virtio_net_stats st;
	struct tap_fixture f;
	uint16_t next = 0;
	unsigned nbufs = 0;
	int len;

	SETUP_OR_SKIP(&f, 1ull << VIRTIO_NET_F_MRG_RXBUF);
	/* 8 buffers of 256 bytes: a 1000-byte frame takes 4 of them */
	post_guest_rx(&f, 0, 8, 256);
	build_frame(frame, 1000, 0xabcd);
	CHECK(host_send(&f, frame, 1000));
	do
		len = guest_recv(&f, &next, got, &nbufs);
	while (len > 0 && memcmp(got + 14, "\xcd\xab\x00\x00", 4));
	CHECK_EQ(len, 1000);
	CHECK_EQ(nbufs, 4);
	CHECK(!memcmp(got, frame, 1000));

	/* 4 buffers left: a second 1000-byte frame fits, a third waits */
	build_frame(frame, 1000, 0xbeef);
	CHECK(host_send(&f, frame, 1000));
	build_frame(frame, 1000, 0xcafe);
	CHECK(host_send(&f, frame, 1000));
	do
		len = guest_recv(&f, &next, got, &nbufs);
	while (len > 0 && memcmp(got + 14, "\xef\xbe\x00\x00", 4));
	CHECK_EQ(len, 1000);
	/* the device read the third frame and found too few buffers */
	for (int i = 0; i < 5000; i++) {
		virtio_net_get_stats(f.net, &st);
		if (st.rx_stalls)
			break;
		usleep(1000);
	}
	CHECK(st.rx_stalls >= 1);
	CHECK_EQ(ring_used_idx(&f, &f.rx), next);	/* nothing partial */
	/* new buffers and a kick: the frame that waited comes in whole */
	post_guest_rx(&f, 8, 8, 256);
	do
		len = guest_recv(&f, &next, got, &nbufs);
	while (len > 0 && memcmp(got + 14, "\xfe\xca\x00\x00", 4));
	CHECK_EQ(len, 1000);
	CHECK(!memcmp(got, frame, 1000));
	virtio_net_get_stats(f.net, &st);
	CHECK(st.rx_merged >= 3);
	CHECK_EQ(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	tap_teardown(&f);
}

TEST(net_device_bad_tx_chain_needs_reset)
{
	static uint8_t frame[128];
	struct tap_fixture f;

	SETUP_OR_SKIP(&f, 0);
	build_frame(frame, 100, 1);
	guest_mem_write(&f.vm.mem, TX_BUF(0) + 12, frame, 100);
	/* a device-writable buffer on the transmit queue */
	ring_desc(&f, &f.tx, 0, TX_BUF(0), 112, VIRTQ_DESC_F_WRITE);
	ring_publish(&f, &f.tx, 0);
	reg_wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TX_QUEUE);
	for (int i = 0; i < 5000 && !(virtio_mmio_status(f.t) &
				      VIRTIO_STATUS_DEVICE_NEEDS_RESET); i++)
		usleep(1000);
	CHECK(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK_EQ(ring_used_idx(&f, &f.tx), 0);
	tap_teardown(&f);

	/* a chain longer than the largest frame */
	SETUP_OR_SKIP(&f, 0);
	ring_desc(&f, &f.tx, 0, TX_BUF(0), VIRTIO_NET_PACKET_MAX + 1, 0);
	ring_publish(&f, &f.tx, 0);
	reg_wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TX_QUEUE);
	for (int i = 0; i < 5000 && !(virtio_mmio_status(f.t) &
				      VIRTIO_STATUS_DEVICE_NEEDS_RESET); i++)
		usleep(1000);
	CHECK(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	tap_teardown(&f);
}

TEST(net_device_config_and_features)
{
	struct tap_fixture f;
	uint8_t cfg[8] = { 0 };
	uint32_t lo;

	SETUP_OR_SKIP(&f, 0);
	for (unsigned i = 0; i < 8; i++)
		bus_access(&f.vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG + i,
			   cfg + i, 1, false);
	CHECK(!memcmp(cfg, "\x52\x54\x00\x72\x6b\x00", 6));
	CHECK_EQ(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	reg_wr(&f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = reg_rd(&f, VIRTIO_MMIO_DEVICE_FEATURES);
	CHECK(lo & (1u << VIRTIO_NET_F_MAC));
	CHECK(lo & (1u << VIRTIO_NET_F_STATUS));
	CHECK(lo & (1u << VIRTIO_NET_F_MRG_RXBUF));
	CHECK(lo & (1u << VIRTIO_NET_F_CSUM));
	CHECK(!(lo & (1u << 10)) && !(lo & (1u << 14)));	/* no UFO */
	/* guest TSO only with guest checksums */
	if (lo & (1u << VIRTIO_NET_F_GUEST_TSO4))
		CHECK(lo & (1u << VIRTIO_NET_F_GUEST_CSUM));
	tap_teardown(&f);
}

TEST(net_device_reset_drops_pending_and_starts_over)
{
	static uint8_t frame[1600], got[4096];
	struct tap_fixture f;
	uint16_t next = 0;
	unsigned nbufs = 0;
	int len;

	SETUP_OR_SKIP(&f, 1ull << VIRTIO_NET_F_MRG_RXBUF);
	/* no buffers: the frame waits in the device */
	build_frame(frame, 500, 0x1111);
	CHECK(host_send(&f, frame, 500));
	post_guest_rx(&f, 0, 1, 256);		/* too few for it */
	usleep(50 * 1000);
	CHECK_EQ(ring_used_idx(&f, &f.rx), 0);
	/* a reset forgets it; a new driver (whole-frame buffers) works */
	reg_wr(&f, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(reg_rd(&f, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(driver_init(&f, 1ull << VIRTIO_NET_F_CSUM), 0);
	post_guest_rx(&f, 0, 4, 1600);
	build_frame(frame, 700, 0x2222);
	CHECK(host_send(&f, frame, 700));
	/* the first frame in (the interface has no addresses: no chatter) */
	len = guest_recv(&f, &next, got, &nbufs);
	CHECK_EQ(len, 700);
	CHECK_EQ(nbufs, 1);
	CHECK(!memcmp(got, frame, 700));
	tap_teardown(&f);
}
