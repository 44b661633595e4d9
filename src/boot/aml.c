// SPDX-License-Identifier: MIT
/* AML and resource-descriptor encoders for the DSDT (see aml.h). */
#include "boot/aml.h"

#include <string.h>

/* PkgLength counts its own bytes; rackvm's packages are small enough
 * for the one- and two-byte encodings (up to 4095 bytes). */
size_t aml_pkglength(uint8_t *p, size_t body_len)
{
	size_t len = body_len + 1;

	if (len < 0x40) {
		p[0] = (uint8_t)len;
		return 1;
	}
	len++;
	p[0] = (uint8_t)(0x40 | (len & 0xF));
	p[1] = (uint8_t)(len >> 4);
	return 2;
}

/* @op (1 or 2 bytes), PkgLength, then @name and @body: Scope and Device. */
size_t aml_package(uint8_t *p, const uint8_t *op, size_t op_len,
		   const char *name, const uint8_t *body, size_t body_len)
{
	size_t name_len = strlen(name);
	size_t n = op_len;

	memcpy(p, op, op_len);
	n += aml_pkglength(p + n, name_len + body_len);
	memcpy(p + n, name, name_len);
	n += name_len;
	memcpy(p + n, body, body_len);
	return n + body_len;
}

size_t aml_device(uint8_t *p, const char *name, const uint8_t *body,
		  size_t body_len)
{
	static const uint8_t device_op[] = { AML_EXT_PREFIX, AML_DEVICE_OP };

	return aml_package(p, device_op, sizeof(device_op), name, body,
			   body_len);
}

size_t aml_name(uint8_t *p, const char *seg)
{
	p[0] = AML_NAME_OP;
	memcpy(p + 1, seg, 4);
	return 5;
}

/* Name (@seg, @v) for a small integer (_UID). */
size_t aml_name_byte(uint8_t *p, const char *seg, uint8_t v)
{
	size_t n = aml_name(p, seg);

	if (v == 0 || v == 1) {
		p[n++] = v ? AML_ONE : AML_ZERO;
		return n;
	}
	p[n++] = AML_BYTE_PREFIX;
	p[n++] = v;
	return n;
}

size_t aml_name_string(uint8_t *p, const char *seg, const char *str)
{
	size_t n = aml_name(p, seg), len = strlen(str) + 1;

	p[n++] = AML_STRING_PREFIX;
	memcpy(p + n, str, len);
	return n + len;
}

/* EISA ID: three letters of 5 bits each, then four hex digits, stored
 * big-endian in a DWord. */
size_t aml_name_eisaid(uint8_t *p, const char *seg, const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = aml_name(p, seg);
	uint32_t v = 0;

	for (int i = 0; i < 3; i++)
		v = v << 5 | (uint32_t)(id[i] - 0x40);
	for (int i = 3; i < 7; i++)
		v = v << 4 | (uint32_t)(strchr(hex, id[i]) - hex);
	p[n++] = AML_DWORD_PREFIX;
	p[n++] = (uint8_t)(v >> 24);
	p[n++] = (uint8_t)(v >> 16);
	p[n++] = (uint8_t)(v >> 8);
	p[n++] = (uint8_t)v;
	return n;
}

size_t aml_name_buffer(uint8_t *p, const char *seg, const uint8_t *data,
		       uint8_t len)
{
	size_t n = aml_name(p, seg);

	p[n++] = AML_BUFFER_OP;
	n += aml_pkglength(p + n, 2 + len);	/* BufferSize + data */
	p[n++] = AML_BYTE_PREFIX;
	p[n++] = len;
	memcpy(p + n, data, len);
	return n + len;
}

size_t res_end(uint8_t *r)
{
	r[0] = RES_END_TAG;
	r[1] = 0;	/* checksum 0: "treat as valid" */
	return 2;
}
