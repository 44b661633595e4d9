// SPDX-License-Identifier: MIT
/*
 * PUT /vm/migrate starts moving the VM to another rackvm (started there
 * with --incoming); GET /vm/migrate reports how far it got
 * (migrate/migrate.h).  The migration runs on a thread of its own: the
 * PUT answers 202 at once.
 */
#include <errno.h>
#include <string.h>

#include "api/api_handlers.h"
#include "api/api_json.h"
#include "migrate/migrate.h"

static int parse_compress(json_t *v, bool *out, struct errmsg *err)
{
	const char *s = json_string_value(v);

	if (json_is_boolean(v))
		*out = json_is_true(v);
	else if (s && !strcmp(s, "zstd"))
		*out = true;
	else if (s && !strcmp(s, "none"))
		*out = false;
	else
		return errmsg_set(err, -EINVAL, "\"compress\" must be \"zstd\" "
				  "or \"none\"");
	return 0;
}

static int parse_mode(json_t *v, enum migrate_mode *out, struct errmsg *err)
{
	*out = MIGRATE_MODE_PRECOPY;
	if (!v || !migrate_mode_parse(json_string_value(v), out))
		return 0;
	return errmsg_set(err, -EINVAL, "\"mode\" must be \"precopy\", "
			  "\"postcopy\" or \"hybrid\"");
}

static int parse_count(json_t *v, const char *key, uint64_t max,
		       uint64_t *out, struct errmsg *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    (uint64_t)json_integer_value(v) > max)
		return errmsg_set(err, -EINVAL, "\"%s\" must be an integer "
				  "1..%llu", key, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int api_parse_migrate(const char *body, size_t len, struct migrate_options *out,
		      struct errmsg *err)
{
	static const char *const keys[] = { "uri", "mode", "max_downtime_ms",
		"max_bandwidth", "compress", "max_rounds", "precopy_rounds",
		"auto_converge", NULL };
	char host[MIGRATE_URI_MAX], port[16];
	json_t *o, *v;
	uint64_t n;
	int ret = api_json_object(body, len, false, &o, err);

	memset(out, 0, sizeof(*out));
	out->auto_converge = true;
	if (!ret)
		ret = api_json_known_keys(o, keys, err);
	if (ret) {
		json_decref(o);
		return ret;
	}
	v = json_object_get(o, "uri");
	if (!json_is_string(v) || json_string_length(v) >= MIGRATE_URI_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v))
		ret = errmsg_set(err, -EINVAL, "\"uri\" must be \"tcp:HOST:PORT\"");
	else
		ret = migrate_parse_uri(json_string_value(v), host, sizeof(host),
					port, sizeof(port), err);
	if (!ret)
		memcpy(out->uri, json_string_value(v), json_string_length(v) + 1);
	if (!ret)
		ret = parse_mode(json_object_get(o, "mode"), &out->mode, err);
	if (!ret && (v = json_object_get(o, "max_downtime_ms"))) {
		ret = parse_count(v, "max_downtime_ms", 60000, &n, err);
		out->max_downtime_ns = n * 1000000ull;
	}
	if (!ret && (v = json_object_get(o, "max_bandwidth")))
		ret = api_json_size(v, "max_bandwidth", &out->max_bandwidth, err);
	if (!ret && (v = json_object_get(o, "compress")))
		ret = parse_compress(v, &out->compress, err);
	if (!ret && (v = json_object_get(o, "max_rounds"))) {
		ret = parse_count(v, "max_rounds", 1000, &n, err);
		out->max_rounds = (unsigned)n;
	}
	if (!ret && (v = json_object_get(o, "auto_converge"))) {
		if (json_is_boolean(v))
			out->auto_converge = json_is_true(v);
		else
			ret = errmsg_set(err, -EINVAL, "\"auto_converge\" must be "
					 "true or false");
	}
	if (!ret && (v = json_object_get(o, "precopy_rounds"))) {
		ret = parse_count(v, "precopy_rounds", 1000, &n, err);
		out->precopy_rounds = (unsigned)n;
		if (!ret && out->mode != MIGRATE_MODE_HYBRID)
			ret = errmsg_set(err, -EINVAL, "\"precopy_rounds\" is "
					 "for \"mode\": \"hybrid\"");
	}
	json_decref(o);
	return ret;
}

static json_t *status_object(struct migration *mg)
{
	struct migrate_status st;
	json_t *o, *pc;

	if (!mg)
		return json_pack("{s:s}", "phase", "none");
	migration_status(mg, &st);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, "
		      "s:f, s:I, s:I, s:s?}",
		"phase", migrate_phase_name(st.phase),
		"mode", migrate_mode_name(st.mode),
		"round", (json_int_t)st.round,
		"bytes_sent", (json_int_t)st.bytes_sent,
		"pages_sent", (json_int_t)st.pages_sent,
		"pages_remaining", (json_int_t)st.pages_remaining,
		"dirty_pages_per_second", st.dirty_pages_per_s,
		"bandwidth_bytes_per_second", st.bandwidth,
		"expected_downtime_ms", st.expected_downtime_ms,
		"downtime_ms", st.downtime_ms,
		"total_seconds", st.total_s,
		"eta_seconds", st.eta_s,
		"throttle_percent", (json_int_t)st.throttle_percent,
		"bytes_left_in_store", (json_int_t)st.bytes_left_in_store,
		"error", st.error[0] ? st.error : NULL);
	if (o && st.have_downtime_parts)
		json_object_set_new(o, "downtime_breakdown_ms", json_pack(
			"{s:f, s:f, s:f, s:f, s:f}", "pause", st.pause_ms,
			"quiesce", st.quiesce_ms, "copy", st.copy_ms,
			"destination_load", st.load_ms, "start", st.start_ms));
	if (!o || st.mode == MIGRATE_MODE_PRECOPY)
		return o;
	/* post-copy's page requests: served here, waited for there */
	pc = json_pack("{s:I, s:f, s:f, s:I, s:f, s:f, s:b}",
		       "urgent_requests", (json_int_t)st.urgent_requests,
		       "urgent_latency_p50_ms", st.urgent_p50_ms,
		       "urgent_latency_p99_ms", st.urgent_p99_ms,
		       "destination_faults", (json_int_t)st.dest_faults,
		       "fault_latency_p50_ms", st.fault_p50_ms,
		       "fault_latency_p99_ms", st.fault_p99_ms,
		       "destination_ended", st.dest_ended);
	if (pc)
		json_object_update(o, pc);
	json_decref(pc);
	return o;
}

API_HANDLER(api_put_vm_migrate)
{
	struct migrate_options mo;
	struct migration *mg;
	struct errmsg err = { "" };
	int ret = api_parse_migrate(req->body, req->body_len, &mo, &err);

	if (ret) {
		api_reply_failure(resp, ret, &err);
		return;
	}
	if (!ctx->migration) {
		api_reply_error(resp, 409, "this VM's API cannot migrate it");
		return;
	}
	if (*ctx->migration && migration_active(*ctx->migration)) {
		api_reply_error(resp, 409, "a migration is under way");
		return;
	}
	ret = migration_start(ctx->machine, &mo, &mg, &err);
	if (ret) {
		api_reply_failure(resp, ret, &err);
		return;
	}
	migration_destroy(*ctx->migration);	/* the last one, ended */
	*ctx->migration = mg;
	api_reply_json(resp, 202, status_object(mg));
}

API_HANDLER(api_get_vm_migrate)
{
	(void)req;
	api_reply_json(resp, 200, status_object(ctx->migration ?
						*ctx->migration : NULL));
}
