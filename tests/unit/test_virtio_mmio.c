// SPDX-License-Identifier: MIT
/* The virtio-mmio transport on a bare VM (no KVM): registers, feature
 * negotiation, queue setup, kicks served by the I/O thread, interrupts
 * on the irq eventfd, DEVICE_NEEDS_RESET, reset; and the command line. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/rng.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)
#define RNG_INDEX 2u
#define RNG_BASE (VIRTIO_MMIO_BASE + RNG_INDEX * VIRTIO_MMIO_SIZE)

struct mmio_fixture {
	struct vm vm;
	struct virtio_mmio *t;
	struct test_ring ring;
};

static uint32_t rd(struct mmio_fixture *f, uint64_t off)
{
	return mmio_rd32(&f->vm.mmio_bus, RNG_BASE, off);
}

static void wr(struct mmio_fixture *f, uint64_t off, uint32_t v)
{
	mmio_wr32(&f->vm.mmio_bus, RNG_BASE, off, v);
}

static int setup(struct mmio_fixture *f)
{
	const struct bus_range *r;

	vm_init_bare(&f->vm);
	if (guest_mem_init(&f->vm.mem, MEM_SIZE, false, NULL))
		return -1;
	if (virtio_rng_create(&f->vm, RNG_INDEX, NULL))
		return -1;
	r = bus_find(&f->vm.mmio_bus, RNG_BASE);
	if (!r)
		return -1;
	f->t = r->opaque;
	tr_init(&f->ring, &f->vm.mem, 8);
	return 0;
}

/* Waits (bounded) for the device to signal an interrupt. */
static bool wait_irq(struct mmio_fixture *f)
{
	struct pollfd p = { .fd = virtio_mmio_irq_fd(f->t), .events = POLLIN };
	eventfd_t v;

	if (poll(&p, 1, 5000) != 1)
		return false;
	return eventfd_read(p.fd, &v) == 0;
}

