// SPDX-License-Identifier: MIT
/* The balloon's control commands, see balloon_commands.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/balloon_commands.h"
#include "util/parse.h"

static int cmd_balloon(void *opaque, int argc, char **argv, char *reply,
		       size_t size)
{
	struct virtio_balloon *b = opaque;
	uint64_t bytes, ram = virtio_balloon_ram_pages(b) * VIRTIO_BALLOON_PAGE_SIZE;

	if (argc != 2) {
		snprintf(reply, size, "usage: balloon SIZE (like 256M)");
		return -EINVAL;
	}
	if (parse_size(argv[1], &bytes)) {
		/* %.32s: the word is the client's, keep the reply short */
		snprintf(reply, size, "invalid size '%.32s': give bytes with an "
			 "optional K/M/G suffix, like 256M", argv[1]);
		return -EINVAL;
	}
	if (bytes % VIRTIO_BALLOON_PAGE_SIZE) {
		snprintf(reply, size, "size %" PRIu64 " is not a multiple of 4K",
			 bytes);
		return -EINVAL;
	}
	if (bytes > ram) {
		snprintf(reply, size, "size %" PRIu64 " is larger than guest RAM "
			 "(%" PRIu64 " bytes)", bytes, ram);
		return -EINVAL;
	}
	return virtio_balloon_set_target(b, (uint32_t)(bytes / VIRTIO_BALLOON_PAGE_SIZE));
}

static int cmd_balloon_stats(void *opaque, int argc, char **argv, char *reply,
			     size_t size)
{
	struct virtio_balloon *b = opaque;
	struct virtio_balloon_info in;
	size_t used;

	(void)argv;
	if (argc != 1) {
		snprintf(reply, size, "usage: balloon-stats");
		return -EINVAL;
	}
	virtio_balloon_get_info(b, &in);
	used = (size_t)snprintf(reply, size,
		"target_pages=%" PRIu32 " actual_pages=%" PRIu32
		" inflated_pages=%" PRIu64 " deflated_pages=%" PRIu64
		" discarded_bytes=%" PRIu64 " reported_bytes=%" PRIu64
		" bad_requests=%" PRIu64 " discard_errors=%" PRIu64
		" stats_updates=%" PRIu64,
		in.target_pages, in.actual_pages, in.inflated_pages,
		in.deflated_pages, in.discarded_bytes, in.reported_bytes,
		in.bad_requests, in.discard_errors, in.stats_updates);
	for (unsigned tag = 0; tag < VIRTIO_BALLOON_STAT_TAGS && used < size; tag++)
		if (in.stats.valid & (1u << tag))
			used += (size_t)snprintf(reply + used, size - used,
						 " %s=%" PRIu64,
						 virtio_balloon_stat_name(tag),
						 in.stats.val[tag]);
	/* what the next query shows */
	virtio_balloon_request_stats(b);
	return 0;
}

int balloon_commands_register(struct control_server *s,
			      struct virtio_balloon *b)
{
	int ret = control_server_register(s, "balloon",
					  "balloon SIZE: set the balloon's size (K/M/G)",
					  cmd_balloon, b);

	if (!ret)
		ret = control_server_register(s, "balloon-stats",
					      "balloon-stats: balloon counters and guest statistics",
					      cmd_balloon_stats, b);
	return ret;
}
