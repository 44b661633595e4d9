/* SPDX-License-Identifier: MIT */
/*
 * Little-endian loads and stores at any alignment.
 *
 * Every format rackvm reads or writes (ELF, bzImage, PVH notes, multiboot,
 * ACPI, virtio, fw_cfg, the memd wire protocol) is little-endian.  The
 * caller bounds-checks the buffer; these only fix byte order and avoid
 * alignment assumptions (memcpy compiles to one move on x86).
 */
#ifndef RACKVM_UTIL_LE_H
#define RACKVM_UTIL_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* The low @n bytes (1..8) of @v, for registers read a byte or word at a
 * time at any offset (fw_cfg, virtio config space). */
static inline void put_le_bytes(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n && i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
