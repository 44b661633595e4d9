// SPDX-License-Identifier: MIT
/*
 * hostile case=NAME: a guest that breaks the virtio rules on purpose,
 * against the first virtio-blk device, and checks that the device copes
 * the way virtio 1.2 asks (section 2.1.2): it sets DEVICE_NEEDS_RESET
 * (and raises a configuration-change interrupt) and touches nothing, or
 * it fails the request with an error status; either way the rest of the
 * VM keeps running and, after a reset and re-initialisation, the disk
 * works again.
 *
 * The bad requests are written straight into the blk driver's own
 * descriptor table and available ring (guest/virtqueue.h), bypassing
 * vq_add(), or, for layout cases, into queue registers programmed by
 * hand.  Cases (the expected outcome in brackets):
 *
 *   desc_outside   a data buffer at 0xffff_f000_0000, far above RAM  [reset]
 *   desc_hole      a data buffer in the MMIO hole: the device's own
 *                  register page                                       [reset]
 *   desc_wrap      a buffer whose end wraps past 2^64                 [reset]
 *   desc_edge      a buffer that starts in RAM and runs off its end    [reset]
 *   loop           descriptor 0 -> 1 -> 0 -> ...                       [reset]
 *   chain_long     every descriptor of the queue chained, the last
 *                  back to the first: longer than the queue            [reset]
 *   indirect_long  an indirect table of 2048 entries (> 1024)          [reset]
 *   len_overflow   device-readable segments whose lengths sum past
 *                  4 GiB: 0xffffffff each when RAM has 4 GiB in one
 *                  piece (run with --mem 8G), else 8 MiB pieces, all
 *                  on the same RAM, 1022 of them in an indirect table  [reset]
 *   head_index     an available ring entry >= the queue size           [reset]
 *   next_index     a descriptor's next >= the queue size               [reset]
 *   indirect_len   an indirect descriptor of 24 bytes (not n * 16)     [reset]
 *   indirect_nested an indirect table holding an indirect descriptor  [reset]
 *   used_ro        the used ring in memory the device cannot write
 *                  (see below)                                         [reset]
 *   used_edge      the used ring running off the end of RAM            [reset]
 *   avail_jump     the available index moved by more than the size     [reset]
 *   bad_request    well-formed chains with bad contents: a sector past
 *                  the end, sector * 512 overflowing, an unknown type,
 *                  a 8-byte header, no status byte                     [error]
 *   config_write   writes to the (read-only) blk config space and to
 *                  read-only registers while the driver is live        [ignored]
 *
 * "Read-only memory": from a device's point of view guest RAM is always
 * writable (DMA does not go through the guest's page tables, so a page
 * the guest maps read-only for itself is still RAM to the device, as on
 * real hardware without an IOMMU).  What a device must refuse is a ring
 * that is not RAM at all: used_ro places the used ring in the 32-bit MMIO
 * hole, on the device's own register page (what a ROM or a BAR would be
 * on a PC), and used_edge straddles the end of RAM.  The device must
 * refuse the layout at QueueReady (DEVICE_NEEDS_RESET) rather than write
 * anywhere.
 *
 * For every case the workload also checks that the broken device produced
 * no used entry, that the entropy device (--rng) still answers, then
 * resets the disk, re-initialises it with the driver, reads back the
 * blocks it read before the abuse, writes them back unchanged, flushes
 * and reads them again (so the image is unchanged, which the host
 * checks).  It ends with
 *   result: hostile case=NAME outcome=needs_reset|error_status|ignored
 *           rng=ok reinit=ok
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest/bootinfo.h"
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_blk.h"
#include "guest/virtio_rng.h"
#include "guest/workload.h"

#define CHECK_BLOCKS	8
#define BLOCK_BYTES	4096u
#define CONFIG_BYTES	60	/* rackvm's blk config space */
#define WAIT_NS		(5 * NSEC_PER_SEC)
#define INDIRECT_LONG	2048
#define SUM_PIECE	(8u << 20)
#define FAR_ADDR	0xfffff0000000ull

