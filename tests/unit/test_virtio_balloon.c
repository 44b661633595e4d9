// SPDX-License-Identifier: MIT
/* virtio-balloon on a bare VM with real guest RAM (a memfd): inflate
 * punches holes in the memfd, PFNs outside RAM change nothing, the
 * config space, the statistics parser, the target. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/balloon.h"
#include "virtio/mmio.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)
#define BASE VIRTIO_MMIO_BASE
#define PAGES_GPA 0x400000ull	/* the pages the test inflates */

struct bfix {
	struct vm vm;
	struct virtio_balloon *b;
	struct virtio_mmio *t;
	struct test_ring ring;
};

static uint32_t rd(struct bfix *f, uint64_t off)
{
	return mmio_rd32(&f->vm.mmio_bus, BASE, off);
}

static void wr(struct bfix *f, uint64_t off, uint32_t v)
{
	mmio_wr32(&f->vm.mmio_bus, BASE, off, v);
}

static int setup(struct bfix *f, bool reporting)
{
	struct virtio_balloon_options opt = { .free_page_reporting = reporting };
	const struct bus_range *r;

	vm_init_bare(&f->vm);
	if (guest_mem_init(&f->vm.mem, MEM_SIZE, false, NULL))
		return -1;
	if (virtio_balloon_create(&f->vm, 0, &opt, &f->b, NULL))
		return -1;
	r = bus_find(&f->vm.mmio_bus, BASE);
	if (!r)
		return -1;
	f->t = r->opaque;
	tr_init(&f->ring, &f->vm.mem, 8);
	return 0;
}

static void go_live(struct bfix *f, uint64_t features)
{
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	   VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(f, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_BALLOON_Q_INFLATE);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, f->ring.size);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, TR_DESC);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, TR_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TR_USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	   VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	   VIRTIO_STATUS_DRIVER_OK);
}

/* Posts @n PFNs (split over two buffers, one PFN straddling them) on the
 * inflate queue and waits until the device used them. */
static bool inflate(struct bfix *f, const uint32_t *pfns, unsigned n,
		    uint16_t want_used)
{
	uint32_t split = 2 * 4 + 1;	/* bytes in the first buffer */

	guest_mem_write(&f->vm.mem, TR_DATA, pfns, 4ull * n);
	tr_desc(&f->ring, 0, TR_DATA, split, VIRTQ_DESC_F_NEXT, 1);
	tr_desc(&f->ring, 1, TR_DATA + split, 4 * n - split, 0, 0);
	tr_publish(&f->ring, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_BALLOON_Q_INFLATE);
	for (int i = 0; i < 500; i++) {
		if (tr_used_idx(&f->ring) == want_used)
			return true;
		usleep(10000);
	}
	return false;
}

static bool is_hole(struct bfix *f, uint64_t gpa)
{
	return lseek(f->vm.mem.memfd, (off_t)gpa, SEEK_HOLE) == (off_t)gpa;
}

TEST(virtio_balloon_identity_and_features)
{
	struct bfix f;

	CHECK_EQ(setup(&f, true), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
	wr(&f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_FEATURES) & 0xff,
		 (1u << VIRTIO_BALLOON_F_MUST_TELL_HOST) |
		 (1u << VIRTIO_BALLOON_F_STATS_VQ) |
		 (1u << VIRTIO_BALLOON_F_PAGE_REPORTING));
	vm_destroy(&f.vm);
}

TEST(virtio_balloon_target_and_actual)
{
	struct virtio_balloon_info in;
	struct bfix f;
	eventfd_t v;

	CHECK_EQ(setup(&f, false), 0);
	CHECK_EQ(virtio_balloon_ram_pages(f.b), MEM_SIZE / 4096);
	CHECK_EQ(virtio_balloon_set_target(f.b, MEM_SIZE / 4096 + 1), -EINVAL);
	CHECK_EQ(virtio_balloon_set_target(f.b, 1000), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES), 1000);
	/* no driver yet: no interrupt (it reads num_pages when it is up) */
	CHECK(eventfd_read(virtio_mmio_irq_fd(f.t), &v) != 0);
	go_live(&f, 0);
	CHECK_EQ(virtio_balloon_set_target(f.b, 1000), 0);
	/* a config interrupt went out */
	CHECK_EQ(eventfd_read(virtio_mmio_irq_fd(f.t), &v), 0);
	CHECK(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* the driver writes actual, not num_pages */
	wr(&f, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL, 700);
	wr(&f, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES, 5);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES), 1000);
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(in.actual_pages, 700);
	CHECK_EQ(in.target_pages, 1000);
	/* reset: the driver's balloon is gone, the target stays */
	wr(&f, VIRTIO_MMIO_STATUS, 0);
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(in.actual_pages, 0);
	CHECK_EQ(in.target_pages, 1000);
	vm_destroy(&f.vm);
}

