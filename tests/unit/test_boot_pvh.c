// SPDX-License-Identifier: MIT
/* PVH loader: a hand-built ELF64/ELF32 kernel with the Xen entry note. */
#include <errno.h>
#include <string.h>

#include "boot/pvh.h"
#include "boot/x86_tables.h"
#include "harness.h"
#include "test_boot_util.h"

#define PVH_LOAD 0x100000ull
#define PVH_ENTRY (PVH_LOAD + 0x10)
#define PVH_BSS 0x3000

static uint8_t pvh_code[64];
static uint8_t pvh_initrd[5000];

/* Builds a PVH kernel: one PT_LOAD (code + bss) and a PT_NOTE. */
static size_t build_pvh(uint8_t *img, bool is64, uint32_t descsz,
			uint64_t entry)
{
	uint8_t note[32];
	size_t note_size = tb_pvh_note(note, entry, descsz);
	struct test_seg segs[2] = {
		{ PT_LOAD, PVH_LOAD, 0, PVH_BSS, pvh_code, sizeof(pvh_code) },
		{ PT_NOTE, 0, 0, 0, note, note_size },
	};

	for (unsigned i = 0; i < sizeof(pvh_code); i++)
		pvh_code[i] = (uint8_t)(0x90 + i);
	return tb_build_elf(img, is64, is64 ? EM_X86_64 : EM_386, 0, segs, 2);
}

/* Loads @img as PVH into a fresh 64 MiB guest; returns the loader result. */
static int load_pvh(struct guest_mem *m, const uint8_t *img, size_t size,
		    struct boot_config *cfg, struct boot_entry *e,
		    struct errmsg *err)
{
	struct errmsg init_err;

	if (guest_mem_init(m, TEST_MEM_SIZE, false, &init_err) < 0)
		return -ENOMEM;
	cfg->kernel = img;
	cfg->kernel_size = size;
	return boot_load_pvh(m, cfg, e, err);
}

TEST(boot_pvh_elf64_start_info)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct hvm_start_info si;
	struct hvm_memmap_table_entry mm[4];
	struct hvm_modlist_entry mod;
	struct boot_entry e;
	struct errmsg err = { "" };
	struct guest_mem m;
	size_t size = build_pvh(img, true, 8, PVH_ENTRY);
	uint64_t gdt[6];

	memset(pvh_initrd, 0xC3, sizeof(pvh_initrd));
	cfg.initrd = pvh_initrd;
	cfg.initrd_size = sizeof(pvh_initrd);
	cfg.ncpus = 2;
	CHECK_EQ(load_pvh(&m, img, size, &cfg, &e, &err), 0);

	CHECK(!memcmp(tb_guest(&m, PVH_LOAD, sizeof(pvh_code)), pvh_code,
		      sizeof(pvh_code)));
	/* zero-filled beyond p_filesz */
	CHECK_EQ(*tb_guest(&m, PVH_LOAD + PVH_BSS - 1, 1), 0);

	CHECK_EQ(guest_mem_read(&m, BOOT_INFO_ADDR, &si, sizeof(si)), 0);
	CHECK_EQ(si.magic, 0x336ec578);
	CHECK_EQ(si.version, 1);
	CHECK_EQ(si.flags, 0);
	CHECK_EQ(si.rsdp_paddr, BOOT_ACPI_RSDP_ADDR);
	CHECK(!memcmp(tb_guest(&m, si.rsdp_paddr, 8), "RSD PTR ", 8));
	CHECK_EQ(si.cmdline_paddr, BOOT_CMDLINE_ADDR);
	CHECK(!strcmp((char *)tb_guest(&m, si.cmdline_paddr, 1),
		      "console=ttyS0 quiet"));
	CHECK_EQ(si.memmap_entries, 3);
	CHECK_EQ(guest_mem_read(&m, si.memmap_paddr, mm, sizeof(mm)), 0);
	CHECK_EQ(mm[0].addr, 0);
	CHECK_EQ(mm[0].size, 0x9FC00);
	CHECK_EQ(mm[0].type, 1);
	CHECK_EQ(mm[1].addr, 0x9FC00);
	CHECK_EQ(mm[1].size, 0x100000 - 0x9FC00);
	CHECK_EQ(mm[1].type, 2);
	CHECK_EQ(mm[2].addr, 0x100000);
	CHECK_EQ(mm[2].size, TEST_MEM_SIZE - 0x100000);
	CHECK_EQ(mm[2].type, 1);

	CHECK_EQ(si.nr_modules, 1);
	CHECK_EQ(guest_mem_read(&m, si.modlist_paddr, &mod, sizeof(mod)), 0);
	CHECK_EQ(mod.size, sizeof(pvh_initrd));
	CHECK_EQ(mod.paddr % 4096, 0);
	CHECK(mod.paddr >= PVH_LOAD + PVH_BSS);
	CHECK(mod.paddr + mod.size <= TEST_MEM_SIZE);
	CHECK(!memcmp(tb_guest(&m, mod.paddr, mod.size), pvh_initrd,
		      sizeof(pvh_initrd)));

	CHECK_EQ(e.protocol, BOOT_PROTOCOL_PVH);
	CHECK_EQ(e.cpu.mode, VCPU_MODE_PROTECTED32);
	CHECK_EQ(e.cpu.rip, PVH_ENTRY);
	CHECK_EQ(e.cpu.rbx, BOOT_INFO_ADDR);
	CHECK_EQ(e.cpu.gdt_base, BOOT_GDT_ADDR);
	CHECK_EQ(e.cpu.gdt_limit, sizeof(gdt) - 1);
	CHECK_EQ(e.cpu.code_selector, BOOT_CODE_SELECTOR);
	CHECK_EQ(e.cpu.data_selector, BOOT_DATA_SELECTOR);
	CHECK_EQ(guest_mem_read(&m, BOOT_GDT_ADDR, gdt, sizeof(gdt)), 0);
	CHECK_EQ(gdt[BOOT_CODE_SELECTOR / 8], GDT_CODE32);
	CHECK_EQ(gdt[BOOT_DATA_SELECTOR / 8], GDT_DATA);
	/* an MP table is there for the second CPU */
	CHECK(!memcmp(tb_guest(&m, BOOT_BIOS_START, 4), "_MP_", 4));
	guest_mem_destroy(&m);
}

