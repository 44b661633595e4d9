// SPDX-License-Identifier: MIT
/*
 * `rackvm ctl --host`: friendly commands over hostd's API
 * (docs/hostd-api.yaml).  hostd checks everything; this file maps words
 * to requests and replies to lines.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_client.h"
#include "api/api_top.h"
#include "cli/cli.h"
#include "host/hostd_request.h"

/* How long `stop` waits for the VM to be gone (hostd's steps take up to
 * twice its --stop-timeout). */
#define STOP_WAIT_S 60

/* A byte count as "128M", "-" for null. */
static const char *size(json_t *v, char *buf, size_t len)
{
	return top_size_text(json_is_number(v) ? (int64_t)json_number_value(v) : -1,
			     buf, len);
}

static void print_vms(const char *body)
{
	json_t *o = json_loads(body, 0, NULL), *vm;
	char b[5][16];
	size_t i;

	if (!json_is_object(o)) {
		fputs(body, stdout);
		json_decref(o);
		return;
	}
	printf("budget %s, committed %s, resident %s, minimums %s%s\n",
	       size(json_object_get(o, "budget"), b[0], 16),
	       size(json_object_get(o, "committed"), b[1], 16),
	       size(json_object_get(o, "resident"), b[2], 16),
	       size(json_object_get(o, "mins"), b[3], 16),
	       json_is_true(json_object_get(o, "over_budget")) ?
	       " (over the budget!)" : "");
	printf("%-16s %-12s %7s %8s %7s %7s %-14s %7s %-7s\n", "NAME", "STATE",
	       "RAM", "RESIDENT", "WSS", "TARGET", "LEVER", "SHARES", "POLICY");
	json_array_foreach(json_object_get(o, "vms"), i, vm) {
		const char *lever = json_string_value(json_object_get(vm, "lever"));
		const char *why = json_string_value(json_object_get(vm, "why"));

		printf("%-16.16s %-12.12s %7s %8s %7s %7s %-14s %7.0f %-7s%s%s\n",
		       json_string_value(json_object_get(vm, "name")),
		       json_string_value(json_object_get(vm, "state")),
		       size(json_object_get(vm, "ram"), b[0], 16),
		       size(json_object_get(vm, "resident"), b[1], 16),
		       size(json_object_get(vm, "wss"), b[2], 16),
		       size(json_object_get(vm, "target"), b[3], 16),
		       lever ? lever : "-",
		       json_number_value(json_object_get(vm, "shares")),
		       json_string_value(json_object_get(vm, "policy")),
		       why ? "  " : "", why ? why : "");
	}
	json_decref(o);
}

/* set NAME KEY=VALUE...: the PATCH body, NULL on bad usage (said). */
static char *settings_body(int argc, char **argv)
{
	json_t *o = json_object();
	char *text = NULL;

	for (int i = 0; o && i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		char key[16];

		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key)) {
			fprintf(stderr, "rackvm ctl: '%s': give KEY=VALUE (shares, min, "
				"max, policy)\n", argv[i]);
			json_decref(o);
			return NULL;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		/* shares is a number; sizes and the policy are strings hostd reads */
		json_object_set_new(o, key, !strcmp(key, "shares") ?
				    json_real(strtod(eq + 1, NULL)) :
				    json_string(eq + 1));
	}
	if (o)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* The contents of @path, NULL (said) if unreadable. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;

	if (!f) {
		perror(path);
		return NULL;
	}
	if (getdelim(&text, &len, 0, f) < 0) {
		free(text);
		text = strdup("");
	}
	fclose(f);
	return text;
}

struct host_request {
	const char *method;
	char path[128];
	char *body;
	bool table, wait_gone, text;
};

