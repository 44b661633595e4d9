// SPDX-License-Identifier: MIT
/*
 * Saving and loading virtio-net on a real TAP (skipped without
 * /dev/net/tun or the right to create one): while quiesced a frame waits
 * in the TAP and reaches the guest only after unquiesce; a frame the
 * device had read and found too few buffers for travels in the state
 * and arrives whole on the second device, whose receive and transmit
 * rings carry on from the first's; a device with another MAC refuses
 * the state.
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
#include <unistd.h>

#include "harness.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)
#define ETHERTYPE 0x88b6
#define QSIZE 16
#define RXQ 0x10000ull		/* desc, avail, used at +0, +0x1000, +0x2000 */
#define TXQ 0x20000ull
#define RX_BUF(i) (0x100000ull + 0x1000ull * ((i) % QSIZE))
#define TX_BUF(i) (0x200000ull + 0x1000ull * ((i) % QSIZE))
#define FRAME 600		/* + header: three 256-byte buffers */

struct nfix {
	struct vm vm;
	struct virtio_net *net;
	char ifname[IFNAMSIZ];
	int pkt_fd;
	uint16_t rx_avail, tx_avail;	/* the driver's avail indexes */
	uint16_t rx_posted;		/* receive buffers posted so far */
};

static void wr(struct nfix *f, uint64_t off, uint32_t v)
{
	mmio_wr32(&f->vm.mmio_bus, VIRTIO_MMIO_BASE, off, v);
}

static void queue(struct nfix *f, unsigned q, uint64_t base)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)base + 0x1000);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)base + 0x2000);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void driver_init(struct nfix *f)
{
	uint32_t ok = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK;

	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_NET_F_MRG_RXBUF);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);	/* VERSION_1 */
	wr(f, VIRTIO_MMIO_STATUS, ok);
	queue(f, VIRTIO_NET_RX_QUEUE, RXQ);
	queue(f, VIRTIO_NET_TX_QUEUE, TXQ);
	wr(f, VIRTIO_MMIO_STATUS, ok | VIRTIO_STATUS_DRIVER_OK);
}

static int iface_up(const char *name)
{
	struct ifreq ifr = { 0 };
	char path[128];
	int s, fd, ret = -1;

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

static int packet_socket(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETHERTYPE) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));

	if (s < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(name);
	if (!sll.sll_ifindex || bind(s, (struct sockaddr *)&sll, sizeof(sll))) {
		close(s);
		return -1;
	}
	return s;
}

/* A VM with virtio-net 0 on TAP "rkvs<tag><pid>"; the driver is left to
 * the test.  0, 1 to skip (*@why), -1 on failure. */
static int nfix_create(struct nfix *f, char tag, const uint8_t *mac,
		       const char **why)
{
	struct virtio_net_options opt = { .has_mac = mac != NULL };
	struct errmsg err = { "" };
	int ret;

	memset(f, 0, sizeof(*f));
	f->pkt_fd = -1;
	if (access("/dev/net/tun", R_OK | W_OK)) {
		*why = "no usable /dev/net/tun";
		return 1;
	}
	snprintf(f->ifname, sizeof(f->ifname), "rkvs%c%d", tag,
		 (int)getpid() % 1000000);
	opt.tap = f->ifname;
	if (mac)
		memcpy(opt.mac, mac, ETH_ADDR_LEN);
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
	if (iface_up(f->ifname))
		return -1;
	f->pkt_fd = packet_socket(f->ifname);
	return f->pkt_fd < 0 ? -1 : 0;
}

static void nfix_destroy(struct nfix *f)
{
	if (f->pkt_fd >= 0)
		close(f->pkt_fd);
	f->pkt_fd = -1;
	vm_destroy(&f->vm);
}

#define CREATE_OR_SKIP(f, tag, mac)                                       \
	do {                                                              \
		const char *why_ = "";                                    \
		int r_ = nfix_create(f, tag, mac, &why_);                 \
		if (r_ > 0)                                               \
			SKIP(why_);                                       \
		CHECK_EQ(r_, 0);                                          \
	} while (0)

static void publish(struct nfix *f, uint64_t qbase, uint16_t *avail,
		    uint16_t head)
{
	guest_mem_write(&f->vm.mem, qbase + 0x1004 + 2ull * (*avail % QSIZE),
			&head, 2);
	(*avail)++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	guest_mem_write(&f->vm.mem, qbase + 0x1002, avail, 2);
}

