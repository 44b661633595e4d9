// SPDX-License-Identifier: MIT
/* The memd wire protocol: pure encoders and decoders, see memd_proto.h. */
#include "remote/memd_proto.h"

#include <errno.h>
#include <string.h>

#include "util/parse.h"
#include "util/le.h"

const char *memd_status_name(unsigned status)
{
	static const char *const names[] = {
		[MEMD_ST_OK] = "OK",
		[MEMD_ST_NO_PAGE] = "NO_PAGE",
		[MEMD_ST_FULL] = "FULL",
		[MEMD_ST_BAD_SECRET] = "BAD_SECRET",
		[MEMD_ST_BAD_REQUEST] = "BAD_REQUEST",
	};

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "?";
}

void memd_hdr_encode(const struct memd_hdr *h, uint8_t *out)
{
	put_le32(out, h->body_len);
	out[4] = h->op;
	out[5] = h->status;
	put_le16(out + 6, 0);
	put_le64(out + 8, h->id);
}

int memd_hdr_decode(const uint8_t *in, struct memd_hdr *h)
{
	h->body_len = get_le32(in);
	h->op = in[4];
	h->status = in[5];
	h->id = get_le64(in + 8);
	if (get_le16(in + 6))
		return -EBADMSG;
	return h->body_len > MEMD_MAX_BODY ? -EMSGSIZE : 0;
}

void memd_record_encode(uint8_t *out, const uint8_t *tag, const void *data)
{
	memcpy(out, tag, MEMD_TAG_SIZE);
	memcpy(out + MEMD_TAG_SIZE, data, PAGE_STORE_PAGE);
}

