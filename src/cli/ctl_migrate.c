// SPDX-License-Identifier: MIT
/*
 * `rackvm ctl migrate tcp:HOST:PORT [--mode M] [--precopy-rounds N]`:
 * starts the VM's migration (PUT /vm/migrate) and follows it (GET
 * /vm/migrate) with a progress line until it ends (a source that moved
 * its VM away keeps its API up a second after, for this).  In
 * post-copy the line shows the pages still to go and the page requests
 * served.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_client.h"
#include "cli/cli.h"

#define POLL_MS 250

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* One progress line; the phase, or NULL if the reply made no sense. */
static const char *show(json_t *o, char *phase, size_t len)
{
	const char *p = json_string_value(json_object_get(o, "phase"));
	double sent = num(o, "bytes_sent"), left = num(o, "pages_remaining") * 4096;
	double pct = sent + left > 0 ? 100 * sent / (sent + left) : 0;
	char bar[21];

	if (!p)
		return NULL;
	snprintf(phase, len, "%s", p);
	for (int i = 0; i < 20; i++)
		bar[i] = i < (int)(pct / 5) ? '#' : '-';
	bar[20] = 0;
	if (!strcmp(p, "postcopy") || json_object_get(o, "urgent_requests"))
		fprintf(stderr, "\r%-13s [%s] %3.0f%%  %.0f pages to go  %.1f MiB "
			"sent  %.0f requests p50 %.2f ms p99 %.2f ms   ", p, bar,
			pct, num(o, "pages_remaining"), sent / (1 << 20),
			num(o, "urgent_requests"), num(o, "urgent_latency_p50_ms"),
			num(o, "urgent_latency_p99_ms"));
	else
		fprintf(stderr, "\r%-13s [%s] %3.0f%%  round %d  %.1f MiB sent  "
			"ETA %.1f s   ", p, bar, pct, (int)num(o, "round"),
			sent / (1 << 20), num(o, "eta_seconds"));
	return phase;
}

/* The request's body from "URI [--mode M] [--precopy-rounds N]", or
 * NULL after saying what is wrong. */
static json_t *request_body(int argc, char **argv)
{
	json_t *body = NULL;
	char *end;
	long n;

	if (argc < 2 || argv[1][0] == '-')
		goto usage;
	body = json_pack("{s:s}", "uri", argv[1]);
	for (int i = 2; body && i < argc; i += 2) {
		if (i + 1 >= argc)
			goto usage;
		if (!strcmp(argv[i], "--mode")) {
			json_object_set_new(body, "mode", json_string(argv[i + 1]));
		} else if (!strcmp(argv[i], "--precopy-rounds")) {
			n = strtol(argv[i + 1], &end, 10);
			if (*end || n < 1)
				goto usage;
			json_object_set_new(body, "precopy_rounds",
					    json_integer(n));
		} else {
			goto usage;
		}
	}
	return body;
usage:
	json_decref(body);
	fprintf(stderr, "rackvm ctl: migrate tcp:HOST:PORT [--mode "
		"precopy|postcopy|hybrid] [--precopy-rounds N]\n");
	return NULL;
}

int ctl_migrate(const char *socket, int argc, char **argv, bool json)
{
	struct timespec nap = { 0, POLL_MS * 1000000L };
	struct api_client_reply reply;
	struct errmsg err = { "" };
	char phase[32] = "connecting";
	json_t *body = request_body(argc, argv), *o;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int ret;

	if (!body)
		return EXIT_HOST_ERROR;
	json_decref(body);
	ret = text ? ctl_send(socket, "PUT", "/vm/migrate", text, &reply) :
		     EXIT_HOST_ERROR;
	free(text);
	if (ret)
		return ret;
	if (reply.status != 202) {
		ret = ctl_refused(&reply, json);
		api_client_reply_free(&reply);
		return ret;
	}
	api_client_reply_free(&reply);
	for (;;) {
		nanosleep(&nap, NULL);
		if (api_client_request(socket, "GET", "/vm/migrate", NULL,
				       CTL_TIMEOUT_MS, &reply, &err)) {
			/* a source that migrated its VM keeps its API a
			 * second more: gone before that, it did not end well */
			fprintf(stderr, "\nthe source rackvm ended during the "
				"migration's %s phase: see its own messages\n",
				phase);
			return EXIT_REFUSED;
		}
		o = json_loads(reply.body, 0, NULL);
		api_client_reply_free(&reply);
		if (!show(o, phase, sizeof(phase))) {
			json_decref(o);
			continue;
		}
		if (!strcmp(phase, "completed") || !strcmp(phase, "failed") ||
		    !strcmp(phase, "unconfirmed") || !strcmp(phase, "lost")) {
			const char *why = json_string_value(json_object_get(o, "error"));

			fprintf(stderr, "\nmigration %s%s%s\n", phase,
				why ? ": " : "", why ? why : "");
			json_decref(o);
			return strcmp(phase, "completed") ? EXIT_REFUSED : 0;
		}
		json_decref(o);
	}
}
