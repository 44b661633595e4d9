// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the kernel loaders.
 *
 * Input byte 0 picks how the rest becomes a kernel image:
 *   0      the bytes themselves (format detection sees anything)
 *   1..3   XORed over a valid PVH ELF64 / Multiboot ELF32 / bzImage
 *          template, so short inputs already reach the deep validation
 *          paths instead of dying at the magic checks
 * Byte 1 picks the vCPU count and whether an initrd is passed.  Every
 * image goes through detection and then through each loader forced.
 */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"

#define FUZZ_MEM_SIZE (32ull << 20)
#define TEMPLATE_SIZE 0x2000
#define LOAD_ADDR 0x100000u

static uint8_t templates[3][TEMPLATE_SIZE];

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void build_pvh64(uint8_t *t)
{
	Elf64_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT, .e_phoff = sizeof(h),
			 .e_ehsize = sizeof(h),
			 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 2 };
	Elf64_Phdr load = { PT_LOAD, PF_R | PF_X, 0x1000, LOAD_ADDR,
			    LOAD_ADDR, 0x100, 0x2000, 0x1000 };
	Elf64_Phdr note = { PT_NOTE, PF_R, 0x200, 0, 0, 24, 24, 4 };

	memcpy(h.e_ident, ELFMAG, SELFMAG);
	h.e_ident[EI_CLASS] = ELFCLASS64;
	h.e_ident[EI_DATA] = ELFDATA2LSB;
	h.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(t, &h, sizeof(h));
	memcpy(t + sizeof(h), &load, sizeof(load));
	memcpy(t + sizeof(h) + sizeof(load), &note, sizeof(note));
	put32(t + 0x200, 4);		/* namesz */
	put32(t + 0x204, 8);		/* descsz: 64-bit entry */
	put32(t + 0x208, 18);		/* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(t + 0x20c, "Xen", 4);
	put32(t + 0x210, LOAD_ADDR + 0x10);
}

static void build_multiboot32(uint8_t *t)
{
	Elf32_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_386,
			 .e_version = EV_CURRENT, .e_entry = LOAD_ADDR + 0x20,
			 .e_phoff = sizeof(h), .e_ehsize = sizeof(h),
			 .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 1 };
	Elf32_Phdr load = { PT_LOAD, 0x1000, LOAD_ADDR, LOAD_ADDR, 0x100,
			    0x3000, PF_R | PF_X, 0x1000 };

	memcpy(h.e_ident, ELFMAG, SELFMAG);
	h.e_ident[EI_CLASS] = ELFCLASS32;
	h.e_ident[EI_DATA] = ELFDATA2LSB;
	h.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(t, &h, sizeof(h));
	memcpy(t + sizeof(h), &load, sizeof(load));
	/* header with address fields too, so flipping bit 16 uses them */
	put32(t + 0x1000, 0x1BADB002u);
	put32(t + 0x1004, 3);
	put32(t + 0x1008, -(0x1BADB002u + 3));
	put32(t + 0x100c, LOAD_ADDR);		/* header_addr */
	put32(t + 0x1010, LOAD_ADDR);		/* load_addr */
	put32(t + 0x1014, 0);			/* load_end_addr */
	put32(t + 0x1018, LOAD_ADDR + 0x4000);	/* bss_end_addr */
	put32(t + 0x101c, LOAD_ADDR + 0x20);	/* entry_addr */
}

static void build_bzimage(uint8_t *t)
{
	t[0x1f1] = 1;			/* setup sectors */
	t[0x200] = 0xeb;
	t[0x201] = 0x6a;
	memcpy(t + 0x202, "HdrS", 4);
	t[0x206] = 0x0f;
	t[0x207] = 0x02;
	t[0x211] = 0x01;		/* LOADED_HIGH */
	put32(t + 0x22c, 0x7fffffff);	/* initrd_addr_max */
	put32(t + 0x230, 0x200000);	/* kernel_alignment */
	t[0x234] = 1;
	t[0x236] = 0x03;		/* XLF_KERNEL_64 */
	put32(t + 0x238, 2047);
	put32(t + 0x258, 0x1000000);	/* pref_address */
	put32(t + 0x260, 0x400000);	/* init_size */
}

static struct guest_mem *fuzz_setup(void)
{
	static struct guest_mem mem;
	static int ready;
	struct errmsg err;

	if (!ready) {
		if (guest_mem_init(&mem, FUZZ_MEM_SIZE, false, &err) < 0)
			abort();
		build_pvh64(templates[0]);
		build_multiboot32(templates[1]);
		build_bzimage(templates[2]);
		ready = 1;
	}
	return &mem;
}

static void run_loaders(struct guest_mem *m, const struct boot_config *cfg)
{
	struct boot_entry entry;
	struct errmsg err;

	boot_load_kernel(m, cfg, &entry, &err);
	boot_load_pvh(m, cfg, &entry, &err);
	boot_load_multiboot(m, cfg, &entry, &err);
	boot_load_linux(m, cfg, &entry, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t initrd[8192];
	static uint8_t image[TEMPLATE_SIZE];
	struct guest_mem *m = fuzz_setup();
	struct boot_config cfg = { 0 };
	uint8_t *exact;
	unsigned mode;

	if (size < 2)
		return 0;
	mode = data[0] % 4;
	cfg.cmdline = "console=ttyS0";
	cfg.ncpus = data[1] & 0x7f ? data[1] & 0x7f : 1;
	if (data[1] & 0x80) {
		cfg.initrd = initrd;
		cfg.initrd_size = sizeof(initrd);
	}
	data += 2;
	size -= 2;
	if (mode == 0) {
		/* the exact buffer, so reads past its end are caught */
		cfg.kernel = data;
		cfg.kernel_size = size;
		run_loaders(m, &cfg);
		return 0;
	}
	memcpy(image, templates[mode - 1], TEMPLATE_SIZE);
	for (size_t i = 0; i < size && i < TEMPLATE_SIZE; i++)
		image[i] ^= data[i];
	/* a length past the template lets the fuzzer truncate the image;
	 * an exact-size heap copy makes reads past the end visible to ASan */
	cfg.kernel_size = size > TEMPLATE_SIZE ? size % TEMPLATE_SIZE
					       : TEMPLATE_SIZE;
	if (!cfg.kernel_size)
		return 0;
	exact = malloc(cfg.kernel_size);
	if (!exact)
		abort();
	memcpy(exact, image, cfg.kernel_size);
	cfg.kernel = exact;
	run_loaders(m, &cfg);
	free(exact);
	return 0;
}
