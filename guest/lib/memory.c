// SPDX-License-Identifier: MIT
/* Free RAM ranges (guest/memory.h). */
#include "guest/memory.h"
#include "guest/platform.h"

static void add_range(struct mem_range *out, unsigned int *n,
		      uint64_t start, uint64_t end)
{
	start = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	end &= ~(PAGE_SIZE - 1);
	if (start < end && *n < MAX_FREE_RANGES) {
		out[*n].start = start;
		out[*n].end = end;
		(*n)++;
	}
}

/* Adds [start, end) minus every module that overlaps it.  Modules are
 * few, so the recursion on the part after a module stays shallow. */
static void add_minus_modules(struct mem_range *out, unsigned int *n,
			      uint64_t start, uint64_t end)
{
	const struct mem_range *m;
	unsigned int i;

	for (i = 0; i < boot_info.nr_modules; i++) {
		m = &boot_info.modules[i];
		if (m->end <= start || m->start >= end)
			continue;
		if (m->start > start)
			add_minus_modules(out, n, start, m->start);
		if (m->end < end)
			add_minus_modules(out, n, m->end, end);
		return;
	}
	add_range(out, n, start, end);
}

unsigned int free_ram_ranges(struct mem_range *out)
{
	uint64_t image_end = (uint64_t)(uintptr_t)__image_end;
	uint64_t start, end;
	unsigned int i, n = 0;

	for (i = 0; i < boot_info.nr_ram; i++) {
		start = boot_info.ram[i].start;
		end = boot_info.ram[i].end;
		if (start < image_end)
			start = image_end;
		if (end > mapped_limit)
			end = mapped_limit;
		if (start < end)
			add_minus_modules(out, &n, start, end);
	}
	return n;
}
