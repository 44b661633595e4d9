// SPDX-License-Identifier: MIT
/*
 * The stream's writer (stream.h): the header, and each section framed as
 * it goes out, in one buffer so that one write() carries it (the reader
 * is stream_read.c, the payloads stream_pages.c).
 */
#include "migrate/stream_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "util/full_io.h"
#include "util/le.h"
#include "util/page.h"

struct stream_writer {
	int fd;
	bool socket;		/* send(MSG_NOSIGNAL): no SIGPIPE */
	/* a regular file: raw pages start on a page boundary, for a lazy
	 * restore to read or map in place; on a connection the padding
	 * would be a quarter of a round of scattered pages, for nothing */
	bool align;
	int error;		/* sticky: a half-written section ends the stream */
	bool started;		/* CONFIG went out */
	bool finished;		/* END went out */
	int level;
	ZSTD_CCtx *cctx;	/* NULL without compression */
	uint8_t *buf;		/* section header, payload, checksum */
	size_t cap;
	uint8_t *zbuf;		/* the same with a compressed payload */
	size_t zcap;
	bool batching;		/* stream_writer_batch() */
	uint8_t *batch;		/* small sections not written yet */
	size_t batch_len;
	struct stream_counts counts;
};

static int out_write(struct stream_writer *w, const uint8_t *p, size_t len)
{
	return w->socket ? send_full(w->fd, p, len) : write_full(w->fd, p, len);
}

static int write_header(struct stream_writer *w, const char *producer,
			uint32_t flags, struct errmsg *err)
{
	uint8_t hdr[STREAM_HDR_MAX];
	size_t plen = strlen(producer);
	int ret;

	memcpy(hdr, STREAM_MAGIC, STREAM_MAGIC_LEN);
	put_le32(hdr + 8, STREAM_VERSION);
	put_le32(hdr + 12, flags);
	put_le16(hdr + 16, (uint16_t)plen);
	memcpy(hdr + STREAM_HDR_FIXED, producer, plen);
	put_le64(hdr + STREAM_HDR_FIXED + plen,
		 XXH3_64bits(hdr, STREAM_HDR_FIXED + plen));
	ret = out_write(w, hdr, STREAM_HDR_FIXED + plen + STREAM_HASH_LEN);
	if (ret)
		return errmsg_set(err, ret, "writing the stream header: %s",
				  strerror(-ret));
	w->counts.bytes = STREAM_HDR_FIXED + plen + STREAM_HASH_LEN;
	return 0;
}

static int setup_zstd(struct stream_writer *w, const struct stream_options *opt,
		      struct errmsg *err)
{
	w->level = opt->level ? opt->level : 1;
	if (w->level < ZSTD_minCLevel() || w->level > ZSTD_maxCLevel())
		return errmsg_set(err, -EINVAL, "zstd level %d, not %d..%d",
				  opt->level, ZSTD_minCLevel(),
				  ZSTD_maxCLevel());
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx)
		return errmsg_set(err, -ENOMEM, "no memory for zstd");
	return 0;
}

int stream_writer_create(int fd, const char *producer,
			 const struct stream_options *opt,
			 struct stream_writer **out, struct errmsg *err)
{
	bool compress = opt && opt->compress;
	struct stream_writer *w;
	struct stat st;
	int ret;

	*out = NULL;
	if (!producer || !stream_text_ok((const uint8_t *)producer,
					 strlen(producer),
					 STREAM_PRODUCER_MAX))
		return errmsg_set(err, -EINVAL,
				  "the producer must be 1..%d printable ASCII bytes",
				  STREAM_PRODUCER_MAX);
	w = calloc(1, sizeof(*w));
	if (!w)
		return errmsg_set(err, -ENOMEM, "no memory for a stream writer");
	w->fd = fd;
	if (!fstat(fd, &st)) {
		w->socket = S_ISSOCK(st.st_mode);
		w->align = S_ISREG(st.st_mode);
	}
	ret = compress ? setup_zstd(w, opt, err) : 0;
	if (!ret)
		ret = write_header(w, producer,
				   compress ? STREAM_HDR_F_ZSTD : 0, err);
	if (ret) {
		stream_writer_destroy(w);
		return ret;
	}
	*out = w;
	return 0;
}