TEST(virtio_balloon_inflate_punches_holes)
{
	uint32_t pfns[5] = { PAGES_GPA >> 12, (PAGES_GPA >> 12) + 1,
			     (PAGES_GPA >> 12) + 2, (PAGES_GPA >> 12) + 7,
			     (PAGES_GPA >> 12) + 3 };
	struct virtio_balloon_info in;
	struct bfix f;
	uint8_t *p;

	CHECK_EQ(setup(&f, false), 0);
	p = guest_mem_ptr(&f.vm.mem, PAGES_GPA, 8 * 4096);
	memset(p, 0xa5, 8 * 4096);
	CHECK(!is_hole(&f, PAGES_GPA));
	go_live(&f, VIRTIO_TRANSPORT_FEATURES |
		(1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST));
	CHECK(inflate(&f, pfns, 5, 1));
	CHECK_EQ(tr_used_elem(&f.ring, 0).len, 0);
	for (unsigned i = 0; i < 8; i++) {
		bool gone = i <= 3 || i == 7;

		CHECK_EQ(is_hole(&f, PAGES_GPA + i * 4096ull), gone);
		CHECK_EQ(p[i * 4096 + 100], gone ? 0 : 0xa5);
	}
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(in.inflated_pages, 5);
	CHECK_EQ(in.discarded_bytes, 5 * 4096);
	CHECK_EQ(in.bad_requests, 0);
	vm_destroy(&f.vm);
}

struct hook_log {
	unsigned calls;
	size_t n;
	struct page_range r[8];
	int ret;
};

static int log_discard(void *opaque, const struct page_range *ranges,
		       size_t n)
{
	struct hook_log *h = opaque;

	h->calls++;
	h->n = n;
	memcpy(h->r, ranges, (n < 8 ? n : 8) * sizeof(*ranges));
	return h->ret;
}

/* With a discard hook (the pager) the hook punches, not the balloon:
 * one call a request, adjacent pages merged. */
TEST(virtio_balloon_inflate_goes_to_the_discard_hook)
{
	uint32_t pfns[5] = { PAGES_GPA >> 12, (PAGES_GPA >> 12) + 1,
			     (PAGES_GPA >> 12) + 2, (PAGES_GPA >> 12) + 7,
			     (PAGES_GPA >> 12) + 3 };
	struct hook_log h = { 0 };
	struct virtio_balloon_info in;
	uint64_t first = PAGES_GPA >> 12;
	struct bfix f;

	CHECK_EQ(setup(&f, false), 0);
	memset(guest_mem_ptr(&f.vm.mem, PAGES_GPA, 8 * 4096), 0xa5, 8 * 4096);
	virtio_balloon_set_discard(f.b, log_discard, &h);
	go_live(&f, VIRTIO_TRANSPORT_FEATURES |
		(1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST));
	CHECK(inflate(&f, pfns, 5, 1));
	CHECK_EQ(h.calls, 1);
	CHECK_EQ(h.n, 3);
	CHECK(h.r[0].first == first && h.r[0].count == 3);
	CHECK(h.r[1].first == first + 7 && h.r[1].count == 1);
	CHECK(h.r[2].first == first + 3 && h.r[2].count == 1);
	for (unsigned i = 0; i < 8; i++)
		CHECK(!is_hole(&f, PAGES_GPA + i * 4096ull));
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(in.discarded_bytes, 5 * 4096);
	CHECK_EQ(in.discard_errors, 0);
	/* a hook that fails: counted, nothing claimed as discarded */
	h.ret = -EIO;
	tr_publish(&f.ring, 0);
	wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_BALLOON_Q_INFLATE);
	for (int i = 0; i < 500 && tr_used_idx(&f.ring) != 2; i++)
		usleep(10000);
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(h.calls, 2);
	CHECK_EQ(in.discarded_bytes, 5 * 4096);
	CHECK_EQ(in.discard_errors, 1);
	CHECK_EQ(in.inflated_pages, 10);
	vm_destroy(&f.vm);
}

