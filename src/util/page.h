/* SPDX-License-Identifier: MIT */
/*
 * The page size rackvm manages guest memory in: x86's base page, the unit
 * of KVM's dirty log, userfaultfd, the pager, the balloon and every page
 * store.  Huge pages, where used, are multiples of it.
 */
#ifndef RACKVM_UTIL_PAGE_H
#define RACKVM_UTIL_PAGE_H

#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)

/* Pages [first, first + count) of guest RAM, numbered by memfd offset /
 * PAGE_SIZE (the numbering of the pager, the balloon and the stores). */
struct page_range {
	uint64_t first;
	uint64_t count;
};

#endif
