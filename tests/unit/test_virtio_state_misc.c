// SPDX-License-Identifier: MIT
/*
 * Saving and loading the other virtio devices' own parts, on bare VMs:
 * virtio-balloon keeps its target, `actual', counters and the driver's
 * statistics buffer, which the second device returns when asked; a held
 * buffer the driver cannot have given is refused.  virtio-console keeps
 * the input it had read and not yet delivered, and the second device
 * delivers it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "util/le.h"
#include "virtio/balloon.h"
#include "virtio/console.h"
#include "test_virtio_state.h"

/* ---- virtio-balloon ----------------------------------------------------- */

/* The balloon blob: the transport (60 bytes), 4 queues of 53, the part's
 * length, then its version, target, actual, held flag, queue, head. */
#define BAL_PART (60 + 4 * 53 + 4)
#define BAL_TARGET (BAL_PART + 4)
#define BAL_HELD_QUEUE (BAL_PART + 13)

/* The driver: features, the statistics queue on the test ring, live. */
static void balloon_driver(struct vs_drv *d)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) |
		     (1ull << VIRTIO_BALLOON_F_STATS_VQ);

	vs_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vs_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	vs_wr(d, VIRTIO_MMIO_STATUS, VS_LIVE & ~VIRTIO_STATUS_DRIVER_OK);
	vs_wr(d, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_BALLOON_Q_STATS);
	vs_wr(d, VIRTIO_MMIO_QUEUE_NUM, VS_QSIZE);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, TR_DESC);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, TR_AVAIL);
	vs_wr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TR_USED);
	vs_wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
	vs_wr(d, VIRTIO_MMIO_STATUS, VS_LIVE);
}

static bool balloon_updates(struct virtio_balloon *b, uint64_t want)
{
	struct virtio_balloon_info info;

	for (int i = 0; i < 5000; i++) {
		virtio_balloon_get_info(b, &info);
		if (info.stats_updates == want)
			return true;
		usleep(1000);
	}
	return false;
}

static int balloon_vm(struct vm *vm, struct virtio_balloon **b)
{
	struct virtio_balloon_options opt = { 0 };

	vm_init_bare(vm);
	if (guest_mem_init(&vm->mem, VS_MEM_SIZE, false, NULL))
		return -1;
	return virtio_balloon_create(vm, 0, &opt, b, NULL);
}

TEST(virtio_state_balloon_keeps_target_and_the_held_statistics)
{
	struct virtio_balloon *b1, *b2;
	struct virtio_balloon_info info;
	struct errmsg err = { "" };
	struct vs_drv d1, d2;
	struct state_buf s;
	struct vm vm1, vm2;
	uint8_t stat[10] = { 4 }, actual[4];
	uint8_t *bad;

	CHECK_EQ(balloon_vm(&vm1, &b1), 0);
	vs_drv_init(&d1, &vm1, 0);
	balloon_driver(&d1);
	/* one entry: mem_free = 0x1234; the device keeps the buffer */
	put_le64(stat + 2, 0x1234);
	guest_mem_write(&vm1.mem, TR_DATA, stat, sizeof(stat));
	tr_desc(&d1.ring, 5, TR_DATA, sizeof(stat), 0, 0);
	tr_publish(&d1.ring, 5);
	vs_wr(&d1, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_BALLOON_Q_STATS);
	CHECK(balloon_updates(b1, 1));
	CHECK_EQ(tr_used_idx(&d1.ring), 0);
	CHECK_EQ(virtio_balloon_set_target(b1, 300), 0);
	put_le32(actual, 120);
	bus_access(&vm1.mmio_bus, 0, d1.base + VIRTIO_MMIO_CONFIG +
		   VIRTIO_BALLOON_CFG_ACTUAL, actual, 4, true);
	CHECK_EQ(vstate_entry(&vm1, 0)->ops->quiesce(vstate_entry(&vm1, 0)->opaque), 0);
	CHECK_EQ(vstate_save(&vm1, 0, &s), 0);

	CHECK_EQ(balloon_vm(&vm2, &b2), 0);
	memcpy(vm2.mem.base, vm1.mem.base, VS_MEM_SIZE);
	/* hostile: a target past RAM, a buffer held on another queue */
	bad = malloc(s.len);
	CHECK(bad != NULL);
	memcpy(bad, s.data, s.len);
	put_le32(bad + BAL_TARGET, (uint32_t)(VS_MEM_SIZE / 4096 + 1));
	CHECK_EQ(vstate_load(&vm2, 0, bad, s.len, &err), -EINVAL);
	fprintf(stderr, "refused: %s\n", err.text);
	memcpy(bad, s.data, s.len);
	put_le16(bad + BAL_HELD_QUEUE, VIRTIO_BALLOON_Q_INFLATE);
	CHECK_EQ(vstate_load(&vm2, 0, bad, s.len, &err), -EBADMSG);
	fprintf(stderr, "refused: %s\n", err.text);
	virtio_balloon_get_info(b2, &info);
	CHECK_EQ(info.target_pages, 0);
	CHECK_EQ(virtio_mmio_status(vstate_entry(&vm2, 0)->opaque), 0);

	CHECK_EQ(vstate_load(&vm2, 0, s.data, s.len, &err), 0);
	virtio_balloon_get_info(b2, &info);
	CHECK_EQ(info.target_pages, 300);
	CHECK_EQ(info.actual_pages, 120);
	CHECK_EQ(info.stats_updates, 1);
	CHECK(info.stats.val[4] == 0x1234);
	CHECK(virtio_balloon_driver_ok(b2));
	/* asked for fresh figures, the second device returns the buffer */
	d2 = d1;
	d2.vm = &vm2;
	d2.ring.mem = &vm2.mem;
	virtio_balloon_request_stats(b2);
	CHECK(vs_wait_used(&d2, 1));
	CHECK_EQ(tr_used_elem(&d2.ring, 0).id, 5);
	free(bad);
	state_buf_release(&s);
	vm_destroy(&vm2);
	vm_destroy(&vm1);
}

