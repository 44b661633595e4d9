// SPDX-License-Identifier: MIT
/*
 * The memory resource: GET and PATCH /vm/memory, the WSS series
 * (GET /vm/memory/wss) and the pager (GET /vm/memory/pager).  Sizes in
 * responses are bytes; the series keeps the CSV's fields and units
 * (pages), so a client can compare the two.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_handlers.h"
#include "api/api_json.h"
#include "machine/machine.h"
#include "util/page.h"

int api_parse_memory_patch(const char *body, size_t len,
			   struct api_memory_patch *out, struct errmsg *err)
{
	static const char *const keys[] = { "balloon_target", "mem_local", NULL };
	json_t *o, *v;
	int ret = api_json_object(body, len, false, &o, err);

	memset(out, 0, sizeof(*out));
	if (!ret)
		ret = api_json_known_keys(o, keys, err);
	if (!ret && (v = json_object_get(o, "balloon_target"))) {
		out->has_balloon_target = true;
		ret = api_json_size(v, "balloon_target", &out->balloon_target, err);
	}
	if (!ret && (v = json_object_get(o, "mem_local"))) {
		out->has_mem_local = true;
		ret = api_json_size(v, "mem_local", &out->mem_local, err);
	}
	if (!ret && !out->has_balloon_target && !out->has_mem_local)
		ret = errmsg_set(err, -EINVAL, "give \"balloon_target\", "
				 "\"mem_local\" or both");
	json_decref(o);
	return ret;
}

static json_t *bytes_or_null(bool have, uint64_t pages)
{
	return have ? json_integer((json_int_t)(pages * PAGE_SIZE)) : json_null();
}

static json_t *latest_wss(struct machine *m)
{
	struct wss_monitor *mon = machine_wss_monitor(m);
	struct wss_point p;

	if (!mon || !wss_monitor_points(mon, -1, &p, 1))
		return json_null();
	return json_pack("{s:f, s:I, s:I, s:I}", "t", p.t,
			 "estimate", (json_int_t)(p.wss_pages * PAGE_SIZE),
			 "error", (json_int_t)(p.error_pages * PAGE_SIZE),
			 "smoothed", (json_int_t)(p.smoothed_pages * PAGE_SIZE));
}

/* The balloon's counters and the guest's last statistics (by their
 * virtio names); asks the guest for fresh ones, which the next read
 * shows. */
static json_t *balloon_object(struct virtio_balloon *b,
			      const struct virtio_balloon_info *bi)
{
	json_t *stats = json_object();

	for (unsigned tag = 0; stats && tag < VIRTIO_BALLOON_STAT_TAGS; tag++)
		if (bi->stats.valid & (1u << tag))
			json_object_set_new(stats, virtio_balloon_stat_name(tag),
					    json_integer((json_int_t)bi->stats.val[tag]));
	virtio_balloon_request_stats(b);
	return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*}",
		"driver_ok", virtio_balloon_driver_ok(b),
		"inflated_pages", (json_int_t)bi->inflated_pages,
		"deflated_pages", (json_int_t)bi->deflated_pages,
		"discarded_bytes", (json_int_t)bi->discarded_bytes,
		"reported_bytes", (json_int_t)bi->reported_bytes,
		"bad_requests", (json_int_t)bi->bad_requests,
		"discard_errors", (json_int_t)bi->discard_errors,
		"stats_updates", (json_int_t)bi->stats_updates,
		"guest_stats", stats);
}

static json_t *memory_object(struct machine *m)
{
	struct virtio_balloon *b = machine_balloon(m);
	struct virtio_balloon_info bi = { 0 };
	struct pager_stats ps = { 0 };
	bool pager = !machine_pager_stats(m, &ps);

	if (b)
		virtio_balloon_get_info(b, &bi);
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
		"size", (json_int_t)machine_config(m)->mem_size,
		"resident", bytes_or_null(pager, ps.resident),
		"remote", bytes_or_null(pager, ps.remote),
		"zero", bytes_or_null(pager, ps.zero),
		"mem_local", bytes_or_null(pager, ps.limit_pages),
		"balloon_target", b ? json_integer((json_int_t)bi.target_pages *
						   VIRTIO_BALLOON_PAGE_SIZE) : json_null(),
		"balloon_actual", b ? json_integer((json_int_t)bi.actual_pages *
						   VIRTIO_BALLOON_PAGE_SIZE) : json_null(),
		"wss", latest_wss(m),
		"balloon", b ? balloon_object(b, &bi) : json_null(),
		"host_resident", (json_int_t)machine_host_resident(m));
}

API_HANDLER(api_get_vm_memory)
{
	(void)req;
	api_reply_json(resp, 200, memory_object(ctx->machine));
}

