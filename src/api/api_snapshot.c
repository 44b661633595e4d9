// SPDX-License-Identifier: MIT
/*
 * PUT /vm/snapshot: a paused VM's state and memory into a new file
 * (migrate/snapshot.h); `rackvm run --restore FILE` resumes it.  The
 * request blocks for as long as writing takes, as the VM is paused and
 * nothing else can change it meanwhile.
 */
#include <errno.h>
#include <string.h>

#include "api/api_handlers.h"
#include "api/api_json.h"
#include "migrate/snapshot.h"

int api_parse_snapshot(const char *body, size_t len,
		       struct api_snapshot_request *out, struct errmsg *err)
{
	static const char *const keys[] = { "path", "compress", NULL };
	json_t *o, *path, *compress;
	const char *text;
	int ret = api_json_object(body, len, false, &o, err);

	memset(out, 0, sizeof(*out));
	if (!ret)
		ret = api_json_known_keys(o, keys, err);
	if (ret) {
		json_decref(o);
		return ret;
	}
	path = json_object_get(o, "path");
	compress = json_object_get(o, "compress");
	text = json_string_value(path);
	if (!text || text[0] != '/' || strlen(text) > API_SNAPSHOT_PATH_MAX ||
	    json_string_length(path) != strlen(text))
		ret = errmsg_set(err, -EINVAL, "\"path\" must be an absolute "
				 "file name of at most %d bytes",
				 API_SNAPSHOT_PATH_MAX);
	else if (compress && !json_is_boolean(compress))
		ret = errmsg_set(err, -EINVAL, "\"compress\" must be true or "
				 "false");
	if (!ret) {
		memcpy(out->path, text, strlen(text) + 1);
		out->compress = json_is_true(compress);
	}
	json_decref(o);
	return ret;
}

API_HANDLER(api_put_vm_snapshot)
{
	struct api_snapshot_request sr;
	struct snapshot_options so = { 0 };
	struct snapshot_result res;
	struct errmsg err = { "" };
	int ret = api_parse_snapshot(req->body, req->body_len, &sr, &err);

	if (ret) {
		api_reply_failure(resp, ret, &err);
		return;
	}
	so.compress = sr.compress;
	ret = snapshot_save(ctx->machine, sr.path, &so, &res, &err);
	if (ret == -EEXIST)
		api_reply_error(resp, 409, "%s", err.text);
	else if (ret)
		api_reply_failure(resp, ret, &err);
	else
		api_reply_json(resp, 200, json_pack("{s:s, s:I, s:I, s:I, s:f}",
			"path", sr.path,
			"bytes", (json_int_t)res.bytes,
			"pages", (json_int_t)res.pages,
			"zero_pages", (json_int_t)res.zero_pages,
			"seconds", (double)res.ns / 1e9));
}
