/* SPDX-License-Identifier: MIT */
/*
 * Unix stream sockets at a path: the listening side of rackvm's sockets
 * (the control API) and their clients.
 */
#ifndef RACKVM_UTIL_UNIX_SOCKET_H
#define RACKVM_UTIL_UNIX_SOCKET_H

#include "util/errmsg.h"

/* Binds and listens on @path with mode 0600 (only its owner may connect:
 * the socket's permissions are the access control).  A socket file left
 * by a process that died is replaced; a live one (-EADDRINUSE) or any
 * other file (-EEXIST) is not.  *@fd: close-on-exec, blocking. */
int unix_listen(const char *path, int backlog, int *fd, struct errmsg *err);
/* Connects to @path; -ENOENT, -ECONNREFUSED... with @err saying so. */
int unix_connect(const char *path, int *fd, struct errmsg *err);

#endif
