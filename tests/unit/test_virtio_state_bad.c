// SPDX-License-Identifier: MIT
/*
 * Hostile virtio device states (a snapshot or migration stream is
 * untrusted): a blob cut at every length, one byte too long, of another
 * version or device type, with a queue larger than the device offers,
 * rings outside guest RAM, features the device does not offer, values a
 * driver cannot produce, a device part that does not match the device.
 * Each one fails with a message naming the device, and the device it
 * was loaded into is exactly as before (its own saved state compares
 * equal), which also proves that a transport part already applied is
 * taken back when the device part fails.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "util/le.h"
#include "virtio/rng.h"
#include "test_virtio_state.h"

/* Offsets in a virtio-blk blob (mmio.h, virtqueue_state.c, blk.c). */
#define OFF_VERSION 0
#define OFF_DEVICE_ID 4
#define OFF_DRIVER_FEATURES 12
#define OFF_STATUS 32
#define OFF_INT_STATUS 40
#define OFF_Q0 60
#define OFF_Q0_SIZE (OFF_Q0 + 0)
#define OFF_Q0_DESC (OFF_Q0 + 2)
#define OFF_Q0_USED (OFF_Q0 + 18)
#define OFF_Q0_READY (OFF_Q0 + 26)
#define OFF_Q0_ERROR (OFF_Q0 + 29)
#define OFF_Q0_LAST_AVAIL (OFF_Q0 + 30)
#define OFF_DEV_LEN (OFF_Q0 + 53)
#define OFF_DEV (OFF_DEV_LEN + 4)
#define OFF_DEV_CAPACITY (OFF_DEV + 4)
#define BLK_BLOB_LEN (OFF_DEV + 13)

struct bad_fixture {
	char path[256];
	struct vm src, dst;
	struct state_buf good;		/* the source's state */
	struct state_buf before;	/* the target's own */
	uint8_t *blob;			/* scratch copy of good */
};

/* A source with three requests done, saved; a target that had a driver
 * and one request of its own, on another ring size. */
static int bad_setup(struct bad_fixture *f)
{
	struct vs_drv d;

	memset(f, 0, sizeof(*f));
	if (vs_make_disk(f->path, sizeof(f->path)))
		return -1;
	vm_init_bare(&f->src);
	vm_init_bare(&f->dst);
	if (guest_mem_init(&f->src.mem, VS_MEM_SIZE, false, NULL) ||
	    guest_mem_init(&f->dst.mem, VS_MEM_SIZE, false, NULL) ||
	    vs_blk_create(&f->src, 0, f->path) ||
	    vs_blk_create(&f->dst, 0, f->path))
		return -1;
	vs_drv_init(&d, &f->src, 0);
	vs_drv_setup(&d, VIRTIO_TRANSPORT_FEATURES, true);
	for (unsigned n = 0; n < 3; n++)
		vs_blk_post(&d, n, VIRTIO_BLK_T_IN, n, NULL);
	if (!vs_wait_used(&d, 3) || vstate_save(&f->src, 0, &f->good))
		return -1;
	vs_drv_init(&d, &f->dst, 0);
	vs_drv_setup(&d, 1ull << VIRTIO_F_VERSION_1, true);
	vs_blk_post(&d, 0, VIRTIO_BLK_T_IN, 1, NULL);
	if (!vs_wait_used(&d, 1) || vstate_save(&f->dst, 0, &f->before))
		return -1;
	f->blob = malloc(f->good.len + 1);
	return f->blob ? 0 : -1;
}

static void bad_teardown(struct bad_fixture *f)
{
	free(f->blob);
	state_buf_release(&f->good);
	state_buf_release(&f->before);
	vm_destroy(&f->dst);
	vm_destroy(&f->src);
	unlink(f->path);
}

/* The target's state now is what it was. */
static bool unchanged(struct bad_fixture *f)
{
	struct state_buf now;
	bool same;

	if (vstate_save(&f->dst, 0, &now))
		return false;
	same = now.len == f->before.len &&
	       !memcmp(now.data, f->before.data, now.len);
	state_buf_release(&now);
	return same;
}

/* Loads @len bytes of f->blob into the target: refused with @want (0:
 * any error), a message naming the device, nothing changed. */
static bool refused(struct bad_fixture *f, size_t len, int want)
{
	struct errmsg err = { "" };
	int ret = vstate_load(&f->dst, 0, f->blob, len, &err);

	if (ret >= 0 || (want && ret != want))
		return false;
	fprintf(stderr, "refused (%d): %s\n", ret, err.text);
	return !strncmp(err.text, "virtio-blk0: ", 13) && unchanged(f);
}

static void fresh(struct bad_fixture *f)
{
	memcpy(f->blob, f->good.data, f->good.len);
}

