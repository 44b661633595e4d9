// SPDX-License-Identifier: MIT
#include "boot/x86_tables.h"

#include "boot/layout.h"
#include "boot/loader.h"
#include "devices/devices.h"

#define PT_ENTRIES 512
#define PD_PAGES 4		/* one page directory per GiB */
#define LARGE_PAGE (2ull << 20)

int boot_write_gdt(const struct guest_mem *m, bool long_mode,
		   struct vcpu_entry *cpu, struct errmsg *err)
{
	uint64_t gdt[GDT_ENTRIES] = { 0 };
	int ret;

	gdt[BOOT_CODE_SELECTOR / 8] = long_mode ? GDT_CODE64 : GDT_CODE32;
	gdt[BOOT_DATA_SELECTOR / 8] = GDT_DATA;
	/* VMX needs a usable TR; the upper half (slot 5) stays zero, which
	 * is the 64-bit TSS descriptor's high base. */
	gdt[BOOT_TSS_SELECTOR / 8] = GDT_TSS;
	ret = boot_write(m, BOOT_GDT_ADDR, gdt, sizeof(gdt), "boot GDT", err);
	if (ret < 0)
		return ret;
	cpu->gdt_base = BOOT_GDT_ADDR;
	cpu->gdt_limit = sizeof(gdt) - 1;
	cpu->code_selector = BOOT_CODE_SELECTOR;
	cpu->data_selector = BOOT_DATA_SELECTOR;
	return 0;
}

int boot_write_identity_map(const struct guest_mem *m, struct vcpu_entry *cpu,
			    struct errmsg *err)
{
	uint64_t pml4[PT_ENTRIES] = { 0 };
	uint64_t pdpt[PT_ENTRIES] = { 0 };
	uint64_t pd[PD_PAGES * PT_ENTRIES];
	int ret;

	pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
	for (unsigned i = 0; i < PD_PAGES; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * BOOT_PAGE_SIZE) | PTE_PRESENT |
			  PTE_WRITE;
	for (unsigned i = 0; i < PD_PAGES * PT_ENTRIES; i++)
		pd[i] = i * LARGE_PAGE | PTE_PRESENT | PTE_WRITE | PTE_LARGE;

	ret = boot_write(m, BOOT_PML4_ADDR, pml4, sizeof(pml4), "PML4", err);
	if (!ret)
		ret = boot_write(m, BOOT_PDPT_ADDR, pdpt, sizeof(pdpt), "PDPT",
				 err);
	if (!ret)
		ret = boot_write(m, BOOT_PD_ADDR, pd, sizeof(pd),
				 "page directories", err);
	if (ret < 0)
		return ret;
	cpu->cr3 = BOOT_PML4_ADDR;
	return 0;
}

int boot_write_reset_vector(const struct guest_mem *m, struct errmsg *err)
{
	static const uint8_t stub[] = {
		0xB0, I8042_CMD_PULSE_RESET,	/* mov al, 0xfe */
		0xE6, I8042_COMMAND_PORT,	/* out 0x64, al */
		0xF4,				/* hlt */
		0xEB, 0xFD,			/* jmp back to the hlt */
	};

	return boot_write(m, BOOT_RESET_VECTOR_ADDR, stub, sizeof(stub),
			  "reset vector", err);
}