API_HANDLER(api_patch_vm_memory)
{
	struct machine *m = ctx->machine;
	struct api_memory_patch p;
	struct errmsg err = { "" };
	struct pager_stats ps;
	int ret = api_parse_memory_patch(req->body, req->body_len, &p, &err);

	/* what the VM lacks first, so that nothing is half done for it */
	if (!ret && p.has_balloon_target && !machine_balloon(m))
		ret = errmsg_set(&err, -ENOENT, "this VM has no balloon: start "
				 "it with --balloon");
	if (!ret && p.has_mem_local && machine_pager_stats(m, &ps))
		ret = errmsg_set(&err, -ENOENT, "this VM has no pager: start it "
				 "with --mem-local to change mem_local later");
	if (!ret && p.has_balloon_target)
		ret = machine_set_balloon_target(m, p.balloon_target, &err);
	if (!ret && p.has_mem_local)
		ret = machine_set_mem_local(m, p.mem_local, &err);
	if (ret)
		api_reply_failure(resp, ret, &err);
	else
		api_reply_json(resp, 200, memory_object(m));
}

API_HANDLER(api_get_vm_memory_wss)
{
	struct wss_monitor *mon = machine_wss_monitor(ctx->machine);
	struct errmsg err = { "" };
	struct wss_point *pts;
	json_t *list;
	uint64_t n;
	double since;
	int ret = api_parse_since(req->since, &since, &err);

	if (ret) {
		api_reply_failure(resp, ret, &err);
		return;
	}
	if (!mon) {
		api_reply_error(resp, 409, "this VM has no WSS monitor: start it "
				"with --wss");
		return;
	}
	pts = malloc(API_WSS_POINTS_MAX * sizeof(*pts));
	list = json_array();
	n = pts ? wss_monitor_points(mon, since, pts, API_WSS_POINTS_MAX) : 0;
	for (uint64_t i = 0; list && i < n; i++)
		json_array_append_new(list, json_pack(
			"{s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			"time", pts[i].t,
			"wss_pages", (json_int_t)pts[i].wss_pages,
			"error_pages", (json_int_t)pts[i].error_pages,
			"written_pages", (json_int_t)pts[i].written_pages,
			"paged_in_pages", (json_int_t)pts[i].paged_in_pages,
			"sampled", (json_int_t)pts[i].sampled,
			"touched_sampled", (json_int_t)pts[i].touched_sampled,
			"estimator_cpu_ns", (json_int_t)pts[i].estimator_cpu_ns,
			"smoothed_pages", (json_int_t)pts[i].smoothed_pages,
			"population", (json_int_t)pts[i].population,
			"arm_stall_us", (json_int_t)(pts[i].arm_stall_ns / 1000)));
	free(pts);
	api_reply_json(resp, 200, pts && list ?
		       json_pack("{s:i, s:o}", "page_size", (json_int_t)PAGE_SIZE,
				 "points", list) : (json_decref(list), NULL));
}

API_HANDLER(api_get_vm_memory_pager)
{
	struct pager_stats st;
	char store[256];
	json_t *hist, *o;

	(void)req;
	if (machine_pager_stats(ctx->machine, &st)) {
		api_reply_error(resp, 409, "this VM has no pager: start it with "
				"--mem-local");
		return;
	}
	machine_store_describe(ctx->machine, store, sizeof(store));
	hist = json_array();
	/* bucket i holds faults under 2^(i+1) us */
	for (unsigned b = 0; hist && b < PAGER_HIST_BUCKETS; b++)
		json_array_append_new(hist, json_pack("{s:I, s:I}",
			"le_us", (json_int_t)(2ull << b),
			"count", (json_int_t)st.fault_hist[b]));
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"store", store,
		"ram_pages", (json_int_t)st.ram_pages,
		"limit_pages", (json_int_t)st.limit_pages,
		"resident_pages", (json_int_t)st.resident,
		"remote_pages", (json_int_t)st.remote,
		"zero_pages", (json_int_t)st.zero,
		"failed_pages", (json_int_t)st.failed,
		"faults", (json_int_t)st.faults,
		"fetches", (json_int_t)st.fetches,
		"fetched_pages", (json_int_t)st.fetched_pages,
		"prefetched", (json_int_t)st.prefetched,
		"prefetch_hits", (json_int_t)st.prefetch_hits,
		"evictions", (json_int_t)st.evictions,
		"cancelled", (json_int_t)st.cancelled,
		"clean_evictions", (json_int_t)st.clean_evictions,
		"puts", (json_int_t)st.puts,
		"bytes_in", (json_int_t)st.bytes_in,
		"bytes_out", (json_int_t)st.bytes_out,
		"unreachable", (json_int_t)st.unreachable,
		"discarded", (json_int_t)st.discarded,
		"under_replicated", (json_int_t)st.under_replicated,
		"stored_pages", (json_int_t)st.store_pages,
		"lost_pages", (json_int_t)st.store_lost,
		"prefetch_window", (json_int_t)st.prefetch_window);
	if (o)
		json_object_set_new(o, "fault_latency", json_pack(
			"{s:I, s:I, s:I, s:o}",
			"p50_us", (json_int_t)st.fault_p50_us,
			"p90_us", (json_int_t)st.fault_p90_us,
			"p99_us", (json_int_t)st.fault_p99_us,
			"histogram", hist));
	else
		json_decref(hist);
	api_reply_json(resp, 200, o);
}
