// SPDX-License-Identifier: MIT
#include "boot/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot/acpi.h"
#include "boot/boot.h"
#include "boot/e820.h"
#include "boot/elf.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "boot/mptable.h"
#include "boot/x86_tables.h"

#define MB_HEADER_MIN 12	/* magic, flags, checksum */
#define MB_HEADER_AOUT 32	/* plus the five address fields */
#define MB_MODULE_NAME "initrd"

int multiboot_find_header(const uint8_t *buf, size_t size,
			  struct multiboot_header *h, struct errmsg *err)
{
	size_t limit = size < MULTIBOOT_SEARCH_LIMIT ? size
						     : MULTIBOOT_SEARCH_LIMIT;

	for (size_t off = 0; off + MB_HEADER_MIN <= limit; off += 4) {
		const uint8_t *p = buf + off;
		uint32_t flags = get_le32(p + 4);

		if (get_le32(p) != MULTIBOOT_HEADER_MAGIC ||
		    MULTIBOOT_HEADER_MAGIC + flags + get_le32(p + 8) != 0)
			continue;
		memset(h, 0, sizeof(*h));
		h->offset = off;
		h->flags = flags;
		if (!(flags & MB_HDR_AOUT_KLUDGE))
			return 1;
		if (!range_in_buffer(off, MB_HEADER_AOUT, size))
			return errmsg_set(err, -EINVAL,
					  "Multiboot header at offset 0x%zx is truncated: address fields need %u bytes, file is %zu",
					  off, MB_HEADER_AOUT, size);
		h->header_addr = get_le32(p + 12);
		h->load_addr = get_le32(p + 16);
		h->load_end_addr = get_le32(p + 20);
		h->bss_end_addr = get_le32(p + 24);
		h->entry_addr = get_le32(p + 28);
		return 1;
	}
	return 0;
}

static int check_flags(uint32_t flags, struct errmsg *err)
{
	uint32_t unsupported = flags & MB_HDR_REQUIRED_MASK & ~MB_HDR_SUPPORTED;

	if (unsupported & MB_HDR_VIDEO_MODE)
		return errmsg_set(err, -ENOTSUP,
				  "Multiboot kernel requires a video mode (flag bit 2), which rackvm does not provide");
	if (unsupported)
		return errmsg_set(err, -ENOTSUP,
				  "Multiboot kernel requires unknown features (flags 0x%x)",
				  unsupported);
	return 0;
}

/* Loads using the header's address fields (the "a.out kludge"). */
static int load_by_address_fields(const struct guest_mem *m,
				  const struct boot_config *cfg,
				  const struct multiboot_header *h,
				  uint64_t *entry, uint64_t *end,
				  struct errmsg *err)
{
	uint64_t header_delta, file_off, load_size, mem_end;
	uint8_t *dst;
	int ret;

	if (h->header_addr < h->load_addr)
		return errmsg_set(err, -EINVAL,
				  "Multiboot header_addr 0x%x is below load_addr 0x%x",
				  h->header_addr, h->load_addr);
	header_delta = h->header_addr - h->load_addr;
	if (header_delta > h->offset)
		return errmsg_set(err, -EINVAL,
				  "Multiboot load_addr 0x%x would start %llu bytes before the file",
				  h->load_addr,
				  (unsigned long long)(header_delta - h->offset));
	file_off = h->offset - header_delta;
	if (h->load_end_addr == 0) {
		load_size = cfg->kernel_size - file_off;
	} else {
		if (h->load_end_addr < h->load_addr)
			return errmsg_set(err, -EINVAL,
					  "Multiboot load_end_addr 0x%x is below load_addr 0x%x",
					  h->load_end_addr, h->load_addr);
		load_size = h->load_end_addr - h->load_addr;
		if (load_size > cfg->kernel_size - file_off)
			return errmsg_set(err, -EINVAL,
					  "Multiboot load range [0x%x, 0x%x) needs %llu bytes from file offset 0x%llx, the file has %llu",
					  h->load_addr, h->load_end_addr,
					  (unsigned long long)load_size,
					  (unsigned long long)file_off,
					  (unsigned long long)(cfg->kernel_size - file_off));
	}
	mem_end = (uint64_t)h->load_addr + load_size;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < mem_end)
			return errmsg_set(err, -EINVAL,
					  "Multiboot bss_end_addr 0x%x is below the end of the loaded image 0x%llx",
					  h->bss_end_addr,
					  (unsigned long long)mem_end);
		mem_end = h->bss_end_addr;
	}
	ret = boot_check_kernel_range(m, h->load_addr, mem_end - h->load_addr,
				      "Multiboot kernel", err);
	if (ret < 0)
		return ret;
	if (h->entry_addr < h->load_addr || h->entry_addr >= mem_end)
		return errmsg_set(err, -EINVAL,
				  "Multiboot entry_addr 0x%x is outside the loaded image [0x%x, 0x%llx)",
				  h->entry_addr, h->load_addr,
				  (unsigned long long)mem_end);
	dst = guest_mem_ptr(m, h->load_addr, mem_end - h->load_addr);
	memcpy(dst, cfg->kernel + file_off, load_size);
	memset(dst + load_size, 0, mem_end - h->load_addr - load_size);
	*entry = h->entry_addr;
	*end = mem_end;
	return 0;
}

