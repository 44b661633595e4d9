/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of hostd (no I/O but file checks, no threads): what a
 * client's request asks for, checked, and what hostd adds to a VM's
 * config.  hostd_api.c calls these; tests/unit/test_hostd.c drives them
 * without a daemon.
 *
 * A VM request (POST /vms) is one JSON object: the keys of a machine
 * config (machine/config.h, `rackvm run`'s flags) plus hostd's settings
 * of the VM, "shares", "min", "max" and "policy" (those four are also
 * what PATCH /vms/NAME takes).  Everything in it is untrusted: any
 * mistake is -EINVAL with @err saying which key and what is valid.
 */
#ifndef RACKVM_HOST_HOSTD_REQUEST_H
#define RACKVM_HOST_HOSTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/balancer.h"
#include "machine/config.h"
#include "util/errmsg.h"

#define HOSTD_DEFAULT_SHARES 1000.0
#define HOSTD_MAX_SHARES 1e6
/* The name of hostd's own socket in the runtime directory (hostd.sock):
 * no VM may take it. */
#define HOSTD_RESERVED_NAME "hostd"

/* hostd's settings of one VM (see balancer.h's struct balancer_vm). */
struct hostd_settings {
	double shares;
	uint64_t min, max;		/* 0: the balancer's default, RAM */
	enum balancer_policy policy;
};

/* What hostd's routes are; a path parameter is "{name}" at the end. */
enum hostd_route_id {
	HOSTD_GET_VMS, HOSTD_POST_VMS, HOSTD_GET_VM, HOSTD_PATCH_VM,
	HOSTD_DELETE_VM, HOSTD_GET_METRICS, HOSTD_GET_BALANCER_LOG,
};

struct hostd_route {
	const char *method;
	const char *path;		/* as docs/hostd-api.yaml writes it */
	enum hostd_route_id id;
};

/* The route table, @n entries (`rackvm ctl --host routes` prints it). */
const struct hostd_route *hostd_routes(size_t *n);

/*
 * Finds @method @path: 0 with *@route and, for a "{name}" route, the VM's
 * name copied into @name (@name_len >= MACHINE_NAME_MAX + 1); -ENOENT
 * (no such path: 404) or -EOPNOTSUPP (the path exists, not the method:
 * 405, @allow lists the methods it takes) with @err saying so.  A name
 * that is not a valid VM name is -ENOENT.
 */
int hostd_route_match(const char *method, const char *path,
		      const struct hostd_route **route, char *name,
		      size_t name_len, char *allow, size_t allow_len,
		      struct errmsg *err);

/* A VM name as machine_config_validate() takes it, not the reserved one. */
bool hostd_name_valid(const char *name);

/* Settings as for a new VM: HOSTD_DEFAULT_SHARES, min and max 0, @policy. */
void hostd_settings_init(struct hostd_settings *s, enum balancer_policy policy);

/*
 * POST /vms: @body into @cfg (initialised here; release it whatever the
 * result) and @set (starting from hostd_settings_init(@default_policy)).
 * Checked beyond machine_config_validate(): "name" is given and valid,
 * the kernel, initrd and disk files can be read, the settings fit the
 * VM's RAM (min <= max <= mem).
 */
int hostd_parse_vm_request(const char *body, size_t len,
			   enum balancer_policy default_policy,
			   struct machine_config *cfg,
			   struct hostd_settings *set, struct errmsg *err);

/*
 * PATCH /vms/NAME (and a NAME.settings file): the keys present in @body
 * change @set; the result must fit @ram (bytes; 0: not known, unchecked).
 * On error @set is unchanged.
 */
int hostd_parse_settings(const char *body, size_t len, uint64_t ram,
			 struct hostd_settings *set, struct errmsg *err);
/* @set as JSON text (what NAME.settings holds), malloc'ed; NULL: -ENOMEM. */
char *hostd_settings_to_json(const struct hostd_settings *set);

/* The memory a VM of @ram with @set is guaranteed: its min, or the
 * balancer's @min_default (no more than its RAM) when it sets none. */
uint64_t hostd_effective_min(const struct hostd_settings *set, uint64_t ram,
			     uint64_t min_default);

/*
 * What hostd adds to the config of a VM it starts, so its levers work:
 * the API socket @runtime_dir/NAME.sock (always: hostd's), the console
 * to @runtime_dir/NAME.console when it was stdio, a balloon with free
 * page reporting and deflate-on-oom unless it has one (and a virtio slot
 * is free), the WSS monitor unless on, and with @swap (file:DIR,
 * memd:..., memcached:...) a pager with mem_local its RAM, its pages in
 * DIR/NAME.pages for file:DIR, unless it has one.  -ENAMETOOLONG,
 * -ENOMEM, -EINVAL (a bad @swap) with @err.
 */
int hostd_prepare_config(struct machine_config *cfg, const char *runtime_dir,
			 const char *swap, struct errmsg *err);

/* -EINVAL unless @swap is file:DIR, memd:... or memcached:... */
int hostd_swap_check(const char *swap, struct errmsg *err);

#endif
