// SPDX-License-Identifier: MIT
/*
 * RAM sections whose checksum a lazy restore defers (stream.h,
 * stream_reader_defer_ram()): the pages of one, from its head alone, and
 * the check of the whole section when a page of it is first needed.
 * The descriptor and the head come from a reader that validated them;
 * the file's bytes are untrusted all the same.
 */
#include "migrate/stream_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/page.h"

/* All @len bytes at @off: -ENODATA at end of file. */
static int pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		got += (size_t)n;
	}
	return 0;
}

int stream_verify_deferred(int fd, const struct stream_deferred *d,
			   struct errmsg *err)
{
	size_t n = STREAM_SEC_HDR + (size_t)d->len;
	char where[80];
	uint8_t *buf;
	int ret;

	stream_where(where, sizeof(where), d->index, STREAM_RAM, d->start);
	if (d->len > STREAM_SECTION_MAX || d->start > (uint64_t)INT64_MAX - n)
		return errmsg_set(err, -EINVAL, "%s: not a section a stream "
				  "reader gives", where);
	buf = malloc(n);
	if (!buf)
		return errmsg_set(err, -ENOMEM, "%s: no memory to check it",
				  where);
	ret = pread_all(fd, buf, n, d->start);
	if (ret == -ENODATA)
		errmsg_set(err, ret, "%s: the file now ends inside it", where);
	else if (ret)
		errmsg_set(err, ret, "%s: reading it: %s", where,
			   strerror(-ret));
	else if (XXH3_64bits_withSeed(buf, n, d->index) != d->checksum)
		ret = errmsg_set(err, -EBADMSG, "%s: checksum mismatch", where);
	free(buf);
	return ret;
}
