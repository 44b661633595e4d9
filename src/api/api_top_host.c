// SPDX-License-Identifier: MIT
/*
 * `rackvm top`'s view of rackvm hostd (api_top.h): its GET /vms (see
 * docs/hostd-api.yaml) read for the budget and each VM's target and
 * lever.  hostd's reply is untrusted like a VM's: what is not as
 * expected is left out.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api_client.h"
#include "api/api_top.h"

static int64_t size_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	       (int64_t)json_integer_value(v) : -1;
}

static void fill(struct top_table *t, json_t *vm)
{
	const char *name = json_string_value(json_object_get(vm, "name"));
	const char *lever = json_string_value(json_object_get(vm, "lever"));

	for (size_t i = 0; name && i < t->n; i++) {
		struct top_row *r = &t->rows[i];

		if (strcmp(r->name, name))
			continue;
		r->target = size_of(vm, "target");
		snprintf(r->lever, sizeof(r->lever), "%s", lever ? lever : "-");
		for (char *c = r->lever; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				*c = '?';
	}
}

void top_gather_host(const char *dir, struct top_table *t)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };
	char path[4096];
	json_t *o, *vm;
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, TOP_HOSTD_SOCKET) >=
	    sizeof(path) ||
	    api_client_request(path, "GET", "/vms", NULL, TOP_REQUEST_TIMEOUT_MS,
			       &reply, &err))
		return;
	o = reply.status == 200 ? json_loads(reply.body, 0, NULL) : NULL;
	api_client_reply_free(&reply);
	if (!json_is_object(o) || !json_is_array(json_object_get(o, "vms"))) {
		json_decref(o);
		return;
	}
	t->host = true;
	t->budget = size_of(o, "budget");
	t->committed = size_of(o, "committed");
	t->host_resident = size_of(o, "resident");
	json_array_foreach(json_object_get(o, "vms"), i, vm)
		fill(t, vm);
	json_decref(o);
}