/* ---- virtio-console ----------------------------------------------------- */

static int console_vm(struct vm *vm, const char *in, const char *out)
{
	struct virtio_console_options opt = { .out_path = out, .in_path = in };

	vm_init_bare(vm);
	if (guest_mem_init(&vm->mem, VS_MEM_SIZE, false, NULL))
		return -1;
	return virtio_console_create(vm, 0, &opt, NULL);
}

static void rx_buffer(struct vs_drv *d, uint16_t head, uint32_t len)
{
	tr_desc(&d->ring, head, TR_DATA + 0x100ull * head, len,
		VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&d->ring, head);
	vs_wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_RX);
}

TEST(virtio_state_console_delivers_input_it_had_read)
{
	char in[256], out[256], got[16] = { 0 };
	struct errmsg err = { "" };
	struct vs_drv d1, d2;
	struct state_buf s;
	struct vm vm1, vm2;
	int fd;

	snprintf(in, sizeof(in), "%s/vs-in", harness_tmpdir());
	snprintf(out, sizeof(out), "%s/vs-out", harness_tmpdir());
	CHECK_EQ(mkfifo(in, 0600), 0);
	CHECK_EQ(console_vm(&vm1, in, out), 0);
	vs_drv_init(&d1, &vm1, 0);
	/* queue 0 (receive) set up like vs_drv_setup's, no features */
	vs_drv_setup(&d1, 1ull << VIRTIO_F_VERSION_1, true);
	fd = open(in, O_WRONLY | O_NONBLOCK);
	CHECK(fd >= 0);
	/* 4 of 11 bytes fit: 7 are read and wait in the device */
	rx_buffer(&d1, 0, 4);
	CHECK_EQ(write(fd, "hello world", 11), 11);
	CHECK(vs_wait_used(&d1, 1));
	CHECK_EQ(vstate_entry(&vm1, 0)->ops->quiesce(vstate_entry(&vm1, 0)->opaque), 0);
	CHECK_EQ(vstate_save(&vm1, 0, &s), 0);

	CHECK_EQ(console_vm(&vm2, in, out), 0);
	memcpy(vm2.mem.base, vm1.mem.base, VS_MEM_SIZE);
	close(fd);
	vm_destroy(&vm1);
	CHECK_EQ(vstate_load(&vm2, 0, s.data, s.len, &err), 0);
	d2 = d1;
	d2.vm = &vm2;
	d2.ring.mem = &vm2.mem;
	rx_buffer(&d2, 1, 16);
	CHECK(vs_wait_used(&d2, 2));
	CHECK_EQ(tr_used_elem(&d2.ring, 1).len, 7);
	guest_mem_read(&vm2.mem, TR_DATA + 0x100, got, 7);
	CHECK(!strcmp(got, "o world"));
	state_buf_release(&s);
	vm_destroy(&vm2);
	unlink(in);
	unlink(out);
}
