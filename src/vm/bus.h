/* SPDX-License-Identifier: MIT */
/*
 * An address bus: maps non-overlapping [base, base+len) ranges to device
 * handlers.  The VM has one for port I/O and one for MMIO; a vCPU exit is
 * dispatched by an interval lookup (binary search over sorted ranges).
 *
 * Devices register before the vCPUs start; lookups take no lock, so
 * registering or removing while vCPUs run is not supported.
 */
#ifndef RACKVM_VM_BUS_H
#define RACKVM_VM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Called with @offset relative to the range base; @data holds @len bytes
 * (1, 2, 4 or 8; for MMIO up to 8).  On a read the handler fills @data
 * (the bus pre-fills it with 0xff, what an unclaimed read returns on real
 * hardware).  @vcpu_id is the vCPU that made the access.
 */
typedef void (*bus_handler_fn)(void *opaque, unsigned vcpu_id, uint64_t offset,
			       uint8_t *data, unsigned len, bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler_fn handler;
	void *opaque;
	const char *name;
};

struct bus {
	struct bus_range *ranges;	/* sorted by base, non-overlapping */
	size_t count;
	size_t capacity;
};

void bus_init(struct bus *bus);
void bus_destroy(struct bus *bus);

/* -EINVAL for len 0 or wrap-around, -EEXIST if it overlaps a range. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 bus_handler_fn handler, void *opaque, const char *name);

/* The range containing @addr, or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/*
 * Dispatches an access.  Returns 0 if a device handled it, -ENOENT if no
 * device claims @addr (reads then return all-ones), -EINVAL if the access
 * runs past the end of the claiming range (reads also return all-ones).
 */
int bus_access(const struct bus *bus, unsigned vcpu_id, uint64_t addr,
	       uint8_t *data, unsigned len, bool is_write);

#endif
