// SPDX-License-Identifier: MIT
#include "boot/loader.h"

#include <errno.h>

#include "boot/layout.h"

int boot_write(const struct guest_mem *m, uint64_t gpa, const void *src,
	       uint64_t len, const char *what, struct errmsg *err)
{
	if (guest_mem_write(m, gpa, src, len) < 0)
		return errmsg_set(err, -EFAULT,
				  "%s at 0x%llx (%llu bytes) is not guest RAM",
				  what, (unsigned long long)gpa,
				  (unsigned long long)len);
	return 0;
}

int boot_check_ncpus(unsigned ncpus, const char *table, struct errmsg *err)
{
	if (ncpus == 0)
		return errmsg_set(err, -EINVAL, "need at least one vCPU");
	if (ncpus > BOOT_MAX_CPUS)
		return errmsg_set(err, -E2BIG,
				  "%u vCPUs do not fit the %s (at most %u)",
				  ncpus, table, BOOT_MAX_CPUS);
	return 0;
}

int boot_check_common(const struct guest_mem *m,
		      const struct boot_config *cfg, struct errmsg *err)
{
	if (!guest_mem_ptr(m, 0, BOOT_HIGH_RAM))
		return errmsg_set(err, -EINVAL,
				  "guest RAM must cover the first 1 MiB for boot data");
	if (!cfg->kernel || !cfg->kernel_size)
		return errmsg_set(err, -EINVAL, "kernel image is empty");
	if (cfg->initrd_size && !cfg->initrd)
		return errmsg_set(err, -EINVAL,
				  "initrd size %zu given without data",
				  cfg->initrd_size);
	return boot_check_ncpus(cfg->ncpus, "MP table", err);
}

int boot_check_kernel_range(const struct guest_mem *m, uint64_t start,
			    uint64_t size, const char *what,
			    struct errmsg *err)
{
	if (start > UINT64_MAX - size)
		return errmsg_set(err, -EINVAL,
				  "%s at 0x%llx size 0x%llx wraps around the address space",
				  what, (unsigned long long)start,
				  (unsigned long long)size);
	if (start < BOOT_HIGH_RAM)
		return errmsg_set(err, -EINVAL,
				  "%s at 0x%llx overlaps the boot data below 1 MiB",
				  what, (unsigned long long)start);
	if (start + size > BOOT_4G)
		return errmsg_set(err, -EINVAL,
				  "%s [0x%llx, 0x%llx) is not below 4 GiB",
				  what, (unsigned long long)start,
				  (unsigned long long)(start + size));
	if (!guest_mem_ptr(m, start, size))
		return errmsg_set(err, -ENOSPC,
				  "%s [0x%llx, 0x%llx) is outside guest RAM (RAM below 4 GiB ends at 0x%llx)",
				  what, (unsigned long long)start,
				  (unsigned long long)(start + size),
				  (unsigned long long)guest_mem_low_top(m));
	return 0;
}

int boot_write_cmdline(const struct guest_mem *m,
		       const struct boot_config *cfg, size_t limit,
		       struct errmsg *err)
{
	const char *line = cfg->cmdline ? cfg->cmdline : "";
	size_t len;

	if (limit > BOOT_CMDLINE_MAX)
		limit = BOOT_CMDLINE_MAX;
	/* strnlen: never scan past limit + 1 bytes of a huge string */
	len = strnlen(line, limit + 1);
	if (len > limit)
		return errmsg_set(err, -E2BIG,
				  "command line is %zu bytes, longer than the limit of %zu",
				  strlen(line), limit);
	return boot_write(m, BOOT_CMDLINE_ADDR, line, len + 1, "command line",
			  err);
}

int boot_load_initrd(const struct guest_mem *m, const struct boot_config *cfg,
		     uint64_t low, uint64_t limit, uint64_t *addr,
		     struct errmsg *err)
{
	uint64_t size = cfg->initrd_size;
	uint64_t ram_top = guest_mem_low_top(m);
	uint64_t start;

	if (limit > ram_top)
		limit = ram_top;
	if (low > UINT64_MAX - (BOOT_PAGE_SIZE - 1))
		low = UINT64_MAX;
	else
		low = (low + BOOT_PAGE_SIZE - 1) & ~(BOOT_PAGE_SIZE - 1);
	if (size > limit || low > limit - size)
		return errmsg_set(err, -ENOSPC,
				  "initrd of %llu bytes does not fit in guest RAM between 0x%llx (end of kernel) and 0x%llx",
				  (unsigned long long)size,
				  (unsigned long long)low,
				  (unsigned long long)limit);
	/* Highest fit: keeps the space right after the kernel free for
	 * its own decompression and early allocations. */
	start = (limit - size) & ~(BOOT_PAGE_SIZE - 1);
	*addr = start;
	return boot_write(m, start, cfg->initrd, size, "initrd", err);
}

void boot_entry_init(struct boot_entry *e, enum boot_protocol protocol,
		     enum vcpu_mode mode)
{
	memset(e, 0, sizeof(*e));
	e->protocol = protocol;
	e->cpu.mode = mode;
	e->cpu.rsp = BOOT_STACK_TOP;
}