/* Whether a section of @type with a @len-byte payload may go out now,
 * and room for it in w->buf. */
static int may_put(struct stream_writer *w, unsigned type, size_t len,
		   struct errmsg *err)
{
	if (w->error)
		return errmsg_set(err, w->error,
				  "the stream failed earlier: %s",
				  strerror(-w->error));
	if (w->finished)
		return errmsg_set(err, -EINVAL, "a %s section after END",
				  stream_type_name(type));
	if (!w->started && type != STREAM_CONFIG)
		return errmsg_set(err, -EINVAL,
				  "a %s section before the config section",
				  stream_type_name(type));
	if (w->started && type == STREAM_CONFIG)
		return errmsg_set(err, -EINVAL, "a second config section");
	if (len > STREAM_SECTION_MAX)
		return errmsg_set(err, -EMSGSIZE,
				  "a %s section of %zu bytes, over the limit of %u",
				  stream_type_name(type), len,
				  STREAM_SECTION_MAX);
	if (stream_buf_reserve(&w->buf, &w->cap,
			       STREAM_SEC_HDR + len + STREAM_HASH_LEN))
		return errmsg_set(err, -ENOMEM, "no memory for a %s section",
				  stream_type_name(type));
	return 0;
}

/* A batch holds sections up to a quarter of it: a larger one is
 * written from where it is, not copied. */
#define BATCH_BYTES (256u << 10)

static int flush_batch(struct stream_writer *w)
{
	int ret = w->batch_len ? out_write(w, w->batch, w->batch_len) : 0;

	w->batch_len = 0;
	return ret;
}

/* The @total bytes of a framed section at @buf, into the batch or out. */
static int out_section(struct stream_writer *w, unsigned type,
		       const uint8_t *buf, size_t total)
{
	int ret = 0;

	if (!w->batching || type != STREAM_RAM || total > BATCH_BYTES / 4) {
		ret = flush_batch(w);
		return ret ? ret : out_write(w, buf, total);
	}
	if (w->batch_len + total > BATCH_BYTES)
		ret = flush_batch(w);
	if (!ret) {
		memcpy(w->batch + w->batch_len, buf, total);
		w->batch_len += total;
	}
	return ret;
}

int stream_writer_batch(struct stream_writer *w, bool on, struct errmsg *err)
{
	int ret;

	if (w->error)
		return errmsg_set(err, w->error, "the stream failed earlier: %s",
				  strerror(-w->error));
	if (on && !w->batch) {
		w->batch = malloc(BATCH_BYTES);
		if (!w->batch)
			return errmsg_set(err, -ENOMEM, "no memory for a batch");
	}
	w->batching = on;
	ret = on ? 0 : flush_batch(w);
	if (ret) {
		w->error = ret;
		return errmsg_set(err, ret, "writing the stream: %s",
				  strerror(-ret));
	}
	return 0;
}

/* Frames the @len-byte payload at @buf + STREAM_SEC_HDR and sends it. */
static int emit(struct stream_writer *w, uint8_t *buf, unsigned type,
		unsigned flags, size_t len, struct errmsg *err)
{
	size_t total = STREAM_SEC_HDR + len + STREAM_HASH_LEN;
	int ret;

	put_le16(buf, (uint16_t)type);
	put_le16(buf + 2, (uint16_t)flags);
	put_le32(buf + 4, (uint32_t)len);
	/* Seeded with the index: a section dropped, repeated or moved
	 * fails its checksum. */
	put_le64(buf + STREAM_SEC_HDR + len,
		 XXH3_64bits_withSeed(buf, STREAM_SEC_HDR + len,
				      w->counts.sections));
	ret = out_section(w, type, buf, total);
	if (ret) {
		w->error = ret;
		return errmsg_set(err, ret, "writing section %" PRIu64
				  " (%s): %s", w->counts.sections,
				  stream_type_name(type), strerror(-ret));
	}
	w->counts.bytes += total;
	w->counts.sections++;
	if (type == STREAM_CONFIG)
		w->started = true;
	if (type == STREAM_END)
		w->finished = true;
	return 0;
}

