// SPDX-License-Identifier: MIT
#include "boot/linux.h"

#include <errno.h>
#include <string.h>

#include "boot/acpi.h"
#include "boot/boot.h"
#include "boot/e820.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "boot/mptable.h"
#include "boot/x86_tables.h"

/* What the loader learned from the setup header. */
struct bzimage {
	const uint8_t *hdr;	/* the file; header offsets index it */
	size_t setup_size;	/* real-mode part incl. boot sector */
	size_t kernel_size;	/* protected-mode part */
	size_t header_end;	/* file offset where the setup header ends */
	uint16_t version;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	bool relocatable;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint64_t init_size;	/* memory the kernel needs from its load address */
};

static int parse_header(const struct boot_config *cfg, struct bzimage *bz,
			struct errmsg *err)
{
	const uint8_t *k = cfg->kernel;
	unsigned setup_sects;
	uint16_t xloadflags;

	if (cfg->kernel_size < LINUX_INIT_SIZE + 4)
		return errmsg_set(err, -EINVAL,
				  "bzImage truncated: %zu bytes, the setup header alone needs %u",
				  cfg->kernel_size, LINUX_INIT_SIZE + 4);
	if (get_le32(k + LINUX_HEADER) != LINUX_HDRS_MAGIC)
		return errmsg_set(err, -EINVAL,
				  "not a bzImage: no \"HdrS\" magic at offset 0x%x",
				  LINUX_HEADER);
	bz->hdr = k;
	bz->version = get_le16(k + LINUX_VERSION);
	if (bz->version < LINUX_MIN_VERSION)
		return errmsg_set(err, -EINVAL,
				  "bzImage boot protocol %u.%02u is older than the 2.12 rackvm needs",
				  bz->version >> 8, bz->version & 0xff);
	xloadflags = get_le16(k + LINUX_XLOADFLAGS);
	if (!(xloadflags & LINUX_XLF_KERNEL_64))
		return errmsg_set(err, -EINVAL,
				  "bzImage has no 64-bit entry point (xloadflags 0x%x lacks XLF_KERNEL_64)",
				  xloadflags);
	if (!(k[LINUX_LOADFLAGS] & LINUX_LOADED_HIGH))
		return errmsg_set(err, -EINVAL,
				  "kernel is not loaded high (loadflags 0x%x): zImage is not supported",
				  k[LINUX_LOADFLAGS]);

	setup_sects = k[LINUX_SETUP_SECTS];
	if (setup_sects == 0)
		setup_sects = LINUX_DEFAULT_SETUP_SECTS;
	bz->setup_size = (size_t)(setup_sects + 1) * LINUX_SECTOR;
	if (bz->setup_size >= cfg->kernel_size)
		return errmsg_set(err, -EINVAL,
				  "bzImage truncated: %u setup sectors need more than the file's %zu bytes",
				  setup_sects, cfg->kernel_size);
	bz->kernel_size = cfg->kernel_size - bz->setup_size;
	if (bz->kernel_size <= LINUX_ENTRY64_OFFSET)
		return errmsg_set(err, -EINVAL,
				  "bzImage protected-mode kernel is %zu bytes, too small to hold the 64-bit entry at +0x%x",
				  bz->kernel_size, LINUX_ENTRY64_OFFSET);
	/* the header ends at 0x202 + the jump instruction's offset byte */
	bz->header_end = LINUX_HEADER + k[LINUX_JUMP + 1];
	if (bz->header_end > BP_SETUP_HEADER_END)
		bz->header_end = BP_SETUP_HEADER_END;
	if (bz->header_end > cfg->kernel_size)
		bz->header_end = cfg->kernel_size;

	bz->initrd_addr_max = get_le32(k + LINUX_INITRD_ADDR_MAX);
	bz->kernel_alignment = get_le32(k + LINUX_KERNEL_ALIGNMENT);
	bz->relocatable = k[LINUX_RELOCATABLE] != 0;
	bz->cmdline_size = get_le32(k + LINUX_CMDLINE_SIZE);
	bz->pref_address = get_le64(k + LINUX_PREF_ADDRESS);
	bz->init_size = get_le32(k + LINUX_INIT_SIZE);
	if (bz->init_size < bz->kernel_size)
		bz->init_size = bz->kernel_size;
	return 0;
}

static bool fits_at(const struct guest_mem *m, uint64_t addr, uint64_t size)
{
	return addr >= BOOT_HIGH_RAM && addr <= BOOT_4G - size &&
	       guest_mem_ptr(m, addr, size);
}

/* pref_address if it fits; otherwise, for a relocatable kernel, the
 * first kernel_alignment boundary at or above 1 MiB. */
static int choose_load_address(const struct guest_mem *m,
			       const struct bzimage *bz, uint64_t *addr,
			       struct errmsg *err)
{
	uint64_t align = bz->kernel_alignment;
	uint64_t a;

