// SPDX-License-Identifier: MIT
/*
 * The balancer's I/O, see balancer.h: a VM's inputs read from its
 * control API, its levers set through it, and the decision log's lines.
 * A VM's replies are untrusted like any peer's: a field of the wrong
 * type or a size beyond its RAM is -EPROTO, and the VM counts as
 * unresponsive for the period.
 */
#include "host/balancer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_client.h"

static int get_json(const char *socket, const char *path, unsigned timeout_ms,
		    json_t **out, long *status, struct errmsg *err)
{
	struct api_client_reply r = { 0 };
	json_error_t jerr;
	int ret = api_client_request(socket, "GET", path, NULL, timeout_ms, &r,
				     err);

	if (ret)
		return ret;
	*status = r.status;
	*out = json_loadb(r.body, r.len, 0, &jerr);
	api_client_reply_free(&r);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return errmsg_set(err, -EPROTO, "GET %s: the reply is not a "
				  "JSON object", path);
	}
	return 0;
}

/* A byte count field: absent or null leaves @have false. */
static int size_field(json_t *o, const char *key, uint64_t limit,
		      bool *have, uint64_t *out, struct errmsg *err)
{
	json_t *v = json_object_get(o, key);

	if (have)
		*have = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > limit)
		return errmsg_set(err, -EPROTO, "the VM's \"%s\" is not a size "
				  "within its RAM", key);
	*out = (uint64_t)json_integer_value(v);
	if (have)
		*have = true;
	return 0;
}

static int read_memory(struct balancer_input *in, json_t *o,
		       struct errmsg *err)
{
	json_t *size = json_object_get(o, "size"), *wss, *balloon, *driver;
	uint64_t ram;
	bool have_resident;
	int ret;

	if (!json_is_integer(size) || json_integer_value(size) <= 0)
		return errmsg_set(err, -EPROTO, "the VM's memory has no size");
	ram = (uint64_t)json_integer_value(size);
	in->ram = ram;
	ret = size_field(o, "resident", ram, &have_resident, &in->resident, err);
	if (!ret && !have_resident)
		ret = size_field(o, "host_resident", ram, &have_resident,
				 &in->resident, err);
	if (!ret)
		ret = size_field(o, "remote", UINT64_MAX, NULL, &in->remote, err);
	if (!ret)
		ret = size_field(o, "mem_local", ram, &in->has_pager,
				 &in->mem_local, err);
	if (!ret)
		ret = size_field(o, "balloon_target", ram, &in->has_balloon,
				 &in->balloon_target, err);
	if (!ret)
		ret = size_field(o, "balloon_actual", ram, NULL,
				 &in->balloon_actual, err);
	if (ret)
		return ret;
	/* a VM from before driver_ok: its balloon is given the benefit */
	balloon = json_object_get(o, "balloon");
	driver = json_object_get(balloon, "driver_ok");
	in->balloon_driver = in->has_balloon && (!driver || json_is_true(driver));
	wss = json_object_get(o, "wss");
	in->wss_valid = false;
	if (json_is_object(wss)) {
		bool have_est, have_err;

		ret = size_field(wss, "estimate", ram, &have_est,
				 &in->wss_estimate, err);
		if (!ret)
			ret = size_field(wss, "error", ram, &have_err,
					 &in->wss_error, err);
		if (ret)
			return ret;
		in->wss_valid = have_est && have_err;
	}
	/* A VM from before host_resident: what the balloon left it is the
	 * most it can hold. */
	if (!have_resident)
		in->resident = ram - in->balloon_actual;
	return 0;
}

static int read_pager(struct balancer_input *in, const char *socket,
		      unsigned timeout_ms, struct errmsg *err)
{
	json_t *o = NULL, *faults;
	long status = 0;
	int ret;

	in->paged_in = 0;
	if (!in->has_pager)
		return 0;
	ret = get_json(socket, "/vm/memory/pager", timeout_ms, &o, &status,
		       err);
	if (ret)
		return ret;
	faults = json_object_get(o, "fetched_pages");
	if (status != 200 || !json_is_integer(faults) ||
	    json_integer_value(faults) < 0)
		ret = errmsg_set(err, -EPROTO, "GET /vm/memory/pager: status "
				 "%ld without fetched_pages", status);
	else
		in->paged_in = (uint64_t)json_integer_value(faults);
	json_decref(o);
	return ret;
}

