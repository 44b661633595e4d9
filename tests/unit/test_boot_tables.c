// SPDX-License-Identifier: MIT
/* Shared boot pieces: the memory map, the MP table, format detection. */
#include <errno.h>
#include <string.h>

#include "boot/e820.h"
#include "boot/mptable.h"
#include "boot/x86_tables.h"
#include "harness.h"
#include "test_boot_util.h"

TEST(boot_e820_small_ram)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct errmsg err;
	struct guest_mem m;
	unsigned n;

	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	n = e820_build(&m, map);
	guest_mem_destroy(&m);
	CHECK_EQ(n, 3);
	CHECK_EQ(map[0].addr, 0);
	CHECK_EQ(map[0].size, 0x9FC00);
	CHECK_EQ(map[0].type, E820_TYPE_RAM);
	CHECK_EQ(map[1].addr, 0x9FC00);
	CHECK_EQ(map[1].size, 0x60400);
	CHECK_EQ(map[1].type, E820_TYPE_RESERVED);
	CHECK_EQ(map[2].addr, 0x100000);
	CHECK_EQ(map[2].size, TEST_MEM_SIZE - 0x100000);
	CHECK_EQ(map[2].type, E820_TYPE_RAM);
}

TEST(boot_e820_above_4g)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct errmsg err;
	struct guest_mem m;
	unsigned n;

	/* 5 GiB: 3 GiB below the MMIO hole, 2 GiB from 4 GiB up */
	CHECK_EQ(guest_mem_init(&m, 5ull << 30, false, &err), 0);
	n = e820_build(&m, map);
	guest_mem_destroy(&m);
	CHECK_EQ(n, 4);
	CHECK_EQ(map[2].addr, 0x100000);
	CHECK_EQ(map[2].size, 0xC0000000 - 0x100000);
	CHECK_EQ(map[3].addr, 0x100000000);
	CHECK_EQ(map[3].size, 2ull << 30);
	CHECK_EQ(map[3].type, E820_TYPE_RAM);
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

TEST(boot_mptable_layout)
{
	const unsigned ncpus = 4;
	const uint8_t *f, *t, *p;
	unsigned cpus = 0, ioints = 0, lints = 0, count;
	struct errmsg err = { "" };
	struct guest_mem m;
	uint16_t len;

	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(mptable_write(&m, ncpus, &err), 0);
	f = tb_guest(&m, BOOT_BIOS_START, 16);
	CHECK(!memcmp(f, "_MP_", 4));
	CHECK_EQ(BOOT_BIOS_START % 16, 0);
	CHECK_EQ(f[8], 1);
	CHECK_EQ(f[9], 4);
	CHECK_EQ(byte_sum(f, 16), 0);
	CHECK_EQ(f[11], 0);	/* a configuration table is present */

	t = tb_guest(&m, tb_get32(f + 4), 44);
	CHECK(!memcmp(t, "PCMP", 4));
	len = (uint16_t)(t[4] | t[5] << 8);
	t = tb_guest(&m, tb_get32(f + 4), len);
	CHECK_EQ(byte_sum(t, len), 0);
	CHECK_EQ(tb_get32(t + 36), 0xFEE00000);
	count = t[34] | t[35] << 8;
	p = t + 44;
	for (unsigned i = 0; i < count; i++) {
		switch (p[0]) {
		case 0:
			CHECK_EQ(p[1], cpus);		/* APIC ID = index */
			CHECK_EQ(p[3], cpus == 0 ? 3 : 1);
			cpus++;
			p += 20;
			break;
		case 1:
			CHECK(!memcmp(p + 2, "ISA   ", 6));
			p += 8;
			break;
		case 2:
			CHECK_EQ(p[1], ncpus);
			CHECK_EQ(p[2], 0x11);
			CHECK_EQ(tb_get32(p + 4), 0xFEC00000);
			p += 8;
			break;
		case 3:
			CHECK_EQ(p[6], ncpus);
			CHECK(p[5] != 2);	/* the cascade has no pin */
			CHECK_EQ(p[7], p[5] == 0 ? 2 : p[5]);
			ioints++;
			p += 8;
			break;
		case 4:
			CHECK_EQ(p[7], lints);	/* LINT0 ExtINT, LINT1 NMI */
			CHECK_EQ(p[1], lints == 0 ? 3 : 1);
			lints++;
			p += 8;
			break;
		default:
			CHECK(!"unknown MP entry type");
		}
	}
	CHECK_EQ(p - t, len);
	CHECK_EQ(cpus, ncpus);
	CHECK_EQ(ioints, 15);
	CHECK_EQ(lints, 2);
	guest_mem_destroy(&m);
}

