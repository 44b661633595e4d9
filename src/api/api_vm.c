// SPDX-License-Identifier: MIT
/*
 * The VM resource: GET /vm, the lifecycle (PUT /vm/state, /vm/shutdown,
 * /vm/stop) and GET /vm/vcpus.  machine.h's state machine decides what
 * is legal; an illegal request is a 409 naming the state, never a
 * change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_handlers.h"
#include "api/api_json.h"
#include "machine/machine.h"

int api_parse_state(const char *body, size_t len, bool *running,
		    struct errmsg *err)
{
	static const char *const keys[] = { "state", NULL };
	const char *s;
	json_t *o, *v;
	int ret = api_json_object(body, len, false, &o, err);

	if (!ret)
		ret = api_json_known_keys(o, keys, err);
	if (ret)
		goto out;
	v = json_object_get(o, "state");
	s = json_string_value(v);
	if (s && (!strcmp(s, "running") || !strcmp(s, "paused")))
		*running = !strcmp(s, "running");
	else
		ret = errmsg_set(err, -EINVAL, "\"state\" must be \"running\" or "
				 "\"paused\"");
out:
	json_decref(o);
	return ret;
}

static json_t *state_object(struct machine *m)
{
	return json_pack("{s:s}", "state",
			 machine_state_name(machine_state(m)));
}

/* The reply for a lifecycle call that returned @ret. */
static void reply_transition(const struct api_ctx *ctx, int ret,
			     struct api_response *resp)
{
	const char *state = machine_state_name(machine_state(ctx->machine));

	if (ret == -EBUSY)
		api_reply_error(resp, 409, "not possible while the VM is %s", state);
	else if (ret)
		api_reply_failure(resp, ret, NULL);
	else
		api_reply_json(resp, 200, state_object(ctx->machine));
}

API_HANDLER(api_get_vm)
{
	struct machine *m = ctx->machine;
	char *text = machine_config_to_json(machine_config(m));
	json_t *config = text ? json_loads(text, 0, NULL) : NULL;

	(void)req;
	free(text);
	api_reply_json(resp, 200, json_pack("{s:s?, s:s, s:f, s:s, s:i, s:o*}",
		"name", ctx->name,
		"state", machine_state_name(machine_state(m)),
		"uptime_seconds", (double)machine_uptime_ns(m) / 1e9,
		"version", ctx->version ? ctx->version : "",
		"vcpus", (json_int_t)machine_ncpus(m),
		"config", config));
}

API_HANDLER(api_put_vm_state)
{
	struct machine *m = ctx->machine;
	struct errmsg err = { "" };
	enum machine_state now;
	bool running;
	int ret = api_parse_state(req->body, req->body_len, &running, &err);

	if (ret) {
		api_reply_failure(resp, ret, &err);
		return;
	}
	/* PUT is idempotent: asking for the state the VM is in is no change */
	now = machine_state(m);
	if ((running && now == MACHINE_RUNNING) ||
	    (!running && now == MACHINE_PAUSED))
		ret = 0;
	else
		ret = running ? machine_resume(m) : machine_pause(m);
	reply_transition(ctx, ret, resp);
}

/* A lifecycle call without parameters: the body must be empty or {}. */
static void lifecycle(const struct api_ctx *ctx, const struct api_request *req,
		      struct api_response *resp, int (*call)(struct machine *))
{
	struct errmsg err = { "" };
	int ret = api_parse_empty(req->body, req->body_len, &err);

	if (ret)
		api_reply_failure(resp, ret, &err);
	else
		reply_transition(ctx, call(ctx->machine), resp);
}

/* a guest without ACPI has no power button to press: stop it */
static int shutdown_or_stop(struct machine *m)
{
	int ret = machine_request_shutdown(m);

	return ret == -ENOTSUP ? machine_stop(m) : ret;
}

API_HANDLER(api_put_vm_shutdown)
{
	lifecycle(ctx, req, resp, shutdown_or_stop);
}

API_HANDLER(api_put_vm_stop)
{
	lifecycle(ctx, req, resp, machine_stop);
}

int api_thread_cpu_ns(int tid, uint64_t *out)
{
	unsigned long long ns;
	char path[64];
	FILE *f;
	int n;

	if (tid <= 0)
		return -ENOENT;
	/* the first field: time spent on a CPU (guest mode included) */
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fscanf(f, "%llu", &ns);
	fclose(f);
	if (n != 1)
		return -EIO;
	*out = ns;
	return 0;
}

/* Exit counters by name; KVM reasons rackvm has no name for add up
 * under "other". */
static json_t *exits_object(const struct vcpu_stats *st, uint64_t *total)
{
	json_t *o = json_object();

	*total = 0;
	for (unsigned r = 0; o && r < VCPU_EXIT_REASONS; r++) {
		const char *name = kvm_exit_reason_name(r);
		json_t *prev;

		if (!st->exits[r])
			continue;
		*total += st->exits[r];
		prev = json_object_get(o, name);
		json_object_set_new(o, name, json_integer((json_int_t)(st->exits[r] +
			(prev ? (uint64_t)json_integer_value(prev) : 0))));
	}
	return o;
}

API_HANDLER(api_get_vm_vcpus)
{
	struct machine *m = ctx->machine;
	const char *state = machine_state_name(machine_state(m));
	json_t *list = json_array();

	(void)req;
	for (unsigned i = 0; list && i < machine_ncpus(m); i++) {
		struct vcpu_stats st;
		uint64_t total, cpu_ns;
		json_t *exits;

		if (machine_vcpu_stats(m, i, &st))
			continue;
		exits = exits_object(&st, &total);
		json_array_append_new(list, json_pack("{s:i, s:s, s:o, s:I, s:o*, s:I, s:I}",
			"id", (json_int_t)i, "state", state,
			/* null once the thread ended */
			"cpu_seconds", api_thread_cpu_ns(st.tid, &cpu_ns) ? json_null() :
				       json_real((double)cpu_ns / 1e9),
			"exits_total", (json_int_t)total, "exits", exits,
			"interrupted_runs", (json_int_t)st.eintr,
			"unclaimed_io", (json_int_t)st.io_unclaimed));
	}
	api_reply_json(resp, 200, list ? json_pack("{s:o}", "vcpus", list) : NULL);
}