static void post_rx(struct nfix *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++, f->rx_posted++) {
		struct virtq_desc d = { RX_BUF(f->rx_posted), 256,
					VIRTQ_DESC_F_WRITE, 0 };
		uint16_t head = f->rx_posted % QSIZE;

		guest_mem_write(&f->vm.mem, RXQ + 16ull * head, &d, sizeof(d));
		publish(f, RXQ, &f->rx_avail, head);
	}
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_RX_QUEUE);
}

static void build_frame(uint8_t *p, uint32_t tag)
{
	memset(p, 0xff, 6);
	memcpy(p + 6, "\x02\x72\x6b\x76\x6d\xfd", 6);
	p[12] = ETHERTYPE >> 8;
	p[13] = ETHERTYPE & 0xff;
	memcpy(p + 14, &tag, 4);
	for (uint32_t i = 18; i < FRAME; i++)
		p[i] = (uint8_t)(i ^ tag);
}

static void send_tx(struct nfix *f, uint32_t tag)
{
	uint8_t pkt[VIRTIO_NET_HDR_SIZE + FRAME] = { 0 };
	uint16_t head = f->tx_avail % QSIZE;
	struct virtq_desc d = { TX_BUF(head), sizeof(pkt), 0, 0 };

	build_frame(pkt + VIRTIO_NET_HDR_SIZE, tag);
	guest_mem_write(&f->vm.mem, TX_BUF(head), pkt, sizeof(pkt));
	guest_mem_write(&f->vm.mem, TXQ + 16ull * head, &d, sizeof(d));
	publish(f, TXQ, &f->tx_avail, head);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TX_QUEUE);
}

static uint16_t used_idx(struct nfix *f, uint64_t qbase)
{
	return __atomic_load_n((uint16_t *)guest_mem_ptr(&f->vm.mem,
							 qbase + 0x2002, 2),
			       __ATOMIC_ACQUIRE);
}

