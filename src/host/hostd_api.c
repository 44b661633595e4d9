// SPDX-License-Identifier: MIT
/*
 * hostd's API (docs/hostd-api.yaml): the route table is
 * hostd_request.c's, the handlers are here.  They work on the table
 * under its lock and never talk to a VM (hostd.h): POST starts a
 * process, DELETE marks the VM for the balancer thread to stop.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "host/hostd_internal.h"

#define HANDLER(name)                                                       \
	static void name(struct hostd *h, const struct api_request *req,    \
			 const char *vm_name, struct api_response *resp)

static const char *lever(const struct hostd_vm *vm)
{
	if (!vm->bal.prev.seen)
		return NULL;
	if (vm->bal.out.use_balloon && vm->bal.out.use_paging)
		return "balloon+paging";
	return vm->bal.out.use_balloon ? "balloon" :
	       vm->bal.out.use_paging ? "paging" : "none";
}

/* A size known only once observed: null before. */
static json_t *observed(const struct hostd_vm *vm, uint64_t v)
{
	return vm->bal.prev.seen ? json_integer((json_int_t)v) : json_null();
}

static json_t *vm_json(const struct hostd *h, const struct hostd_vm *vm)
{
	const struct balancer_vm *b = &vm->bal;
	bool live = hostd_vm_live(vm->state);

	return json_pack("{s:s, s:s, s:s?, s:i, s:b, s:s, s:I, s:f, s:I, s:I, "
			 "s:s, s:o, s:o, s:o, s:o, s:o, s:s?, s:o, s:o, s:s?, "
			 "s:f}",
		"name", vm->name,
		"state", hostd_vm_state_name(vm->state),
		"why", vm->why[0] ? vm->why : NULL,
		"pid", (int)vm->pid,
		"adopted", vm->adopted,
		"socket", vm->socket,
		"ram", (json_int_t)vm->ram,
		"shares", vm->set.shares,
		"min", (json_int_t)vm->set.min,
		"max", (json_int_t)vm->set.max,
		"policy", balancer_policy_name(vm->set.policy),
		"resident", observed(vm, b->in.resident),
		"remote", observed(vm, b->in.remote),
		"wss", b->prev.seen && b->in.wss_valid ?
			json_integer((json_int_t)b->in.wss_estimate) : json_null(),
		"wss_error", b->prev.seen && b->in.wss_valid ?
			json_integer((json_int_t)b->in.wss_error) : json_null(),
		"target", live ? observed(vm, b->out.target) : json_null(),
		"lever", live ? lever(vm) : NULL,
		"balloon_target", observed(vm, b->in.balloon_target),
		"mem_local", observed(vm, b->in.mem_local),
		"reason", live && b->prev.seen ? b->out.reason : NULL,
		"fault_rate", b->out.fault_rate);
	(void)h;
}

static void reply_vm(struct hostd *h, const struct hostd_vm *vm,
		     unsigned status, struct api_response *resp)
{
	api_reply_json(resp, status, vm_json(h, vm));
}

HANDLER(get_vms)
{
	uint64_t committed = 0, resident = 0, targets = 0;
	json_t *vms = json_array();

	(void)req;
	(void)vm_name;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nvms; i++) {
		const struct hostd_vm *vm = h->vms[i];

		json_array_append_new(vms, vm_json(h, vm));
		if (!hostd_vm_live(vm->state))
			continue;
		committed += vm->ram;
		resident += vm->bal.in.resident;
		targets += vm->bal.out.target;
	}
	api_reply_json(resp, 200, json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, "
					    "s:f, s:f, s:b, s:o}",
		"budget", (json_int_t)h->cfg.params.budget,
		"committed", (json_int_t)committed,
		"resident", (json_int_t)resident,
		"targets", (json_int_t)targets,
		"mins", (json_int_t)hostd_sum_of_mins(h, 0),
		"policy", balancer_policy_name(h->cfg.policy),
		"tau", h->cfg.params.tau,
		"period_s", h->cfg.period_s,
		"over_budget", h->last_decide == -ENOSPC,
		"vms", vms));
	pthread_mutex_unlock(&h->lock);
}

HANDLER(get_vm)
{
	struct hostd_vm *vm;

	(void)req;
	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, vm_name);
	if (vm)
		reply_vm(h, vm, 200, resp);
	else
		api_reply_error(resp, 404, "no VM named %s", vm_name);
	pthread_mutex_unlock(&h->lock);
}

/* 409 unless the budget holds the minimums with @extra more. */
static bool budget_holds(struct hostd *h, uint64_t less, uint64_t extra,
			 struct api_response *resp)
{
	uint64_t mins = hostd_sum_of_mins(h, extra) - less;

	if (mins <= h->cfg.params.budget)
		return true;
	api_reply_error(resp, 409, "the VMs' minimums would be %llu MiB, over "
			"hostd's budget of %llu MiB: lower a min, or stop a VM",
			(unsigned long long)((mins + (1 << 20) - 1) >> 20),
			(unsigned long long)(h->cfg.params.budget >> 20));
	return false;
}

