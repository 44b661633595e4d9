/* SPDX-License-Identifier: MIT */
/*
 * Device and CPU state as bytes: a growable writer and a bounded reader,
 * for snapshots and migration (migrate/stream.h carries the results).
 *
 * Everything is little-endian and packed, field after field, in the
 * order the saving code wrote it; the loading code reads the same
 * fields in the same order.  Whoever changes a layout bumps the version
 * the saving code writes first (state_put_u32(b, MY_STATE_VERSION)) and
 * loads the versions it still understands.
 *
 * The writer records its first failure (out of memory) and ignores what
 * follows, so a save function calls state_put_*() in a row and checks
 * state_buf_error() once.  The reader never reads past its end: a short
 * or corrupt blob makes state_get_*() fail with -EBADMSG (and fill the
 * value with zeros), and the reader remembers it, so a load function
 * may also read in a row and check state_reader_error() once, before it
 * applies anything.  A stream's bytes are untrusted input.
 */
#ifndef RACKVM_UTIL_STATE_BUF_H
#define RACKVM_UTIL_STATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

struct state_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int error;		/* first failure, 0 if none */
};

void state_buf_init(struct state_buf *b);
void state_buf_release(struct state_buf *b);
/* 0, or the first failure of a put since init (-ENOMEM). */
int state_buf_error(const struct state_buf *b);

void state_put_u8(struct state_buf *b, uint8_t v);
void state_put_u16(struct state_buf *b, uint16_t v);
void state_put_u32(struct state_buf *b, uint32_t v);
void state_put_u64(struct state_buf *b, uint64_t v);
void state_put_bool(struct state_buf *b, bool v);
void state_put_bytes(struct state_buf *b, const void *p, size_t n);
/* A u32 length, then the bytes. */
void state_put_blob(struct state_buf *b, const void *p, size_t n);

struct state_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	int error;		/* -EBADMSG once a get ran past the end */
};

void state_reader_init(struct state_reader *r, const void *data, size_t len);
int state_reader_error(const struct state_reader *r);
/* Bytes not read yet. */
size_t state_reader_left(const struct state_reader *r);

int state_get_u8(struct state_reader *r, uint8_t *v);
int state_get_u16(struct state_reader *r, uint16_t *v);
int state_get_u32(struct state_reader *r, uint32_t *v);
int state_get_u64(struct state_reader *r, uint64_t *v);
/* Any value but 0 and 1 is -EBADMSG. */
int state_get_bool(struct state_reader *r, bool *v);
int state_get_bytes(struct state_reader *r, void *p, size_t n);
/* A blob written by state_put_blob(): its length must be at most @max
 * (else -EBADMSG); *@p points into the reader's data. */
int state_get_blob(struct state_reader *r, const uint8_t **p, size_t *n,
		   size_t max);

/*
 * The checks every state blob's load function makes, with one wording:
 * @who (may be NULL) starts the line in @err, e.g. a device's name.
 * state_check_version(): the u32 layout version that opens a blob;
 * -EBADMSG if the blob is too short for one, -EPROTONOSUPPORT for any
 * version but @version.  state_check_end(): after the last field;
 * -EBADMSG if a field ran past the end of the blob or bytes are left.
 */
int state_check_version(struct state_reader *in, const char *who,
			uint32_t version, struct errmsg *err);
int state_check_end(const struct state_reader *in, const char *who,
		    struct errmsg *err);

#endif
