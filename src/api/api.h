/* SPDX-License-Identifier: MIT */
/*
 * The control API's requests and responses, independent of HTTP: the
 * server (api_server.c) turns an HTTP request into a struct api_request,
 * api_dispatch() finds the route and runs its handler, and the server
 * sends the struct api_response back.  Tests and the fuzz target call
 * the same functions without a socket.  docs/api.yaml documents every
 * route; tests check that it and api_routes() list the same ones.
 *
 * Handlers reach the machine only through machine.h's thread-safe
 * calls, which take the machine's or a device's lock for the moment of
 * a copy, never across client I/O: a handler builds its whole response
 * in memory and returns; the server sends it afterwards.  A vCPU thread
 * therefore never waits on a client.  machine_pause() waits for the
 * vCPUs to stop (bounded by their next exit), never the reverse.
 *
 * Everything in a request is untrusted: bodies are parsed by jansson,
 * sizes by util/parse.h, and a client's mistake is a 4xx with a JSON
 * {"error": "..."} saying what was wrong and what is valid, never 500.
 */
#ifndef RACKVM_API_API_H
#define RACKVM_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

struct machine;

/* The largest request body taken; more is answered 413. */
#define API_BODY_MAX (64u * 1024)
/* The most WSS points one GET /vm/memory/wss returns (the newest). */
#define API_WSS_POINTS_MAX 3600u

/* What the handlers work on; borrowed, outlives the server. */
struct migration;

struct api_ctx {
	struct machine *machine;
	const char *name;	/* the VM's name: "vm" label, GET /vm */
	const char *version;	/* rackvm's version */
	/* The VM's last outgoing migration (PUT /vm/migrate), NULL before
	 * one; read and replaced on the API's one thread.  The server's
	 * owner destroys it (migration_destroy()) before the machine. */
	struct migration **migration;
};

struct api_request {
	const char *method;
	const char *path;	/* without the query */
	const char *since;	/* the "since" query parameter, or NULL */
	const char *body;	/* not NUL-terminated; may be NULL if len 0 */
	size_t body_len;
};

struct api_response {
	unsigned status;
	char *body;		/* malloc'ed, owned by the response */
	const char *content_type;	/* static */
	char allow[64];		/* 405: the methods the path takes */
};

typedef void (*api_handler_fn)(const struct api_ctx *ctx,
			       const struct api_request *req,
			       struct api_response *resp);

struct api_route {
	const char *method;
	const char *path;
	api_handler_fn fn;
};

/* The route table (api_routes.c), @n entries. */
const struct api_route *api_routes(size_t *n);

/* Runs @req against the route table: the handler's response, or 404
 * (no such path), 405 (the path exists, the method not: resp->allow
 * lists the ones it takes).  The caller frees with api_response_free(). */
void api_dispatch(const struct api_ctx *ctx, const struct api_request *req,
		  struct api_response *resp);
void api_response_free(struct api_response *resp);

/* The bodies' parsers, pure (fuzzed by tests/fuzz/fuzz_api_bodies.c).
 * Each returns 0 or -EINVAL with @err saying what was wrong. */

/* PUT /vm/state: {"state": "paused" | "running"}. */
int api_parse_state(const char *body, size_t len, bool *running,
		    struct errmsg *err);

/* PATCH /vm/memory: either or both of the fields; sizes are byte counts
 * (integers) or strings like "512M". */
struct api_memory_patch {
	bool has_balloon_target;
	uint64_t balloon_target;
	bool has_mem_local;
	uint64_t mem_local;
};
int api_parse_memory_patch(const char *body, size_t len,
			   struct api_memory_patch *out, struct errmsg *err);

/* PUT /vm/snapshot: {"path": "/abs/file", "compress": false}; the path
 * absolute (the API server's working directory is no client's), at most
 * API_SNAPSHOT_PATH_MAX bytes; *@path points into @out. */
#define API_SNAPSHOT_PATH_MAX 4095
struct api_snapshot_request {
	char path[API_SNAPSHOT_PATH_MAX + 1];
	bool compress;
};
int api_parse_snapshot(const char *body, size_t len,
		       struct api_snapshot_request *out, struct errmsg *err);

/* PUT /vm/migrate: {"uri": "tcp:HOST:PORT", "mode": "precopy",
 * "max_downtime_ms": 30, "max_bandwidth": "1G" (bytes/s), "compress":
 * "zstd" | "none", "max_rounds": 30}; only "uri" is required.  Modes
 * other than precopy are refused (-ENOTSUP) until they exist. */
struct migrate_options;
int api_parse_migrate(const char *body, size_t len, struct migrate_options *out,
		      struct errmsg *err);

/* PUT /vm/shutdown, PUT /vm/stop: no body, or an empty object. */
int api_parse_empty(const char *body, size_t len, struct errmsg *err);

/* ?since=T: seconds since tracking started, a finite number >= 0. */
int api_parse_since(const char *text, double *out, struct errmsg *err);

#endif