enum outcome { NEEDS_RESET, ERROR_STATUS, IGNORED };
static const char *const outcome_names[] = {
	"needs_reset", "error_status", "ignored"
};

static struct virtio_blk blk;
static struct virtio_rng rng;

/* What bad requests point at, when they point at something valid. */
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static uint8_t data[BLOCK_BYTES] __attribute__((aligned(4096)));
static volatile uint8_t status_byte;
static struct virtq_desc table[INDIRECT_LONG] __attribute__((aligned(4096)));
/* Rings of the hand-programmed queue (used_ro, used_edge). */
static uint8_t raw_rings[2][4096] __attribute__((aligned(4096)));

static uint8_t before[CHECK_BLOCKS][BLOCK_BYTES] __attribute__((aligned(4096)));
static uint8_t after[CHECK_BLOCKS][BLOCK_BYTES] __attribute__((aligned(4096)));
static uint8_t entropy[64];

static bool all_zero(const uint8_t *p, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static void set_desc(struct virtq_desc *d, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static uint64_t hdr_addr(uint32_t type, uint64_t sector)
{
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status_byte = 0xff;
	return (uintptr_t)&hdr;
}

/*
 * Publishes @head in the driver's available ring, as vq_add() and
 * vq_kick() would, and notifies the device whatever EVENT_IDX says.
 */
static void raw_post(uint16_t head)
{
	struct virtqueue *vq = &blk.vq;

	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	vq->avail_idx++;
	virtio_wmb();
	vq->avail->idx = vq->avail_idx;
	vq->kicked_idx = vq->avail_idx;
	virtio_mb();
	virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

/* Waits for the used entry of a raw_post() and consumes it by hand;
 * returns its used length. */
static uint32_t raw_complete(void)
{
	struct virtqueue *vq = &blk.vq;
	uint64_t deadline = rdtsc() + ns_to_tsc(WAIT_NS);
	uint32_t len;

	while (vq->used->idx == vq->last_used) {
		GUEST_ASSERT_MSG(rdtsc() < deadline && !virtio_needs_reset(blk.dev),
				 "hostile: no completion for a raw request");
		cpu_relax();
	}
	virtio_rmb();
	len = vq->used->ring[vq->last_used & (vq->size - 1)].len;
	vq->last_used++;
	if (vq->event_idx)
		*vq->used_event = (uint16_t)(vq->last_used - 1);
	return len;
}

/* Polls Status for DEVICE_NEEDS_RESET for up to WAIT_NS. */
static bool wait_needs_reset(struct virtio_dev *d)
{
	uint64_t deadline = rdtsc() + ns_to_tsc(WAIT_NS);

	while (rdtsc() < deadline) {
		if (virtio_read32(d, VIRTIO_MMIO_STATUS) &
		    VIRTIO_STATUS_NEEDS_RESET)
			return true;
		tsc_delay_ns(100 * NSEC_PER_USEC);
	}
	return false;
}

/* The lowest RAM range that holds @bytes, or 0 if none. */
static uint64_t ram_with(uint64_t bytes)
{
	unsigned int i;

	for (i = 0; i < boot_info.nr_ram; i++) {
		if (boot_info.ram[i].start >= 0x100000 &&
		    boot_info.ram[i].end - boot_info.ram[i].start >= bytes)
			return boot_info.ram[i].start;
	}
	return 0;
}

/* The end of the highest RAM range. */
static uint64_t ram_top(void)
{
	GUEST_ASSERT_MSG(boot_info.nr_ram > 0, "hostile: no memory map");
	return boot_info.ram[boot_info.nr_ram - 1].end;
}

/* ---- bad chains in the driver's queue ------------------------------- */

/* header (readable) -> one data buffer (writable) -> status */
static void post_with_data(uint64_t addr, uint32_t len)
{
	struct virtq_desc *d = blk.vq.desc;

	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], addr, len, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_desc(&d[2], (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0);
	raw_post(0);
}

static void case_desc_outside(void)
{
	post_with_data(FAR_ADDR, BLOCK_BYTES);
}

static void case_desc_hole(void)
{
	post_with_data(blk.dev->base, BLOCK_BYTES);
}

static void case_desc_wrap(void)
{
	post_with_data(0xfffffffffffff000ull, 0x2000);
}

static void case_desc_edge(void)
{
	post_with_data(ram_top() - 512, BLOCK_BYTES);
}

static void case_loop(void)
{
	struct virtq_desc *d = blk.vq.desc;

	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], (uintptr_t)data, 512,
		 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	raw_post(0);
}

static void case_chain_long(void)
{
	struct virtq_desc *d = blk.vq.desc;
	uint16_t i, n = blk.vq.size;

	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, 1);
	for (i = 1; i < n; i++)
		set_desc(&d[i], (uintptr_t)data, 512,
			 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			 (uint16_t)((i + 1) % n));
	raw_post(0);
}

/* The head descriptor points at @n entries of table[]. */
static void post_indirect(uint32_t table_bytes)
{
	set_desc(&blk.vq.desc[0], (uintptr_t)table, table_bytes,
		 VIRTQ_DESC_F_INDIRECT, 0);
	raw_post(0);
}

/* header, @n - 2 buffers of @len at @addr (readable: an OUT request),
 * status, in table[]. */
static void fill_table(unsigned int n, uint64_t addr, uint32_t len)
{
	unsigned int i;

	set_desc(&table[0], hdr_addr(VIRTIO_BLK_T_OUT, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, 1);
	for (i = 1; i < n - 1; i++)
		set_desc(&table[i], addr, len, VIRTQ_DESC_F_NEXT,
			 (uint16_t)(i + 1));
	set_desc(&table[n - 1], (uintptr_t)&status_byte, 1,
		 VIRTQ_DESC_F_WRITE, 0);
}

static void case_indirect_long(void)
{
	fill_table(INDIRECT_LONG, (uintptr_t)data, 512);
	post_indirect(INDIRECT_LONG * sizeof(struct virtq_desc));
}

static void case_len_overflow(void)
{
	uint64_t big = ram_with(0xffffffffull);
	struct virtq_desc *d = blk.vq.desc;
	uint64_t piece;

	if (big) {
		/* header, two 0xffffffff readable buffers, status */
		uart_printf("hostile: 0xffffffff-byte segments at 0x%llx\n",
			    (unsigned long long)big);
		set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_OUT, 0), sizeof(hdr),
			 VIRTQ_DESC_F_NEXT, 1);
		set_desc(&d[1], big, 0xffffffffu, VIRTQ_DESC_F_NEXT, 2);
		set_desc(&d[2], big, 0xffffffffu, VIRTQ_DESC_F_NEXT, 3);
		set_desc(&d[3], (uintptr_t)&status_byte, 1,
			 VIRTQ_DESC_F_WRITE, 0);
		raw_post(0);
		return;
	}
	GUEST_ASSERT_MSG(blk.vq.indirect, "hostile: len_overflow needs "
			 "INDIRECT_DESC or 4 GiB of RAM in one piece");
	piece = ram_with(SUM_PIECE);
	GUEST_ASSERT_MSG(piece, "hostile: no 8 MiB of RAM in one piece");
	uart_printf("hostile: 1022 segments of 8 MiB at 0x%llx\n",
		    (unsigned long long)piece);
	fill_table(1024, piece, SUM_PIECE);
	post_indirect(1024 * sizeof(struct virtq_desc));
}

