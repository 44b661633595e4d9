// SPDX-License-Identifier: MIT
/*
 * Device and CPU state as bytes (state_buf.h).
 */
#include "util/state_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/le.h"

void state_buf_init(struct state_buf *b)
{
	*b = (struct state_buf){ 0 };
}

void state_buf_release(struct state_buf *b)
{
	free(b->data);
	*b = (struct state_buf){ 0 };
}

int state_buf_error(const struct state_buf *b)
{
	return b->error;
}

static uint8_t *grow(struct state_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->error || n == 0)	/* nothing to add: no pointer past NULL */
		return NULL;
	if (n > SIZE_MAX / 2 - b->len) {
		b->error = -ENOMEM;
		return NULL;
	}
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->error = -ENOMEM;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

void state_put_bytes(struct state_buf *b, const void *p, size_t n)
{
	uint8_t *dst = grow(b, n);

	if (dst && n)
		memcpy(dst, p, n);
}

void state_put_u8(struct state_buf *b, uint8_t v)
{
	state_put_bytes(b, &v, 1);
}

void state_put_u16(struct state_buf *b, uint16_t v)
{
	uint8_t le[2];

	put_le16(le, v);
	state_put_bytes(b, le, sizeof(le));
}

void state_put_u32(struct state_buf *b, uint32_t v)
{
	uint8_t le[4];

	put_le32(le, v);
	state_put_bytes(b, le, sizeof(le));
}

void state_put_u64(struct state_buf *b, uint64_t v)
{
	uint8_t le[8];

	put_le64(le, v);
	state_put_bytes(b, le, sizeof(le));
}

void state_put_bool(struct state_buf *b, bool v)
{
	state_put_u8(b, v ? 1 : 0);
}

void state_put_blob(struct state_buf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		if (!b->error)
			b->error = -E2BIG;
		return;
	}
	state_put_u32(b, (uint32_t)n);
	state_put_bytes(b, p, n);
}

void state_reader_init(struct state_reader *r, const void *data, size_t len)
{
	*r = (struct state_reader){ .data = data, .len = len };
}

int state_reader_error(const struct state_reader *r)
{
	return r->error;
}

size_t state_reader_left(const struct state_reader *r)
{
	return r->len - r->pos;
}

int state_get_bytes(struct state_reader *r, void *p, size_t n)
{
	if (r->error || n > r->len - r->pos) {
		r->error = -EBADMSG;
		if (n)
			memset(p, 0, n);
		return -EBADMSG;
	}
	if (n)
		memcpy(p, r->data + r->pos, n);
	r->pos += n;
	return 0;
}

int state_get_u8(struct state_reader *r, uint8_t *v)
{
	return state_get_bytes(r, v, 1);
}

int state_get_u16(struct state_reader *r, uint16_t *v)
{
	uint8_t le[2];
	int ret = state_get_bytes(r, le, sizeof(le));

	*v = get_le16(le);
	return ret;
}

int state_get_u32(struct state_reader *r, uint32_t *v)
{
	uint8_t le[4];
	int ret = state_get_bytes(r, le, sizeof(le));

	*v = get_le32(le);
	return ret;
}

int state_get_u64(struct state_reader *r, uint64_t *v)
{
	uint8_t le[8];
	int ret = state_get_bytes(r, le, sizeof(le));

	*v = get_le64(le);
	return ret;
}

int state_get_bool(struct state_reader *r, bool *v)
{
	uint8_t u;
	int ret = state_get_u8(r, &u);

	if (!ret && u > 1) {
		r->error = -EBADMSG;
		ret = -EBADMSG;
	}
	*v = u == 1;
	return ret;
}

int state_get_blob(struct state_reader *r, const uint8_t **p, size_t *n,
		   size_t max)
{
	uint32_t len;

	*p = NULL;
	*n = 0;
	if (state_get_u32(r, &len))
		return -EBADMSG;
	if (len > max || len > r->len - r->pos) {
		r->error = -EBADMSG;
		return -EBADMSG;
	}
	*p = r->data + r->pos;
	*n = len;
	r->pos += len;
	return 0;
}

/* "dev: " before a message, or nothing without a name */
#define WHO_FMT "%s%s"
#define WHO_ARGS(who) (who) ? (who) : "", (who) ? ": " : ""

int state_check_version(struct state_reader *in, const char *who,
			uint32_t version, struct errmsg *err)
{
	uint32_t v;

	if (state_get_u32(in, &v))
		return errmsg_set(err, -EBADMSG,
				  WHO_FMT "state of %zu bytes has no version",
				  WHO_ARGS(who), in->len);
	if (v != version)
		return errmsg_set(err, -EPROTONOSUPPORT,
				  WHO_FMT "state layout version %u, this build "
				  "reads %u", WHO_ARGS(who), v, version);
	return 0;
}

int state_check_end(const struct state_reader *in, const char *who,
		    struct errmsg *err)
{
	size_t left = state_reader_left(in);

	if (state_reader_error(in))
		return errmsg_set(err, -EBADMSG,
				  WHO_FMT "state truncated at %zu bytes",
				  WHO_ARGS(who), in->len);
	if (left)
		return errmsg_set(err, -EBADMSG,
				  WHO_FMT "state has %zu byte%s past its end",
				  WHO_ARGS(who), left, left == 1 ? "" : "s");
	return 0;
}
