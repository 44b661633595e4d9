/* SPDX-License-Identifier: MIT */
/*
 * Free RAM for workloads: the memory map's RAM above the end of the
 * image, below mapped_limit, minus boot modules.  Nothing in the runtime
 * allocates from it, so a workload may use all of it.
 */
#ifndef GUEST_MEMORY_H
#define GUEST_MEMORY_H

#include <stdint.h>

#include "guest/bootinfo.h"

#define PAGE_SIZE 4096ull
#define MAX_FREE_RANGES (BOOT_MAX_RANGES + BOOT_MAX_MODULES)

/* Fills @out with page-aligned free ranges in ascending order and returns
 * how many. */
unsigned int free_ram_ranges(struct mem_range *out);

#endif