TEST(boot_pvh_elf32_detected)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct hvm_start_info si;
	struct boot_entry e;
	struct errmsg err = { "" };
	struct guest_mem m;

	cfg.kernel_size = build_pvh(img, false, 4, PVH_ENTRY);
	cfg.cmdline = NULL;
	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(boot_load_kernel(&m, &cfg, &e, &err), 0);
	CHECK_EQ(e.protocol, BOOT_PROTOCOL_PVH);
	CHECK_EQ(e.cpu.rip, PVH_ENTRY);
	CHECK_EQ(guest_mem_read(&m, BOOT_INFO_ADDR, &si, sizeof(si)), 0);
	CHECK_EQ(si.nr_modules, 0);
	CHECK_EQ(si.modlist_paddr, 0);
	CHECK_EQ(*tb_guest(&m, si.cmdline_paddr, 1), 0);
	guest_mem_destroy(&m);
}

/* Expects the loader to fail with @want and a message containing @needle. */
#define CHECK_PVH_FAILS(img, size, cfgp, want, needle)                    \
	do {                                                              \
		struct boot_entry e_;                                     \
		struct errmsg err_ = { "" };                              \
		struct guest_mem m_;                                      \
		int ret_ = load_pvh(&m_, img, size, cfgp, &e_, &err_);    \
		guest_mem_destroy(&m_);                                   \
		CHECK_BOOT_ERR(ret_, &err_, want, needle);                \
	} while (0)

TEST(boot_pvh_rejects_bad_headers)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	size_t size = build_pvh(img, true, 8, PVH_ENTRY);

	CHECK_PVH_FAILS(img, 40, &cfg, -EINVAL, "ELF64 header truncated");
	CHECK_PVH_FAILS(img, 3, &cfg, -EINVAL, "bad magic");
	img[EI_CLASS] = 7;
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "ELF class 7");
	size = build_pvh(img, true, 8, PVH_ENTRY);
	img[EI_DATA] = ELFDATA2MSB;
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "little-endian");
	size = build_pvh(img, true, 8, PVH_ENTRY);
	tb_put64(img + offsetof(Elf64_Ehdr, e_phoff), size - 8);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "program headers at offset");
	/* phoff + phnum * phentsize wraps */
	tb_put64(img + offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 16);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "outside the");
	size = build_pvh(img, true, 8, PVH_ENTRY);
	img[offsetof(Elf64_Ehdr, e_phentsize)] = 20;
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "program header size 20");
	size = build_pvh(img, true, 8, PVH_ENTRY);
	img[offsetof(Elf64_Ehdr, e_phnum)] = 0;
	img[offsetof(Elf64_Ehdr, e_phnum) + 1] = 2;	/* 512 */
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "512 program headers");
	size = build_pvh(img, true, 8, PVH_ENTRY);
	img[offsetof(Elf64_Ehdr, e_machine)] = 40;	/* ARM */
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "machine 40");
}

TEST(boot_pvh_rejects_bad_notes)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	size_t size = build_pvh(img, true, 8, PVH_ENTRY);
	uint8_t *note_ph = tb_phdr(img, true, 1);
	uint64_t note_off = tb_get64(note_ph + offsetof(Elf64_Phdr, p_offset));

	/* note segment outside the file, and offset + size wrapping */
	tb_put64(note_ph + offsetof(Elf64_Phdr, p_offset), size + 4);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "PT_NOTE 1");
	tb_put64(note_ph + offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 2);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "outside the");
	/* descriptor bigger than the segment */
	size = build_pvh(img, true, 8, PVH_ENTRY);
	tb_put32(img + note_off + 4, 0xfffffff0u);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "runs past the segment");
	/* namesz huge */
	size = build_pvh(img, true, 8, PVH_ENTRY);
	tb_put32(img + note_off, 0xffffffffu);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "namesz 4294967295");
	/* descriptor of a size that is neither 32 nor 64 bits */
	size = build_pvh(img, true, 2, PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "2-byte descriptor");
	/* 64-bit entry beyond 4 GiB */
	size = build_pvh(img, true, 8, 0x100000000ull + PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "not a 32-bit address");
	/* no note at all: change its type */
	size = build_pvh(img, true, 8, PVH_ENTRY);
	tb_put32(img + note_off + 8, 17);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "no PVH entry note");
}