TEST(virtio_state_bad_truncated_or_long_blob_is_refused)
{
	struct bad_fixture f;

	CHECK_EQ(bad_setup(&f), 0);
	CHECK_EQ(f.good.len, BLK_BLOB_LEN);
	fresh(&f);
	for (size_t len = 0; len < f.good.len; len++)
		CHECK(refused(&f, len, -EBADMSG));
	f.blob[f.good.len] = 0;
	CHECK(refused(&f, f.good.len + 1, -EBADMSG));
	/* the device part claims more bytes than there are */
	put_le32(f.blob + OFF_DEV_LEN, 14);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	bad_teardown(&f);
}

TEST(virtio_state_bad_version_type_and_registers_are_refused)
{
	struct bad_fixture f;

	CHECK_EQ(bad_setup(&f), 0);
	fresh(&f);
	put_le32(f.blob + OFF_VERSION, 2);
	CHECK(refused(&f, f.good.len, -EPROTONOSUPPORT));
	fresh(&f);
	put_le32(f.blob + OFF_DEVICE_ID, VIRTIO_ID_RNG);
	CHECK(refused(&f, f.good.len, -EINVAL));
	fresh(&f);
	put_le32(f.blob + OFF_STATUS, 0x100 | VS_LIVE);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	/* FEATURES_OK for a feature this disk does not offer (bit 3) */
	fresh(&f);
	put_le64(f.blob + OFF_DRIVER_FEATURES, VIRTIO_TRANSPORT_FEATURES | 8);
	CHECK(refused(&f, f.good.len, -EINVAL));
	fresh(&f);
	put_le32(f.blob + OFF_INT_STATUS, 4);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	bad_teardown(&f);
}

TEST(virtio_state_bad_queue_is_refused)
{
	struct bad_fixture f;

	CHECK_EQ(bad_setup(&f), 0);
	/* larger than QueueNumMax, not a power of 2 */
	fresh(&f);
	put_le16(f.blob + OFF_Q0_SIZE, 512);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	fresh(&f);
	put_le16(f.blob + OFF_Q0_SIZE, 12);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	/* rings past the end of RAM, in the MMIO hole, misaligned */
	fresh(&f);
	put_le64(f.blob + OFF_Q0_DESC, VS_MEM_SIZE - 16);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	fresh(&f);
	put_le64(f.blob + OFF_Q0_USED, VIRTIO_MMIO_BASE);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	fresh(&f);
	put_le64(f.blob + OFF_Q0_USED, TR_USED + 2);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	/* a flag that is not 0 or 1, an unknown error, more chains out
	 * than the queue has */
	fresh(&f);
	f.blob[OFF_Q0_READY] = 2;
	CHECK(refused(&f, f.good.len, -EBADMSG));
	fresh(&f);
	f.blob[OFF_Q0_ERROR] = 200;
	CHECK(refused(&f, f.good.len, -EBADMSG));
	fresh(&f);
	put_le16(f.blob + OFF_Q0_LAST_AVAIL, 3 + VS_QSIZE + 1);
	CHECK(refused(&f, f.good.len, -EBADMSG));
	bad_teardown(&f);
}

TEST(virtio_state_bad_device_part_is_refused_and_transport_taken_back)
{
	struct errmsg err = { "" };
	struct bad_fixture f;

	CHECK_EQ(bad_setup(&f), 0);
	/* another disk size: the guest's file system would not fit */
	fresh(&f);
	put_le64(f.blob + OFF_DEV_CAPACITY, VS_DISK_SECTORS * 2);
	CHECK(refused(&f, f.good.len, -EINVAL));
	fresh(&f);
	put_le32(f.blob + OFF_DEV, 7);
	CHECK(refused(&f, f.good.len, -EPROTONOSUPPORT));
	/* and the good blob still loads into the same target */
	CHECK_EQ(vstate_load(&f.dst, 0, f.good.data, f.good.len, &err), 0);
	bad_teardown(&f);
}

TEST(virtio_state_bad_part_for_a_device_without_one_is_refused)
{
	struct errmsg err = { "" };
	struct state_buf b;
	struct vm vm;
	uint8_t *blob;

	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(virtio_rng_create(&vm, 0, NULL), 0);
	CHECK_EQ(vstate_save(&vm, 0, &b), 0);
	/* rng has no part of its own: an empty one, last */
	CHECK_EQ(get_le32(b.data + b.len - 4), 0);
	blob = malloc(b.len + 1);
	CHECK(blob != NULL);
	memcpy(blob, b.data, b.len);
	put_le32(blob + b.len - 4, 1);
	blob[b.len] = 1;
	CHECK_EQ(vstate_load(&vm, 0, blob, b.len + 1, &err), -EBADMSG);
	CHECK(strstr(err.text, "virtio-rng0: ") == err.text);
	CHECK_EQ(vstate_load(&vm, 0, b.data, b.len, &err), 0);
	free(blob);
	state_buf_release(&b);
	vm_destroy(&vm);
}