static bool wait_used(struct nfix *f, uint64_t qbase, uint16_t want)
{
	for (int i = 0; i < 5000; i++) {
		if (used_idx(f, qbase) == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* The frame of used entries [*next, ...): its tag, or 0. */
static uint32_t guest_frame(struct nfix *f, uint16_t *next, unsigned *nbufs)
{
	uint8_t buf[4096];
	struct virtq_used_elem e;
	uint32_t total = 0, tag = 0;
	uint16_t n;

	guest_mem_read(&f->vm.mem, RXQ + 0x2004 + 8ull * (*next % QSIZE), &e,
		       sizeof(e));
	guest_mem_read(&f->vm.mem, RX_BUF(e.id), buf, VIRTIO_NET_HDR_SIZE);
	n = (uint16_t)(buf[VIRTIO_NET_HDR_NUM_BUFFERS] |
		       buf[VIRTIO_NET_HDR_NUM_BUFFERS + 1] << 8);
	for (uint16_t i = 0; i < n && total + 256 <= sizeof(buf); i++) {
		guest_mem_read(&f->vm.mem, RXQ + 0x2004 + 8ull * ((*next + i) % QSIZE),
			       &e, sizeof(e));
		guest_mem_read(&f->vm.mem, RX_BUF(e.id), buf + total, e.len);
		total += e.len;
	}
	*next = (uint16_t)(*next + n);
	*nbufs = n;
	if (total == VIRTIO_NET_HDR_SIZE + FRAME)
		memcpy(&tag, buf + VIRTIO_NET_HDR_SIZE + 14, 4);
	return tag;
}

static bool host_send(struct nfix *f, uint32_t tag)
{
	uint8_t frame[FRAME];

	build_frame(frame, tag);
	return send(f->pkt_fd, frame, FRAME, 0) == FRAME;
}

static bool host_got(struct nfix *f, uint32_t tag)
{
	struct pollfd p = { .fd = f->pkt_fd, .events = POLLIN };
	uint8_t buf[2048];
	ssize_t n;

	while (poll(&p, 1, 5000) == 1) {
		n = recv(f->pkt_fd, buf, sizeof(buf), 0);
		if (n == FRAME && !memcmp(buf + 14, &tag, 4))
			return true;
	}
	return false;
}

static bool wait_stall(struct nfix *f)
{
	struct virtio_net_stats st = { 0 };

	for (int i = 0; i < 5000 && !st.rx_stalls; i++) {
		usleep(1000);
		virtio_net_get_stats(f->net, &st);
	}
	return st.rx_stalls > 0;
}

static bool got_irq(struct nfix *f)
{
	struct pollfd p = {
		.fd = virtio_mmio_irq_fd(virtio_net_transport(f->net)),
		.events = POLLIN,
	};
	eventfd_t v;

	return poll(&p, 1, 5000) == 1 && eventfd_read(p.fd, &v) == 0;
}

TEST(virtio_state_net_restored_device_continues)
{
	const struct vm_state_entry *e;
	struct errmsg err = { "" };
	struct nfix f, g;
	struct state_buf b;
	uint8_t *ram;
	uint16_t next = 0;
	unsigned nbufs;

	CREATE_OR_SKIP(&f, 'a', NULL);
	driver_init(&f);
	send_tx(&f, 0x1001);
	CHECK(host_got(&f, 0x1001));
	CHECK(wait_used(&f, TXQ, 1));
	/* a frame into three buffers; the next one finds one and waits */
	post_rx(&f, 4);
	CHECK(host_send(&f, 0x2001));
	CHECK(wait_used(&f, RXQ, 3));
	CHECK_EQ(guest_frame(&f, &next, &nbufs), 0x2001);
	CHECK_EQ(nbufs, 3);
	CHECK(host_send(&f, 0x2002));
	CHECK(wait_stall(&f));

	/* quiesced: a frame from the host stays in the TAP */
	e = vstate_entry(&f.vm, 0);
	CHECK_EQ(e->ops->quiesce(e->opaque), 0);
	CHECK_EQ(vstate_save(&f.vm, 0, &b), 0);
	ram = malloc(MEM_SIZE);
	CHECK(ram != NULL);
	memcpy(ram, f.vm.mem.base, MEM_SIZE);
	CHECK(host_send(&f, 0x2003));
	post_rx(&f, 6);
	usleep(100 * 1000);
	CHECK_EQ(used_idx(&f, RXQ), 3);
	/* unquiesced (a snapshot): both come in, in order */
	e->ops->unquiesce(e->opaque);
	CHECK(wait_used(&f, RXQ, 9));
	CHECK_EQ(guest_frame(&f, &next, &nbufs), 0x2002);
	CHECK_EQ(guest_frame(&f, &next, &nbufs), 0x2003);
	nfix_destroy(&f);

	/* the other side: its own TAP of the same name, RAM as saved */
	CREATE_OR_SKIP(&g, 'a', NULL);
	memcpy(g.vm.mem.base, ram, MEM_SIZE);
	CHECK_EQ(vstate_load(&g.vm, 0, b.data, b.len, &err), 0);
	g.rx_avail = g.rx_posted = 4;
	g.tx_avail = 1;
	next = 3;
	/* the frame that waited is here, and still waits for buffers */
	CHECK(wait_stall(&g));
	CHECK_EQ(used_idx(&g, RXQ), 3);
	post_rx(&g, 4);
	CHECK(wait_used(&g, RXQ, 6));
	CHECK(got_irq(&g));
	CHECK_EQ(guest_frame(&g, &next, &nbufs), 0x2002);
	CHECK_EQ(nbufs, 3);		/* still mergeable */
	/* and the transmit ring goes on */
	send_tx(&g, 0x1002);
	CHECK(host_got(&g, 0x1002));
	CHECK(wait_used(&g, TXQ, 2));
	CHECK_EQ(virtio_mmio_status(virtio_net_transport(g.net)) &
		 VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	free(ram);
	state_buf_release(&b);
	nfix_destroy(&g);
}

TEST(virtio_state_net_other_mac_is_refused)
{
	static const uint8_t other[ETH_ADDR_LEN] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct errmsg err = { "" };
	struct state_buf b, before, after;
	struct nfix f, g;

	CREATE_OR_SKIP(&f, 'b', NULL);
	driver_init(&f);
	CHECK_EQ(vstate_save(&f.vm, 0, &b), 0);
	CREATE_OR_SKIP(&g, 'c', other);
	CHECK_EQ(vstate_save(&g.vm, 0, &before), 0);
	CHECK_EQ(vstate_load(&g.vm, 0, b.data, b.len, &err), -EINVAL);
	fprintf(stderr, "refused: %s\n", err.text);
	CHECK(strstr(err.text, "virtio-net0: the guest knows MAC "
		      "52:54:00:72:6b:00") == err.text);
	CHECK_EQ(vstate_save(&g.vm, 0, &after), 0);
	CHECK(after.len == before.len && !memcmp(after.data, before.data, after.len));
	state_buf_release(&b);
	state_buf_release(&before);
	state_buf_release(&after);
	nfix_destroy(&g);
	nfix_destroy(&f);
}