/* Reserves the name: a starting entry, or false with the reply made. */
static bool reserve(struct hostd *h, const struct machine_config *cfg,
		    const struct hostd_settings *set, struct api_response *resp)
{
	uint64_t min = hostd_effective_min(set, cfg->mem_size,
					   h->cfg.params.min_default);
	struct hostd_vm *vm;
	bool ok = false;

	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, cfg->name);
	if (vm)
		api_reply_error(resp, 409, "a VM named %s exists (%s)%s", cfg->name,
				hostd_vm_state_name(vm->state),
				hostd_vm_live(vm->state) ? "" :
				": DELETE /vms/NAME forgets it");
	else if (budget_holds(h, 0, min, resp)) {
		vm = hostd_vm_add(h, cfg->name, set);
		if (!vm)
			api_reply_error(resp, 503, "out of memory");
		else {
			vm->ram = cfg->mem_size;
			ok = true;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return ok;
}

HANDLER(post_vms)
{
	struct machine_config cfg;
	struct hostd_settings set;
	struct errmsg err = { "" };
	struct hostd_vm *vm;
	pid_t pid = 0;
	int ret;

	(void)vm_name;
	ret = hostd_parse_vm_request(req->body, req->body_len, h->cfg.policy,
				     &cfg, &set, &err);
	if (!ret)
		ret = hostd_prepare_config(&cfg, h->runtime_dir, h->swap, &err);
	if (ret) {
		api_reply_error(resp, ret == -ENOMEM ? 503 : 400, "%s", err.text);
		machine_config_release(&cfg);
		return;
	}
	if (!reserve(h, &cfg, &set, resp)) {
		machine_config_release(&cfg);
		return;
	}
	ret = hostd_save_settings(h, cfg.name, &set, &err);
	if (!ret)
		ret = hostd_vm_spawn(h, &cfg, &pid, &err);
	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, cfg.name);
	if (ret) {
		hostd_forget_files(h, cfg.name);
		hostd_vm_remove(h, vm);
		api_reply_error(resp, 500, "%s", err.text);
	} else {
		vm->pid = pid;
		vm->child = true;
		reply_vm(h, vm, 201, resp);
	}
	pthread_mutex_unlock(&h->lock);
	machine_config_release(&cfg);
}

HANDLER(patch_vm)
{
	struct errmsg err = { "" };
	struct hostd_settings set;
	struct hostd_vm *vm;
	uint64_t old_min, new_min;
	bool save = false;

	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, vm_name);
	if (!vm) {
		api_reply_error(resp, 404, "no VM named %s", vm_name);
		goto out;
	}
	set = vm->set;
	if (hostd_parse_settings(req->body, req->body_len, vm->ram, &set, &err)) {
		api_reply_error(resp, 400, "%s", err.text);
		goto out;
	}
	old_min = hostd_vm_live(vm->state) ?
		  hostd_effective_min(&vm->set, vm->ram, h->cfg.params.min_default) : 0;
	new_min = hostd_vm_live(vm->state) ?
		  hostd_effective_min(&set, vm->ram, h->cfg.params.min_default) : 0;
	if (!budget_holds(h, old_min, new_min, resp))
		goto out;
	vm->set = set;
	save = true;
	reply_vm(h, vm, 200, resp);
out:
	pthread_mutex_unlock(&h->lock);
	/* a restarted hostd finds them; the reply stands if this fails
	 * (the settings hold until then) */
	if (save)
		hostd_save_settings(h, vm_name, &set, &err);
}

HANDLER(delete_vm)
{
	struct hostd_vm *vm;

	(void)req;
	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, vm_name);
	if (!vm) {
		api_reply_error(resp, 404, "no VM named %s", vm_name);
	} else if (!hostd_vm_live(vm->state)) {
		hostd_forget_files(h, vm->name);
		api_reply_json(resp, 200, json_pack("{s:s, s:s}", "name", vm->name,
						    "state", "forgotten"));
		hostd_vm_remove(h, vm);
	} else {
		if (vm->state != HOSTD_VM_STOPPING) {
			vm->state = HOSTD_VM_STOPPING;
			vm->stop_step = 0;
		}
		reply_vm(h, vm, 202, resp);
	}
	pthread_mutex_unlock(&h->lock);
}

HANDLER(get_balancer_log)
{
	struct errmsg err = { "" };
	json_t *lines;
	double since;

	(void)vm_name;
	if (api_parse_since(req->since, &since, &err)) {
		api_reply_error(resp, 400, "%s", err.text);
		return;
	}
	lines = json_array();
	pthread_mutex_lock(&h->lock);
	for (size_t k = 0; k < h->ring_n; k++) {
		size_t i = (h->ring_next + HOSTD_LOG_RING - h->ring_n + k) %
			   HOSTD_LOG_RING;
		json_t *line;

		if (h->ring[i].t <= since)
			continue;
		line = json_loads(h->ring[i].text, 0, NULL);
		json_array_append_new(lines, line ? line :
				      json_string(h->ring[i].text));
	}
	pthread_mutex_unlock(&h->lock);
	api_reply_json(resp, 200, json_pack("{s:o}", "lines", lines));
}

void hostd_api_dispatch(void *opaque, const struct api_request *req,
			struct api_response *resp)
{
	static void (*const handlers[])(struct hostd *, const struct api_request *,
					const char *, struct api_response *) = {
		[HOSTD_GET_VMS] = get_vms, [HOSTD_POST_VMS] = post_vms,
		[HOSTD_GET_VM] = get_vm, [HOSTD_PATCH_VM] = patch_vm,
		[HOSTD_DELETE_VM] = delete_vm,
		[HOSTD_GET_BALANCER_LOG] = get_balancer_log,
	};
	const struct hostd_route *route;
	char name[MACHINE_NAME_MAX + 1];
	struct errmsg err = { "" };
	int ret;

	memset(resp, 0, sizeof(*resp));
	ret = hostd_route_match(req->method, req->path, &route, name, sizeof(name),
				resp->allow, sizeof(resp->allow), &err);
	if (ret) {
		api_reply_error(resp, ret == -EOPNOTSUPP ? 405 : 404, "%s", err.text);
		return;
	}
	if (route->id == HOSTD_GET_METRICS)
		hostd_api_metrics(opaque, resp);
	else
		handlers[route->id](opaque, req, name, resp);
}
