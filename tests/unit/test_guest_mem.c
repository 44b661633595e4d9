// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "vm/guest_mem.h"

TEST(guest_mem_small_vm_has_one_region)
{
	struct guest_mem m;
	uint8_t b = 0x5a, r = 0;

	CHECK_EQ(guest_mem_init(&m, 16 << 20, false, NULL), 0);
	CHECK_EQ(m.nregions, 1);
	CHECK(guest_mem_ptr(&m, 0, 16 << 20) != NULL);
	CHECK(guest_mem_ptr(&m, 1, 16 << 20) == NULL);
	CHECK(guest_mem_ptr(&m, 16 << 20, 0) == NULL);
	CHECK(guest_mem_ptr(&m, UINT64_MAX, 2) == NULL);
	CHECK(guest_mem_ptr(&m, 4096, UINT64_MAX) == NULL);
	CHECK_EQ(guest_mem_write(&m, 0x1234, &b, 1), 0);
	CHECK_EQ(guest_mem_read(&m, 0x1234, &r, 1), 0);
	CHECK_EQ(r, 0x5a);
	CHECK_EQ(guest_mem_write(&m, (16 << 20) - 1, "ab", 2), -EFAULT);
	CHECK_EQ(guest_mem_top(&m), 16 << 20);
	guest_mem_destroy(&m);
}

TEST(guest_mem_large_vm_skips_mmio_hole)
{
	struct guest_mem m;
	uint8_t *low_end, *high;

	/* 4 GiB: MAP_NORESERVE keeps this cheap; nothing is touched */
	CHECK_EQ(guest_mem_init(&m, 4ull << 30, false, NULL), 0);
	CHECK_EQ(m.nregions, 2);
	CHECK_EQ(guest_mem_low_top(&m), GUEST_MMIO_HOLE_START);
	CHECK_EQ(guest_mem_top(&m), GUEST_MMIO_HOLE_END + (1ull << 30));
	CHECK(guest_mem_ptr(&m, GUEST_MMIO_HOLE_START, 1) == NULL);
	CHECK(guest_mem_ptr(&m, 0xfee00000, 4) == NULL);
	/* a range may not straddle the hole */
	CHECK(guest_mem_ptr(&m, GUEST_MMIO_HOLE_START - 4, 8) == NULL);
	low_end = guest_mem_ptr(&m, GUEST_MMIO_HOLE_START - 1, 1);
	high = guest_mem_ptr(&m, GUEST_MMIO_HOLE_END, 1);
	CHECK(low_end && high);
	/* the memfd is contiguous: high RAM follows low RAM in the file */
	CHECK(high == low_end + 1);
	guest_mem_destroy(&m);
}

TEST(guest_mem_rejects_bad_sizes)
{
	struct guest_mem m;
	struct errmsg err;

	CHECK_EQ(guest_mem_init(&m, 4096, false, &err), -EINVAL);
	CHECK_EQ(guest_mem_init(&m, (16 << 20) + 1, false, &err), -EINVAL);
	CHECK_EQ(guest_mem_init(&m, (16 << 20) + 4096, true, &err), -EINVAL);
}

TEST(guest_mem_note_device_write_only_notes_guest_ram)
{
	struct guest_mem m;
	uint64_t words;

	CHECK_EQ(guest_mem_init(&m, 16 << 20, false, NULL), 0);
	words = (16 << 20) / 4096 / 64;
	m.device_written = calloc(words, 8);
	CHECK(m.device_written != NULL);
	/* not tracking: nothing noted */
	guest_mem_note_device_write(&m, m.base + 4096, 10);
	CHECK_EQ(m.device_written[0], 0);
	__atomic_store_n(&m.device_tracking, true, __ATOMIC_RELEASE);
	/* a write across a page boundary notes both pages */
	guest_mem_note_device_write(&m, m.base + 2 * 4096 - 1, 2);
	CHECK_EQ(m.device_written[0], 0x6);
	/* the last byte of RAM is RAM */
	guest_mem_note_device_write(&m, m.base + (16 << 20) - 1, 1);
	CHECK_EQ(m.device_written[words - 1], 1ull << 63);
	/* ranges that leave RAM, start before it or wrap are ignored */
	guest_mem_note_device_write(&m, m.base + (16 << 20) - 1, 2);
	guest_mem_note_device_write(&m, m.base + (16 << 20), 1);
	guest_mem_note_device_write(&m, m.base - 1, 2);
	guest_mem_note_device_write(&m, m.base + 4096, UINT64_MAX);
	guest_mem_note_device_write(&m, (void *)UINTPTR_MAX, 4096);
	for (uint64_t w = 1; w < words - 1; w++)
		CHECK_EQ(m.device_written[w], 0);
	CHECK_EQ(m.device_written[0], 0x6);
	CHECK_EQ(m.device_written[words - 1], 1ull << 63);
	guest_mem_destroy(&m);
}
