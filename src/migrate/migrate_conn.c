// SPDX-License-Identifier: MIT
/*
 * The source's connection to the destination (migrate_internal.h):
 * connecting, and the destination's one-line replies.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate_internal.h"

#define CONNECT_TIMEOUT_S 10
#define REPLY_TIMEOUT_S 120
/* post-copy: a peer silent this long, or not taking data, is gone */
#define POSTCOPY_DEAD_S 20
#define POSTCOPY_SOCKET_BUF (256 << 10)

int migrate_connect(struct migration *mg, struct errmsg *err)
{
	struct timeval tv = { CONNECT_TIMEOUT_S, 0 };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	char host[MIGRATE_URI_MAX], port[16];
	int ret, one = 1;

	ret = migrate_parse_uri(mg->opt.uri, host, sizeof(host), port,
				sizeof(port), err);
	if (ret)
		return ret;
	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret)
		return errmsg_set(err, -EHOSTUNREACH, "%s: %s", mg->opt.uri,
				  gai_strerror(ret));
	ret = -ECONNREFUSED;
	for (a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			pthread_mutex_lock(&mg->lock);
			mg->fd = fd;
			pthread_mutex_unlock(&mg->lock);
			ret = 0;
			break;
		}
		ret = -errno;
		close(fd);
	}
	freeaddrinfo(ai);
	if (ret)
		return errmsg_set(err, ret, "cannot connect to %s: %s",
				  mg->opt.uri, strerror(-ret));
	tv.tv_sec = REPLY_TIMEOUT_S;
	setsockopt(mg->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 0;		/* sends block as long as the peer reads */
	setsockopt(mg->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(mg->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

void migrate_conn_postcopy(int fd)
{
	struct timeval none = { 0, 0 };
	unsigned user_ms = POSTCOPY_DEAD_S * 1000;
	int one = 1, idle = POSTCOPY_DEAD_S / 4, cnt = 3;
	int buf = POSTCOPY_SOCKET_BUF;

	/* an urgent page waits behind the pushed pages already queued in
	 * the sockets' buffers: keep them short */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms,
		   sizeof(user_ms));
}

/* One line from the destination ("READY", "RUNNING", "ERROR why"). */
int migrate_read_reply(int fd, char *line, size_t len, struct errmsg *err)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r = read(fd, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return errmsg_set(err, r < 0 ? -errno : -ECONNRESET,
					  "the destination %s", r < 0 &&
					  errno == EAGAIN ? "did not answer in "
					  "time" : "closed the connection");
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	for (size_t i = 0; i < n; i++)	/* a peer's text, shown to users */
		if (line[i] < 0x20 || line[i] > 0x7e)
			line[i] = '?';
	return 0;
}

int migrate_expect_reply(struct migration *mg, const char *want,
			 struct errmsg *err)
{
	char line[400];
	int ret = migrate_read_reply(mg->fd, line, sizeof(line), err);

	if (ret)
		return ret;
	if (!strncmp(line, "ERROR ", 6))
		return errmsg_set(err, -EREMOTEIO, "the destination refused: %s",
				  line + 6);
	if (strcmp(line, want))
		return errmsg_set(err, -EPROTO, "the destination said '%.64s', "
				  "not %s", line, want);
	return 0;
}
