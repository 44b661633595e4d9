// SPDX-License-Identifier: MIT
/* hostd's pure request handling, see hostd_request.h. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_json.h"
#include "host/hostd_request.h"

static const struct hostd_route routes[] = {
	{ "GET", "/vms", HOSTD_GET_VMS },
	{ "POST", "/vms", HOSTD_POST_VMS },
	{ "GET", "/vms/{name}", HOSTD_GET_VM },
	{ "PATCH", "/vms/{name}", HOSTD_PATCH_VM },
	{ "DELETE", "/vms/{name}", HOSTD_DELETE_VM },
	{ "GET", "/metrics", HOSTD_GET_METRICS },
	{ "GET", "/balancer/log", HOSTD_GET_BALANCER_LOG },
};

static const char *const settings_keys[] = {
	"shares", "min", "max", "policy", NULL
};

const struct hostd_route *hostd_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

bool hostd_name_valid(const char *name)
{
	return machine_name_valid(name) && strcmp(name, HOSTD_RESERVED_NAME);
}

/* @path against @pattern; a trailing "{name}" takes one path segment. */
static bool path_matches(const char *pattern, const char *path, char *name,
			 size_t name_len)
{
	const char *param = strstr(pattern, "{name}");
	size_t prefix = param ? (size_t)(param - pattern) : 0;
	const char *rest;

	if (!param)
		return !strcmp(pattern, path);
	if (strncmp(pattern, path, prefix))
		return false;
	rest = path + prefix;
	if (!*rest || strchr(rest, '/') || strlen(rest) >= name_len)
		return false;
	snprintf(name, name_len, "%s", rest);
	return true;
}

int hostd_route_match(const char *method, const char *path,
		      const struct hostd_route **route, char *name,
		      size_t name_len, char *allow, size_t allow_len,
		      struct errmsg *err)
{
	size_t n = sizeof(routes) / sizeof(routes[0]), used = 0;
	char found[MACHINE_NAME_MAX + 2] = "";

	allow[0] = 0;
	name[0] = 0;
	for (size_t i = 0; i < n; i++) {
		if (!path_matches(routes[i].path, path, found, sizeof(found)))
			continue;
		if (found[0] && !hostd_name_valid(found))
			break;
		if (!strcmp(routes[i].method, method)) {
			snprintf(name, name_len, "%s", found);
			*route = &routes[i];
			return 0;
		}
		used += (size_t)snprintf(allow + used, allow_len - used, "%s%s",
					 used ? ", " : "", routes[i].method);
		if (used >= allow_len)
			used = allow_len - 1;
	}
	if (allow[0])
		/* %.16s: the method is the client's */
		return errmsg_set(err, -EOPNOTSUPP, "%.16s is not allowed on %.80s "
				  "(allowed: %s)", method, path, allow);
	if (found[0])
		return errmsg_set(err, -ENOENT, "no such VM: '%.80s' is not a VM "
				  "name", found);
	return errmsg_set(err, -ENOENT, "no such resource: %.80s (see "
			  "docs/hostd-api.yaml)", path);
}

void hostd_settings_init(struct hostd_settings *s, enum balancer_policy policy)
{
	*s = (struct hostd_settings){ .shares = HOSTD_DEFAULT_SHARES,
				      .policy = policy };
}

uint64_t hostd_effective_min(const struct hostd_settings *set, uint64_t ram,
			     uint64_t min_default)
{
	if (set->min)
		return set->min;
	return min_default < ram ? min_default : ram;
}

/* The settings keys of @o (the others left alone) into @set. */
static int settings_from(json_t *o, uint64_t ram, struct hostd_settings *set,
			 struct errmsg *err)
{
	struct hostd_settings s = *set;
	json_t *v;
	uint64_t max;

	if ((v = json_object_get(o, "shares"))) {
		if (!json_is_number(v) || !(json_number_value(v) > 0) ||
		    json_number_value(v) > HOSTD_MAX_SHARES)
			return errmsg_set(err, -EINVAL, "invalid \"shares\": give a "
					  "number above 0, at most %.0f",
					  HOSTD_MAX_SHARES);
		s.shares = json_number_value(v);
	}
	if ((v = json_object_get(o, "min")) &&
	    api_json_size(v, "min", &s.min, err))
		return -EINVAL;
	if ((v = json_object_get(o, "max")) &&
	    api_json_size(v, "max", &s.max, err))
		return -EINVAL;
	if ((v = json_object_get(o, "policy")) &&
	    (!json_is_string(v) ||
	     balancer_policy_parse(json_string_value(v), &s.policy)))
		return errmsg_set(err, -EINVAL, "invalid \"policy\": give both, "
				  "balloon, paging, static or none");
	if (s.max && s.max < MACHINE_MIN_LOCAL_BYTES)
		return errmsg_set(err, -EINVAL, "invalid \"max\": at least 4M "
				  "(or 0: the VM's RAM)");
	max = s.max ? s.max : ram;
	if (ram && s.max > ram)
		return errmsg_set(err, -EINVAL, "\"max\" (%llu bytes) is more than "
				  "the VM's RAM (%llu bytes)",
				  (unsigned long long)s.max, (unsigned long long)ram);
	if (s.min > max && (ram || s.max))
		return errmsg_set(err, -EINVAL, "\"min\" (%llu bytes) is more than "
				  "the VM's %s (%llu bytes)",
				  (unsigned long long)s.min, s.max ? "max" : "RAM",
				  (unsigned long long)max);
	*set = s;
	return 0;
}

