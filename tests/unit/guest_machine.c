// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest_machine.h"

const char *guest_machine_config(struct machine_config *cfg,
				 const char *workload, uint64_t mem_size)
{
	const char *elf = getenv("GUEST_ELF");

	if (!elf)
		return "GUEST_ELF not set (tests/run sets it)";
	machine_config_init(cfg);
	cfg->kernel = elf;
	cfg->cmdline = workload;
	cfg->console = "/dev/null";
	cfg->mem_size = mem_size;
	return NULL;
}

const char *guest_machine_create(const struct machine_config *cfg,
				 struct machine **m, int *ret)
{
	struct errmsg err = { "" };

	*ret = machine_create(cfg, NULL, m, &err);
	if (*ret == -ENOENT && strstr(err.text, "/dev/kvm"))
		return "no /dev/kvm";
	if (*ret == -ENOTSUP && cfg->pager.enabled)
		return "no userfaultfd for the pager here";
	return NULL;
}
