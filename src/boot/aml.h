/* SPDX-License-Identifier: MIT */
/*
 * The bits of ACPI Machine Language (ACPI 6.5, chapter 20) and resource
 * descriptors (6.4) that rackvm's DSDT needs: names, integers, strings,
 * EISA IDs, buffers, Device and Scope packages.  Each writer puts its
 * encoding at @p and returns its length; the caller sizes the buffer
 * (boot/acpi.c proves the DSDT's worst case fits at compile time).
 */
#ifndef RACKVM_BOOT_AML_H
#define RACKVM_BOOT_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_PREFIX 0x5B
#define AML_DEVICE_OP 0x82	/* after AML_EXT_PREFIX */
#define AML_METHOD_OP 0x14
#define AML_NOTIFY_OP 0x86

/* Small resource descriptors (ACPI 6.5, 6.4.2) */
#define RES_IRQ_NOFLAGS 0x22	/* type 4, 2 bytes */
#define RES_IO 0x47		/* type 8, 7 bytes */
#define RES_IO_DECODE16 0x01
#define RES_END_TAG 0x79	/* type 0xF, 1 byte */
/* Large resource descriptors (6.4.3): tag, 16-bit length, data */
#define RES_MEMORY32_FIXED 0x86
#define RES_MEMORY32_FIXED_LEN 9
#define RES_MEMORY_READ_WRITE 0x01
#define RES_EXT_IRQ 0x89
#define RES_EXT_IRQ_LEN 6	/* flags, count, one 32-bit GSI */
#define RES_EXT_IRQ_CONSUMER (1u << 0)
#define RES_EXT_IRQ_EDGE (1u << 1)	/* clear: level */
#define RES_EXT_IRQ_ACTIVE_LOW (1u << 2)

size_t aml_pkglength(uint8_t *p, size_t body_len);
size_t aml_package(uint8_t *p, const uint8_t *op, size_t op_len,
		   const char *name, const uint8_t *body, size_t body_len);
size_t aml_device(uint8_t *p, const char *name, const uint8_t *body,
		  size_t body_len);
size_t aml_name(uint8_t *p, const char *seg);
size_t aml_name_byte(uint8_t *p, const char *seg, uint8_t v);
size_t aml_name_string(uint8_t *p, const char *seg, const char *str);
size_t aml_name_eisaid(uint8_t *p, const char *seg, const char *id);
size_t aml_name_buffer(uint8_t *p, const char *seg, const uint8_t *data,
		       uint8_t len);
size_t res_end(uint8_t *r);

#endif
