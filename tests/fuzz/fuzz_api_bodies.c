// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: what an API client sends.  The same bytes go to
 * every request-body parser the handlers use (PUT /vm/state, PATCH
 * /vm/memory, PUT /vm/snapshot, PUT /vm/migrate, the bodies PUT /vm/shutdown and /vm/stop
 * may carry), to the since= query parser, and as a path and a method to
 * the router.
 * Each either accepts with values in range or refuses with -EINVAL and
 * a message; the router answers 404 or 405 for anything but the routes
 * (those are not run: they need a machine).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "migrate/migrate.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void refused_or(int ret, const struct errmsg *err)
{
	if (ret)
		check(ret == -EINVAL && err->text[0] != 0);
}

static void route(const char *text)
{
	const struct api_route *routes;
	struct api_ctx ctx = { 0 };
	struct api_response r;
	struct api_request req = { .method = "GET", .path = text };
	const char *methods[] = { "GET", "PUT", "PATCH", "DELETE", text };
	size_t n;

	routes = api_routes(&n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(routes[i].path, text))
			return;	/* a real route: its handler needs a machine */
	for (unsigned m = 0; m < 5; m++) {
		req.method = methods[m];
		api_dispatch(&ctx, &req, &r);
		check(r.status == 404 && r.body && strstr(r.body, "\"error\""));
		api_response_free(&r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct api_memory_patch p;
	static struct api_snapshot_request snap;
	static struct migrate_options mig;
	struct errmsg err = { "" };
	bool running;
	char *text;
	double t;
	int ret;

	ret = api_parse_state(body, size, &running, &err);
	refused_or(ret, &err);
	ret = api_parse_memory_patch(body, size, &p, &err);
	refused_or(ret, &err);
	if (!ret)
		check(p.has_balloon_target || p.has_mem_local);
	refused_or(api_parse_empty(body, size, &err), &err);
	ret = api_parse_migrate(body, size, &mig, &err);
	if (ret)
		check((ret == -EINVAL || ret == -ENOTSUP) && err.text[0]);
	else
		check(!strncmp(mig.uri, "tcp:", 4));
	ret = api_parse_snapshot(body, size, &snap, &err);
	refused_or(ret, &err);
	if (!ret)
		check(snap.path[0] == '/' &&
		      strlen(snap.path) <= API_SNAPSHOT_PATH_MAX);

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	ret = api_parse_since(text, &t, &err);
	refused_or(ret, &err);
	if (!ret)
		check(isfinite(t) && (t >= 0 || !*text));
	route(text);
	free(text);
	return 0;
}