TEST(boot_mptable_cpu_limits)
{
	struct errmsg err = { "" };
	struct guest_mem m;

	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(mptable_write(&m, MPTABLE_MAX_CPUS, &err), 0);
	CHECK_EQ(byte_sum(tb_guest(&m, BOOT_BIOS_START + 16, 44 + 254 * 20),
			  0), 0);
	CHECK_BOOT_ERR(mptable_write(&m, 255, &err), &err, -E2BIG,
		       "255 vCPUs do not fit the MP table (at most 254)");
	guest_mem_destroy(&m);
}

TEST(boot_detect_rejects_unknown)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;

	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_BOOT_ERR(boot_load_kernel(&m, &cfg, &e, &err), &err, -EINVAL,
		       "kernel image is empty");
	memset(img, 0x11, sizeof(img));
	cfg.kernel_size = sizeof(img);
	CHECK_BOOT_ERR(boot_load_kernel(&m, &cfg, &e, &err), &err, -EINVAL,
		       "unrecognised kernel format");
	/* ELF without PVH note or Multiboot header */
	{
		uint8_t code[16] = { 0 };
		struct test_seg seg = { PT_LOAD, 0x100000, 0, 0, code, 16 };

		cfg.kernel_size = tb_build_elf(img, true, EM_X86_64, 0x100000,
					       &seg, 1);
	}
	CHECK_BOOT_ERR(boot_load_kernel(&m, &cfg, &e, &err), &err, -EINVAL,
		       "neither a PVH entry note nor a Multiboot header");
	/* a broken ELF keeps the ELF parser's reason */
	img[EI_DATA] = 9;
	CHECK_BOOT_ERR(boot_load_kernel(&m, &cfg, &e, &err), &err, -EINVAL,
		       "not little-endian");
	guest_mem_destroy(&m);
	CHECK(!strcmp(boot_protocol_name(BOOT_PROTOCOL_PVH), "pvh"));
	CHECK(!strcmp(boot_protocol_name(BOOT_PROTOCOL_MULTIBOOT), "multiboot"));
	CHECK(!strcmp(boot_protocol_name(BOOT_PROTOCOL_LINUX), "linux"));
}

/* The reset vector F000:FFF0 holds "mov al, 0xfe; out 0x64, al; hlt",
 * written by every loader: Linux's reboot through the BIOS (its default
 * on a hardware-reduced ACPI machine without EFI) then resets the VM. */
TEST(boot_reset_vector_pulses_i8042_reset)
{
	static const uint8_t stub[] = { 0xB0, 0xFE, 0xE6, 0x64, 0xF4, 0xEB,
					0xFD };
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;

	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(boot_write_reset_vector(&m, &err), 0);
	CHECK(!memcmp(tb_guest(&m, 0xFFFF0, sizeof(stub)), stub, sizeof(stub)));

	memset(tb_guest(&m, 0, BOOT_HIGH_RAM), 0, BOOT_HIGH_RAM);
	tb_build_bzimage(img);
	cfg.ncpus = 1;
	CHECK_EQ(boot_load_linux(&m, &cfg, &e, &err), 0);
	CHECK(!memcmp(tb_guest(&m, 0xFFFF0, sizeof(stub)), stub, sizeof(stub)));
	guest_mem_destroy(&m);
}
