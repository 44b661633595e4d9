// SPDX-License-Identifier: MIT
/*
 * The stream's reader (stream.h): the header, then one section at a time
 * into a buffer of STREAM_SECTION_MAX bytes, checked before anything of
 * it is handed out (but for the page data of a deferred RAM section,
 * passed over unread: stream_defer.c checks it later).  Every byte comes
 * from an untrusted stream; a length is bounded before it is used to
 * read or allocate.
 */
#include "migrate/stream_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "util/le.h"
#include "util/page.h"

struct stream_reader {
	int fd;
	uint32_t flags;		/* the header's */
	char producer[STREAM_PRODUCER_MAX + 1];
	uint8_t *buf;		/* a section as stored */
	size_t cap;
	uint8_t *dbuf;		/* its payload decompressed */
	size_t dcap;
	ZSTD_DCtx *dctx;
	unsigned next;		/* the next section's index */
	unsigned last_type;	/* section next - 1's */
	bool ended;		/* END was read */
	bool defer;		/* stream_reader_defer_ram() */
	/* the next section's header, or its start, read with the last
	 * section's payload */
	uint8_t ahead[STREAM_SEC_HDR];
	size_t ahead_len;
	int error;		/* sticky, with its message: */
	struct errmsg error_text;
	struct stream_counts counts;
};

/* @min to @max bytes: what a socket already holds past @min comes
 * along in the same read(2), nothing more is waited for.  *@got short
 * of @min only at end of file. */
