/* SPDX-License-Identifier: MIT */
/*
 * QEMU-compatible fw_cfg through the legacy I/O ports: write a 16-bit key
 * to the selector, then read the item byte by byte from the data port.
 * rackvm implements the same interface, so the runtime asks both the same
 * way.
 */
#ifndef GUEST_FW_CFG_H
#define GUEST_FW_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FW_CFG_PORT_SEL		0x510
#define FW_CFG_PORT_DATA	0x511

#define FW_CFG_SIGNATURE	0x0000	/* "QEMU" */
#define FW_CFG_RAM_SIZE		0x0003	/* 64-bit LE */
#define FW_CFG_NB_CPUS		0x0005	/* 16-bit LE */

void fw_cfg_read(uint16_t key, void *buf, size_t len);
bool fw_cfg_present(void);
uint16_t fw_cfg_read_u16(uint16_t key);
uint64_t fw_cfg_read_u64(uint16_t key);

#endif