/* Builds a PVH image whose segments are given by the test. */
static size_t build_pvh_segs(uint8_t *img, struct test_seg *load,
			     unsigned nload, uint64_t entry)
{
	static uint8_t note[32];
	struct test_seg segs[4];

	for (unsigned i = 0; i < nload; i++)
		segs[i] = load[i];
	segs[nload] = (struct test_seg){ PT_NOTE, 0, 0, 0, note,
					 tb_pvh_note(note, entry, 4) };
	return tb_build_elf(img, true, EM_X86_64, 0, segs, nload + 1);
}

TEST(boot_pvh_rejects_bad_segments)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct test_seg s[2] = {
		{ PT_LOAD, PVH_LOAD, 0, 0x1000, pvh_code, sizeof(pvh_code) },
		{ PT_LOAD, PVH_LOAD + 0x800, 0, 0x1000, pvh_code, 16 },
	};
	size_t size;
	uint8_t *ph = tb_phdr(img, true, 0);

	/* filesz > memsz */
	s[0].memsz = 16;
	size = build_pvh_segs(img, s, 1, PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL,
			"p_filesz 0x40 is larger than p_memsz 0x10");
	s[0].memsz = 0x1000;
	/* file range outside the file, and wrapping */
	size = build_pvh_segs(img, s, 1, PVH_ENTRY);
	tb_put64(ph + offsetof(Elf64_Phdr, p_offset), size - 8);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "segment 0: file range");
	tb_put64(ph + offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 8);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "segment 0: file range");
	/* memsz wraps the address space */
	size = build_pvh_segs(img, s, 1, PVH_ENTRY);
	tb_put64(ph + offsetof(Elf64_Phdr, p_memsz), UINT64_MAX - 0x1000);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "wraps around");
	/* below 1 MiB: would overwrite boot data */
	s[0].paddr = 0x8000;
	size = build_pvh_segs(img, s, 1, 0x8010);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "overlaps the boot data");
	/* outside RAM */
	s[0].paddr = TEST_MEM_SIZE - 0x800;
	size = build_pvh_segs(img, s, 1, TEST_MEM_SIZE - 0x7f0);
	CHECK_PVH_FAILS(img, size, &cfg, -ENOSPC, "outside guest RAM");
	/* above 4 GiB */
	s[0].paddr = 0x100000000ull;
	size = build_pvh_segs(img, s, 1, PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "not below 4 GiB");
	/* two segments overlapping */
	s[0].paddr = PVH_LOAD;
	size = build_pvh_segs(img, s, 2, PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL,
			"segments 0 [0x100000, 0x101000) and 1 [0x100800, 0x101800) overlap");
	/* entry outside every segment */
	size = build_pvh_segs(img, s, 1, PVH_LOAD + 0x1000);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL,
			"entry point 0x101000 is not inside");
	/* no PT_LOAD at all */
	size = build_pvh_segs(img, s, 0, PVH_ENTRY);
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "no loadable segments");
}

TEST(boot_pvh_rejects_bad_config)
{
	static uint8_t img[TEST_IMAGE_MAX];
	static char line[BOOT_CMDLINE_MAX + 2];
	struct boot_config cfg = tb_config(img, 0);
	size_t size = build_pvh(img, true, 8, PVH_ENTRY);

	memset(line, 'x', sizeof(line) - 1);
	cfg.cmdline = line;
	CHECK_PVH_FAILS(img, size, &cfg, -E2BIG,
			"command line is 4096 bytes, longer than the limit of 4095");
	line[BOOT_CMDLINE_MAX] = 0;	/* exactly the limit is fine */
	{
		struct boot_entry e;
		struct errmsg err = { "" };
		struct guest_mem m;
		int ret = load_pvh(&m, img, size, &cfg, &e, &err);

		CHECK_EQ(strlen((char *)tb_guest(&m, BOOT_CMDLINE_ADDR, 1)),
			 BOOT_CMDLINE_MAX);
		guest_mem_destroy(&m);
		CHECK_EQ(ret, 0);
	}
	cfg.cmdline = NULL;
	/* never read: placement fails before the copy */
	cfg.initrd = pvh_initrd;
	cfg.initrd_size = TEST_MEM_SIZE;
	CHECK_PVH_FAILS(img, size, &cfg, -ENOSPC, "initrd of 67108864 bytes");
	cfg.initrd = NULL;
	cfg.initrd_size = 0;
	cfg.ncpus = 300;
	CHECK_PVH_FAILS(img, size, &cfg, -E2BIG, "300 vCPUs");
	cfg.ncpus = 0;
	CHECK_PVH_FAILS(img, size, &cfg, -EINVAL, "at least one vCPU");
}
