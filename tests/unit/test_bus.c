// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "vm/bus.h"

struct recorder {
	unsigned calls;
	uint64_t offset;
	unsigned len;
	bool is_write;
	uint8_t value;
};

static void record(void *opaque, unsigned vcpu_id, uint64_t offset,
		   uint8_t *data, unsigned len, bool is_write)
{
	struct recorder *r = opaque;

	(void)vcpu_id;
	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write)
		r->value = data[0];
	else
		memset(data, r->value, len);
}

TEST(bus_dispatches_by_interval)
{
	struct recorder a = { .value = 0x11 }, b = { .value = 0x22 };
	struct bus bus;
	uint8_t data[4];

	bus_init(&bus);
	CHECK_EQ(bus_register(&bus, 0x3f8, 8, record, &a, "uart"), 0);
	CHECK_EQ(bus_register(&bus, 0x60, 1, record, &b, "kbd"), 0);
	CHECK_EQ(bus_access(&bus, 0, 0x3fd, data, 1, false), 0);
	CHECK_EQ(a.calls, 1);
	CHECK_EQ(a.offset, 5);
	CHECK_EQ(data[0], 0x11);
	data[0] = 0x5a;
	CHECK_EQ(bus_access(&bus, 0, 0x60, data, 1, true), 0);
	CHECK_EQ(b.calls, 1);
	CHECK_EQ(b.value, 0x5a);
	CHECK(b.is_write);
	bus_destroy(&bus);
}

TEST(bus_unclaimed_reads_all_ones)
{
	struct recorder a = { 0 };
	struct bus bus;
	uint8_t data[4] = { 0 };

	bus_init(&bus);
	CHECK_EQ(bus_register(&bus, 0x100, 0x10, record, &a, "dev"), 0);
	CHECK_EQ(bus_access(&bus, 0, 0xff, data, 4, false), -ENOENT);
	CHECK_EQ(data[0], 0xff);
	CHECK_EQ(data[3], 0xff);
	CHECK_EQ(bus_access(&bus, 0, 0x110, data, 1, false), -ENOENT);
	/* an access running past the end of a range is refused */
	CHECK_EQ(bus_access(&bus, 0, 0x10e, data, 4, false), -EINVAL);
	CHECK_EQ(a.calls, 0);
	bus_destroy(&bus);
}

TEST(bus_rejects_overlap_and_bad_ranges)
{
	struct recorder a = { 0 };
	struct bus bus;

	bus_init(&bus);
	CHECK_EQ(bus_register(&bus, 0x100, 0x10, record, &a, "a"), 0);
	CHECK_EQ(bus_register(&bus, 0x10f, 1, record, &a, "b"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0xf0, 0x11, record, &a, "c"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0x50, 0x1000, record, &a, "d"), -EEXIST);
	CHECK_EQ(bus_register(&bus, 0x0, 0, record, &a, "e"), -EINVAL);
	CHECK_EQ(bus_register(&bus, UINT64_MAX, 2, record, &a, "f"), -EINVAL);
	CHECK_EQ(bus_register(&bus, 0xf0, 0x10, record, &a, "g"), 0);
	CHECK_EQ(bus_register(&bus, 0x110, 0x10, record, &a, "h"), 0);
	CHECK_EQ(bus.count, 3);
	bus_destroy(&bus);
}

TEST(bus_many_ranges_stay_sorted)
{
	struct recorder r[64];
	struct bus bus;

	bus_init(&bus);
	/* registered in a scrambled order, looked up by binary search */
	for (unsigned i = 0; i < 64; i++) {
		unsigned slot = (i * 37) % 64;

		r[slot] = (struct recorder){ .value = (uint8_t)slot };
		CHECK_EQ(bus_register(&bus, 0x1000 + slot * 0x10, 0x8, record,
				      &r[slot], "dev"), 0);
	}
	for (unsigned slot = 0; slot < 64; slot++) {
		const struct bus_range *range = bus_find(&bus, 0x1000 + slot * 0x10 + 7);

		CHECK(range != NULL);
		CHECK(range->opaque == &r[slot]);
		CHECK(bus_find(&bus, 0x1000 + slot * 0x10 + 8) == NULL);
	}
	bus_destroy(&bus);
}
