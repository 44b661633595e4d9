// SPDX-License-Identifier: MIT
#include "boot/e820.h"

#include "boot/layout.h"

static unsigned add_range(struct e820_entry *map, unsigned n, uint64_t start,
			  uint64_t end, uint32_t type)
{
	if (end <= start)
		return n;
	map[n].addr = start;
	map[n].size = end - start;
	map[n].type = type;
	return n + 1;
}

unsigned e820_build(const struct guest_mem *m,
		    struct e820_entry map[E820_MAX_ENTRIES])
{
	uint64_t low_top = guest_mem_low_top(m);
	uint64_t top = guest_mem_top(m);
	uint64_t base_end = low_top < BOOT_LOW_RAM_END ? low_top
						       : BOOT_LOW_RAM_END;
	unsigned n = 0;

	n = add_range(map, n, 0, base_end, E820_TYPE_RAM);
	/* The legacy hole is reserved whether or not RAM backs it: the guest
	 * must not allocate over the MP table in the BIOS area. */
	n = add_range(map, n, BOOT_LOW_RAM_END, BOOT_HIGH_RAM,
		      E820_TYPE_RESERVED);
	n = add_range(map, n, BOOT_HIGH_RAM, low_top, E820_TYPE_RAM);
	if (top > GUEST_MMIO_HOLE_END)
		n = add_range(map, n, GUEST_MMIO_HOLE_END, top, E820_TYPE_RAM);
	return n;
}
