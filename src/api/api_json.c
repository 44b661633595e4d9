// SPDX-License-Identifier: MIT
/* JSON helpers of the API, see api_json.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "util/parse.h"

int api_json_object(const char *body, size_t len, bool empty_ok,
		    json_t **out, struct errmsg *err)
{
	json_error_t jerr;
	json_t *o;

	*out = NULL;
	if (!len && empty_ok) {
		*out = json_object();
		return *out ? 0 : errmsg_set(err, -ENOMEM, "out of memory");
	}
	if (!len)
		return errmsg_set(err, -EINVAL, "the request needs a JSON body");
	/* duplicate keys would make "which one counts" a guess */
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return errmsg_set(err, -EINVAL, "invalid JSON at line %d column "
				  "%d: %.200s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return errmsg_set(err, -EINVAL, "the body must be a JSON object");
	}
	*out = o;
	return 0;
}

int api_json_known_keys(json_t *o, const char *const *keys,
			struct errmsg *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		char valid[128] = "";
		size_t used = 0;
		bool known = false;

		for (unsigned i = 0; keys[i]; i++)
			known |= !strcmp(key, keys[i]);
		if (known)
			continue;
		if (!keys[0])
			return errmsg_set(err, -EINVAL, "unknown field \"%.64s\": "
					  "this request takes no fields", key);
		for (unsigned i = 0; keys[i] && used < sizeof(valid); i++)
			used += (size_t)snprintf(valid + used, sizeof(valid) - used,
						 "%s\"%s\"", i ? ", " : "", keys[i]);
		/* %.64s: the key is the client's */
		return errmsg_set(err, -EINVAL, "unknown field \"%.64s\" (valid: %s)",
				  key, valid);
	}
	return 0;
}

int api_json_size(json_t *v, const char *key, uint64_t *out,
		  struct errmsg *err)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && !parse_size(json_string_value(v), out))
		return 0;
	return errmsg_set(err, -EINVAL, "invalid \"%s\": give a byte count or a "
			  "string like \"512M\" (K, M, G, T suffixes), not "
			  "negative", key);
}

void api_reply_json(struct api_response *r, unsigned status, json_t *body)
{
	/* 15 digits: a microsecond time past 10^4 s still prints exactly,
	 * and no double prints with noise in its last digits */
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) :
			    NULL;
	size_t len;

	json_decref(body);
	free(r->body);
	r->content_type = "application/json";
	if (!text) {
		/* not the client's fault, but not rackvm's state either */
		r->status = 503;
		r->body = strdup("{\"error\":\"out of memory\"}\n");
		return;
	}
	/* a newline ends the body, as curl users expect */
	len = strlen(text);
	r->body = realloc(text, len + 2);
	if (!r->body) {
		r->body = text;
	} else {
		r->body[len] = '\n';
		r->body[len + 1] = 0;
	}
	r->status = status;
}

void api_reply_error(struct api_response *r, unsigned status,
		     const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* the message may quote a client's bytes: keep it printable ASCII
	 * (JSON strings must be valid UTF-8) */
	for (char *c = text; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	api_reply_json(r, status, json_pack("{s:s}", "error", text));
}

unsigned api_status_of(int ret)
{
	switch (ret) {
	case 0:
		return 200;
	case -EINVAL:
	case -ERANGE:
		return 400;
	case -EBUSY:
	case -ENOENT:
	case -ENOTSUP:
		return 409;
	default:
		return 500;
	}
}

void api_reply_failure(struct api_response *r, int ret,
		       const struct errmsg *err)
{
	api_reply_error(r, api_status_of(ret), "%s",
			err && err->text[0] ? err->text : strerror(-ret));
}

int api_parse_empty(const char *body, size_t len, struct errmsg *err)
{
	static const char *const none[] = { NULL };
	json_t *o;
	int ret = api_json_object(body, len, true, &o, err);

	if (!ret)
		ret = api_json_known_keys(o, none, err);
	json_decref(o);
	return ret;
}

int api_parse_since(const char *text, double *out, struct errmsg *err)
{
	char *end;
	double v;

	if (!text || !*text) {
		*out = -1;	/* everything held */
		return 0;
	}
	errno = 0;
	v = strtod(text, &end);
	if (*end || errno || !isfinite(v) || v < 0 || text[0] == ' ')
		return errmsg_set(err, -EINVAL, "invalid since=%.32s: give seconds "
				  "since tracking started, a number >= 0 (the "
				  "\"t\" of the last point seen)", text);
	*out = v;
	return 0;
}