/* A section whose payload is @head (@hlen bytes) then @data. */
static int put_two(struct stream_writer *w, unsigned type, const void *head,
		   size_t hlen, const void *data, size_t len,
		   struct errmsg *err)
{
	int ret;

	if (len > SIZE_MAX - hlen)
		len = SIZE_MAX - hlen;	/* may_put() refuses it */
	ret = may_put(w, type, hlen + len, err);
	if (ret)
		return ret;
	if (hlen)
		memcpy(w->buf + STREAM_SEC_HDR, head, hlen);
	if (len)
		memcpy(w->buf + STREAM_SEC_HDR + hlen, data, len);
	return emit(w, w->buf, type, 0, hlen + len, err);
}

int stream_put(struct stream_writer *w, enum stream_type type,
	       const void *data, size_t len, struct errmsg *err)
{
	bool marker = (unsigned)type == STREAM_HANDOVER ||
		      (unsigned)type == STREAM_GO ||
		      (unsigned)type == STREAM_SYNC;

	if (type != STREAM_CONFIG && type != STREAM_VM && !marker)
		return errmsg_set(err, -EINVAL,
				  "stream_put() takes config, vm, handover, go and sync sections, not %s",
				  stream_type_name(type));
	if (marker && len)
		return errmsg_set(err, -EINVAL, "a %s section is empty",
				  stream_type_name(type));
	return put_two(w, type, NULL, 0, data, len, err);
}

int stream_put_cpu(struct stream_writer *w, unsigned index,
		   const void *state, size_t len, struct errmsg *err)
{
	uint8_t head[STREAM_CPU_HDR];

	put_le32(head, index);
	return put_two(w, STREAM_CPU, head, sizeof(head), state, len, err);
}

int stream_put_device(struct stream_writer *w, const char *name,
		      const void *state, size_t len, struct errmsg *err)
{
	uint8_t head[1 + STREAM_NAME_MAX];
	size_t nlen = name ? strlen(name) : 0;

	if (!stream_text_ok((const uint8_t *)name, nlen, STREAM_NAME_MAX))
		return errmsg_set(err, -EINVAL,
				  "device name \"%.*s\": not 1..%d printable ASCII bytes",
				  STREAM_NAME_MAX, name ? name : "",
				  STREAM_NAME_MAX);
	head[0] = (uint8_t)nlen;
	memcpy(head + 1, name, nlen);
	return put_two(w, STREAM_DEVICE, head, 1 + nlen, state, len, err);
}