static int load_elf(const struct guest_mem *m, const struct boot_config *cfg,
		    uint64_t *entry, uint64_t *end, struct errmsg *err)
{
	struct elf_extent ext;
	struct elf_file f;
	int ret;

	if (!elf_has_magic(cfg->kernel, cfg->kernel_size))
		return errmsg_set(err, -EINVAL,
				  "Multiboot kernel is not ELF and its header has no address fields (flag bit 16)");
	ret = elf_parse(&f, cfg->kernel, cfg->kernel_size, err);
	if (ret < 0)
		return ret;
	if (f.is64 || f.machine != EM_386)
		return errmsg_set(err, -EINVAL,
				  "Multiboot ELF kernels must be ELF32 i386 (got ELF%s machine %u)",
				  f.is64 ? "64" : "32", f.machine);
	ret = elf_load_segments(m, &f, &ext, err);
	if (ret < 0)
		return ret;
	*end = ext.end;
	/* higher-half kernels link e_entry virtually; like GRUB, run it at
	 * the physical address of the same byte */
	return elf_entry_to_paddr(&f, f.entry, true, entry, err);
}

static int write_mmap(const struct guest_mem *m, uint8_t *mbi,
		      struct errmsg *err)
{
	uint8_t out[E820_MAX_ENTRIES * MB_MMAP_ENTRY_SIZE] = { 0 };
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, map);

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = out + i * MB_MMAP_ENTRY_SIZE;

		put_le32(p, MB_MMAP_ENTRY_SIZE - 4);
		put_le64(p + 4, map[i].addr);
		put_le64(p + 12, map[i].size);
		put_le32(p + 20, map[i].type);
	}
	put_le32(mbi + MBI_MMAP_LENGTH, n * MB_MMAP_ENTRY_SIZE);
	put_le32(mbi + MBI_MMAP_ADDR, BOOT_MEMMAP_ADDR);
	return boot_write(m, BOOT_MEMMAP_ADDR, out, n * MB_MMAP_ENTRY_SIZE,
			  "Multiboot memory map", err);
}

/* Writes the loader name and module name strings; returns the latter's
 * address in @module_name. */
static int write_strings(const struct guest_mem *m, uint8_t *mbi,
			 uint32_t *module_name, struct errmsg *err)
{
	static const char strings[] = MULTIBOOT_LOADER_NAME "\0" MB_MODULE_NAME;

	put_le32(mbi + MBI_LOADER_NAME, BOOT_STRINGS_ADDR);
	*module_name = BOOT_STRINGS_ADDR + sizeof(MULTIBOOT_LOADER_NAME);
	return boot_write(m, BOOT_STRINGS_ADDR, strings, sizeof(strings),
			  "Multiboot strings", err);
}

static int write_modules(const struct guest_mem *m,
			 const struct boot_config *cfg, uint64_t kernel_end,
			 uint32_t module_name, uint8_t *mbi,
			 struct errmsg *err)
{
	uint8_t mod[MB_MODULE_SIZE] = { 0 };
	uint64_t addr;
	int ret;

	put_le32(mbi + MBI_MODS_ADDR, BOOT_MODLIST_ADDR);
	if (!boot_has_initrd(cfg))
		return 0;
	ret = boot_load_initrd(m, cfg, kernel_end, BOOT_4G, &addr, err);
	if (ret < 0)
		return ret;
	put_le32(mod, (uint32_t)addr);
	put_le32(mod + 4, (uint32_t)(addr + cfg->initrd_size));	/* exclusive */
	put_le32(mod + 8, module_name);
	put_le32(mbi + MBI_MODS_COUNT, 1);
	return boot_write(m, BOOT_MODLIST_ADDR, mod, sizeof(mod),
			  "Multiboot module list", err);
}

