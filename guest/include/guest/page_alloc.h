/* SPDX-License-Identifier: MIT */
/*
 * A page allocator over the free RAM ranges (guest/memory.h), for
 * workloads that hand pages to a device and take them back (balloon).
 *
 * Pages are handed out in ascending address order from the ranges
 * (contiguous runs where the ranges allow), and freed pages are reused
 * first, most recently freed first.  A free page on the reuse list holds
 * the link to the next one in its first 8 bytes, so page_free() writes
 * to the page: a page the device owns must not be freed before the
 * device gave it back.  One CPU at a time.
 */
#ifndef GUEST_PAGE_ALLOC_H
#define GUEST_PAGE_ALLOC_H

#include <stdint.h>

/* Takes over every free RAM range; later calls start over. */
void page_alloc_init(void);

/* A page's address (4 KiB aligned, identity mapped), or 0 if none is
 * left. */
uint64_t page_alloc(void);

void page_free(uint64_t addr);

/* Pages page_alloc() can still return, and pages it managed in all. */
uint64_t page_alloc_free_pages(void);
uint64_t page_alloc_total_pages(void);

#endif