static void negotiate(struct mmio_fixture *f, uint64_t features)
{
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	   VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(struct mmio_fixture *f, uint64_t desc)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, f->ring.size);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, TR_AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TR_USED);
	wr(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static const uint32_t live_status = VIRTIO_STATUS_ACKNOWLEDGE |
	VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	VIRTIO_STATUS_DRIVER_OK;

TEST(virtio_mmio_identity_registers)
{
	struct mmio_fixture f;
	uint8_t d[2] = { 0 };

	CHECK_EQ(setup(&f), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_VERSION), 2);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_RACKVM_VENDOR_ID);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	wr(&f, VIRTIO_MMIO_QUEUE_SEL, 1);	/* no such queue */
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* narrow register accesses read as 0; config past its size too */
	CHECK_EQ(bus_access(&f.vm.mmio_bus, 0, RNG_BASE, d, 2, false), 0);
	CHECK_EQ(d[0] | d[1], 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_CONFIG), 0);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_feature_negotiation)
{
	struct mmio_fixture f;

	CHECK_EQ(setup(&f), 0);
	wr(&f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_FEATURES),
		 (1u << VIRTIO_RING_F_INDIRECT_DESC) | (1u << VIRTIO_RING_F_EVENT_IDX));
	wr(&f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_FEATURES), 1);	/* VERSION_1 */
	wr(&f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	/* a legacy driver (no VERSION_1) is refused */
	negotiate(&f, 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
	wr(&f, VIRTIO_MMIO_STATUS, 0);
	/* so is a feature the device does not have */
	negotiate(&f, (1ull << VIRTIO_F_VERSION_1) | (1ull << 3));
	CHECK_EQ(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
	wr(&f, VIRTIO_MMIO_STATUS, 0);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	CHECK(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	vm_destroy(&f.vm);
}

/* Posts one 64-byte writable buffer and kicks. */
static void post_rng_request(struct mmio_fixture *f, uint16_t head)
{
	tr_desc(&f->ring, head, TR_DATA, 64, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&f->ring, head);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

TEST(virtio_mmio_queue_kick_and_interrupt)
{
	static const uint8_t zero[64];
	struct mmio_fixture f;

	CHECK_EQ(setup(&f), 0);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	setup_queue(&f, TR_DESC);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_READY), 1);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_NUM), 8);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_DESC_LOW), TR_DESC);
	/* a live queue's layout cannot change */
	wr(&f, VIRTIO_MMIO_QUEUE_NUM, 4);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_NUM), 8);
	wr(&f, VIRTIO_MMIO_STATUS, live_status);

	post_rng_request(&f, 2);
	CHECK(wait_irq(&f));
	CHECK_EQ(tr_used_idx(&f.ring), 1);
	CHECK_EQ(tr_used_elem(&f.ring, 0).id, 2);
	CHECK_EQ(tr_used_elem(&f.ring, 0).len, 64);
	CHECK(memcmp(guest_mem_ptr(&f.vm.mem, TR_DATA, 64), zero, 64) != 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(&f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* EVENT_IDX negotiated: the device told the driver where to kick */
	CHECK_EQ(tr_read16(&f.ring, tr_avail_event_gpa(&f.ring)), 1);

	/* reset: everything back to its initial state */
	wr(&f, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_NUM), 0);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_hostile_chain_needs_reset)
{
	struct mmio_fixture f;
	uint32_t gen;

	CHECK_EQ(setup(&f), 0);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	setup_queue(&f, TR_DESC);
	wr(&f, VIRTIO_MMIO_STATUS, live_status);
	gen = rd(&f, VIRTIO_MMIO_CONFIG_GENERATION);
	/* a loop */
	tr_desc(&f.ring, 0, TR_DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	tr_desc(&f.ring, 1, TR_DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	tr_publish(&f.ring, 0);
	wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK(wait_irq(&f));
	CHECK(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	CHECK(rd(&f, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	/* the driver cannot clear it by writing Status; a reset does */
	wr(&f, VIRTIO_MMIO_STATUS, live_status);
	CHECK(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	wr(&f, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_STATUS), 0);

	/* after the reset the device works again */
	f.ring.avail_idx = 0;
	tr_init(&f.ring, &f.vm.mem, 8);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	setup_queue(&f, TR_DESC);
	wr(&f, VIRTIO_MMIO_STATUS, live_status);
	post_rng_request(&f, 0);
	CHECK(wait_irq(&f));
	CHECK_EQ(tr_used_idx(&f.ring), 1);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_bad_queue_layout_needs_reset)
{
	struct mmio_fixture f;

	CHECK_EQ(setup(&f), 0);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	setup_queue(&f, MEM_SIZE - 16);		/* descriptor table past RAM */
	CHECK_EQ(rd(&f, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK(rd(&f, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	CHECK(wait_irq(&f));
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_no_service_before_driver_ok)
{
	struct mmio_fixture f;
	struct pollfd p;

	CHECK_EQ(setup(&f), 0);
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	setup_queue(&f, TR_DESC);
	post_rng_request(&f, 0);
	p = (struct pollfd){ .fd = virtio_mmio_irq_fd(f.t), .events = POLLIN };
	CHECK_EQ(poll(&p, 1, 100), 0);
	CHECK_EQ(tr_used_idx(&f.ring), 0);
	/* a kick after DRIVER_OK serves what was already posted */
	wr(&f, VIRTIO_MMIO_STATUS, live_status);
	wr(&f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CHECK(wait_irq(&f));
	CHECK_EQ(tr_used_idx(&f.ring), 1);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_config_change_waits_for_driver_ok)
{
	struct mmio_fixture f;
	struct pollfd p;
	uint32_t gen;

	/* A host-side change (a balloon target) while the guest has no
	 * driver yet: no interrupt, only a new generation. */
	CHECK_EQ(setup(&f), 0);
	gen = rd(&f, VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_mmio_config_changed(f.t);
	p = (struct pollfd){ .fd = virtio_mmio_irq_fd(f.t), .events = POLLIN };
	CHECK_EQ(poll(&p, 1, 100), 0);
	CHECK(rd(&f, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* once the driver is up, it is told */
	negotiate(&f, VIRTIO_TRANSPORT_FEATURES);
	wr(&f, VIRTIO_MMIO_STATUS, live_status);
	virtio_mmio_config_changed(f.t);
	CHECK(wait_irq(&f));
	CHECK_EQ(rd(&f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	vm_destroy(&f.vm);
}

TEST(virtio_mmio_cmdline_lists_every_device)
{
	char buf[4096], want[64];

	CHECK_EQ(virtio_mmio_cmdline(buf, sizeof(buf), "console=ttyS0", 0), 0);
	CHECK(strcmp(buf, "console=ttyS0") == 0);
	CHECK_EQ(virtio_mmio_cmdline(buf, sizeof(buf), "console=ttyS0", 2), 0);
	CHECK(strcmp(buf, "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5"
		      " virtio_mmio.device=4K@0xd0001000:6") == 0);
	CHECK_EQ(virtio_mmio_cmdline(buf, sizeof(buf), NULL, 1), 0);
	CHECK(strcmp(buf, "virtio_mmio.device=4K@0xd0000000:5") == 0);
	CHECK_EQ(virtio_mmio_cmdline(buf, sizeof(buf), "", 16), 0);
	for (unsigned i = 0; i < 16; i++) {
		snprintf(want, sizeof(want), "virtio_mmio.device=4K@0x%llx:%u",
			 0xd0000000ull + i * 0x1000, 5 + i);
		CHECK(strstr(buf, want) != NULL);
	}
	CHECK(strstr(buf, ":20") != NULL);	/* the last GSI */
	CHECK_EQ(virtio_mmio_cmdline(buf, sizeof(buf), "", 17), -EINVAL);
	CHECK_EQ(virtio_mmio_cmdline(buf, 40, "hello", 1), -E2BIG);
	CHECK_EQ(virtio_mmio_cmdline(buf, 5, "hello", 0), -E2BIG);
	CHECK_EQ(virtio_mmio_cmdline(buf, 6, "hello", 0), 0);
}

TEST(virtio_mmio_layout_fits_the_machine)
{
	uint64_t last = virtio_mmio_base(VIRTIO_MMIO_MAX_DEVICES - 1) +
			VIRTIO_MMIO_SIZE;

	CHECK(VIRTIO_MMIO_BASE >= GUEST_MMIO_HOLE_START);
	CHECK(last <= 0xfec00000ull);		/* below the IOAPIC */
	CHECK(virtio_mmio_gsi(VIRTIO_MMIO_MAX_DEVICES - 1) < 24);
}

TEST(virtio_mmio_blk_config_and_features)
{
	struct virtio_blk_options opt = { .read_only = true };
	char path[256];
	uint8_t cap[8] = { 0 };
	struct vm vm;
	uint8_t d[4] = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/mmio-blk-XXXXXX", harness_tmpdir());
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);
	opt.path = path;
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, MEM_SIZE, false, NULL), 0);
	CHECK_EQ(virtio_blk_create(&vm, 0, &opt, NULL), 0);
	unlink(path);
	CHECK_EQ(bus_access(&vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_DEVICE_ID,
			    d, 4, false), 0);
	CHECK_EQ(d[0], VIRTIO_ID_BLOCK);
	CHECK_EQ(bus_access(&vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_DEVICE_FEATURES,
			    d, 4, false), 0);
	CHECK(d[0] & (1u << VIRTIO_BLK_F_RO));
	CHECK(!(d[1] & (1u << (VIRTIO_BLK_F_DISCARD - 8))));
	/* capacity in 512-byte sectors, one 8-byte config read */
	CHECK_EQ(bus_access(&vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG,
			    cap, 8, false), 0);
	CHECK_EQ(cap[0] | cap[1] << 8 | cap[2] << 16, 2048);
	/* config writes are ignored */
	CHECK_EQ(bus_access(&vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG,
			    d, 4, true), 0);
	CHECK_EQ(bus_access(&vm.mmio_bus, 0, VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG,
			    cap, 8, false), 0);
	CHECK_EQ(cap[0] | cap[1] << 8 | cap[2] << 16, 2048);
	vm_destroy(&vm);
}
