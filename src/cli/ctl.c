// SPDX-License-Identifier: MIT
/*
 * `rackvm ctl`: friendly commands over the control API (docs/api.yaml).
 * Each command is one request; the VM checks everything, so this file
 * only maps words to requests and replies to lines.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_client.h"
#include "api/api_server.h"
#include "cli/cli.h"


void print_ctl_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm ctl [--socket PATH | --name NAME] [--json] COMMAND\n"
		"  talks to the VM started with --api-socket PATH or --name NAME\n"
		"  commands:\n"
		"    info              name, state, uptime, boot config (GET /vm)\n"
		"    pause | resume    stop / restart the vCPUs (PUT /vm/state)\n"
		"    shutdown | stop   ACPI power button / end now\n"
		"    snapshot FILE     save the paused VM into FILE (new); resume\n"
		"                      it with rackvm run --restore FILE\n"
		"    migrate tcp:HOST:PORT [--mode precopy|postcopy|hybrid]\n"
		"            [--precopy-rounds N]  move the VM to the rackvm\n"
		"                      started there with --incoming; shows its\n"
		"                      progress (hybrid: N pre-copy rounds, 3)\n"
		"    vcpus | memory | devices | pager   GET /vm/...\n"
		"    balloon SIZE      the balloon's target, like 512M\n"
		"    mem-local SIZE    the pager's resident budget, like 1G\n"
		"    wss [SINCE]       the WSS series (points after SINCE seconds)\n"
		"    metrics           the Prometheus metrics\n"
		"    raw METHOD PATH [BODY]  any request\n"
		"    routes            the API's routes (no VM needed)\n"
		"  --json prints the VM's JSON reply as it is.\n"
		"usage: rackvm ctl --host [--socket PATH] [--json] COMMAND\n"
		"  talks to rackvm hostd (default socket: the runtime directory's\n"
		"  hostd.sock, docs/hostd-api.yaml)\n"
		"  commands:\n"
		"    vms               every VM: state, RAM, resident, WSS, target, lever\n"
		"    info NAME         one VM (GET /vms/NAME)\n"
		"    start FILE.json   start a VM from a config (POST /vms)\n"
		"    stop NAME         shut it down, stop it, kill it: the first that\n"
		"                      works; waits until it is gone\n"
		"    set NAME KEY=VALUE...  shares=N, min=SIZE, max=SIZE, policy=P\n"
		"    metrics | log [SINCE] | routes | raw METHOD PATH [BODY]\n"
		"  exit status: 0 ok, 1 refused by the VM (the error is printed),\n"
		"  2 unreachable or bad usage\n");
}

struct request {
	const char *method;
	const char *path;
	char *body;		/* malloc'ed or NULL */
	char path_buf[128];
};

static char *one_field(const char *key, const char *value)
{
	json_t *o = json_pack("{s:s}", key, value);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* COMMAND ARGS into a request; -1 for bad usage (said on stderr). */
static int build(int argc, char **argv, struct request *r)
{
	static const struct {
		const char *word, *method, *path, *state;
	} simple[] = {
		{ "info", "GET", "/vm", NULL },
		{ "vcpus", "GET", "/vm/vcpus", NULL },
		{ "memory", "GET", "/vm/memory", NULL },
		{ "devices", "GET", "/vm/devices", NULL },
		{ "pager", "GET", "/vm/memory/pager", NULL },
		{ "metrics", "GET", "/metrics", NULL },
		{ "shutdown", "PUT", "/vm/shutdown", NULL },
		{ "stop", "PUT", "/vm/stop", NULL },
		{ "pause", "PUT", "/vm/state", "paused" },
		{ "resume", "PUT", "/vm/state", "running" },
	};
	const char *cmd = argv[0];

	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcmp(cmd, simple[i].word))
			continue;
		if (argc != 1)
			break;
		r->method = simple[i].method;
		r->path = simple[i].path;
		if (simple[i].state)
			r->body = one_field("state", simple[i].state);
		return 0;
	}
	if ((!strcmp(cmd, "balloon") || !strcmp(cmd, "mem-local")) && argc == 2) {
		r->method = "PATCH";
		r->path = "/vm/memory";
		r->body = one_field(cmd[0] == 'b' ? "balloon_target" : "mem_local",
				    argv[1]);
		return 0;
	}
	if (!strcmp(cmd, "snapshot") && argc == 2) {
		/* the VM's working directory is not ours: the path goes
		 * absolute */
		char cwd[4096], abs[8192];

		if (argv[1][0] != '/' && !getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "rackvm ctl: getcwd: %s\n", strerror(errno));
			return -1;
		}
		snprintf(abs, sizeof(abs), "%s%s%s", argv[1][0] == '/' ? "" : cwd,
			 argv[1][0] == '/' ? "" : "/", argv[1]);
		r->method = "PUT";
		r->path = "/vm/snapshot";
		r->body = one_field("path", abs);
		return 0;
	}
	if (!strcmp(cmd, "wss") && argc <= 2) {
		r->method = "GET";
		snprintf(r->path_buf, sizeof(r->path_buf), "/vm/memory/wss%s%.64s",
			 argc == 2 ? "?since=" : "", argc == 2 ? argv[1] : "");
		r->path = r->path_buf;
		return 0;
	}
	if (!strcmp(cmd, "raw") && (argc == 3 || argc == 4)) {
		r->method = argv[1];
		r->path = argv[2];
		r->body = argc == 4 ? strdup(argv[3]) : NULL;
		return 0;
	}
	fprintf(stderr, "rackvm ctl: unknown command or wrong arguments: '%s' "
		"(see rackvm ctl --help)\n", cmd);
	return -1;
}