static void case_head_index(void)
{
	raw_post((uint16_t)(blk.vq.size + 3));
}

static void case_next_index(void)
{
	struct virtq_desc *d = blk.vq.desc;

	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, (uint16_t)(blk.vq.size + 7));
	raw_post(0);
}

static void case_indirect_len(void)
{
	fill_table(3, (uintptr_t)data, 512);
	post_indirect(24);
}

static void case_indirect_nested(void)
{
	set_desc(&table[0], (uintptr_t)&table[4], 48, VIRTQ_DESC_F_INDIRECT, 0);
	post_indirect(16);
}

static void case_avail_jump(void)
{
	struct virtqueue *vq = &blk.vq;
	struct virtq_desc *d = vq->desc;
	uint16_t i;

	/* a valid request in every ring slot, then an index that claims
	 * one more than the ring holds (published with a single kick) */
	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr),
		 VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], (uintptr_t)data, 512,
		 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_desc(&d[2], (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0);
	for (i = 0; i < vq->size; i++)
		vq->avail->ring[i] = 0;
	vq->avail_idx += vq->size + 1;
	virtio_wmb();
	vq->avail->idx = vq->avail_idx;
	vq->kicked_idx = vq->avail_idx;
	virtio_mb();
	virtio_write32(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

/* Hand-programmed queue 0 whose used ring is at @used. */
static void raw_queue(uint64_t used)
{
	struct virtio_dev *d = blk.dev;
	int err;

	err = virtio_dev_init(d, VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
			      VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 0);
	GUEST_ASSERT_MSG(err == 0, "hostile: init: %s", virtio_strerror(err));
	uart_printf("hostile: queue 0 with its used ring at 0x%llx\n",
		    (unsigned long long)used);
	memset(raw_rings, 0, sizeof(raw_rings));
	virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, 0);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, 16);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uintptr_t)raw_rings[0]);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uintptr_t)raw_rings[1]);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, used >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	virtio_driver_ok(d);
	/* and a kick, in case a device accepted the layout */
	virtio_write32(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void case_used_ro(void)
{
	virtio_dev_reset(blk.dev);
	raw_queue(blk.dev->base);
}

static void case_used_edge(void)
{
	virtio_dev_reset(blk.dev);
	raw_queue(ram_top() - 64);
}

/* ---- cases the device answers with a status ------------------------- */

static void expect_status(const char *what, int got, int want)
{
	GUEST_ASSERT_MSG(got == want, "hostile: %s: status %s, expected %s",
			 what, virtio_blk_status_name(got),
			 virtio_blk_status_name(want));
	uart_printf("hostile: %s: %s\n", what, virtio_blk_status_name(got));
}

static void case_bad_request(void)
{
	struct virtq_desc saved[VQ_MAX_SIZE], *d = blk.vq.desc;
	uint32_t len;

	expect_status("read past the end",
		      virtio_blk_read(&blk, blk.capacity, data, 512),
		      VIRTIO_BLK_S_IOERR);
	expect_status("read across the end",
		      virtio_blk_read(&blk, blk.capacity - 1, data, 1024),
		      VIRTIO_BLK_S_IOERR);
	expect_status("sector * 512 overflows",
		      virtio_blk_read(&blk, 0xfffffffffffffff8ull, data, 4096),
		      VIRTIO_BLK_S_IOERR);
	expect_status("write of half a sector",
		      virtio_blk_write(&blk, 0, data, 256),
		      VIRTIO_BLK_S_IOERR);

	/* raw chains; the driver's free list lives in the descriptors */
	memcpy(saved, d, sizeof(saved));
	set_desc(&d[0], hdr_addr(0x77, 0), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	set_desc(&d[1], (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0);
	raw_post(0);
	len = raw_complete();
	expect_status("unknown request type", status_byte, VIRTIO_BLK_S_UNSUPP);
	GUEST_ASSERT_EQ(len, 1);

	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), 8, VIRTQ_DESC_F_NEXT, 1);
	raw_post(0);
	len = raw_complete();
	expect_status("8-byte header", status_byte, VIRTIO_BLK_S_IOERR);

	/* nothing device-writable: nowhere to put a status, used len 0 */
	set_desc(&d[0], hdr_addr(VIRTIO_BLK_T_IN, 0), sizeof(hdr), 0, 0);
	raw_post(0);
	len = raw_complete();
	GUEST_ASSERT_MSG(len == 0 && status_byte == 0xff,
			 "hostile: chain without a status byte: used len %u "
			 "status 0x%x", len, status_byte);
	uart_printf("hostile: no status byte: used len 0\n");
	memcpy(d, saved, sizeof(saved));

	/* still live: a good read right after */
	expect_status("good read", virtio_blk_read(&blk, 0, data, 4096),
		      VIRTIO_BLK_S_OK);
	GUEST_ASSERT_MSG(!memcmp(data, before[0], 4096),
			 "hostile: block 0 reads differently");
}

/* ---- config space writes --------------------------------------------- */

static void config_snapshot(uint8_t *cfg)
{
	virtio_config_read(blk.dev, 0, cfg, CONFIG_BYTES);
}

static void case_config_write(void)
{
	static const unsigned int ro_regs[] = {
		VIRTIO_MMIO_MAGIC, VIRTIO_MMIO_VERSION, VIRTIO_MMIO_DEVICE_ID,
		VIRTIO_MMIO_VENDOR_ID, VIRTIO_MMIO_DEVICE_FEATURES,
		VIRTIO_MMIO_QUEUE_NUM_MAX, VIRTIO_MMIO_CONFIG_GENERATION,
	};
	static const unsigned int queue_regs[] = {
		VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_DESC_LOW,
		VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_DRIVER_LOW,
		VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH,
	};
	uint8_t cfg0[CONFIG_BYTES], cfg1[CONFIG_BYTES];
	uint32_t regs0[8], qregs0[8], gen0;
	uintptr_t cfg = blk.dev->base + VIRTIO_MMIO_CONFIG;
	unsigned int i, off;

	config_snapshot(cfg0);
	gen0 = virtio_read32(blk.dev, VIRTIO_MMIO_CONFIG_GENERATION);
	for (i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++)
		regs0[i] = virtio_read32(blk.dev, ro_regs[i]);
	for (i = 0; i < sizeof(queue_regs) / sizeof(queue_regs[0]); i++)
		qregs0[i] = virtio_read32(blk.dev, queue_regs[i]);

	/* every width over the whole config window, inside and past the
	 * device's config space */
	for (off = 0; off + 4 <= 0x1000 - VIRTIO_MMIO_CONFIG; off += 4) {
		*(volatile uint32_t *)(cfg + off) = 0xdeadbeef;
		*(volatile uint16_t *)(cfg + off + 2) = 0x5a5a;
		*(volatile uint8_t *)(cfg + off + 1) = 0xa5;
	}
	*(volatile uint64_t *)(cfg + VIRTIO_BLK_CFG_CAPACITY) = ~0ull;
	for (i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++)
		virtio_write32(blk.dev, ro_regs[i], 0x41414141);
	/* a live queue's registers may not change (4.2.2.2) */
	virtio_write32(blk.dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	for (i = 0; i < sizeof(queue_regs) / sizeof(queue_regs[0]); i++)
		virtio_write32(blk.dev, queue_regs[i], 0xfffff000);
	/* and registers that do not exist */
	for (off = 0x0a8; off < 0x0fc; off += 4)
		virtio_write32(blk.dev, off, 0xffffffff);

	config_snapshot(cfg1);
	GUEST_ASSERT_MSG(!memcmp(cfg0, cfg1, CONFIG_BYTES),
			 "hostile: the blk config space changed");
	GUEST_ASSERT_EQ(virtio_read32(blk.dev, VIRTIO_MMIO_CONFIG_GENERATION),
			gen0);
	for (i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++)
		GUEST_ASSERT_MSG(virtio_read32(blk.dev, ro_regs[i]) == regs0[i],
				 "hostile: register 0x%x changed", ro_regs[i]);
	for (i = 0; i < sizeof(queue_regs) / sizeof(queue_regs[0]); i++)
		GUEST_ASSERT_MSG(virtio_read32(blk.dev, queue_regs[i]) ==
				 qregs0[i], "hostile: live queue register 0x%x "
				 "changed", queue_regs[i]);
	uart_printf("hostile: config capacity=%llu unchanged after writes\n",
		    (unsigned long long)blk.capacity);
	GUEST_ASSERT_MSG(!virtio_needs_reset(blk.dev),
			 "hostile: config writes broke the device");
	/* still serving the same queue */
	expect_status("read after config writes",
		      virtio_blk_read(&blk, 0, data, 4096), VIRTIO_BLK_S_OK);
	GUEST_ASSERT_MSG(!memcmp(data, before[0], 4096),
			 "hostile: block 0 reads differently");
}

/* ---- the driver ---------------------------------------------------------- */

struct hostile_case {
	const char *name;
	void (*post)(void);
	enum outcome outcome;
	bool raw_layout;	/* programs its own queue: no used ring check */
};

static const struct hostile_case cases[] = {
	{ "desc_outside", case_desc_outside, NEEDS_RESET, false },
	{ "desc_hole", case_desc_hole, NEEDS_RESET, false },
	{ "desc_wrap", case_desc_wrap, NEEDS_RESET, false },
	{ "desc_edge", case_desc_edge, NEEDS_RESET, false },
	{ "loop", case_loop, NEEDS_RESET, false },
	{ "chain_long", case_chain_long, NEEDS_RESET, false },
	{ "indirect_long", case_indirect_long, NEEDS_RESET, false },
	{ "len_overflow", case_len_overflow, NEEDS_RESET, false },
	{ "head_index", case_head_index, NEEDS_RESET, false },
	{ "next_index", case_next_index, NEEDS_RESET, false },
	{ "indirect_len", case_indirect_len, NEEDS_RESET, false },
	{ "indirect_nested", case_indirect_nested, NEEDS_RESET, false },
	{ "used_ro", case_used_ro, NEEDS_RESET, true },
	{ "used_edge", case_used_edge, NEEDS_RESET, true },
	{ "avail_jump", case_avail_jump, NEEDS_RESET, false },
	{ "bad_request", case_bad_request, ERROR_STATUS, false },
	{ "config_write", case_config_write, IGNORED, false },
};

static void blk_up(const struct cmdline *c)
{
	int err = virtio_blk_init(&blk, c, 0);

	GUEST_ASSERT_MSG(err == 0, "hostile: virtio-blk: %s",
			 virtio_strerror(err));
	GUEST_ASSERT_MSG(blk.capacity >= CHECK_BLOCKS * BLOCK_BYTES / 512,
			 "hostile: the disk needs %u KiB",
			 CHECK_BLOCKS * BLOCK_BYTES / 1024);
}

static void read_blocks(uint8_t (*buf)[BLOCK_BYTES], const char *when)
{
	unsigned int i;
	int st;

	for (i = 0; i < CHECK_BLOCKS; i++) {
		st = virtio_blk_read(&blk, i * (BLOCK_BYTES / 512), buf[i],
				     BLOCK_BYTES);
		GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK,
				 "hostile: read of block %u %s: %s", i, when,
				 virtio_blk_status_name(st));
	}
}

/* The entropy device is another virtio device of the same VM. */
static void check_rng(const char *when)
{
	int err;

	memset(entropy, 0, sizeof(entropy));
	err = virtio_rng_read(&rng, entropy, sizeof(entropy));
	GUEST_ASSERT_MSG(err == 0, "hostile: rng %s: %s", when,
			 virtio_strerror(err));
	GUEST_ASSERT_MSG(!all_zero(entropy, sizeof(entropy)),
			 "hostile: rng %s returned zeroes", when);
}

/* Reset, re-initialise, and use the disk: reads match what was read
 * before, the same data written back, flushed, read again. */
static void check_reinit(const struct cmdline *c)
{
	unsigned int i;
	int st;

	GUEST_ASSERT_EQ(virtio_dev_reset(blk.dev), 0);
	GUEST_ASSERT_EQ(virtio_read32(blk.dev, VIRTIO_MMIO_STATUS), 0);
	blk_up(c);
	read_blocks(after, "after the reset");
	for (i = 0; i < CHECK_BLOCKS; i++)
		GUEST_ASSERT_MSG(!memcmp(before[i], after[i], BLOCK_BYTES),
				 "hostile: block %u changed", i);
	for (i = 0; i < CHECK_BLOCKS; i++) {
		st = virtio_blk_write(&blk, i * (BLOCK_BYTES / 512), before[i],
				      BLOCK_BYTES);
		GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK,
				 "hostile: write after the reset: %s",
				 virtio_blk_status_name(st));
	}
	st = virtio_blk_flush(&blk);
	GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK, "hostile: flush: %s",
			 virtio_blk_status_name(st));
	memset(after, 0, sizeof(after));
	read_blocks(after, "after the rewrite");
	for (i = 0; i < CHECK_BLOCKS; i++)
		GUEST_ASSERT_MSG(!memcmp(before[i], after[i], BLOCK_BYTES),
				 "hostile: block %u reads back differently", i);
}

