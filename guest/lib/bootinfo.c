// SPDX-License-Identifier: MIT
/*
 * Copies the PVH boot information out of low memory (guest/bootinfo.h).
 * Runs in ring 3 before anything reuses low memory; every pointer comes
 * from the loader and is only followed when the magic matched.
 */
#include "guest/bootinfo.h"
#include "guest/string.h"

struct boot_info boot_info;

/* Inserts [start, end) keeping boot_info.ram sorted by start. */
static void add_ram(uint64_t start, uint64_t end)
{
	unsigned int i;

	if (start >= end || boot_info.nr_ram == BOOT_MAX_RANGES)
		return;
	i = boot_info.nr_ram++;
	while (i > 0 && boot_info.ram[i - 1].start > start) {
		boot_info.ram[i] = boot_info.ram[i - 1];
		i--;
	}
	boot_info.ram[i].start = start;
	boot_info.ram[i].end = end;
}

static void copy_memmap(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *e;
	uint32_t i;

	if (si->version < 1 || !si->memmap_paddr || !si->memmap_entries)
		return;
	boot_info.have_memmap = true;
	e = (const void *)(uintptr_t)si->memmap_paddr;
	for (i = 0; i < si->memmap_entries; i++, e++) {
		if (e->type == E820_RAM)
			add_ram(e->addr, e->addr + e->size);
	}
}

static void copy_modules(const struct hvm_start_info *si)
{
	const struct hvm_modlist_entry *m;
	uint32_t i;

	if (!si->modlist_paddr)
		return;
	m = (const void *)(uintptr_t)si->modlist_paddr;
	for (i = 0; i < si->nr_modules && i < BOOT_MAX_MODULES; i++, m++) {
		boot_info.modules[i].start = m->paddr;
		boot_info.modules[i].end = m->paddr + m->size;
		boot_info.nr_modules++;
	}
}

void bootinfo_copy(void)
{
	const struct hvm_start_info *si =
		(const void *)(uintptr_t)pvh_start_info_paddr;

	if (!si || si->magic != HVM_START_MAGIC)
		return;
	boot_info.valid = true;
	if (si->cmdline_paddr)
		strlcpy(boot_info.cmdline,
			(const char *)(uintptr_t)si->cmdline_paddr,
			sizeof(boot_info.cmdline));
	copy_memmap(si);
	copy_modules(si);
}

uint64_t bootinfo_ram_bytes(void)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < boot_info.nr_ram; i++)
		total += boot_info.ram[i].end - boot_info.ram[i].start;
	return total;
}

void bootinfo_assume_ram(uint64_t bytes)
{
	uint64_t below_4g = bytes < (3ull << 30) ? bytes : (3ull << 30);

	if (boot_info.nr_ram || !bytes)
		return;
	add_ram(0, 0x9fc00);
	add_ram(0x100000, below_4g);
	if (bytes > below_4g)
		add_ram(4ull << 30, (4ull << 30) + bytes - below_4g);
}
