// SPDX-License-Identifier: MIT
#include "util/full_io.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

enum move { MOVE_IN, MOVE_OUT, MOVE_SEND };

/* One loop for the five calls: @off < 0 means "no offset". */
static int move_full(int fd, uint8_t *p, size_t len, int64_t off,
		     enum move how)
{
	bool out = how != MOVE_IN;

	while (len) {
		ssize_t n;

		if (how == MOVE_SEND)
			n = send(fd, p, len, MSG_NOSIGNAL);
		else if (off < 0)
			n = out ? write(fd, p, len) : read(fd, p, len);
		else
			n = out ? pwrite(fd, p, len, (off_t)off) :
				    pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int read_full(int fd, void *buf, size_t len)
{
	return move_full(fd, buf, len, -1, MOVE_IN);
}

int write_full(int fd, const void *buf, size_t len)
{
	return move_full(fd, (uint8_t *)buf, len, -1, MOVE_OUT);
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	if (off > INT64_MAX)
		return -EINVAL;
	return move_full(fd, buf, len, (int64_t)off, MOVE_IN);
}

int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	if (off > INT64_MAX)
		return -EINVAL;
	return move_full(fd, (uint8_t *)buf, len, (int64_t)off, MOVE_OUT);
}

int send_some(int fd, const void *buf, size_t len, size_t *sent)
{
	const uint8_t *p = buf;

	*sent = 0;
	while (*sent < len) {
		ssize_t n = send(fd, p + *sent, len - *sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			*sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

int send_full(int fd, const void *buf, size_t len)
{
	return move_full(fd, (uint8_t *)buf, len, -1, MOVE_SEND);
}
