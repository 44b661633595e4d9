// SPDX-License-Identifier: MIT
/*
 * The stream's payloads (stream.h, docs/stream-format.md): RAM sections
 * built from guest pages and taken apart again, the CPU and DEVICE
 * prefixes, and the checks stream_next() applies before it hands a
 * section out.  Every length here comes from an untrusted stream.
 */
#include "migrate/stream_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/le.h"
#include "util/page.h"

const char *stream_type_name(unsigned type)
{
	switch (type) {
	case STREAM_CONFIG:	return "config";
	case STREAM_VM:		return "vm";
	case STREAM_CPU:	return "cpu";
	case STREAM_DEVICE:	return "device";
	case STREAM_RAM:	return "ram";
	case STREAM_END:	return "end";
	case STREAM_PENDING:	return "pending";
	case STREAM_HANDOVER:	return "handover";
	case STREAM_GO:		return "go";
	case STREAM_PAGEMAP:	return "pagemap";
	case STREAM_SYNC:	return "sync";
	default:		return "unknown";
	}
}

bool stream_type_known(unsigned type)
{
	return strcmp(stream_type_name(type), "unknown") != 0;
}

int stream_buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t size = *cap > 4096 ? *cap : 4096;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (size < need)
		size *= 2;
	p = realloc(*buf, size);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = size;
	return 0;
}