bool memd_valid_name(const char *name, size_t len)
{
	if (len < 1 || len > MEMD_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* PUT, GET, DROP: the run headers (and, for PUT, the records after each). */
static int decode_runs(uint8_t op, const uint8_t *body, size_t len,
		       struct memd_request *req, struct errmsg *err)
{
	uint32_t max_pages = op == MEMD_OP_DROP ? MEMD_MAX_DROP_PAGES :
						  MEMD_MAX_PAGES;
	size_t pos = MEMD_BATCH_HDR_SIZE, nruns;
	uint64_t pages = 0;

	if (len < MEMD_BATCH_HDR_SIZE)
		return errmsg_set(err, -EBADMSG, "batch body of %zu bytes is too short", len);
	nruns = get_le16(body);
	if (nruns < 1 || nruns > MEMD_MAX_RUNS || get_le16(body + 2))
		return errmsg_set(err, -EBADMSG, "batch of %zu runs: 1-%d allowed, "
				  "reserved bytes 0", nruns, MEMD_MAX_RUNS);
	for (size_t i = 0; i < nruns; i++) {
		struct memd_run_ref *r = &req->runs[i];
		const uint8_t *h = body + pos;

		if (len - pos < MEMD_RUN_HDR_SIZE)
			return errmsg_set(err, -EBADMSG, "run %zu is cut short", i);
		r->first = get_le64(h);
		r->count = get_le32(h + 8);
		if (r->count < 1 || get_le32(h + 12))
			return errmsg_set(err, -EBADMSG, "run %zu: %u pages (>= 1), "
					  "reserved bytes 0", i, r->count);
		if (r->first >= MEMD_PAGE_LIMIT ||
		    r->count > MEMD_PAGE_LIMIT - r->first)
			return errmsg_set(err, -EBADMSG, "run %zu: pages beyond 2^52", i);
		pages += r->count;
		if (pages > max_pages)
			return errmsg_set(err, -EBADMSG, "more than %u pages in one request",
					  max_pages);
		pos += MEMD_RUN_HDR_SIZE;
		r->records = NULL;
		if (op != MEMD_OP_PUT)
			continue;
		/* pages <= MEMD_MAX_PAGES: no overflow */
		if ((len - pos) / MEMD_RECORD < r->count)
			return errmsg_set(err, -EBADMSG, "run %zu: data cut short", i);
		r->records = body + pos;
		pos += (size_t)r->count * MEMD_RECORD;
	}
	if (pos != len)
		return errmsg_set(err, -EBADMSG, "%zu stray bytes after the runs",
				  len - pos);
	req->nruns = nruns;
	req->npages = (uint32_t)pages;
	return 0;
}

int memd_decode_request(const struct memd_hdr *h, const uint8_t *body,
			struct memd_request *req, struct errmsg *err)
{
	memset(req, 0, offsetof(struct memd_request, runs));
	req->op = h->op;
	req->id = h->id;
	if (h->status)
		return errmsg_set(err, -EBADMSG, "a request with status %u", h->status);
	if (h->body_len > MEMD_MAX_BODY)
		return errmsg_set(err, -EBADMSG, "body of %u bytes", h->body_len);
	switch (h->op) {
	case MEMD_OP_HELLO:
		return memd_decode_hello(body, h->body_len, req, err);
	case MEMD_OP_PUT:
	case MEMD_OP_GET:
	case MEMD_OP_DROP:
		return decode_runs(h->op, body, h->body_len, req, err);
	case MEMD_OP_STATS:
	case MEMD_OP_RELEASE:
		if (h->body_len)
			return errmsg_set(err, -EBADMSG, "%s with a body",
					  h->op == MEMD_OP_STATS ? "STATS" : "RELEASE");
		return 0;
	default:
		return errmsg_set(err, -EBADMSG, "unknown op %u", h->op);
	}
}

size_t memd_runs_size(uint8_t op, const struct page_run *runs, size_t n)
{
	uint32_t max_pages;
	uint64_t pages = 0;

	if (op != MEMD_OP_PUT && op != MEMD_OP_GET && op != MEMD_OP_DROP)
		return 0;
	max_pages = op == MEMD_OP_DROP ? MEMD_MAX_DROP_PAGES : MEMD_MAX_PAGES;
	if (n < 1 || n > MEMD_MAX_RUNS)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (runs[i].count < 1 || runs[i].first >= MEMD_PAGE_LIMIT ||
		    runs[i].count > MEMD_PAGE_LIMIT - runs[i].first)
			return 0;
		pages += runs[i].count;
		if (pages > max_pages)
			return 0;
	}
	return MEMD_HDR_SIZE + MEMD_BATCH_HDR_SIZE + n * MEMD_RUN_HDR_SIZE +
	       (op == MEMD_OP_PUT ? pages * MEMD_RECORD : 0);
}

size_t memd_encode_runs(uint8_t *out, uint8_t op, uint64_t id,
			const struct page_run *runs, size_t n)
{
	size_t size = memd_runs_size(op, runs, n);
	struct memd_hdr h = { .op = op, .id = id };
	uint8_t *p = out + MEMD_HDR_SIZE;

	if (!size)
		return 0;
	h.body_len = (uint32_t)(size - MEMD_HDR_SIZE);
	memd_hdr_encode(&h, out);
	put_le16(p, (uint16_t)n);
	put_le16(p + 2, 0);
	p += MEMD_BATCH_HDR_SIZE;
	for (size_t i = 0; i < n; i++) {
		put_le64(p, runs[i].first);
		put_le32(p + 8, runs[i].count);
		put_le32(p + 12, 0);
		p += MEMD_RUN_HDR_SIZE;
		if (op != MEMD_OP_PUT)
			continue;
		for (uint32_t j = 0; j < runs[i].count; j++) {
			memd_record_encode(p, runs[i].tags + (size_t)j * MEMD_TAG_SIZE,
					   runs[i].data + (size_t)j * PAGE_STORE_PAGE);
			p += MEMD_RECORD;
		}
	}
	return size;
}

static size_t encode_empty(uint8_t *out, uint8_t op, uint64_t id)
{
	struct memd_hdr h = { .op = op, .id = id };

	memd_hdr_encode(&h, out);
	return MEMD_HDR_SIZE;
}

size_t memd_encode_stats_request(uint8_t *out, uint64_t id)
{
	return encode_empty(out, MEMD_OP_STATS, id);
}

size_t memd_encode_release(uint8_t *out, uint64_t id)
{
	return encode_empty(out, MEMD_OP_RELEASE, id);
}

/* The wire order of the STATS fields. */
static uint64_t *stats_field(struct memd_stats *st, unsigned i)
{
	uint64_t *const fields[MEMD_STATS_FIELDS] = {
		&st->capacity, &st->used, &st->pages, &st->namespace_pages,
		&st->namespaces, &st->connections, &st->pages_put,
		&st->pages_got, &st->pages_dropped, &st->full_refusals,
		&st->bad_secrets,
	};

	return fields[i];
}

void memd_encode_stats(uint8_t *out, const struct memd_stats *st)
{
	struct memd_stats copy = *st;

	for (unsigned i = 0; i < MEMD_STATS_FIELDS; i++)
		put_le64(out + 8 * i, *stats_field(&copy, i));
}

int memd_decode_stats(const uint8_t *body, size_t len, struct memd_stats *st)
{
	if (len != MEMD_STATS_SIZE)
		return -EBADMSG;
	for (unsigned i = 0; i < MEMD_STATS_FIELDS; i++)
		*stats_field(st, i) = get_le64(body + 8 * i);
	return 0;
}

int memd_check_reply(const struct memd_hdr *h, uint8_t op, uint64_t id,
		     uint32_t arg, struct errmsg *err)
{
	size_t want = 0;

	if (h->id != id || h->op != op)
		return errmsg_set(err, -EBADMSG, "reply id %llu op %u to request "
				  "id %llu op %u", (unsigned long long)h->id,
				  h->op, (unsigned long long)id, op);
	if (h->status > MEMD_ST_BAD_REQUEST)
		return errmsg_set(err, -EBADMSG, "unknown reply status %u", h->status);
	if (h->status == MEMD_ST_OK && op == MEMD_OP_GET)
		want = (size_t)arg * MEMD_RECORD;
	else if (h->status == MEMD_ST_OK && op == MEMD_OP_HELLO)
		want = arg == 1 ? MEMD_CHALLENGE_SIZE : MEMD_WELCOME_SIZE;
	else if (h->status == MEMD_ST_OK && op == MEMD_OP_STATS)
		want = MEMD_STATS_SIZE;
	if (h->body_len != want)
		return errmsg_set(err, -EBADMSG, "%s reply of %u bytes, %zu expected",
				  memd_status_name(h->status), h->body_len, want);
	return 0;
}

int memd_decode_get_reply(const uint8_t *body, size_t len,
			  const struct page_run *runs, size_t n)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < runs[i].count; j++) {
			if (len - pos < MEMD_RECORD)
				return -EBADMSG;
			memcpy(runs[i].tags + (size_t)j * MEMD_TAG_SIZE,
			       memd_record_tag(body + pos), MEMD_TAG_SIZE);
			memcpy(runs[i].data + (size_t)j * PAGE_STORE_PAGE,
			       memd_record_data(body + pos), PAGE_STORE_PAGE);
			pos += MEMD_RECORD;
		}
	}
	return pos == len ? 0 : -EBADMSG;
}

int memd_parse_hostport(const char *text, char *host, size_t host_size,
			uint16_t *port, struct errmsg *err)
{
	const char *colon, *host_start = text, *host_end;
	unsigned value;

	if (text[0] == '[') {
		host_end = strchr(text, ']');
		if (!host_end || host_end[1] != ':')
			return errmsg_set(err, -EINVAL, "invalid address '%s': give "
					  "[IPV6]:PORT", text);
		host_start = text + 1;
		colon = host_end + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			return errmsg_set(err, -EINVAL, "invalid address '%s': give "
					  "HOST:PORT or [IPV6]:PORT", text);
		host_end = colon;
	}
	if (host_end == host_start || (size_t)(host_end - host_start) >= host_size)
		return errmsg_set(err, -EINVAL, "invalid address '%s': the host is "
				  "empty or too long", text);
	if (parse_uint(colon + 1, 0, 65535, &value))
		return errmsg_set(err, -EINVAL, "invalid address '%s': the port must "
				  "be 0-65535", text);
	memcpy(host, host_start, (size_t)(host_end - host_start));
	host[host_end - host_start] = 0;
	*port = (uint16_t)value;
	return 0;
}
