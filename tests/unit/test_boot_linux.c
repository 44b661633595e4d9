// SPDX-License-Identifier: MIT
/* Linux bzImage loader: a synthetic setup header and a 4 KiB "kernel". */
#include <errno.h>
#include <string.h>

#include "boot/linux.h"
#include "boot/x86_tables.h"
#include "harness.h"
#include "test_boot_util.h"

static uint8_t lx_initrd[10000];

static int load_linux(struct guest_mem *m, uint64_t mem_size,
		      struct boot_config *cfg, struct boot_entry *e,
		      struct errmsg *err)
{
	struct errmsg init_err;

	if (guest_mem_init(m, mem_size, false, &init_err) < 0)
		return -ENOMEM;
	return boot_load_kernel(m, cfg, e, err);
}

#define CHECK_LINUX_FAILS(cfgp, want, needle)                             \
	do {                                                              \
		struct boot_entry e_;                                     \
		struct errmsg err_ = { "" };                              \
		struct guest_mem m_;                                      \
		int ret_;                                                 \
		CHECK_EQ(guest_mem_init(&m_, TEST_MEM_SIZE, false, &err_), 0); \
		ret_ = boot_load_linux(&m_, cfgp, &e_, &err_);            \
		guest_mem_destroy(&m_);                                   \
		CHECK_BOOT_ERR(ret_, &err_, want, needle);                \
	} while (0)

TEST(boot_linux_boot_params)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	const uint8_t *bp;
	uint32_t initrd;
	uint64_t pte;

	tb_build_bzimage(img);
	memset(lx_initrd, 0x17, sizeof(lx_initrd));
	cfg.initrd = lx_initrd;
	cfg.initrd_size = sizeof(lx_initrd);
	cfg.ncpus = 3;
	CHECK_EQ(load_linux(&m, TEST_MEM_SIZE, &cfg, &e, &err), 0);

	CHECK_EQ(e.protocol, BOOT_PROTOCOL_LINUX);
	CHECK_EQ(e.cpu.mode, VCPU_MODE_LONG64);
	CHECK_EQ(e.cpu.rip, 0x1000000 + 0x200);
	CHECK_EQ(e.cpu.rsi, BOOT_INFO_ADDR);
	CHECK_EQ(e.cpu.cr3, BOOT_PML4_ADDR);
	CHECK_EQ(e.cpu.code_selector, 0x10);
	CHECK_EQ(e.cpu.data_selector, 0x18);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_GDT_ADDR + 0x10, 8)), GDT_CODE64);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_GDT_ADDR + 0x18, 8)), GDT_DATA);
	/* identity map: PML4 -> PDPT -> 4 PDs of 2 MiB pages */
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_PML4_ADDR, 8)), BOOT_PDPT_ADDR | 3);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_PDPT_ADDR + 24, 8)),
		 (BOOT_PD_ADDR + 0x3000) | 3);
	pte = tb_get64(tb_guest(&m, BOOT_PD_ADDR + 8 * 2047, 8));
	CHECK_EQ(pte, (2047ull << 21) | 0x83);

	CHECK(!memcmp(tb_guest(&m, 0x1000000, TB_BZ_PM_SIZE),
		      img + TB_BZ_SETUP_SIZE, TB_BZ_PM_SIZE));
	bp = tb_guest(&m, BOOT_INFO_ADDR, 4096);
	CHECK(!memcmp(bp + 0x202, "HdrS", 4));
	CHECK_EQ(bp[0x1f1], TB_BZ_SETUP_SECTS);
	CHECK_EQ(tb_get32(bp + 0x260), 0x400000);	/* init_size copied */
	CHECK_EQ(bp[0x26c], 0);				/* past the header */
	CHECK_EQ(bp[0x210], 0xff);
	CHECK_EQ(bp[0x211], 0x01);	/* LOADED_HIGH kept, CAN_USE_HEAP off */
	CHECK_EQ(tb_get32(bp + 0x228), BOOT_CMDLINE_ADDR);
	CHECK_EQ(tb_get32(bp + 0xc8), 0);
	CHECK(!strcmp((char *)tb_guest(&m, BOOT_CMDLINE_ADDR, 1),
		      "console=ttyS0 quiet"));
	initrd = tb_get32(bp + 0x218);
	CHECK_EQ(tb_get32(bp + 0x21c), sizeof(lx_initrd));
	CHECK_EQ(tb_get32(bp + 0xc0), 0);
	CHECK_EQ(initrd % 4096, 0);
	CHECK(initrd >= 0x1000000 + 0x400000);	/* after init_size */
	CHECK(initrd + sizeof(lx_initrd) <= TEST_MEM_SIZE);
	CHECK(!memcmp(tb_guest(&m, initrd, sizeof(lx_initrd)), lx_initrd,
		      sizeof(lx_initrd)));

	CHECK_EQ(bp[0x1e8], 3);
	CHECK_EQ(tb_get64(bp + 0x2d0), 0);
	CHECK_EQ(tb_get64(bp + 0x2d8), 0x9FC00);
	CHECK_EQ(tb_get32(bp + 0x2e0), 1);
	CHECK_EQ(tb_get64(bp + 0x2e4), 0x9FC00);
	CHECK_EQ(tb_get64(bp + 0x2ec), 0x100000 - 0x9FC00);
	CHECK_EQ(tb_get32(bp + 0x2f4), 2);
	CHECK_EQ(tb_get64(bp + 0x2f8), 0x100000);
	CHECK_EQ(tb_get64(bp + 0x300), TEST_MEM_SIZE - 0x100000);
	CHECK_EQ(tb_get32(bp + 0x308), 1);
	guest_mem_destroy(&m);
}

