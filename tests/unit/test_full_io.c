// SPDX-License-Identifier: MIT
/*
 * send_full(): every byte arrives although the socket takes it in pieces,
 * and a peer that went away is -EPIPE (not a SIGPIPE that kills us).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "util/full_io.h"

#define BIG (4u << 20)

struct reader {
	int fd;
	uint8_t *buf;
	int ret;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;

	r->ret = read_full(r->fd, r->buf, BIG);
	return NULL;
}

TEST(send_full_moves_more_than_the_socket_buffer)
{
	int sv[2], sndbuf = 4096;
	uint8_t *out = malloc(BIG), *in = calloc(1, BIG);
	struct reader r;
	pthread_t t;

	CHECK(out && in);
	for (size_t i = 0; i < BIG; i++)
		out[i] = (uint8_t)(i * 31 + (i >> 12));
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* a small buffer: the sends go through in many partial pieces */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	r = (struct reader){ .fd = sv[1], .buf = in };
	CHECK_EQ(pthread_create(&t, NULL, read_all, &r), 0);
	CHECK_EQ(send_full(sv[0], out, BIG), 0);
	pthread_join(t, NULL);
	CHECK_EQ(r.ret, 0);
	CHECK(memcmp(out, in, BIG) == 0);
	CHECK_EQ(send_full(sv[0], out, 0), 0);
	close(sv[0]);
	close(sv[1]);
	free(out);
	free(in);
}

TEST(send_full_to_a_closed_peer_is_epipe_not_sigpipe)
{
	int sv[2];

	/* the default disposition: a SIGPIPE would end this test */
	signal(SIGPIPE, SIG_DFL);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	CHECK_EQ(send_full(sv[0], "abc", 3), -EPIPE);
	CHECK_EQ(send_full(-1, "abc", 3), -EBADF);
	close(sv[0]);
}