int balancer_observe(struct balancer_vm *vm, const char *socket,
		     unsigned timeout_ms, struct errmsg *err)
{
	struct balancer_input in = { 0 };
	json_t *o = NULL;
	long status = 0;
	int ret;

	vm->in.responsive = false;
	ret = get_json(socket, "/vm/memory", timeout_ms, &o, &status, err);
	if (!ret && status != 200)
		ret = errmsg_set(err, -EPROTO, "GET /vm/memory: status %ld",
				 status);
	if (!ret)
		ret = read_memory(&in, o, err);
	json_decref(o);
	if (!ret)
		ret = read_pager(&in, socket, timeout_ms, err);
	if (ret)
		return ret;
	in.responsive = true;
	vm->in = in;
	return 0;
}

int balancer_apply(struct balancer_vm *vm, const char *socket,
		   unsigned timeout_ms, struct errmsg *err)
{
	struct api_client_reply r = { 0 };
	json_t *patch = json_object();
	char *body;
	int ret;

	if (!patch)
		return errmsg_set(err, -ENOMEM, "out of memory");
	if (vm->in.has_balloon && vm->out.balloon_target != vm->in.balloon_target)
		json_object_set_new(patch, "balloon_target",
				    json_integer((json_int_t)vm->out.balloon_target));
	if (vm->in.has_pager && vm->out.mem_local != vm->in.mem_local)
		json_object_set_new(patch, "mem_local",
				    json_integer((json_int_t)vm->out.mem_local));
	if (!json_object_size(patch)) {
		json_decref(patch);
		return 0;
	}
	body = json_dumps(patch, JSON_COMPACT);
	json_decref(patch);
	if (!body)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = api_client_request(socket, "PATCH", "/vm/memory", body,
				 timeout_ms, &r, err);
	free(body);
	if (!ret && r.status != 200)
		ret = errmsg_set(err, -EPROTO, "PATCH /vm/memory: %ld %.200s",
				 r.status, r.body);
	api_client_reply_free(&r);
	return ret;
}

static json_t *vm_log_object(const struct balancer_vm *vm)
{
	const struct balancer_input *in = &vm->in;

	return json_pack("{s:s?, s:s?, s:f, s:b, s:I, s:o, s:I, s:I, s:f, s:I,"
			 " s:s?, s:I, s:s?, s:o, s:o, s:I, s:I}",
		"vm", vm->name,
		"policy", balancer_policy_name(vm->policy),
		"shares", vm->shares,
		"responsive", in->responsive,
		"ram", (json_int_t)in->ram,
		"wss", in->wss_valid ?
		       json_pack("{s:I, s:I}", "estimate",
				 (json_int_t)in->wss_estimate, "error",
				 (json_int_t)in->wss_error) : json_null(),
		"resident", (json_int_t)in->resident,
		"remote", (json_int_t)in->remote,
		"fault_rate", vm->out.fault_rate,
		"active", (json_int_t)vm->out.active,
		"active_from", vm->out.active_from,
		"target", (json_int_t)vm->out.target,
		"reason", vm->out.reason,
		"balloon_target", vm->out.use_balloon ?
			json_integer((json_int_t)vm->out.balloon_target) :
			json_null(),
		"mem_local", vm->out.use_paging ?
			json_integer((json_int_t)vm->out.mem_local) :
			json_null(),
		"balloon_actual", (json_int_t)in->balloon_actual,
		"min", (json_int_t)vm->min);
}

char *balancer_log_line(const struct balancer_params *p,
			const struct balancer_vm *vms, size_t n, double now)
{
	json_t *list = json_array(), *line;
	uint64_t sum = 0;
	char *text;

	for (size_t i = 0; list && i < n; i++) {
		json_array_append_new(list, vm_log_object(&vms[i]));
		sum += vms[i].out.target;
	}
	line = json_pack("{s:f, s:I, s:I, s:o*}", "t", now,
			 "budget", (json_int_t)p->budget,
			 "targets", (json_int_t)sum, "vms", list);
	if (!line)
		return NULL;
	text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	return text;
}