static int read_between(int fd, uint8_t *p, size_t min, size_t max,
			size_t *got)
{
	*got = 0;
	while (*got < min) {
		ssize_t n = read(fd, p + *got, max - *got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/* Up to @len bytes; *@got short of it only at end of file. */
static int read_upto(int fd, uint8_t *p, size_t len, size_t *got)
{
	return read_between(fd, p, len, len, got);
}

/* Records a failure that ends the stream and reports it. */
__attribute__((format(printf, 4, 5)))
static int fail(struct stream_reader *r, struct errmsg *err, int ret,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error_text.text, sizeof(r->error_text.text), fmt, ap);
	va_end(ap);
	r->error = ret;
	if (err)
		*err = r->error_text;
	return ret;
}

static int read_header(struct stream_reader *r, struct errmsg *err)
{
	uint8_t hdr[STREAM_HDR_MAX];
	size_t got, plen, total;
	uint32_t version;
	int ret;

	ret = read_upto(r->fd, hdr, STREAM_HDR_LASTING, &got);
	if (ret)
		return errmsg_set(err, ret, "reading the stream header: %s",
				  strerror(-ret));
	if (!got)
		return errmsg_set(err, -ENODATA, "the stream is empty");
	if (memcmp(hdr, STREAM_MAGIC,
		   got < STREAM_MAGIC_LEN ? got : STREAM_MAGIC_LEN))
		return errmsg_set(err, -EBADMSG, "not a rackvm stream");
	if (got < STREAM_HDR_LASTING)
		return errmsg_set(err, -ENODATA,
				  "the stream ends inside its header");
	/* Magic and version are where they are in every version; what
	 * follows is version 1's. */
	version = get_le32(hdr + 8);
	if (version != STREAM_VERSION)
		return errmsg_set(err, -EPROTONOSUPPORT,
				  "stream version %" PRIu32
				  ", this rackvm reads %d", version,
				  STREAM_VERSION);
	ret = read_upto(r->fd, hdr + STREAM_HDR_LASTING,
			STREAM_HDR_FIXED - STREAM_HDR_LASTING, &got);
	if (ret)
		return errmsg_set(err, ret, "reading the stream header: %s",
				  strerror(-ret));
	if (got < STREAM_HDR_FIXED - STREAM_HDR_LASTING)
		return errmsg_set(err, -ENODATA,
				  "the stream ends inside its header");
	plen = get_le16(hdr + 16);
	if (!plen || plen > STREAM_PRODUCER_MAX)
		return errmsg_set(err, -EBADMSG,
				  "stream header: a producer of %zu bytes, not 1..%d",
				  plen, STREAM_PRODUCER_MAX);
	ret = read_upto(r->fd, hdr + STREAM_HDR_FIXED, plen + STREAM_HASH_LEN,
			&got);
	if (ret)
		return errmsg_set(err, ret, "reading the stream header: %s",
				  strerror(-ret));
	if (got < plen + STREAM_HASH_LEN)
		return errmsg_set(err, -ENODATA,
				  "the stream ends inside its header");
	total = STREAM_HDR_FIXED + plen;
	if (XXH3_64bits(hdr, total) != get_le64(hdr + total))
		return errmsg_set(err, -EBADMSG,
				  "stream header: checksum mismatch");
	r->flags = get_le32(hdr + 12);
	if (r->flags & ~STREAM_HDR_F_KNOWN)
		return errmsg_set(err, -EBADMSG,
				  "stream header: unknown flags 0x%" PRIx32,
				  r->flags & ~STREAM_HDR_F_KNOWN);
	if (!stream_text_ok(hdr + STREAM_HDR_FIXED, plen, STREAM_PRODUCER_MAX))
		return errmsg_set(err, -EBADMSG,
				  "stream header: the producer is not printable ASCII");
	memcpy(r->producer, hdr + STREAM_HDR_FIXED, plen);
	r->producer[plen] = '\0';
	r->counts.bytes = total + STREAM_HASH_LEN;
	return 0;
}

int stream_reader_create(int fd, struct stream_reader **out,
			 struct errmsg *err)
{
	struct stream_reader *r;
	int ret;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return errmsg_set(err, -ENOMEM, "no memory for a stream reader");
	r->fd = fd;
	ret = read_header(r, err);
	if (ret) {
		stream_reader_destroy(r);
		return ret;
	}
	*out = r;
	return 0;
}

const char *stream_reader_producer(const struct stream_reader *r)
{
	return r->producer;
}

int stream_reader_defer_ram(struct stream_reader *r)
{
	struct stat st;

	if (fstat(r->fd, &st) || !S_ISREG(st.st_mode))
		return -ESPIPE;
	r->defer = true;
	return 0;
}

/* The most a RAM payload's head (header, bitmap, padding) can be. */
#define RAM_HEAD_MAX (STREAM_RAM_HDR + STREAM_RAM_BITMAP_MAX + PAGE_SIZE)

/* Whether the section whose header is @head is read deferred: a raw RAM
 * section (unknown flags are left to the full read to refuse). */
static bool defers(const struct stream_reader *r, const uint8_t *head)
{
	unsigned flags = get_le16(head + 2);

	return r->defer && r->next && get_le16(head) == STREAM_RAM &&
	       !(flags & ~STREAM_SEC_F_KNOWN) && !(flags & STREAM_SEC_F_ZSTD);
}

/* Exactly @len bytes of section r->next, or -ENODATA. */
static int read_in(struct stream_reader *r, uint8_t *p, size_t len,
		   struct errmsg *err)
{
	size_t got;
	int ret = read_upto(r->fd, p, len, &got);

	if (ret)
		return fail(r, err, ret, "reading section %u: %s", r->next,
			    strerror(-ret));
	if (got < len)
		return fail(r, err, -ENODATA,
			    "the stream ends inside section %u (ram)", r->next);
	return 0;
}

/* The head of a RAM payload of @len bytes into @p: its header, then,
 * when those say how long they are, its bitmap and padding (no more
 * than @len).  *@got: the bytes read. */
static int read_ram_head(struct stream_reader *r, uint8_t *p, size_t len,
			 size_t *got, struct errmsg *err)
{
	uint32_t npages, pad;
	size_t want;
	int ret;

	*got = len < STREAM_RAM_HDR ? len : STREAM_RAM_HDR;
	ret = read_in(r, p, *got, err);
	if (ret || *got < STREAM_RAM_HDR)
		return ret;
	npages = get_le32(p + 8);
	pad = get_le32(p + 12);
	if (!npages || npages > STREAM_PAGES_MAX || pad >= PAGE_SIZE)
		return 0;	/* stream_ram_parse() names it */
	want = STREAM_RAM_HDR + (npages + 7) / 8 + pad;
	if (want > len)
		want = len;
	ret = read_in(r, p + *got, want - *got, err);
	*got = want;
	return ret;
}

/*
 * A raw RAM section whose header @head says @len bytes of payload:
 * its head read and checked, its page data passed over, its checksum
 * kept in @s for stream_verify_deferred().  stream_ram_parse() reads no
 * further into the payload than the head it validates, so it runs on
 * the head alone with the stored length.
 */
static int read_deferred(struct stream_reader *r, uint64_t start,
			 size_t len, struct stream_section *s,
			 struct errmsg *err)
{
	uint8_t *p = r->buf + STREAM_SEC_HDR, sum[STREAM_HASH_LEN];
	struct stream_ram ram;
	struct errmsg why;
	char where[80];
	size_t head;
	off_t skip;
	int ret;

	ret = read_ram_head(r, p, len, &head, err);
	if (ret)
		return ret;
	stream_where(where, sizeof(where), r->next, STREAM_RAM, start);
	if (stream_ram_parse(p, len, &ram, where, &why))
		return fail(r, err, -EBADMSG, "%s", why.text);
	skip = (off_t)(len - head);
	if (skip && lseek(r->fd, skip, SEEK_CUR) < 0)
		return fail(r, err, -errno, "%s: seeking past its pages: %s",
			    where, strerror(errno));
	ret = read_in(r, sum, sizeof(sum), err);
	if (ret)
		return ret;
	*s = (struct stream_section){
		.type = STREAM_RAM, .index = r->next, .data = p, .len = head,
		.payload_offset = start + STREAM_SEC_HDR, .deferred = true,
		.check = { .index = r->next, .start = start,
			   .len = (uint32_t)len, .checksum = get_le64(sum) },
	};
	return 0;
}

/* The section header at r->buf, and its payload and checksum after it
 * (1: a deferred RAM section, read into @s).  @start: the section's
 * offset in the stream. */
static int read_section(struct stream_reader *r, uint64_t start,
			size_t *len, struct stream_section *s,
			struct errmsg *err)
{
	uint8_t head[STREAM_SEC_HDR];
	unsigned type, i = r->next;
	size_t got, want;
	int ret;

	memcpy(head, r->ahead, r->ahead_len);
	ret = read_upto(r->fd, head + r->ahead_len,
			STREAM_SEC_HDR - r->ahead_len, &got);
	got += r->ahead_len;
	r->ahead_len = 0;
	if (!ret && !got && i)
		return fail(r, err, -ENODATA,
			    "the stream ends after section %u (%s), without an END section",
			    i - 1, stream_type_name(r->last_type));
	if (!ret && !got)
		return fail(r, err, -ENODATA,
			    "the stream ends after its header, without any section");
	type = got >= 2 ? get_le16(head) : 0;
	if (!ret && got == STREAM_SEC_HDR) {
		*len = get_le32(head + 4);
		if (*len > STREAM_SECTION_MAX)
			return fail(r, err, -EBADMSG,
				    "section %u (%s) at byte %" PRIu64
				    ": stored length %zu over the limit of %u",
				    i, stream_type_name(type), start, *len,
				    STREAM_SECTION_MAX);
		if (stream_buf_reserve(&r->buf, &r->cap, STREAM_SEC_HDR +
				       (defers(r, head) ? RAM_HEAD_MAX : *len) +
				       STREAM_HASH_LEN + STREAM_SEC_HDR))
			return fail(r, err, -ENOMEM,
				    "no memory for section %u", i);
		memcpy(r->buf, head, STREAM_SEC_HDR);
		if (defers(r, head))
			return read_deferred(r, start, *len, s, err) ?: 1;
		/* the next header too, if it is there already: never past
		 * END, after which the bytes are not the stream's */
		want = *len + STREAM_HASH_LEN;
		ret = read_between(r->fd, r->buf + STREAM_SEC_HDR, want, want +
				   (type == STREAM_END ? 0 : STREAM_SEC_HDR),
				   &got);
		if (!ret && got > want) {
			r->ahead_len = got - want;
			memcpy(r->ahead, r->buf + STREAM_SEC_HDR + want,
			       r->ahead_len);
		}
		got = got >= want ? STREAM_SEC_HDR : 0;
	}
	if (ret)
		return fail(r, err, ret, "reading section %u: %s", i,
			    strerror(-ret));
	if (got < STREAM_SEC_HDR)
		return fail(r, err, -ENODATA,
			    "the stream ends inside section %u (%s)", i,
			    stream_type_name(type));
	if (XXH3_64bits_withSeed(r->buf, STREAM_SEC_HDR + *len, i) !=
	    get_le64(r->buf + STREAM_SEC_HDR + *len))
		return fail(r, err, -EBADMSG, "section %u (%s) at byte %" PRIu64
			    ": checksum mismatch", i, stream_type_name(type),
			    start);
	return 0;
}

/* A RAM payload's zstd frame into r->dbuf: one frame, its content size
 * declared and within the limit, nothing after it. */
static int inflate(struct stream_reader *r, const uint8_t *src, size_t len,
		   size_t *out_len, const char *where, struct errmsg *err)
{
	unsigned long long size = ZSTD_getFrameContentSize(src, len);
	size_t n;

	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
		return fail(r, err, -EBADMSG,
			    "%s: not a zstd frame with its content size", where);
	if (size > STREAM_SECTION_MAX)
		return fail(r, err, -EBADMSG,
			    "%s: decompresses to %llu bytes, over the limit of %u",
			    where, size, STREAM_SECTION_MAX);
	if (ZSTD_findFrameCompressedSize(src, len) != len)
		return fail(r, err, -EBADMSG,
			    "%s: not exactly one zstd frame", where);
	if (!r->dctx)
		r->dctx = ZSTD_createDCtx();
	if (!r->dctx || stream_buf_reserve(&r->dbuf, &r->dcap, size + 1))
		return fail(r, err, -ENOMEM, "%s: no memory for zstd", where);
	n = ZSTD_decompressDCtx(r->dctx, r->dbuf, (size_t)size, src, len);
	if (ZSTD_isError(n) || n != size)
		return fail(r, err, -EBADMSG, "%s: zstd: %s", where,
			    ZSTD_isError(n) ? ZSTD_getErrorName(n) :
					      "shorter than its frame says");
	*out_len = n;
	return 0;
}

/* Flags, type and order of the section read into r->buf, then its
 * payload (decompressed) into @s.  1: skip it. */
static int check_section(struct stream_reader *r, uint64_t start,
			 size_t len, struct stream_section *s,
			 struct errmsg *err)
{
	unsigned type = get_le16(r->buf), flags = get_le16(r->buf + 2);
	const uint8_t *payload = r->buf + STREAM_SEC_HDR;
	struct errmsg why;
	char where[80];

	stream_where(where, sizeof(where), r->next, type, start);
	if (flags & ~STREAM_SEC_F_KNOWN)
		return fail(r, err, -EBADMSG, "%s: unknown flags 0x%x", where,
			    flags & ~STREAM_SEC_F_KNOWN);
	if (!stream_type_known(type) && (!(flags & STREAM_SEC_F_SKIP) ||
					 !r->next))
		return fail(r, err, -EBADMSG, "section %u: unknown type %u",
			    r->next, type);
	if (!r->next && type != STREAM_CONFIG)
		return fail(r, err, -EPROTO,
			    "%s: the stream must begin with its config", where);
	if (r->next && type == STREAM_CONFIG)
		return fail(r, err, -EPROTO, "%s: a second config section",
			    where);
	if (!stream_type_known(type))
		return 1;
	if ((flags & STREAM_SEC_F_ZSTD) &&
	    (type != STREAM_RAM || !(r->flags & STREAM_HDR_F_ZSTD)))
		return fail(r, err, -EBADMSG,
			    "%s: compressed, but only RAM sections of a stream whose header says zstd may be",
			    where);
	if ((flags & STREAM_SEC_F_ZSTD) &&
	    inflate(r, payload, len, &len, where, err))
		return r->error;
	if (flags & STREAM_SEC_F_ZSTD)
		payload = r->dbuf;
	if (stream_payload_check(type, payload, len, where, &why))
		return fail(r, err, -EBADMSG, "%s", why.text);
	*s = (struct stream_section){
		.type = type, .index = r->next, .data = payload, .len = len,
		.payload_offset = start + STREAM_SEC_HDR,
		.compressed = flags & STREAM_SEC_F_ZSTD,
	};
	return 0;
}

/* After END: anything that follows is an error, end of file is
 * -ENODATA without ending the reader. */
static int after_end(struct stream_reader *r, struct errmsg *err)
{
	uint8_t head[STREAM_SEC_HDR];
	size_t got;
	int ret;

	ret = read_upto(r->fd, head, sizeof(head), &got);
	if (ret)
		return fail(r, err, ret, "reading after the END section: %s",
			    strerror(-ret));
	if (!got)
		return errmsg_set(err, -ENODATA,
				  "the stream ended with its END section (section %u)",
				  r->next - 1);
	return fail(r, err, -EPROTO, "section %u (%s) at byte %" PRIu64
		    " follows the END section", r->next,
		    stream_type_name(got >= 2 ? get_le16(head) : 0),
		    r->counts.bytes);
}

static void count(struct stream_reader *r, const struct stream_section *s,
		  size_t stored)
{
	struct stream_ram ram;

	r->counts.bytes += STREAM_SEC_HDR + stored + STREAM_HASH_LEN;
	r->counts.sections++;
	if (s && s->type == STREAM_RAM &&
	    !stream_ram_parse(s->data, s->deferred ? s->check.len : s->len,
			      &ram, "", NULL)) {
		r->counts.pages += ram.npages;
		r->counts.zero_pages += ram.zero_pages;
	}
}

int stream_next(struct stream_reader *r, struct stream_section *s,
		struct errmsg *err)
{
	uint64_t start;
	size_t len = 0;
	int ret;

	if (r->error) {
		if (err)
			*err = r->error_text;
		return r->error;
	}
	if (r->ended)
		return after_end(r, err);
	do {
		if (r->next == UINT_MAX)
			return fail(r, err, -EBADMSG,
				    "more than %u sections", UINT_MAX - 1);
		start = r->counts.bytes;
		ret = read_section(r, start, &len, s, err);
		if (ret < 0)
			return ret;
		ret = ret ? 0 : check_section(r, start, len, s, err);
		if (ret < 0)
			return ret;
		r->last_type = get_le16(r->buf);	/* read_section()'s */
		r->next++;
		count(r, ret ? NULL : s, len);
	} while (ret);
	r->ended = s->type == STREAM_END;
	return 0;
}

int stream_reader_finish(struct stream_reader *r, struct errmsg *err)
{
	int ret;

	if (!r->ended && !r->error)
		return errmsg_set(err, -ENODATA,
				  "the stream was not read to its END section");
	ret = stream_next(r, &(struct stream_section){ 0 }, err);
	return ret == -ENODATA && !r->error ? 0 : ret;
}

void stream_reader_counts(const struct stream_reader *r,
			  struct stream_counts *out)
{
	*out = r->counts;
}

void stream_reader_destroy(struct stream_reader *r)
{
	if (!r)
		return;
	ZSTD_freeDCtx(r->dctx);
	free(r->dbuf);
	free(r->buf);
	free(r);
}