int stream_put_pages(struct stream_writer *w, uint64_t first_page,
		     const uint8_t *data, uint32_t npages, struct errmsg *err)
{
	size_t len, zlen, raw;
	uint8_t *payload;
	uint32_t zero;
	int ret;

	if (!data || !npages || npages > STREAM_PAGES_MAX ||
	    first_page > UINT64_MAX / PAGE_SIZE - npages)
		return errmsg_set(err, -EINVAL,
				  "%" PRIu32 " pages at 0x%" PRIx64
				  ": not 1..%d pages of an address space",
				  npages, first_page, STREAM_PAGES_MAX);
	ret = may_put(w, STREAM_RAM, STREAM_RAM_HDR + STREAM_RAM_BITMAP_MAX +
		      PAGE_SIZE - 1 + (size_t)npages * PAGE_SIZE, err);
	if (ret)
		return ret;
	payload = w->buf + STREAM_SEC_HDR;
	len = stream_ram_build(payload, w->align,
			       w->counts.bytes + STREAM_SEC_HDR, first_page,
			       data, npages, &zero);
	/* Raw pages need no work to restore (in a file they are
	 * page-aligned): compression must win more than the padding and a
	 * thirty-second of the rest to be worth it.  Failing, it only
	 * costs space. */
	raw = len - get_le32(payload + 12);
	zlen = len;
	if (w->cctx && !stream_buf_reserve(&w->zbuf, &w->zcap, STREAM_SEC_HDR +
					   ZSTD_compressBound(len) +
					   STREAM_HASH_LEN))
		zlen = ZSTD_compressCCtx(w->cctx, w->zbuf + STREAM_SEC_HDR,
					 w->zcap - STREAM_SEC_HDR -
					 STREAM_HASH_LEN, payload, len,
					 w->level);
	if (ZSTD_isError(zlen) || zlen >= raw - raw / 32)
		ret = emit(w, w->buf, STREAM_RAM, 0, len, err);
	else
		ret = emit(w, w->zbuf, STREAM_RAM, STREAM_SEC_F_ZSTD, zlen,
			   err);
	if (!ret) {
		w->counts.pages += npages;
		w->counts.zero_pages += zero;
	}
	return ret;
}

int stream_put_pending(struct stream_writer *w, uint64_t first_page,
		       const uint8_t *bits, uint32_t npages,
		       struct errmsg *err)
{
	size_t bm = (npages + 7u) / 8u;
	uint8_t *p;
	int ret;

	if (!bits || !npages || npages > STREAM_PENDING_MAX ||
	    first_page > UINT64_MAX / PAGE_SIZE - npages)
		return errmsg_set(err, -EINVAL, "%" PRIu32 " pending pages at "
				  "0x%" PRIx64 ": not 1..%u pages of an address "
				  "space", npages, first_page,
				  STREAM_PENDING_MAX);
	ret = may_put(w, STREAM_PENDING, STREAM_PENDING_HDR + bm, err);
	if (ret)
		return ret;
	p = w->buf + STREAM_SEC_HDR;
	put_le64(p, first_page);
	put_le32(p + 8, npages);
	put_le32(p + 12, 0);
	memcpy(p + STREAM_PENDING_HDR, bits, bm);
	if (npages % 8)		/* one encoding: the bits past the end are 0 */
		p[STREAM_PENDING_HDR + bm - 1] &= (uint8_t)((1u << (npages % 8)) - 1);
	return emit(w, w->buf, STREAM_PENDING, 0, STREAM_PENDING_HDR + bm, err);
}

int stream_put_pagemap(struct stream_writer *w, const uint8_t *map,
		       size_t len, struct errmsg *err)
{
	uint8_t head[STREAM_PAGEMAP_HDR];
	size_t off = 0;
	int ret = 0;

	if (!map || !len || (uint64_t)len > STREAM_PAGEMAP_TOTAL_MAX)
		return errmsg_set(err, -EINVAL, "a page map of %zu bytes", len);
	while (!ret && off < len) {
		size_t n = len - off < STREAM_PAGEMAP_PIECE ? len - off :
			   STREAM_PAGEMAP_PIECE;

		put_le64(head, len);
		put_le64(head + 8, off);
		ret = put_two(w, STREAM_PAGEMAP, head, sizeof(head), map + off,
			      n, err);
		off += n;
	}
	return ret;
}

int stream_finish(struct stream_writer *w, struct errmsg *err)
{
	int ret = may_put(w, STREAM_END, 0, err);

	return ret ? ret : emit(w, w->buf, STREAM_END, 0, 0, err);
}

void stream_writer_counts(const struct stream_writer *w,
			  struct stream_counts *out)
{
	*out = w->counts;
}

void stream_writer_destroy(struct stream_writer *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cctx);
	free(w->batch);
	free(w->zbuf);
	free(w->buf);
	free(w);
}