bool stream_text_ok(const uint8_t *p, size_t len, size_t max)
{
	if (!len || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

void stream_where(char *buf, size_t size, unsigned index, unsigned type,
		  uint64_t start)
{
	snprintf(buf, size, "section %u (%s) at byte %" PRIu64, index,
		 stream_type_name(type), start);
}

/* Most pages are either zero or differ from zero in their first words:
 * OR eight words at a time and stop at the first non-zero block. */
static bool page_is_zero(const uint8_t *p)
{
	for (size_t i = 0; i < PAGE_SIZE; i += 64) {
		uint64_t w[8];

		memcpy(w, p + i, sizeof(w));
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return false;
	}
	return true;
}

static size_t bitmap_bytes(uint32_t npages)
{
	return (npages + 7) / 8;
}

static bool bit_set(const uint8_t *bitmap, uint32_t i)
{
	return bitmap[i / 8] & (1u << (i % 8));
}

size_t stream_ram_build(uint8_t *out, bool align, uint64_t payload_offset,
			uint64_t first_page, const uint8_t *data,
			uint32_t npages, uint32_t *zero)
{
	size_t bm = bitmap_bytes(npages);
	uint8_t *bitmap = out + STREAM_RAM_HDR, *p;
	uint32_t pad = 0, z = 0;

	memset(bitmap, 0, bm);
	for (uint32_t i = 0; i < npages; i++) {
		if (page_is_zero(data + (size_t)i * PAGE_SIZE)) {
			bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
			z++;
		}
	}
	if (align && z < npages)
		pad = (uint32_t)(-(payload_offset + STREAM_RAM_HDR + bm) &
				 (PAGE_SIZE - 1));
	put_le64(out, first_page);
	put_le32(out + 8, npages);
	put_le32(out + 12, pad);
	p = bitmap + bm;
	memset(p, 0, pad);
	p += pad;
	for (uint32_t i = 0; i < npages; i++) {
		if (bit_set(bitmap, i))
			continue;
		memcpy(p, data + (size_t)i * PAGE_SIZE, PAGE_SIZE);
		p += PAGE_SIZE;
	}
	*zero = z;
	return (size_t)(p - out);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int stream_ram_parse(const uint8_t *p, size_t len, struct stream_ram *ram,
		     const char *where, struct errmsg *err)
{
	uint32_t npages, pad, zero = 0;
	uint64_t first;
	size_t bm, head;

	if (len < STREAM_RAM_HDR)
		return errmsg_set(err, -EBADMSG,
				  "%s: %zu bytes, short of a RAM header",
				  where, len);
	first = get_le64(p);
	npages = get_le32(p + 8);
	pad = get_le32(p + 12);
	if (!npages || npages > STREAM_PAGES_MAX)
		return errmsg_set(err, -EBADMSG, "%s: %" PRIu32
				  " pages, not 1..%d", where, npages,
				  STREAM_PAGES_MAX);
	if (first > UINT64_MAX / PAGE_SIZE - npages)
		return errmsg_set(err, -EBADMSG, "%s: first page 0x%" PRIx64
				  " beyond any address", where, first);
	if (pad >= PAGE_SIZE)
		return errmsg_set(err, -EBADMSG, "%s: padding of %" PRIu32
				  " bytes, not under a page", where, pad);
	bm = bitmap_bytes(npages);
	head = STREAM_RAM_HDR + bm + pad;
	if (len < head)
		return errmsg_set(err, -EBADMSG,
				  "%s: %zu bytes, short of its bitmap and padding",
				  where, len);
	/* Bits past the last page and padding are zero: one stream, one
	 * encoding, so a corrupt one cannot pass as another. */
	if (npages % 8 && (p[STREAM_RAM_HDR + bm - 1] >> (npages % 8)))
		return errmsg_set(err, -EBADMSG,
				  "%s: zero-page bits set past page %" PRIu32,
				  where, npages);
	if (!all_zero(p + STREAM_RAM_HDR + bm, pad))
		return errmsg_set(err, -EBADMSG, "%s: padding not zero",
				  where);
	for (size_t i = 0; i < bm; i++)
		zero += (uint32_t)__builtin_popcount(p[STREAM_RAM_HDR + i]);
	if ((len - head) != (size_t)(npages - zero) * PAGE_SIZE)
		return errmsg_set(err, -EBADMSG,
				  "%s: %zu bytes of page data for %" PRIu32
				  " non-zero pages", where, len - head,
				  npages - zero);
	ram->first_page = first;
	ram->npages = npages;
	ram->zero_pages = zero;
	ram->bitmap = p + STREAM_RAM_HDR;
	ram->data_off = head;
	return 0;
}

/* A PENDING payload: its header, exactly its bitmap, no bit past the
 * last page.  *@first and *@npages are set once it parses. */
static int pending_parse(const uint8_t *p, size_t len, uint64_t *first,
			 uint32_t *npages, const char *where,
			 struct errmsg *err)
{
	uint32_t n;
	uint64_t f;

	if (len < STREAM_PENDING_HDR)
		return errmsg_set(err, -EBADMSG,
				  "%s: %zu bytes, short of a pending header",
				  where, len);
	f = get_le64(p);
	n = get_le32(p + 8);
	if (!n || n > STREAM_PENDING_MAX)
		return errmsg_set(err, -EBADMSG, "%s: %" PRIu32
				  " pending pages, not 1..%u", where, n,
				  STREAM_PENDING_MAX);
	if (f > UINT64_MAX / PAGE_SIZE - n)
		return errmsg_set(err, -EBADMSG, "%s: first page 0x%" PRIx64
				  " beyond any address", where, f);
	if (get_le32(p + 12))
		return errmsg_set(err, -EBADMSG, "%s: reserved field not zero",
				  where);
	if (len - STREAM_PENDING_HDR != bitmap_bytes(n))
		return errmsg_set(err, -EBADMSG, "%s: %zu bitmap bytes for %"
				  PRIu32 " pages", where,
				  len - STREAM_PENDING_HDR, n);
	if (n % 8 && (p[len - 1] >> (n % 8)))
		return errmsg_set(err, -EBADMSG,
				  "%s: pending bits set past page %" PRIu32,
				  where, n);
	*first = f;
	*npages = n;
	return 0;
}

/* A PAGEMAP payload: its header and at least one byte, inside the map. */
static int pagemap_parse(const uint8_t *p, size_t len, uint64_t *total,
			 uint64_t *offset, const char *where,
			 struct errmsg *err)
{
	uint64_t t, o;

	if (len <= STREAM_PAGEMAP_HDR)
		return errmsg_set(err, -EBADMSG, "%s: %zu bytes, no page map "
				  "after its header", where, len);
	t = get_le64(p);
	o = get_le64(p + 8);
	if (!t || t > STREAM_PAGEMAP_TOTAL_MAX || o >= t ||
	    len - STREAM_PAGEMAP_HDR > t - o)
		return errmsg_set(err, -EBADMSG, "%s: %zu bytes at %" PRIu64
				  " of a page map of %" PRIu64 " bytes", where,
				  len - STREAM_PAGEMAP_HDR, o, t);
	*total = t;
	*offset = o;
	return 0;
}

static int device_parse(const uint8_t *p, size_t len, const char *where,
			struct errmsg *err)
{
	size_t nlen = len ? p[0] : 0;

	if (!len || !nlen || nlen > STREAM_NAME_MAX || len - 1 < nlen)
		return errmsg_set(err, -EBADMSG,
				  "%s: device name of %zu bytes, not 1..%d inside the section",
				  where, nlen, STREAM_NAME_MAX);
	if (!stream_text_ok(p + 1, nlen, STREAM_NAME_MAX))
		return errmsg_set(err, -EBADMSG,
				  "%s: device name with a byte that is not printable ASCII",
				  where);
	return 0;
}

int stream_payload_check(unsigned type, const uint8_t *p, size_t len,
			 const char *where, struct errmsg *err)
{
	struct stream_ram ram;
	uint64_t first, at;
	uint32_t n;

	switch (type) {
	case STREAM_PENDING:
		return pending_parse(p, len, &first, &n, where, err);
	case STREAM_PAGEMAP:
		return pagemap_parse(p, len, &first, &at, where, err);
	case STREAM_HANDOVER:
	case STREAM_GO:
	case STREAM_SYNC:
		if (len)
			return errmsg_set(err, -EBADMSG,
					  "%s: %zu bytes in an empty section",
					  where, len);
		return 0;
	case STREAM_CPU:
		if (len < STREAM_CPU_HDR)
			return errmsg_set(err, -EBADMSG,
					  "%s: %zu bytes, short of a vCPU index",
					  where, len);
		return 0;
	case STREAM_DEVICE:
		return device_parse(p, len, where, err);
	case STREAM_RAM:
		return stream_ram_parse(p, len, &ram, where, err);
	case STREAM_END:
		if (len)
			return errmsg_set(err, -EBADMSG,
					  "%s: %zu bytes in the END section",
					  where, len);
		return 0;
	default:
		return 0;
	}
}

static int section_is(const struct stream_section *s, unsigned type,
		      char *where, size_t size, struct errmsg *err)
{
	stream_where(where, size, s->index, s->type, s->payload_offset -
		     STREAM_SEC_HDR);
	if (s->type != type)
		return errmsg_set(err, -EINVAL, "%s is not a %s section",
				  where, stream_type_name(type));
	return 0;
}

int stream_section_cpu(const struct stream_section *s, unsigned *index,
		       const uint8_t **state, size_t *len,
		       struct errmsg *err)
{
	char where[80];
	int ret;

	ret = section_is(s, STREAM_CPU, where, sizeof(where), err);
	if (!ret)
		ret = stream_payload_check(s->type, s->data, s->len, where,
					   err);
	if (ret)
		return ret;
	*index = get_le32(s->data);
	*state = s->data + STREAM_CPU_HDR;
	*len = s->len - STREAM_CPU_HDR;
	return 0;
}

int stream_section_device(const struct stream_section *s,
			  char name[STREAM_NAME_MAX + 1],
			  const uint8_t **state, size_t *len,
			  struct errmsg *err)
{
	char where[80];
	size_t nlen;
	int ret;

	ret = section_is(s, STREAM_DEVICE, where, sizeof(where), err);
	if (!ret)
		ret = device_parse(s->data, s->len, where, err);
	if (ret)
		return ret;
	nlen = s->data[0];
	memcpy(name, s->data + 1, nlen);
	name[nlen] = '\0';
	*state = s->data + 1 + nlen;
	*len = s->len - 1 - nlen;
	return 0;
}

int stream_section_pages(const struct stream_section *s, uint64_t ram_pages,
			 int (*fn)(void *opaque, uint64_t page,
				   const uint8_t *data, uint64_t stream_offset),
			 void *opaque, struct errmsg *err)
{
	uint64_t data_at = s->payload_offset;
	const uint8_t *data;
	struct stream_ram ram;
	char where[80];
	int ret;

	ret = section_is(s, STREAM_RAM, where, sizeof(where), err);
	/* deferred: s->data is the payload's head, up to the page data */
	if (!ret)
		ret = stream_ram_parse(s->data, s->deferred ? s->check.len :
				       s->len, &ram, where, err);
	if (ret)
		return ret;
	if (s->deferred && ram.data_off != s->len)
		return errmsg_set(err, -EINVAL, "%s: %zu bytes of a deferred "
				  "section's head", where, s->len);
	if (ram.first_page > ram_pages ||
	    ram.npages > ram_pages - ram.first_page)
		return errmsg_set(err, -EBADMSG,
				  "%s: pages 0x%" PRIx64 "..0x%" PRIx64
				  " beyond the guest's %" PRIu64 " pages", where,
				  ram.first_page,
				  ram.first_page + ram.npages - 1, ram_pages);
	data = s->deferred ? NULL : s->data + ram.data_off;
	data_at += ram.data_off;
	for (uint32_t i = 0; i < ram.npages; i++) {
		bool zero = bit_set(ram.bitmap, i);

		ret = fn(opaque, ram.first_page + i, zero ? NULL : data,
			 zero || s->compressed ? 0 : data_at);
		if (ret)
			return ret;
		if (!zero) {
			data = data ? data + PAGE_SIZE : NULL;
			data_at += PAGE_SIZE;
		}
	}
	return 0;
}

int stream_section_pending(const struct stream_section *s,
			   uint64_t ram_pages, uint64_t *first_page,
			   uint32_t *npages, const uint8_t **bits,
			   struct errmsg *err)
{
	char where[80];
	uint64_t f;
	uint32_t n;
	int ret;

	ret = section_is(s, STREAM_PENDING, where, sizeof(where), err);
	if (!ret)
		ret = pending_parse(s->data, s->len, &f, &n, where, err);
	if (ret)
		return ret;
	if (f > ram_pages || n > ram_pages - f)
		return errmsg_set(err, -EBADMSG,
				  "%s: pending pages 0x%" PRIx64 "..0x%" PRIx64
				  " beyond the guest's %" PRIu64 " pages", where,
				  f, f + n - 1, ram_pages);
	*first_page = f;
	*npages = n;
	*bits = s->data + STREAM_PENDING_HDR;
	return 0;
}

int stream_section_pagemap(const struct stream_section *s, uint64_t *total,
			   uint64_t *offset, const uint8_t **bytes,
			   size_t *len, struct errmsg *err)
{
	char where[80];
	int ret;

	ret = section_is(s, STREAM_PAGEMAP, where, sizeof(where), err);
	if (!ret)
		ret = pagemap_parse(s->data, s->len, total, offset, where, err);
	if (ret)
		return ret;
	*bytes = s->data + STREAM_PAGEMAP_HDR;
	*len = s->len - STREAM_PAGEMAP_HDR;
	return 0;
}
