// SPDX-License-Identifier: MIT
/* Page allocator over the free RAM ranges (guest/page_alloc.h). */
#include "guest/memory.h"
#include "guest/page_alloc.h"
#include "guest/ucall.h"

static struct mem_range ranges[MAX_FREE_RANGES];
static unsigned int nr_ranges, cur;	/* bump allocation in ranges[cur] */
static uint64_t next;			/* next untouched page in ranges[cur] */
static uint64_t reuse_head;		/* freed pages, linked through them */
static uint64_t nr_free, nr_total;

void page_alloc_init(void)
{
	unsigned int i;

	nr_ranges = free_ram_ranges(ranges);
	nr_total = 0;
	for (i = 0; i < nr_ranges; i++)
		nr_total += (ranges[i].end - ranges[i].start) / PAGE_SIZE;
	nr_free = nr_total;
	cur = 0;
	next = nr_ranges ? ranges[0].start : 0;
	reuse_head = 0;
}

uint64_t page_alloc(void)
{
	uint64_t p;

	if (reuse_head) {
		p = reuse_head;
		reuse_head = *(volatile uint64_t *)p;
		nr_free--;
		return p;
	}
	while (cur < nr_ranges) {
		if (next < ranges[cur].end) {
			p = next;
			next += PAGE_SIZE;
			nr_free--;
			return p;
		}
		if (++cur < nr_ranges)
			next = ranges[cur].start;
	}
	return 0;
}

void page_free(uint64_t addr)
{
	GUEST_ASSERT_MSG(addr && !(addr & (PAGE_SIZE - 1)),
			 "page_free(0x%llx): not a page",
			 (unsigned long long)addr);
	*(volatile uint64_t *)addr = reuse_head;
	reuse_head = addr;
	nr_free++;
}

uint64_t page_alloc_free_pages(void)
{
	return nr_free;
}

uint64_t page_alloc_total_pages(void)
{
	return nr_total;
}
