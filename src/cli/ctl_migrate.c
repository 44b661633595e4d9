// SPDX-License-Identifier: MIT
/*
 * `rackvm ctl migrate tcp:HOST:PORT`: starts the VM's migration (PUT
 * /vm/migrate) and follows it (GET /vm/migrate) with a progress line
 * until it ends (a source that moved its VM away keeps its API up a
 * second after, for this).
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
	fprintf(stderr, "\r%-13s [%s] %3.0f%%  round %d  %.1f MiB sent  "
		"ETA %.1f s   ", p, bar, pct, (int)num(o, "round"),
		sent / (1 << 20), num(o, "eta_seconds"));
	return phase;
}

int ctl_migrate(const char *socket, const char *uri, bool json)
{
	struct timespec nap = { 0, POLL_MS * 1000000L };
	struct api_client_reply reply;
	struct errmsg err = { "" };
	char phase[32] = "connecting";
	json_t *body = json_pack("{s:s}", "uri", uri), *o;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int ret;

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
		    !strcmp(phase, "unconfirmed")) {
			const char *why = json_string_value(json_object_get(o, "error"));

			fprintf(stderr, "\nmigration %s%s%s\n", phase,
				why ? ": " : "", why ? why : "");
			json_decref(o);
			return strcmp(phase, "completed") ? EXIT_REFUSED : 0;
		}
		json_decref(o);
	}
}
