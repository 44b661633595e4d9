/* SPDX-License-Identifier: MIT */
/*
 * A client of the control API (libcurl over the Unix socket): what
 * `rackvm ctl` and the tools after it use.  One request a call, no
 * state kept between calls.
 */
#ifndef RACKVM_API_API_CLIENT_H
#define RACKVM_API_API_CLIENT_H

#include <stddef.h>

#include "util/errmsg.h"

/* The reply's body is kept up to this size; more is -EMSGSIZE. */
#define API_CLIENT_REPLY_MAX (16u << 20)

struct api_client_reply {
	long status;		/* the HTTP status */
	char *body;		/* malloc'ed, NUL-terminated ("" if none) */
	size_t len;
};

/* Sends @method @path with @body (NULL: none) to the server on @socket
 * and waits at most @timeout_ms for the whole reply.  0 with *@out filled
 * whatever the status; -ECONNREFUSED (nothing reachable there: no
 * socket, no server, no permission), -ETIMEDOUT, -EMSGSIZE, -EPROTO or
 * -ENOMEM with @err saying so. */
int api_client_request(const char *socket, const char *method,
		       const char *path, const char *body,
		       unsigned timeout_ms, struct api_client_reply *out,
		       struct errmsg *err);
void api_client_reply_free(struct api_client_reply *r);

#endif
