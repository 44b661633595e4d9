/* SPDX-License-Identifier: MIT */
/*
 * The control API's HTTP/1.1 server (libmicrohttpd) on a Unix stream
 * socket.  Routes, bodies and how handlers reach the machine: api.h;
 * the document: docs/api.yaml.
 *
 * Access control is the socket's permissions: it is created mode 0600,
 * and the default socket's directory ($XDG_RUNTIME_DIR/rackvm, or
 * /run/rackvm as root) mode 0700 (created if missing; one that exists
 * must belong to this user and let no one else in).
 *
 * Threads and limits: one server thread (libmicrohttpd's internal
 * polling thread) serves every connection, event-driven, so a slow or
 * stalled client holds only its own connection: at most
 * API_MAX_CONNECTIONS at a time (more wait in the listen backlog or are
 * refused), each closed after API_IDLE_TIMEOUT_S seconds without a byte,
 * its headers bounded by API_CONNECTION_MEMORY bytes (431 beyond) and
 * its body by API_BODY_MAX (413, answered as soon as the Content-Length
 * or the data read shows it).  Handlers run on the server thread.
 *
 * Ownership: the server borrows the machine (api_server_config.ctx) or
 * the opaque pointer of its dispatch function,
 * which must outlive it; api_server_destroy() stops taking connections,
 * lets the requests begun be answered (API_DRAIN_MS at most: the
 * reply to PUT /vm/stop is one), stops the thread, closes the socket and
 * unlinks its path.
 */
#ifndef RACKVM_API_API_SERVER_H
#define RACKVM_API_API_SERVER_H

#include <stddef.h>

#include "api/api.h"
#include "util/errmsg.h"

#define API_MAX_CONNECTIONS 128
#define API_IDLE_TIMEOUT_S 10
#define API_CONNECTION_MEMORY (32u * 1024)
/* At the end, how long the requests begun may take to be answered. */
#define API_DRAIN_MS 2000

struct api_server;

/* Answers one request (fills @resp as api_dispatch() does): a server of
 * another route table than the VM's (hostd's). */
typedef void (*api_dispatch_fn)(void *opaque, const struct api_request *req,
				struct api_response *resp);

struct api_server_config {
	const char *path;	/* the socket */
	/* Create the socket's directory mode 0700 if missing, and refuse
	 * one others can enter (the default socket's directory). */
	bool private_dir;
	struct api_ctx ctx;	/* copied; its pointers borrowed */
	/* NULL: the VM's routes on @ctx (api_dispatch()); else @dispatch
	 * with @opaque (borrowed, outlives the server) */
	api_dispatch_fn dispatch;
	void *opaque;
};

/* The default socket of VM @name: $XDG_RUNTIME_DIR/rackvm/NAME.sock, or
 * /run/rackvm/NAME.sock as root.  -ENOENT when neither applies (no
 * XDG_RUNTIME_DIR and not root), -ENAMETOOLONG. */
int api_default_socket(const char *name, char *buf, size_t len,
		       struct errmsg *err);

/* Listens and starts the server thread. */
int api_server_create(const struct api_server_config *cfg,
		      struct api_server **out, struct errmsg *err);
/* NULL is allowed. */
void api_server_destroy(struct api_server *s);

#endif