int hostd_parse_settings(const char *body, size_t len, uint64_t ram,
			 struct hostd_settings *set, struct errmsg *err)
{
	json_t *o;
	int ret = api_json_object(body, len, false, &o, err);

	if (!ret)
		ret = api_json_known_keys(o, settings_keys, err);
	if (!ret)
		ret = settings_from(o, ram, set, err);
	json_decref(o);
	return ret;
}

char *hostd_settings_to_json(const struct hostd_settings *set)
{
	json_t *o = json_pack("{s:f, s:I, s:I, s:s}", "shares", set->shares,
			      "min", (json_int_t)set->min,
			      "max", (json_int_t)set->max,
			      "policy", balancer_policy_name(set->policy));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* A file the VM will open must be readable now: a typo is the client's
 * 400, not a VM that dies at start. */
static int readable(const char *key, const char *path, struct errmsg *err)
{
	if (!path || !access(path, R_OK))
		return 0;
	return errmsg_set(err, -EINVAL, "\"%s\": cannot read %.200s: %s", key,
			  path, strerror(errno));
}

static int check_files(const struct machine_config *c, struct errmsg *err)
{
	int ret = readable("kernel", c->kernel, err);

	if (!ret)
		ret = readable("initrd", c->initrd, err);
	for (unsigned i = 0; !ret && i < c->ndisks; i++)
		ret = readable("disks", c->disks[i].path, err);
	return ret;
}

int hostd_parse_vm_request(const char *body, size_t len,
			   enum balancer_policy default_policy,
			   struct machine_config *cfg,
			   struct hostd_settings *set, struct errmsg *err)
{
	json_t *o, *settings = NULL;
	char *text = NULL;
	int ret;

	machine_config_init(cfg);
	hostd_settings_init(set, default_policy);
	ret = api_json_object(body, len, false, &o, err);
	if (ret)
		return ret;
	/* hostd's keys apart, the rest is the machine's */
	settings = json_object();
	for (unsigned i = 0; settings && settings_keys[i]; i++) {
		json_t *v = json_object_get(o, settings_keys[i]);

		if (v) {
			json_object_set(settings, settings_keys[i], v);
			json_object_del(o, settings_keys[i]);
		}
	}
	text = settings ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!text) {
		ret = errmsg_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = machine_config_from_json(cfg, text, strlen(text), err);
	if (ret)
		goto out;
	if (!cfg->name) {
		ret = errmsg_set(err, -EINVAL, "\"name\" is missing: every VM of "
				 "hostd has one (letters, digits, '.', '_', '-')");
		goto out;
	}
	if (!strcmp(cfg->name, HOSTD_RESERVED_NAME)) {
		ret = errmsg_set(err, -EINVAL, "\"name\": %s is hostd's own "
				 "(its socket): choose another", cfg->name);
		goto out;
	}
	ret = check_files(cfg, err);
	if (!ret)
		ret = settings_from(settings, cfg->mem_size, set, err);
out:
	free(text);
	json_decref(settings);
	json_decref(o);
	return ret;
}

int hostd_swap_check(const char *swap, struct errmsg *err)
{
	if (!strncmp(swap, "file:", 5) && swap[5])
		return 0;
	if ((!strncmp(swap, "memd:", 5) && swap[5]) ||
	    (!strncmp(swap, "memcached:", 10) && swap[10]))
		return 0;
	return errmsg_set(err, -EINVAL, "invalid --swap '%s': give file:DIR, "
			  "memd:HOST:PORT[,...] or memcached:HOST:PORT[,...]",
			  swap);
}

/* @c->*field = @dir/@name@suffix. */
static int runtime_path(struct machine_config *c, const char **field,
			const char *dir, const char *suffix, struct errmsg *err)
{
	char path[512];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s%s", dir, c->name,
			     suffix) >= sizeof(path))
		return errmsg_set(err, -ENAMETOOLONG, "the path %s/%s%s is too long",
				  dir, c->name, suffix);
	if (machine_config_set_string(c, field, path))
		return errmsg_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int add_pager(struct machine_config *c, const char *swap,
		     struct errmsg *err)
{
	int ret = hostd_swap_check(swap, err);

	if (ret)
		return ret;
	c->pager.enabled = true;
	c->pager.local_bytes = c->mem_size;
	if (strncmp(swap, "file:", 5)) {
		if (machine_config_set_string(c, &c->pager.backend, swap))
			return errmsg_set(err, -ENOMEM, "out of memory");
		return 0;
	}
	/* a file of its own per VM: file:DIR/NAME.pages */
	ret = runtime_path(c, &c->pager.backend, swap, ".pages", err);
	if (ret)
		return ret;
	return 0;
}

int hostd_prepare_config(struct machine_config *cfg, const char *runtime_dir,
			 const char *swap, struct errmsg *err)
{
	int ret = runtime_path(cfg, &cfg->api_socket, runtime_dir, ".sock", err);

	if (!ret && !strcmp(cfg->console, "stdio"))
		ret = runtime_path(cfg, &cfg->console, runtime_dir, ".console", err);
	if (ret)
		return ret;
	if (!cfg->balloon &&
	    machine_config_virtio_count(cfg) < VIRTIO_MMIO_MAX_DEVICES) {
		cfg->balloon = true;
		cfg->balloon_opts.deflate_on_oom = true;
		cfg->balloon_opts.free_page_reporting = true;
	}
	cfg->wss.enabled = true;	/* with its interval (default 1 s) */
	if (swap && !cfg->pager.enabled)
		ret = add_pager(cfg, swap, err);
	if (!ret)
		ret = machine_config_validate(cfg, err);
	return ret;
}
