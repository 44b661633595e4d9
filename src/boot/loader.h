/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the loaders (internal to src/boot): little-endian
 * field access into untrusted buffers, checked writes into guest RAM, the
 * command line, initrd placement and the common entry state.
 */
#ifndef RACKVM_BOOT_LOADER_H
#define RACKVM_BOOT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "boot/boot.h"
#include "util/le.h"
#include "util/page.h"

#define BOOT_PAGE_SIZE PAGE_SIZE
#define BOOT_4G 0x100000000ull

/* True if [off, off+len) lies inside a buffer of @size bytes. */
static inline bool range_in_buffer(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* Writes boot data; a failure names @what (only possible if the layout
 * and guest RAM disagree). */
int boot_write(const struct guest_mem *m, uint64_t gpa, const void *src,
	       uint64_t len, const char *what, struct errmsg *err);

/* At least one vCPU and at most BOOT_MAX_CPUS: the firmware tables
 * have no room for more.  A failure names @table, the one that checked. */
int boot_check_ncpus(unsigned ncpus, const char *table, struct errmsg *err);

/* Checks the loaders' preconditions on RAM and the config: the low
 * 1 MiB is RAM, a kernel was given, ncpus fits the MP table. */
int boot_check_common(const struct guest_mem *m,
		      const struct boot_config *cfg, struct errmsg *err);

/* Checks that [start, start+size) is RAM at or above 1 MiB, below 4 GiB
 * (kernels start with paging off or identity-mapped below 4 GiB) and
 * does not wrap.  @what names the range in the message. */
int boot_check_kernel_range(const struct guest_mem *m, uint64_t start,
			    uint64_t size, const char *what,
			    struct errmsg *err);

/* Writes the command line NUL-terminated at BOOT_CMDLINE_ADDR; rejects
 * lines longer than @limit bytes (without the NUL). */
int boot_write_cmdline(const struct guest_mem *m,
		       const struct boot_config *cfg, size_t limit,
		       struct errmsg *err);

static inline bool boot_has_initrd(const struct boot_config *cfg)
{
	return cfg->initrd && cfg->initrd_size;
}

/* Copies the initrd to the highest page-aligned address at or above
 * @low (the end of the kernel) whose last byte is below @limit, and
 * returns that address in @addr. */
int boot_load_initrd(const struct guest_mem *m, const struct boot_config *cfg,
		     uint64_t low, uint64_t limit, uint64_t *addr,
		     struct errmsg *err);

void boot_entry_init(struct boot_entry *e, enum boot_protocol protocol,
		     enum vcpu_mode mode);

#endif