TEST(virtio_balloon_pfn_outside_ram_ignores_request)
{
	/* one good page, then a page past RAM, one in the MMIO hole, and
	 * the largest PFN */
	uint32_t pfns[4] = { PAGES_GPA >> 12, MEM_SIZE >> 12,
			     0xd0000, 0xffffffffu };
	struct virtio_balloon_info in;
	struct bfix f;

	CHECK_EQ(setup(&f, false), 0);
	memset(guest_mem_ptr(&f.vm.mem, PAGES_GPA, 4096), 0x5a, 4096);
	go_live(&f, VIRTIO_TRANSPORT_FEATURES);
	CHECK(inflate(&f, pfns, 4, 1));
	/* nothing discarded, not even the good page; the device lives on */
	CHECK(!is_hole(&f, PAGES_GPA));
	CHECK_EQ(*(uint8_t *)guest_mem_ptr(&f.vm.mem, PAGES_GPA, 1), 0x5a);
	virtio_balloon_get_info(f.b, &in);
	CHECK_EQ(in.bad_requests, 1);
	CHECK_EQ(in.inflated_pages, 0);
	CHECK_EQ(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	vm_destroy(&f.vm);
}

TEST(virtio_balloon_unnegotiated_queue_breaks)
{
	struct bfix f;

	/* reporting not offered: queue 3 has no role */
	CHECK_EQ(setup(&f, false), 0);
	go_live(&f, VIRTIO_TRANSPORT_FEATURES);
	wr(&f, VIRTIO_MMIO_QUEUE_SEL, 3);
	wr(&f, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(&f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x50000);
	wr(&f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x60000);
	wr(&f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x70000);
	wr(&f, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, 3);
	for (int i = 0; i < 500; i++) {
		if (virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
			break;
		usleep(10000);
	}
	CHECK(virtio_mmio_status(f.t) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	vm_destroy(&f.vm);
}

static void put_stat(uint8_t *e, uint16_t tag, uint64_t val)
{
	e[0] = (uint8_t)tag;
	e[1] = (uint8_t)(tag >> 8);
	for (int i = 0; i < 8; i++)
		e[2 + i] = (uint8_t)(val >> (8 * i));
}

TEST(virtio_balloon_parse_stats_bounded)
{
	uint8_t buf[(VIRTIO_BALLOON_STATS_MAX_ENTRIES + 4) * 10 + 7];
	struct virtio_balloon_stats st;

	put_stat(buf, 4, 123456789ull);
	put_stat(buf + 10, 5, 1ull << 40);
	put_stat(buf + 20, 999, 7);		/* unknown tag */
	put_stat(buf + 30, 4, 42);		/* repeated: last wins */
	CHECK_EQ(virtio_balloon_parse_stats(buf, 40 + 9, &st), 4);	/* 9 stray bytes */
	CHECK_EQ(st.valid, (1u << 4) | (1u << 5));
	CHECK_EQ(st.val[4], 42);
	CHECK_EQ(st.val[5], 1ll << 40);
	CHECK_EQ(st.unknown, 1);
	CHECK_EQ(virtio_balloon_parse_stats(buf, 0, &st), 0);
	CHECK_EQ(st.valid, 0);
	/* more entries than the bound: the rest is ignored */
	for (unsigned i = 0; i < VIRTIO_BALLOON_STATS_MAX_ENTRIES + 4; i++)
		put_stat(buf + 10 * i, i < VIRTIO_BALLOON_STATS_MAX_ENTRIES ? 1 : 2, i);
	CHECK_EQ(virtio_balloon_parse_stats(buf, sizeof(buf), &st),
		 VIRTIO_BALLOON_STATS_MAX_ENTRIES);
	CHECK_EQ(st.valid, 1u << 1);
	CHECK(virtio_balloon_stat_name(4) && !strcmp(virtio_balloon_stat_name(4), "mem_free"));
	CHECK(virtio_balloon_stat_name(VIRTIO_BALLOON_STAT_TAGS) == NULL);
}