/* Human output: a top-level object as "key: value" lines (nested values
 * as compact JSON), anything else as it came. */
void ctl_print_human(const char *body)
{
	json_t *o = json_loads(body, 0, NULL), *v;
	const char *key;

	if (!json_is_object(o)) {
		fputs(body, stdout);
		json_decref(o);
		return;
	}
	json_object_foreach(o, key, v) {
		char *text = json_is_string(v) ? NULL :
			     json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%s: %s\n", key, text ? text : json_string_value(v));
		free(text);
	}
	json_decref(o);
}

void ctl_print_error(const char *body, long status)
{
	json_t *o = json_loads(body, 0, NULL);
	const char *msg = json_string_value(json_object_get(o, "error"));

	fprintf(stderr, "rackvm ctl: %s (HTTP %ld)\n", msg ? msg : body, status);
	json_decref(o);
}

int ctl_send(const char *socket, const char *method, const char *path,
	     const char *body, struct api_client_reply *reply)
{
	struct errmsg err = { "" };

	if (api_client_request(socket, method, path, body, CTL_TIMEOUT_MS, reply,
			       &err)) {
		fprintf(stderr, "rackvm ctl: %s\n", err.text);
		return EXIT_HOST_ERROR;
	}
	return 0;
}

int ctl_refused(const struct api_client_reply *reply, bool json)
{
	if (json)
		fputs(reply->body, stdout);
	ctl_print_error(reply->body, reply->status);
	return EXIT_REFUSED;
}

static void print_routes(void)
{
	size_t n;
	const struct api_route *routes = api_routes(&n);

	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", routes[i].method, routes[i].path);
}

static int ctl_vm(int argc, char **argv, const char *socket,
		  const char *name, bool json);

int cmd_ctl(int argc, char **argv)
{
	const char *socket = NULL, *name = NULL;
	bool json = false, host = false;
	int i, ret;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			print_ctl_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--host")) {
			host = true;
		} else if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
			socket = argv[++i];
		} else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			name = argv[++i];
		} else {
			fprintf(stderr, "rackvm ctl: unknown option '%s'\n", argv[i]);
			return EXIT_HOST_ERROR;
		}
	}
	if (i == argc) {
		print_ctl_usage(stderr);
		return EXIT_HOST_ERROR;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = host ? ctl_host(argc - i, argv + i, socket, json) :
		     ctl_vm(argc - i, argv + i, socket, name, json);
	curl_global_cleanup();
	return ret;
}

static int ctl_vm(int argc, char **argv, const char *socket,
		  const char *name, bool json)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };
	struct request r;
	char path[256];
	int ret;

	if (!strcmp(argv[0], "routes") && argc == 1) {
		print_routes();
		return 0;
	}
	if (!socket && !name) {
		fprintf(stderr, "rackvm ctl: give --socket PATH or --name NAME\n");
		return EXIT_HOST_ERROR;
	}
	if (!socket) {
		if (api_default_socket(name, path, sizeof(path), &err)) {
			fprintf(stderr, "rackvm ctl: %s\n", err.text);
			return EXIT_HOST_ERROR;
		}
		socket = path;
	}
	if (!strcmp(argv[0], "migrate"))
		return ctl_migrate(socket, argc, argv, json);
	if (build(argc, argv, &r))
		return EXIT_HOST_ERROR;
	ret = ctl_send(socket, r.method, r.path, r.body, &reply);
	free(r.body);
	if (ret)
		return ret;
	if (reply.status >= 200 && reply.status < 300) {
		if (json || !strcmp(r.path, "/metrics"))
			fputs(reply.body, stdout);
		else
			ctl_print_human(reply.body);
	} else {
		ret = ctl_refused(&reply, json);
	}
	api_client_reply_free(&reply);
	return ret;
}