	if (bz->init_size >= BOOT_4G)
		return errmsg_set(err, -EINVAL,
				  "bzImage init_size 0x%llx is not below 4 GiB",
				  (unsigned long long)bz->init_size);
	if (fits_at(m, bz->pref_address, bz->init_size)) {
		*addr = bz->pref_address;
		return 0;
	}
	if (!bz->relocatable)
		return errmsg_set(err, -ENOSPC,
				  "non-relocatable kernel needs [0x%llx, 0x%llx), which is not in guest RAM above 1 MiB",
				  (unsigned long long)bz->pref_address,
				  (unsigned long long)(bz->pref_address + bz->init_size));
	if (align == 0 || (align & (align - 1)))
		return errmsg_set(err, -EINVAL,
				  "bzImage kernel_alignment 0x%llx is not a power of two",
				  (unsigned long long)align);
	a = (BOOT_HIGH_RAM + align - 1) & ~(align - 1);
	if (!fits_at(m, a, bz->init_size))
		return errmsg_set(err, -ENOSPC,
				  "kernel needs 0x%llx bytes at 0x%llx (alignment 0x%llx); guest RAM below 4 GiB ends at 0x%llx",
				  (unsigned long long)bz->init_size,
				  (unsigned long long)a,
				  (unsigned long long)align,
				  (unsigned long long)guest_mem_low_top(m));
	*addr = a;
	return 0;
}

static void fill_e820(const struct guest_mem *m, uint8_t *bp)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, map);

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

		put_le64(p, map[i].addr);
		put_le64(p + 8, map[i].size);
		put_le32(p + 16, map[i].type);
	}
	bp[BP_E820_ENTRIES] = (uint8_t)n;
}

static int load_initrd(const struct guest_mem *m,
		       const struct boot_config *cfg, const struct bzimage *bz,
		       uint64_t kernel_end, uint8_t *bp, struct errmsg *err)
{
	uint64_t addr;
	int ret;

	if (!boot_has_initrd(cfg))
		return 0;
	/* initrd_addr_max is the highest address the last byte may have */
	ret = boot_load_initrd(m, cfg, kernel_end,
			       (uint64_t)bz->initrd_addr_max + 1, &addr, err);
	if (ret < 0)
		return ret;
	put_le32(bp + LINUX_RAMDISK_IMAGE, (uint32_t)addr);
	put_le32(bp + LINUX_RAMDISK_SIZE, (uint32_t)cfg->initrd_size);
	put_le32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(addr >> 32));
	put_le32(bp + BP_EXT_RAMDISK_SIZE,
		 (uint32_t)((uint64_t)cfg->initrd_size >> 32));
	return 0;
}

/* Older kernels do not know boot_params.acpi_rsdp_addr; they (and any
 * kernel) find the RSDP by scanning the BIOS area instead. */
static int write_acpi(const struct guest_mem *m, const struct boot_config *cfg,
		      const struct bzimage *bz, uint8_t *bp,
		      struct errmsg *err)
{
	uint64_t rsdp;
	int ret;

	ret = acpi_write(m, cfg, &rsdp, err);
	if (ret < 0)
		return ret;
	if (bz->version >= LINUX_ACPI_RSDP_VERSION)
		put_le64(bp + BP_ACPI_RSDP_ADDR, rsdp);
	return 0;
}

static void fill_setup_header(const struct bzimage *bz, uint8_t *bp)
{
	memcpy(bp + LINUX_SETUP_SECTS, bz->hdr + LINUX_SETUP_SECTS,
	       bz->header_end - LINUX_SETUP_SECTS);
	bp[LINUX_TYPE_OF_LOADER] = LINUX_LOADER_TYPE_UNDEFINED;
	/* no real-mode setup code runs, so there is no heap to describe */
	bp[LINUX_LOADFLAGS] &= ~LINUX_CAN_USE_HEAP;
	put_le16(bp + LINUX_HEAP_END_PTR, 0);
	put_le32(bp + LINUX_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	put_le32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(BOOT_CMDLINE_ADDR >> 32));
	put_le32(bp + LINUX_RAMDISK_IMAGE, 0);
	put_le32(bp + LINUX_RAMDISK_SIZE, 0);
}

int boot_load_linux(struct guest_mem *m, const struct boot_config *cfg,
		    struct boot_entry *entry, struct errmsg *err)
{
	uint8_t bp[BP_SIZE];
	struct bzimage bz = { 0 };
	uint64_t load = 0;
	int ret;

	ret = boot_check_common(m, cfg, err);
	if (ret < 0)
		return ret;
	ret = parse_header(cfg, &bz, err);
	if (ret < 0)
		return ret;
	ret = choose_load_address(m, &bz, &load, err);
	if (ret < 0)
		return ret;
	ret = boot_write_cmdline(m, cfg,
				 bz.cmdline_size < BOOT_CMDLINE_MAX ?
					 bz.cmdline_size : BOOT_CMDLINE_MAX,
				 err);
	if (ret < 0)
		return ret;

	memset(bp, 0, sizeof(bp));
	fill_setup_header(&bz, bp);
	fill_e820(m, bp);
	ret = load_initrd(m, cfg, &bz, load + bz.init_size, bp, err);
	if (!ret)
		ret = boot_write(m, load, cfg->kernel + bz.setup_size,
				 bz.kernel_size, "kernel", err);
	if (!ret)
		ret = mptable_write(m, cfg->ncpus, err);
	if (!ret)
		ret = boot_write_reset_vector(m, err);
	if (!ret)
		ret = write_acpi(m, cfg, &bz, bp, err);
	if (!ret)
		ret = boot_write(m, BOOT_INFO_ADDR, bp, sizeof(bp),
				 "boot_params", err);
	if (ret < 0)
		return ret;

	boot_entry_init(entry, BOOT_PROTOCOL_LINUX, VCPU_MODE_LONG64);
	entry->cpu.rip = load + LINUX_ENTRY64_OFFSET;
	entry->cpu.rsi = BOOT_INFO_ADDR;
	ret = boot_write_gdt(m, true, &entry->cpu, err);
	if (ret < 0)
		return ret;
	return boot_write_identity_map(m, &entry->cpu, err);
}