static void expect_needs_reset(const struct hostile_case *hc)
{
	struct virtio_dev *d = blk.dev;
	uint16_t used_before = blk.vq.used->idx;
	uint32_t s;

	GUEST_ASSERT_MSG(wait_needs_reset(d), "hostile: case %s: no "
			 "DEVICE_NEEDS_RESET in 5 s (status 0x%x)", hc->name,
			 virtio_read32(d, VIRTIO_MMIO_STATUS));
	s = virtio_read32(d, VIRTIO_MMIO_STATUS);
	uart_printf("hostile: %s: device status 0x%x (DEVICE_NEEDS_RESET)\n",
		    hc->name, s);
	GUEST_ASSERT_MSG(virtio_read32(d, VIRTIO_MMIO_INTERRUPT_STATUS) &
			 0x2, "hostile: no configuration change interrupt "
			 "with DEVICE_NEEDS_RESET");
	/* only the device clears it, and kicks now do nothing */
	virtio_write32(d, VIRTIO_MMIO_STATUS, s & ~VIRTIO_STATUS_NEEDS_RESET);
	GUEST_ASSERT_MSG(virtio_read32(d, VIRTIO_MMIO_STATUS) &
			 VIRTIO_STATUS_NEEDS_RESET,
			 "hostile: the driver cleared DEVICE_NEEDS_RESET");
	if (!hc->raw_layout) {
		virtio_write32(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		tsc_delay_ns(20 * NSEC_PER_MSEC);
		GUEST_ASSERT_MSG(blk.vq.used->idx == used_before,
				 "hostile: a broken queue produced a used "
				 "entry");
	}
}

static void hostile_run(const struct cmdline *c)
{
	const char *name = cmdline_get(c, "case");
	const struct hostile_case *hc = NULL;
	unsigned int i;
	int err;

	for (i = 0; name && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!strcmp(cases[i].name, name))
			hc = &cases[i];
	}
	if (!hc) {
		uart_printf("hostile: cases:");
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			uart_printf(" %s", cases[i].name);
		uart_printf("\n");
		guest_assert_fail(__FILE__, __LINE__, "hostile: case=%s?",
				  name ? name : "");
	}
	tsc_hz();
	err = virtio_rng_init(&rng, c);
	GUEST_ASSERT_MSG(err == 0, "hostile: needs --rng: %s",
			 virtio_strerror(err));
	blk_up(c);
	read_blocks(before, "before");
	check_rng("before");

	uart_printf("hostile: case %s\n", hc->name);
	hc->post();
	if (hc->outcome == NEEDS_RESET)
		expect_needs_reset(hc);
	check_rng("after the abuse");
	uart_printf("hostile: %s: the rest of the VM still runs\n", hc->name);

	check_reinit(c);
	guest_result("hostile case=%s outcome=%s rng=ok reinit=ok",
		     hc->name, outcome_names[hc->outcome]);
	guest_done(0);
}

static const char *const hostile_params[] = { "case", NULL };

const struct workload workload_hostile = {
	.name = "hostile",
	.usage = "case=NAME: misbehaves towards the first virtio-blk device",
	.params = hostile_params,
	.run = hostile_run,
};
