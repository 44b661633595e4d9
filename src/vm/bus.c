// SPDX-License-Identifier: MIT
#include "vm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	memset(bus, 0, sizeof(*bus));
}

/* Index of the first range whose base is > addr. */
static size_t upper_bound(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t range_last(const struct bus_range *r)
{
	return r->base + (r->len - 1);
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 bus_handler_fn handler, void *opaque, const char *name)
{
	size_t pos;

	if (!len || !handler || base + (len - 1) < base)
		return -EINVAL;
	pos = upper_bound(bus, base);
	if (pos > 0 && range_last(&bus->ranges[pos - 1]) >= base)
		return -EEXIST;
	if (pos < bus->count && bus->ranges[pos].base <= base + (len - 1))
		return -EEXIST;
	if (bus->count == bus->capacity) {
		size_t cap = bus->capacity ? bus->capacity * 2 : 8;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->ranges = r;
		bus->capacity = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->count - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct bus_range){
		.base = base, .len = len, .handler = handler,
		.opaque = opaque, .name = name,
	};
	bus->count++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	size_t pos = upper_bound(bus, addr);
	const struct bus_range *r;

	if (pos == 0)
		return NULL;
	r = &bus->ranges[pos - 1];
	return addr <= range_last(r) ? r : NULL;
}

int bus_access(const struct bus *bus, unsigned vcpu_id, uint64_t addr,
	       uint8_t *data, unsigned len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);
	uint64_t offset;

	if (!is_write)
		memset(data, 0xff, len);
	if (!r)
		return -ENOENT;
	offset = addr - r->base;
	if (!len || len > r->len - offset)
		return -EINVAL;
	r->handler(r->opaque, vcpu_id, offset, data, len, is_write);
	return 0;
}