TEST(boot_linux_relocates_and_limits_initrd)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	uint32_t initrd;

	tb_build_bzimage(img);
	tb_put64(img + 0x258, 0x10000000);	/* 256 MiB: not in RAM */
	tb_put32(img + 0x22c, 0x1ffffff);	/* initrd below 32 MiB */
	cfg.initrd = lx_initrd;
	cfg.initrd_size = sizeof(lx_initrd);
	CHECK_EQ(load_linux(&m, TEST_MEM_SIZE, &cfg, &e, &err), 0);
	CHECK_EQ(e.cpu.rip, 0x200000 + 0x200);	/* first 2 MiB boundary */
	initrd = tb_get32(tb_guest(&m, BOOT_INFO_ADDR + 0x218, 4));
	CHECK(initrd + sizeof(lx_initrd) <= 0x2000000);
	CHECK(initrd >= 0x200000 + 0x400000);
	CHECK_EQ(initrd % 4096, 0);
	guest_mem_destroy(&m);
}

TEST(boot_linux_above_4g)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;
	const uint8_t *bp;

	tb_build_bzimage(img);
	CHECK_EQ(load_linux(&m, 4ull << 30, &cfg, &e, &err), 0);
	bp = tb_guest(&m, BOOT_INFO_ADDR, 4096);
	CHECK_EQ(bp[0x1e8], 4);
	CHECK_EQ(tb_get64(bp + 0x2f8), 0x100000);
	CHECK_EQ(tb_get64(bp + 0x300), 0xC0000000 - 0x100000);
	CHECK_EQ(tb_get64(bp + 0x30c), 0x100000000);
	CHECK_EQ(tb_get64(bp + 0x314), 1ull << 30);
	CHECK_EQ(tb_get32(bp + 0x31c), 1);
	guest_mem_destroy(&m);
}

TEST(boot_linux_rejects_bad_images)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));

	tb_build_bzimage(img);
	cfg.kernel_size = 0x200;
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "bzImage truncated: 512 bytes");
	cfg.kernel_size = sizeof(img);
	img[0x1f1] = 60;	/* setup sectors beyond the file */
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "60 setup sectors");
	tb_build_bzimage(img);
	img[0x1f1] = 8;		/* nothing left past the entry offset */
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "too small to hold the 64-bit entry");
	tb_build_bzimage(img);
	img[0x202] = 'X';
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "no \"HdrS\" magic");
	tb_build_bzimage(img);
	img[0x206] = 0x0b;
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "boot protocol 2.11");
	tb_build_bzimage(img);
	img[0x236] = 0x02;
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "lacks XLF_KERNEL_64");
	tb_build_bzimage(img);
	img[0x211] = 0;
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "zImage");
	tb_build_bzimage(img);
	tb_put64(img + 0x258, 0x10000000);
	img[0x234] = 0;		/* not relocatable, pref_address not in RAM */
	CHECK_LINUX_FAILS(&cfg, -ENOSPC, "non-relocatable kernel needs [0x10000000");
	tb_build_bzimage(img);
	tb_put64(img + 0x258, 0x10000000);
	tb_put32(img + 0x230, 0x300000);
	CHECK_LINUX_FAILS(&cfg, -EINVAL, "kernel_alignment 0x300000");
	tb_build_bzimage(img);
	tb_put32(img + 0x260, 0xF0000000u);	/* init_size > RAM */
	CHECK_LINUX_FAILS(&cfg, -ENOSPC, "kernel needs 0xf0000000 bytes");
}

TEST(boot_linux_rejects_bad_config)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));

	tb_build_bzimage(img);
	tb_put32(img + 0x238, 10);	/* cmdline_size */
	CHECK_LINUX_FAILS(&cfg, -E2BIG,
			  "command line is 19 bytes, longer than the limit of 10");
	tb_build_bzimage(img);
	cfg.initrd = lx_initrd;
	cfg.initrd_size = 60 << 20;	/* never read: does not fit */
	CHECK_LINUX_FAILS(&cfg, -ENOSPC, "initrd of 62914560 bytes does not fit");
	tb_put32(img + 0x22c, 0x1000000);	/* initrd_addr_max below the kernel */
	cfg.initrd_size = 4096;
	CHECK_LINUX_FAILS(&cfg, -ENOSPC, "initrd of 4096 bytes does not fit");
	cfg.initrd = NULL;
	cfg.initrd_size = 0;
	cfg.ncpus = 255;
	CHECK_LINUX_FAILS(&cfg, -E2BIG, "255 vCPUs do not fit the MP table");
}
