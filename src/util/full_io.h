/* SPDX-License-Identifier: MIT */
/*
 * Whole reads and writes: read(2)/write(2)/pread(2)/pwrite(2) may move
 * fewer bytes than asked (signals, pipes, sockets, large requests) or fail
 * with EINTR; these retry until the whole buffer moved.
 *
 * Each returns 0 when all @len bytes moved, -errno on an error, -EIO when
 * a read hit end of file or a write moved nothing.  A non-blocking fd that
 * returns EAGAIN is an error here: use these on blocking fds.
 */
#ifndef RACKVM_UTIL_FULL_IO_H
#define RACKVM_UTIL_FULL_IO_H

#include <stddef.h>
#include <stdint.h>

int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/*
 * The counterpart for a socket polled by an event loop: sends from @buf
 * what the socket takes without blocking and says how much in *@sent
 * (less than @len when it is full: wait for POLLOUT).  0, or -errno
 * (-EIO when nothing moved without an error) with *@sent the bytes that
 * went before it.  A peer that went away is -EPIPE, never SIGPIPE.
 */
int send_some(int fd, const void *buf, size_t len, size_t *sent);

/*
 * write_full() for a blocking socket: send(2) with MSG_NOSIGNAL, so a
 * peer that went away is -EPIPE rather than a SIGPIPE that kills the
 * process; partial sends and EINTR are retried.  0 or -errno (-EIO when
 * a send moved nothing without an error).
 */
int send_full(int fd, const void *buf, size_t len);

#endif
