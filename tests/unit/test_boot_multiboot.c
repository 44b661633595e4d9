// SPDX-License-Identifier: MIT
/* Multiboot v1 loader: ELF32 kernels and the address-field ("a.out
 * kludge") format, the information structure and the entry state. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "boot/multiboot.h"
#include "boot/x86_tables.h"
#include "harness.h"
#include "test_boot_util.h"

#define MB_LOAD 0x100000u
#define MB_BSS 0x2000u

static uint8_t mb_initrd[3000];

/* An ELF32 multiboot kernel: the header opens its only PT_LOAD. */
static size_t build_mb_elf(uint8_t *img, uint32_t flags, uint64_t vbase,
			   uint64_t entry)
{
	uint8_t text[64] = { 0 };
	struct test_seg seg = { PT_LOAD, MB_LOAD, vbase, MB_BSS, text,
				sizeof(text) };

	tb_mb_header(text, flags, NULL);
	text[32] = 0xf4;	/* hlt */
	return tb_build_elf(img, false, EM_386, entry, &seg, 1);
}

static int load_mb(struct guest_mem *m, struct boot_config *cfg,
		   struct boot_entry *e, struct errmsg *err, bool detect)
{
	struct errmsg init_err;

	if (guest_mem_init(m, TEST_MEM_SIZE, false, &init_err) < 0)
		return -ENOMEM;
	return detect ? boot_load_kernel(m, cfg, e, err)
		      : boot_load_multiboot(m, cfg, e, err);
}

#define CHECK_MB_FAILS(cfgp, want, needle)                                \
	do {                                                              \
		struct boot_entry e_;                                     \
		struct errmsg err_ = { "" };                              \
		struct guest_mem m_;                                      \
		int ret_ = load_mb(&m_, cfgp, &e_, &err_, false);         \
		guest_mem_destroy(&m_);                                   \
		CHECK_BOOT_ERR(ret_, &err_, want, needle);                \
	} while (0)

TEST(boot_multiboot_elf_info)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	uint8_t mbi[MBI_SIZE], mmap[3 * 24], mod[16];
	uint32_t mod_start;

	cfg.kernel_size = build_mb_elf(img, MB_HDR_PAGE_ALIGN |
					    MB_HDR_MEMORY_INFO, 0, MB_LOAD + 32);
	memset(mb_initrd, 0x42, sizeof(mb_initrd));
	cfg.initrd = mb_initrd;
	cfg.initrd_size = sizeof(mb_initrd);
	CHECK_EQ(load_mb(&m, &cfg, &e, &err, true), 0);

	CHECK_EQ(e.protocol, BOOT_PROTOCOL_MULTIBOOT);
	CHECK_EQ(e.cpu.mode, VCPU_MODE_PROTECTED32);
	CHECK_EQ(e.cpu.rip, MB_LOAD + 32);
	CHECK_EQ(e.cpu.rax, 0x2BADB002);
	CHECK_EQ(e.cpu.rbx, BOOT_INFO_ADDR);
	CHECK_EQ(e.cpu.code_selector, BOOT_CODE_SELECTOR);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_GDT_ADDR + BOOT_CODE_SELECTOR, 8)),
		 GDT_CODE32);
	CHECK_EQ(*tb_guest(&m, MB_LOAD + 32, 1), 0xf4);
	CHECK_EQ(*tb_guest(&m, MB_LOAD + MB_BSS - 1, 1), 0);

	CHECK_EQ(guest_mem_read(&m, BOOT_INFO_ADDR, mbi, sizeof(mbi)), 0);
	CHECK_EQ(tb_get32(mbi + MBI_FLAGS), (1 << 0) | (1 << 2) | (1 << 3) |
						    (1 << 6) | (1 << 9));
	CHECK_EQ(tb_get32(mbi + MBI_MEM_LOWER), 639);
	CHECK_EQ(tb_get32(mbi + MBI_MEM_UPPER), (TEST_MEM_SIZE >> 10) - 1024);
	CHECK(!strcmp((char *)tb_guest(&m, tb_get32(mbi + MBI_CMDLINE), 1),
		      "console=ttyS0 quiet"));
	CHECK(!strcmp((char *)tb_guest(&m, tb_get32(mbi + MBI_LOADER_NAME), 1),
		      "rackvm"));

	CHECK_EQ(tb_get32(mbi + MBI_MMAP_LENGTH), sizeof(mmap));
	CHECK_EQ(guest_mem_read(&m, tb_get32(mbi + MBI_MMAP_ADDR), mmap,
				sizeof(mmap)), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(tb_get32(mmap + 24 * i), 20);
	CHECK_EQ(tb_get64(mmap + 4), 0);
	CHECK_EQ(tb_get64(mmap + 12), 0x9FC00);
	CHECK_EQ(tb_get32(mmap + 20), 1);
	CHECK_EQ(tb_get64(mmap + 24 + 4), 0x9FC00);
	CHECK_EQ(tb_get32(mmap + 24 + 20), 2);
	CHECK_EQ(tb_get64(mmap + 48 + 4), 0x100000);
	CHECK_EQ(tb_get64(mmap + 48 + 12), TEST_MEM_SIZE - 0x100000);
	CHECK_EQ(tb_get32(mmap + 48 + 20), 1);

	CHECK_EQ(tb_get32(mbi + MBI_MODS_COUNT), 1);
	CHECK_EQ(guest_mem_read(&m, tb_get32(mbi + MBI_MODS_ADDR), mod,
				sizeof(mod)), 0);
	mod_start = tb_get32(mod);
	CHECK_EQ(mod_start % 4096, 0);
	CHECK(mod_start >= MB_LOAD + MB_BSS);
	CHECK_EQ(tb_get32(mod + 4), mod_start + sizeof(mb_initrd));
	CHECK(!strcmp((char *)tb_guest(&m, tb_get32(mod + 8), 1), "initrd"));
	CHECK(!memcmp(tb_guest(&m, mod_start, sizeof(mb_initrd)), mb_initrd,
		      sizeof(mb_initrd)));
	guest_mem_destroy(&m);
}

