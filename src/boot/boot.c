// SPDX-License-Identifier: MIT
#include "boot/boot.h"

#include <errno.h>

#include "boot/elf.h"
#include "boot/linux.h"
#include "boot/loader.h"
#include "boot/multiboot.h"
#include "boot/pvh.h"

const char *boot_protocol_name(enum boot_protocol p)
{
	switch (p) {
	case BOOT_PROTOCOL_PVH:
		return "pvh";
	case BOOT_PROTOCOL_MULTIBOOT:
		return "multiboot";
	case BOOT_PROTOCOL_LINUX:
		return "linux";
	}
	return "unknown";
}

static bool is_bzimage(const uint8_t *k, size_t size)
{
	return size >= LINUX_HEADER + 4 &&
	       get_le32(k + LINUX_HEADER) == LINUX_HDRS_MAGIC;
}

/* Picks the protocol for an image.  An ELF with a PVH note boots PVH even
 * if it also has a Multiboot header: PVH starts the kernel with more
 * information (and is what Linux vmlinux supports). */
static int detect_protocol(const struct boot_config *cfg,
			   enum boot_protocol *p, struct errmsg *err)
{
	struct multiboot_header mb;
	struct elf_file f;
	uint64_t entry;
	int elf_ret = 0, ret;

	if (is_bzimage(cfg->kernel, cfg->kernel_size)) {
		*p = BOOT_PROTOCOL_LINUX;
		return 0;
	}
	if (elf_has_magic(cfg->kernel, cfg->kernel_size)) {
		elf_ret = elf_parse(&f, cfg->kernel, cfg->kernel_size, err);
		if (elf_ret == 0) {
			ret = pvh_find_entry(&f, &entry, err);
			if (ret < 0)
				return ret;
			if (ret > 0) {
				*p = BOOT_PROTOCOL_PVH;
				return 0;
			}
		}
	}
	ret = multiboot_find_header(cfg->kernel, cfg->kernel_size, &mb, err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		*p = BOOT_PROTOCOL_MULTIBOOT;
		return 0;
	}
	if (elf_has_magic(cfg->kernel, cfg->kernel_size)) {
		/* keeps elf_parse's message if that is what failed */
		if (elf_ret < 0)
			return elf_ret;
		return errmsg_set(err, -EINVAL,
				  "ELF kernel has neither a PVH entry note nor a Multiboot header");
	}
	return errmsg_set(err, -EINVAL,
			  "unrecognised kernel format: not a bzImage, PVH ELF or Multiboot image");
}

int boot_load_kernel(struct guest_mem *m, const struct boot_config *cfg,
		     struct boot_entry *entry, struct errmsg *err)
{
	enum boot_protocol p = BOOT_PROTOCOL_PVH;
	int ret;

	if (!cfg->kernel || !cfg->kernel_size)
		return errmsg_set(err, -EINVAL, "kernel image is empty");
	ret = detect_protocol(cfg, &p, err);
	if (ret < 0)
		return ret;
	switch (p) {
	case BOOT_PROTOCOL_PVH:
		return boot_load_pvh(m, cfg, entry, err);
	case BOOT_PROTOCOL_MULTIBOOT:
		return boot_load_multiboot(m, cfg, entry, err);
	case BOOT_PROTOCOL_LINUX:
		return boot_load_linux(m, cfg, entry, err);
	}
	return -EINVAL;
}
