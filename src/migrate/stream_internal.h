/* SPDX-License-Identifier: MIT */
/*
 * Inside the stream (stream.h): the wire layout's constants
 * (docs/stream-format.md) and what stream.c (framing), stream_read.c,
 * stream_defer.c (deferred RAM checksums) and stream_pages.c (payloads)
 * share.  Not for other users.
 */
#ifndef RACKVM_MIGRATE_STREAM_INTERNAL_H
#define RACKVM_MIGRATE_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/stream.h"

/* 0x89 catches a transfer that strips the 8th bit, '\n' one that
 * rewrites line ends. */
#define STREAM_MAGIC "\x89rackvm\n"
#define STREAM_MAGIC_LEN 8
#define STREAM_HDR_LASTING 12	/* magic, u32 version: in every version */
#define STREAM_HDR_FIXED 18	/* magic, u32 version, u32 flags, u16 len */
#define STREAM_HASH_LEN 8	/* the XXH3-64 closing header and sections */
#define STREAM_HDR_MAX (STREAM_HDR_FIXED + STREAM_PRODUCER_MAX + \
			STREAM_HASH_LEN)

#define STREAM_HDR_F_ZSTD 0x1u	/* RAM sections may be compressed */
#define STREAM_HDR_F_KNOWN STREAM_HDR_F_ZSTD

#define STREAM_SEC_HDR 8	/* u16 type, u16 flags, u32 stored length */
#define STREAM_SEC_F_ZSTD 0x1u	/* the payload is one zstd frame */
#define STREAM_SEC_F_SKIP 0x2u	/* a reader not knowing the type skips it */
#define STREAM_SEC_F_KNOWN (STREAM_SEC_F_ZSTD | STREAM_SEC_F_SKIP)

#define STREAM_CPU_HDR 4	/* u32 vCPU index */
#define STREAM_RAM_HDR 16	/* u64 first page, u32 count, u32 padding */
#define STREAM_RAM_BITMAP_MAX (STREAM_PAGES_MAX / 8)

/* A RAM payload, parsed and checked. */
struct stream_ram {
	uint64_t first_page;
	uint32_t npages;
	uint32_t zero_pages;
	const uint8_t *bitmap;	/* bit i set: page first_page + i is zero */
	size_t data_off;	/* the first data page's offset in the payload */
};

bool stream_type_known(unsigned type);
/* Grows *@buf (of *@cap bytes) to at least @need bytes, keeping it when
 * it is large enough already: buffers grow to the largest section seen
 * (small streams stay small) and are reused.  0 or -ENOMEM. */
int stream_buf_reserve(uint8_t **buf, size_t *cap, size_t need);
/* 1..@max bytes, each printable ASCII (they end up in messages). */
bool stream_text_ok(const uint8_t *p, size_t len, size_t max);
/* "section 7 (ram) at byte 123456", for messages. */
void stream_where(char *buf, size_t size, unsigned index, unsigned type,
		  uint64_t start);

/* The layout of a CPU, DEVICE, RAM or END payload (others: anything);
 * -EBADMSG with @where in the message. */
int stream_payload_check(unsigned type, const uint8_t *p, size_t len,
			 const char *where, struct errmsg *err);
/* Reads no more of @p than the head it checks (header, bitmap,
 * padding) before it knows that @len covers that head: a deferring
 * reader runs it on the head alone with the stored length. */
int stream_ram_parse(const uint8_t *p, size_t len, struct stream_ram *ram,
		     const char *where, struct errmsg *err);
/* Lays out the RAM payload of @npages pages at @data into @out (room for
 * STREAM_SECTION_MAX); with @align, padded so that stored raw at stream
 * offset @payload_offset its page data starts on a page boundary.
 * Returns the payload's length; *@zero is the number of zero pages. */
size_t stream_ram_build(uint8_t *out, bool align, uint64_t payload_offset,
			uint64_t first_page, const uint8_t *data,
			uint32_t npages, uint32_t *zero);

#endif