TEST(boot_multiboot_virtual_entry)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;

	/* higher-half link address, physical load at 1 MiB */
	cfg.kernel_size = build_mb_elf(img, 0, 0xC0100000u, 0xC0100020u);
	CHECK_EQ(load_mb(&m, &cfg, &e, &err, false), 0);
	CHECK_EQ(e.cpu.rip, MB_LOAD + 32);
	guest_mem_destroy(&m);
}

/* Raw binary with the header's address fields: header at file offset
 * 16, loaded so that file offset 0 lands at 1 MiB. */
static size_t build_mb_aout(uint8_t *img, const uint32_t addr[5])
{
	memset(img, 0, TEST_IMAGE_MAX);
	tb_mb_header(img + 16, MB_HDR_AOUT_KLUDGE, addr);
	for (unsigned i = 64; i < 0x800; i++)
		img[i] = (uint8_t)i;
	return 0x800;
}

TEST(boot_multiboot_address_fields)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	uint32_t addr[5] = { MB_LOAD + 16, MB_LOAD, 0, MB_LOAD + 0x3000,
			     MB_LOAD + 64 };

	cfg.kernel_size = build_mb_aout(img, addr);
	CHECK_EQ(load_mb(&m, &cfg, &e, &err, true), 0);
	CHECK_EQ(e.protocol, BOOT_PROTOCOL_MULTIBOOT);
	CHECK_EQ(e.cpu.rip, MB_LOAD + 64);
	CHECK(!memcmp(tb_guest(&m, MB_LOAD, 0x800), img, 0x800));
	CHECK_EQ(*tb_guest(&m, MB_LOAD + 0x2fff, 1), 0);
	guest_mem_destroy(&m);
}

TEST(boot_multiboot_rejects_bad_headers)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	uint32_t addr[5] = { MB_LOAD + 16, MB_LOAD, 0, 0, MB_LOAD + 64 };

	/* no header; bad checksum; header after the first 8 KiB */
	memset(img, 0, TEST_IMAGE_MAX);
	cfg.kernel_size = TEST_IMAGE_MAX;
	CHECK_MB_FAILS(&cfg, -EINVAL, "no Multiboot header");
	tb_mb_header(img + 8, 0, NULL);
	img[16] ^= 1;
	CHECK_MB_FAILS(&cfg, -EINVAL, "no Multiboot header");
	memset(img, 0, TEST_IMAGE_MAX);
	tb_mb_header(img + 8192, 0, NULL);
	CHECK_MB_FAILS(&cfg, -EINVAL, "in the first 8192 bytes");
	/* header cut off by the end of the file */
	memset(img, 0, TEST_IMAGE_MAX);
	tb_mb_header(img, MB_HDR_AOUT_KLUDGE, addr);
	cfg.kernel_size = 20;
	CHECK_MB_FAILS(&cfg, -EINVAL, "truncated");

	/* unsupported requirements */
	cfg.kernel_size = build_mb_elf(img, MB_HDR_VIDEO_MODE, 0, MB_LOAD + 32);
	CHECK_MB_FAILS(&cfg, -ENOTSUP, "video mode");
	cfg.kernel_size = build_mb_elf(img, 1u << 5, 0, MB_LOAD + 32);
	CHECK_MB_FAILS(&cfg, -ENOTSUP, "unknown features (flags 0x20)");

	/* ELF64 is not a Multiboot v1 format */
	{
		uint8_t text[64] = { 0 };
		struct test_seg seg = { PT_LOAD, MB_LOAD, 0, 0, text,
					sizeof(text) };

		tb_mb_header(text, 0, NULL);
		cfg.kernel_size = tb_build_elf(img, true, EM_X86_64, MB_LOAD,
					       &seg, 1);
		CHECK_MB_FAILS(&cfg, -EINVAL,
			       "must be ELF32 i386 (got ELF64 machine 62)");
	}
	/* entry outside the image */
	cfg.kernel_size = build_mb_elf(img, 0, 0, MB_LOAD + MB_BSS);
	CHECK_MB_FAILS(&cfg, -EINVAL, "entry point 0x102000");
	/* not ELF and no address fields */
	memset(img, 0, TEST_IMAGE_MAX);
	tb_mb_header(img, 0, NULL);
	cfg.kernel_size = 64;
	CHECK_MB_FAILS(&cfg, -EINVAL, "not ELF");
}

