// SPDX-License-Identifier: MIT
/*
 * fw_cfg reads through the legacy ports.  Each byte costs a PIO exit, so
 * only the few small items the runtime needs are read, once.
 */
#include "guest/fw_cfg.h"
#include "guest/io.h"
#include "guest/string.h"

void fw_cfg_read(uint16_t key, void *buf, size_t len)
{
	uint8_t *p = buf;

	outw(FW_CFG_PORT_SEL, key);
	while (len--)
		*p++ = inb(FW_CFG_PORT_DATA);
}

/* Without fw_cfg the data port reads as all-ones (or zero), never as
 * the "QEMU" signature. */
bool fw_cfg_present(void)
{
	char sig[4];

	fw_cfg_read(FW_CFG_SIGNATURE, sig, sizeof(sig));
	return memcmp(sig, "QEMU", 4) == 0;
}

uint16_t fw_cfg_read_u16(uint16_t key)
{
	uint8_t b[2];

	fw_cfg_read(key, b, sizeof(b));
	return b[0] | (uint16_t)b[1] << 8;
}

uint64_t fw_cfg_read_u64(uint16_t key)
{
	uint8_t b[8];
	uint64_t v = 0;
	int i;

	fw_cfg_read(key, b, sizeof(b));
	for (i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}
