// SPDX-License-Identifier: MIT
/*
 * The API's route table and dispatch, see api.h.  A path matches
 * exactly (no trailing slash, no parameters in the path): the API is
 * small and flat, so a table scan is all the routing it needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "api/api_handlers.h"

static const struct api_route routes[] = {
	{ "GET", "/vm", api_get_vm },
	{ "PUT", "/vm/state", api_put_vm_state },
	{ "PUT", "/vm/shutdown", api_put_vm_shutdown },
	{ "PUT", "/vm/stop", api_put_vm_stop },
	{ "PUT", "/vm/snapshot", api_put_vm_snapshot },
	{ "PUT", "/vm/migrate", api_put_vm_migrate },
	{ "GET", "/vm/migrate", api_get_vm_migrate },
	{ "GET", "/vm/vcpus", api_get_vm_vcpus },
	{ "GET", "/vm/memory", api_get_vm_memory },
	{ "PATCH", "/vm/memory", api_patch_vm_memory },
	{ "GET", "/vm/memory/wss", api_get_vm_memory_wss },
	{ "GET", "/vm/memory/pager", api_get_vm_memory_pager },
	{ "GET", "/vm/devices", api_get_vm_devices },
	{ "GET", "/metrics", api_get_metrics },
};

const struct api_route *api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

void api_dispatch(const struct api_ctx *ctx, const struct api_request *req,
		  struct api_response *resp)
{
	size_t n = sizeof(routes) / sizeof(routes[0]), used = 0;
	bool path_known = false;

	memset(resp, 0, sizeof(*resp));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(routes[i].path, req->path))
			continue;
		if (!strcmp(routes[i].method, req->method)) {
			routes[i].fn(ctx, req, resp);
			return;
		}
		path_known = true;
		used += (size_t)snprintf(resp->allow + used,
					 sizeof(resp->allow) - used, "%s%s",
					 used ? ", " : "", routes[i].method);
	}
	if (path_known)
		/* %.16s: the method is the client's */
		api_reply_error(resp, 405, "%.16s is not allowed on %s (allowed: %s)",
				req->method, req->path, resp->allow);
	else
		api_reply_error(resp, 404, "no such resource: %.64s (see "
				"docs/api.yaml)", req->path);
}

void api_response_free(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}