TEST(boot_multiboot_rejects_bad_address_fields)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	uint32_t good[5] = { MB_LOAD + 16, MB_LOAD, 0, 0, MB_LOAD + 64 };
	uint32_t a[5];

#define WITH(field, value)                                                \
	do {                                                              \
		memcpy(a, good, sizeof(a));                               \
		a[field] = value;                                         \
		cfg.kernel_size = build_mb_aout(img, a);                  \
	} while (0)

	WITH(1, MB_LOAD + 32);		/* load_addr above header_addr */
	CHECK_MB_FAILS(&cfg, -EINVAL, "header_addr 0x100010 is below load_addr 0x100020");
	WITH(1, MB_LOAD - 16);		/* would start before the file */
	CHECK_MB_FAILS(&cfg, -EINVAL, "before the file");
	WITH(2, MB_LOAD + 0x900);	/* load_end past the file */
	CHECK_MB_FAILS(&cfg, -EINVAL, "the file has 2048");
	WITH(2, MB_LOAD - 1);
	CHECK_MB_FAILS(&cfg, -EINVAL, "load_end_addr 0xfffff is below");
	WITH(3, MB_LOAD + 0x10);	/* bss_end inside the image */
	CHECK_MB_FAILS(&cfg, -EINVAL, "bss_end_addr 0x100010");
	WITH(4, MB_LOAD + 0x800);	/* entry just past the image */
	CHECK_MB_FAILS(&cfg, -EINVAL, "entry_addr 0x100800 is outside");
	/* loaded over boot data, and beyond RAM */
	memcpy(a, good, sizeof(a));
	a[0] = 0x8010;
	a[1] = 0x8000;
	a[4] = 0x8040;
	cfg.kernel_size = build_mb_aout(img, a);
	CHECK_MB_FAILS(&cfg, -EINVAL, "overlaps the boot data below 1 MiB");
	WITH(3, 0xF0000000u);
	CHECK_MB_FAILS(&cfg, -ENOSPC, "outside guest RAM");
#undef WITH
}

/* GRUB and QEMU pass "KERNEL ARGS"; kernels that build argv from it skip
 * argv[0], so it must be the kernel's name, not the first argument. */
static bool mb_cmdline_is(const char *name, const char *args,
			  const char *want)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	uint8_t mbi[MBI_SIZE];
	bool same = false;

	cfg.kernel_size = build_mb_elf(img, 0, 0, MB_LOAD + 32);
	cfg.kernel_name = name;
	cfg.cmdline = args;
	if (load_mb(&m, &cfg, &e, &err, true) == 0 &&
	    guest_mem_read(&m, BOOT_INFO_ADDR, mbi, sizeof(mbi)) == 0)
		same = !strcmp((char *)tb_guest(&m, tb_get32(mbi + MBI_CMDLINE), 1),
			       want);
	guest_mem_destroy(&m);
	return same;
}

TEST(boot_multiboot_cmdline_starts_with_kernel_name)
{
	static uint8_t img[TEST_IMAGE_MAX];
	static char args[BOOT_CMDLINE_MAX + 1], want[BOOT_CMDLINE_MAX + 1];
	struct boot_config cfg = tb_config(img, 0);

	CHECK(mb_cmdline_is("build/images/multiboot-test.elf", "mbtest=hello x",
			    "build/images/multiboot-test.elf mbtest=hello x"));
	CHECK(mb_cmdline_is("/boot/k.elf", NULL, "/boot/k.elf"));
	CHECK(mb_cmdline_is("/boot/k.elf", "", "/boot/k.elf"));
	CHECK(mb_cmdline_is(NULL, "a=1", "a=1"));

	/* the name counts against the limit: "/k " + args fills it */
	memset(args, 'a', BOOT_CMDLINE_MAX - 3);
	args[BOOT_CMDLINE_MAX - 3] = 0;
	memcpy(want, "/k ", 3);
	memcpy(want + 3, args, sizeof(want) - 3);
	CHECK(mb_cmdline_is("/k", args, want));
	cfg.kernel_size = build_mb_elf(img, 0, 0, MB_LOAD + 32);
	cfg.kernel_name = "/kern";
	cfg.cmdline = args;
	CHECK_MB_FAILS(&cfg, -E2BIG, "limit of 4095");
}
