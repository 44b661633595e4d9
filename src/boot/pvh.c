// SPDX-License-Identifier: MIT
#include "boot/pvh.h"

#include <errno.h>
#include <string.h>

#include "boot/acpi.h"
#include "boot/e820.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "boot/mptable.h"
#include "boot/x86_tables.h"

int pvh_find_entry(const struct elf_file *f, uint64_t *entry,
		   struct errmsg *err)
{
	const uint8_t *desc;
	uint32_t descsz;
	int ret;

	ret = elf_find_note(f, PVH_NOTE_NAME, XEN_ELFNOTE_PHYS32_ENTRY, &desc,
			    &descsz, err);
	if (ret <= 0)
		return ret;
	/* 32-bit kernels emit a .long, 64-bit Linux a .quad */
	if (descsz == 4) {
		*entry = get_le32(desc);
	} else if (descsz == 8) {
		*entry = get_le64(desc);
		if (*entry >= BOOT_4G)
			return errmsg_set(err, -EINVAL,
					  "PVH entry 0x%llx is not a 32-bit address",
					  (unsigned long long)*entry);
	} else {
		return errmsg_set(err, -EINVAL,
				  "PVH entry note has a %u-byte descriptor, expected 4 or 8",
				  descsz);
	}
	return 1;
}

static int write_memmap(const struct guest_mem *m, uint32_t *count,
			struct errmsg *err)
{
	struct hvm_memmap_table_entry out[E820_MAX_ENTRIES];
	struct e820_entry map[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, map);

	memset(out, 0, sizeof(out));
	for (unsigned i = 0; i < n; i++) {
		out[i].addr = map[i].addr;
		out[i].size = map[i].size;
		out[i].type = map[i].type == E820_TYPE_RAM ?
				      HVM_MEMMAP_TYPE_RAM :
				      HVM_MEMMAP_TYPE_RESERVED;
	}
	*count = n;
	return boot_write(m, BOOT_MEMMAP_ADDR, out, n * sizeof(out[0]),
			  "PVH memory map", err);
}

static int write_modules(const struct guest_mem *m,
			 const struct boot_config *cfg, uint64_t kernel_end,
			 struct hvm_start_info *si, struct errmsg *err)
{
	struct hvm_modlist_entry mod = { 0 };
	uint64_t addr;
	int ret;

	if (!boot_has_initrd(cfg))
		return 0;
	ret = boot_load_initrd(m, cfg, kernel_end, BOOT_4G, &addr, err);
	if (ret < 0)
		return ret;
	mod.paddr = addr;
	mod.size = cfg->initrd_size;
	si->nr_modules = 1;
	si->modlist_paddr = BOOT_MODLIST_ADDR;
	return boot_write(m, BOOT_MODLIST_ADDR, &mod, sizeof(mod),
			  "PVH module list", err);
}

int boot_load_pvh(struct guest_mem *m, const struct boot_config *cfg,
		  struct boot_entry *entry, struct errmsg *err)
{
	struct hvm_start_info si = { 0 };
	struct elf_extent ext;
	struct elf_file f;
	uint64_t pvh_entry;
	int ret;

	ret = boot_check_common(m, cfg, err);
	if (ret < 0)
		return ret;
	ret = elf_parse(&f, cfg->kernel, cfg->kernel_size, err);
	if (ret < 0)
		return ret;
	ret = pvh_find_entry(&f, &pvh_entry, err);
	if (ret == 0)
		return errmsg_set(err, -EINVAL,
				  "ELF has no PVH entry note (Xen note type %u)",
				  XEN_ELFNOTE_PHYS32_ENTRY);
	if (ret < 0)
		return ret;
	ret = elf_load_segments(m, &f, &ext, err);
	if (ret < 0)
		return ret;
	ret = elf_entry_to_paddr(&f, pvh_entry, false, &pvh_entry, err);
	if (ret < 0)
		return ret;

	si.magic = HVM_START_MAGIC;
	si.version = HVM_START_VERSION;
	si.cmdline_paddr = BOOT_CMDLINE_ADDR;
	si.memmap_paddr = BOOT_MEMMAP_ADDR;
	ret = boot_write_cmdline(m, cfg, BOOT_CMDLINE_MAX, err);
	if (!ret)
		ret = write_memmap(m, &si.memmap_entries, err);
	if (!ret)
		ret = write_modules(m, cfg, ext.end, &si, err);
	if (!ret)
		ret = mptable_write(m, cfg->ncpus, err);
	if (!ret)
		ret = boot_write_reset_vector(m, err);
	if (!ret)
		ret = acpi_write(m, cfg, &si.rsdp_paddr, err);
	if (!ret)
		ret = boot_write(m, BOOT_INFO_ADDR, &si, sizeof(si),
				 "hvm_start_info", err);
	if (ret < 0)
		return ret;

	boot_entry_init(entry, BOOT_PROTOCOL_PVH, VCPU_MODE_PROTECTED32);
	entry->cpu.rip = pvh_entry;
	entry->cpu.rbx = BOOT_INFO_ADDR;
	return boot_write_gdt(m, false, &entry->cpu, err);
}