static int build(int argc, char **argv, struct host_request *r)
{
	const char *cmd = argv[0], *name = argc > 1 ? argv[1] : "";

	memset(r, 0, sizeof(*r));
	r->method = "GET";
	if (!strcmp(cmd, "vms") && argc == 1) {
		snprintf(r->path, sizeof(r->path), "/vms");
		r->table = true;
	} else if (!strcmp(cmd, "info") && argc == 2) {
		snprintf(r->path, sizeof(r->path), "/vms/%.64s", name);
	} else if (!strcmp(cmd, "start") && argc == 2) {
		r->method = "POST";
		snprintf(r->path, sizeof(r->path), "/vms");
		if (!(r->body = read_text(argv[1])))
			return -1;
	} else if (!strcmp(cmd, "stop") && argc == 2) {
		r->method = "DELETE";
		snprintf(r->path, sizeof(r->path), "/vms/%.64s", name);
		r->wait_gone = true;
	} else if (!strcmp(cmd, "set") && argc >= 3) {
		r->method = "PATCH";
		snprintf(r->path, sizeof(r->path), "/vms/%.64s", name);
		if (!(r->body = settings_body(argc - 2, argv + 2)))
			return -1;
	} else if (!strcmp(cmd, "metrics") && argc == 1) {
		snprintf(r->path, sizeof(r->path), "/metrics");
		r->text = true;
	} else if (!strcmp(cmd, "log") && argc <= 2) {
		snprintf(r->path, sizeof(r->path), "/balancer/log%s%.32s",
			 argc == 2 ? "?since=" : "", argc == 2 ? argv[1] : "");
		r->text = true;
	} else if (!strcmp(cmd, "raw") && (argc == 3 || argc == 4)) {
		r->method = argv[1];
		snprintf(r->path, sizeof(r->path), "%.127s", argv[2]);
		r->body = argc == 4 ? strdup(argv[3]) : NULL;
	} else {
		fprintf(stderr, "rackvm ctl --host: unknown command or wrong "
			"arguments: '%s' (see rackvm ctl --help)\n", cmd);
		return -1;
	}
	return 0;
}

/* After DELETE: polls until GET says 404. */
static int wait_gone(const char *socket, const char *path, const char *name)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };

	for (int i = 0; i < STOP_WAIT_S * 4; i++) {
		if (api_client_request(socket, "GET", path, NULL, CTL_TIMEOUT_MS,
				       &reply, &err)) {
			fprintf(stderr, "rackvm ctl: %s\n", err.text);
			return EXIT_HOST_ERROR;
		}
		if (reply.status == 404) {
			api_client_reply_free(&reply);
			printf("%s: stopped\n", name);
			return 0;
		}
		api_client_reply_free(&reply);
		usleep(250000);
	}
	fprintf(stderr, "rackvm ctl: %s is still stopping after %d s\n", name,
		STOP_WAIT_S);
	return EXIT_REFUSED;
}

static void print_routes(void)
{
	size_t n;
	const struct hostd_route *routes = hostd_routes(&n);

	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", routes[i].method, routes[i].path);
}

int ctl_host(int argc, char **argv, const char *socket, bool json)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };
	struct host_request r;
	char path[300];
	int ret;

	if (!strcmp(argv[0], "routes") && argc == 1) {
		print_routes();
		return 0;
	}
	if (!socket) {
		if (top_default_dir(path, sizeof(path) - 16, &err)) {
			fprintf(stderr, "rackvm ctl: %s (or give --socket)\n", err.text);
			return EXIT_HOST_ERROR;
		}
		strcat(path, "/" HOSTD_RESERVED_NAME ".sock");
		socket = path;
	}
	if (build(argc, argv, &r))
		return EXIT_HOST_ERROR;
	ret = ctl_send(socket, r.method, r.path, r.body, &reply);
	free(r.body);
	if (ret)
		return ret;
	if (reply.status >= 200 && reply.status < 300) {
		if (r.wait_gone && reply.status == 202)
			ret = wait_gone(socket, r.path, argv[1]);
		else if (json || r.text)
			fputs(reply.body, stdout);
		else if (r.table)
			print_vms(reply.body);
		else
			ctl_print_human(reply.body);
	} else {
		ret = ctl_refused(&reply, json);
	}
	api_client_reply_free(&reply);
	return ret;
}
