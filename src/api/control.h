/* SPDX-License-Identifier: MIT */
/*
 * The control channel: a Unix stream socket on which a running rackvm
 * takes line commands ("balloon 256M", "balloon-stats", "help").  A
 * stop-gap until the REST API replaces it.
 *
 * Protocol: the client sends lines of at most CONTROL_LINE_MAX bytes
 * (newline included); each gets exactly one reply line, "ok" optionally
 * followed by a space and key=value data, or "error: <why>".  A line
 * that is too long is answered with an error and the connection closed.
 * Everything read from the socket is untrusted.
 *
 * Commands come from a table that subsystems fill with
 * control_server_register() before control_server_start(); the table is
 * never changed while the server thread runs, so it needs no lock.
 * Handlers run on the server thread, one client at a time.
 */
#ifndef RACKVM_API_CONTROL_H
#define RACKVM_API_CONTROL_H

#include <stddef.h>

#include "util/errmsg.h"

#define CONTROL_LINE_MAX 256		/* a command, newline included */
#define CONTROL_REPLY_MAX 1024		/* a reply, newline included */
#define CONTROL_MAX_ARGS 8
#define CONTROL_MAX_COMMANDS 16
#define CONTROL_IDLE_MS 10000		/* a silent client is dropped */

/*
 * A command handler: @argv[0] is the command name, @argc >= 1.  Writes
 * the reply (without newline) into @reply, at most @size bytes with the
 * NUL, and returns 0 for an "ok" reply or a negative errno for an
 * "error: " one (the server adds the prefix: @reply holds the data or
 * the reason, may be empty).
 */
typedef int (*control_handler_fn)(void *opaque, int argc, char **argv,
				  char *reply, size_t size);

struct control_server;

/* Binds and listens on @path (a stale socket file there is replaced;
 * anything else is an error).  No thread yet. */
int control_server_create(const char *path, struct control_server **out,
			  struct errmsg *err);
/* Adds a command; -ENOSPC when the table is full, -EEXIST for a name
 * taken, -EBUSY once started.  @name and @help must outlive the server. */
int control_server_register(struct control_server *s, const char *name,
			    const char *help, control_handler_fn fn,
			    void *opaque);
/* Starts the server thread. */
int control_server_start(struct control_server *s, struct errmsg *err);
/* Stops the thread, closes the socket, unlinks the path, frees @s.
 * Takes void * so that it can be given to vm_own(). */
void control_server_destroy(void *s);

/*
 * Pure: runs one command line (no newline) against the table and writes
 * the full reply line (without newline) into @reply.  Exposed for tests.
 */
void control_server_execute(struct control_server *s, const char *line,
			    char *reply, size_t size);

/*
 * Client: connects to @path, sends @line, reads one reply line into
 * @reply (newline stripped).  Returns 0, -ECONNREFUSED / -ENOENT /...
 * when the server cannot be reached (@err says so), -EPROTO on a
 * malformed or missing reply, -ETIMEDOUT after @timeout_ms.
 */
int control_request(const char *path, const char *line, char *reply,
		    size_t size, int timeout_ms, struct errmsg *err);

#endif
