// SPDX-License-Identifier: MIT
/*
 * CPU count and RAM size: fw_cfg when there is one (rackvm and QEMU both
 * provide it), else one CPU and the RAM the memory map lists.
 */
#include "guest/bootinfo.h"
#include "guest/fw_cfg.h"
#include "guest/platform.h"

struct platform platform;

void platform_probe(void)
{
	platform.have_fw_cfg = fw_cfg_present();
	if (platform.have_fw_cfg) {
		platform.nb_cpus = fw_cfg_read_u16(FW_CFG_NB_CPUS);
		platform.ram_bytes = fw_cfg_read_u64(FW_CFG_RAM_SIZE);
	}
	if (!platform.nb_cpus)
		platform.nb_cpus = 1;
	if (!platform.ram_bytes)
		platform.ram_bytes = bootinfo_ram_bytes();
	bootinfo_assume_ram(platform.ram_bytes);
}