/*
 * GRUB and QEMU pass "KERNEL ARGS": kernels that parse their command line
 * into argv (kvm-unit-tests, for one) skip argv[0] as their own name, so
 * without it they would lose their first argument.  No trailing space when
 * there are no arguments, as GRUB does (QEMU leaves one).
 */
static int write_cmdline(const struct guest_mem *m,
			 const struct boot_config *cfg, struct errmsg *err)
{
	char line[BOOT_CMDLINE_MAX + 2];
	struct boot_config named = *cfg;
	const char *args = cfg->cmdline ? cfg->cmdline : "";
	int n;

	if (!cfg->kernel_name)
		return boot_write_cmdline(m, cfg, BOOT_CMDLINE_MAX, err);
	n = snprintf(line, sizeof(line), "%s%s%s", cfg->kernel_name,
		     args[0] ? " " : "", args);
	if (n < 0 || (size_t)n >= sizeof(line))
		return errmsg_set(err, -E2BIG,
				  "command line with the kernel's name is %d bytes, longer than the limit of %d",
				  n, BOOT_CMDLINE_MAX);
	named.cmdline = line;
	return boot_write_cmdline(m, &named, BOOT_CMDLINE_MAX, err);
}

static int write_info(const struct guest_mem *m, const struct boot_config *cfg,
		      uint64_t kernel_end, struct errmsg *err)
{
	uint8_t mbi[MBI_SIZE] = { 0 };
	uint32_t module_name;
	int ret;

	put_le32(mbi + MBI_FLAGS, MB_INFO_MEMORY | MB_INFO_CMDLINE |
				  MB_INFO_MODS | MB_INFO_MMAP |
				  MB_INFO_LOADER_NAME);
	put_le32(mbi + MBI_MEM_LOWER, BOOT_LOW_RAM_END / 1024);
	put_le32(mbi + MBI_MEM_UPPER,
		 (guest_mem_low_top(m) - BOOT_HIGH_RAM) / 1024);
	put_le32(mbi + MBI_CMDLINE, BOOT_CMDLINE_ADDR);
	ret = write_cmdline(m, cfg, err);
	if (!ret)
		ret = write_mmap(m, mbi, err);
	if (!ret)
		ret = write_strings(m, mbi, &module_name, err);
	if (!ret)
		ret = write_modules(m, cfg, kernel_end, module_name, mbi, err);
	if (ret < 0)
		return ret;
	return boot_write(m, BOOT_INFO_ADDR, mbi, sizeof(mbi),
			  "Multiboot information", err);
}

int boot_load_multiboot(struct guest_mem *m, const struct boot_config *cfg,
			struct boot_entry *entry, struct errmsg *err)
{
	struct multiboot_header h;
	uint64_t rip = 0, kernel_end = 0, rsdp;
	int ret;

	ret = boot_check_common(m, cfg, err);
	if (ret < 0)
		return ret;
	ret = multiboot_find_header(cfg->kernel, cfg->kernel_size, &h, err);
	if (ret == 0)
		return errmsg_set(err, -EINVAL,
				  "no Multiboot header (magic 0x%x) in the first %u bytes",
				  MULTIBOOT_HEADER_MAGIC, MULTIBOOT_SEARCH_LIMIT);
	if (ret < 0)
		return ret;
	ret = check_flags(h.flags, err);
	if (ret < 0)
		return ret;
	if (h.flags & MB_HDR_AOUT_KLUDGE)
		ret = load_by_address_fields(m, cfg, &h, &rip, &kernel_end, err);
	else
		ret = load_elf(m, cfg, &rip, &kernel_end, err);
	if (ret < 0)
		return ret;
	ret = write_info(m, cfg, kernel_end, err);
	if (!ret)
		ret = mptable_write(m, cfg->ncpus, err);
	if (!ret)
		ret = boot_write_reset_vector(m, err);
	/* Multiboot v1 has no RSDP field: the guest scans for it */
	if (!ret)
		ret = acpi_write(m, cfg, &rsdp, err);
	if (ret < 0)
		return ret;

	boot_entry_init(entry, BOOT_PROTOCOL_MULTIBOOT, VCPU_MODE_PROTECTED32);
	entry->cpu.rip = rip;
	entry->cpu.rax = MULTIBOOT_BOOTLOADER_MAGIC;
	entry->cpu.rbx = BOOT_INFO_ADDR;
	return boot_write_gdt(m, false, &entry->cpu, err);
}
