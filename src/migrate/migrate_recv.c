// SPDX-License-Identifier: MIT
/*
 * The destination side of a migration (migrate.h), and the URI both
 * sides take.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <sys/time.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate_internal.h"
#include "util/full_io.h"
#include "migrate/postcopy_dst.h"
#include "migrate/postcopy_recv.h"

#define HELLO_TIMEOUT_S 120

struct migrate_incoming {
	int conn;
	struct postcopy_dst *pc;	/* post-copy: the machine's */
};

int migrate_parse_uri(const char *uri, char *host, size_t host_len,
		      char *port, size_t port_len, struct errmsg *err)
{
	const char *rest, *colon;
	char *end;
	unsigned long p;

	if (!uri || strncmp(uri, "tcp:", 4))
		return errmsg_set(err, -EINVAL, "migration URI '%.64s': give "
				  "tcp:HOST:PORT", uri ? uri : "");
	rest = uri + 4;
	colon = strrchr(rest, ':');
	if (!colon || colon == rest || (size_t)(colon - rest) >= host_len)
		return errmsg_set(err, -EINVAL, "migration URI '%.64s': give "
				  "tcp:HOST:PORT", uri);
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || p == 0 || p > 65535)
		return errmsg_set(err, -EINVAL, "migration URI '%.64s': the "
				  "port must be 1..65535", uri);
	/* [v6]:port */
	if (rest[0] == '[' && colon[-1] == ']')
		snprintf(host, host_len, "%.*s", (int)(colon - rest - 2), rest + 1);
	else
		snprintf(host, host_len, "%.*s", (int)(colon - rest), rest);
	snprintf(port, port_len, "%lu", p);
	return 0;
}

static int listen_once(const char *uri, int *conn, struct errmsg *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	char host[MIGRATE_URI_MAX], port[16];
	struct addrinfo *ai;
	int ret, fd, one = 1;

	ret = migrate_parse_uri(uri, host, sizeof(host), port, sizeof(port),
				err);
	if (ret)
		return ret;
	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret)
		return errmsg_set(err, -EADDRNOTAVAIL, "%s: %s", uri,
				  gai_strerror(ret));
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 1) < 0) {
		ret = -errno;
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return errmsg_set(err, ret, "cannot listen on %s: %s", uri,
				  strerror(-ret));
	}
	freeaddrinfo(ai);
	/* one stream: a second source finds nobody listening */
	*conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	ret = *conn < 0 ? -errno : 0;
	close(fd);
	return ret ? errmsg_set(err, ret, "accept on %s: %s", uri,
				strerror(-ret)) : 0;
}

static void say(int conn, const char *fmt, const char *text)
{
	char line[400];
	int n = snprintf(line, sizeof(line), fmt, text);

	if (n > (int)sizeof(line) - 2) {	/* a cut message still ends */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (send(conn, line, (size_t)n, MSG_NOSIGNAL) < 0)
		return;		/* the source is gone: it will know */
}

/* "GO" from the source, nothing else. */
static int wait_go(int conn, struct errmsg *err)
{
	struct timeval tv = { HELLO_TIMEOUT_S, 0 };
	char line[8];
	size_t n = 0;

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n < sizeof(line) - 1) {
		ssize_t r = read(conn, line + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return errmsg_set(err, -ECONNRESET, "the source went away "
					  "before handing the VM over: it "
					  "keeps running there");
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (strcmp(line, "GO\n"))
		return errmsg_set(err, -EPROTO, "the source did not hand the "
				  "VM over");
	return 0;
}

/* Post-copy's hello line, if the source starts with one: 1, else 0
 * with nothing consumed (a pre-copy stream's first byte is 0x89). */
static int postcopy_hello(int conn, struct errmsg *err)
{
	static const char hello[] = MIGRATE_POSTCOPY_HELLO;
	struct timeval tv = { HELLO_TIMEOUT_S, 0 };
	char line[sizeof(hello)];
	ssize_t n;

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	do {
		n = recv(conn, line, 1, MSG_PEEK);
	} while (n < 0 && errno == EINTR);
	if (n <= 0 || line[0] != hello[0])
		return 0;	/* the stream reader says what is wrong */
	if (read_full(conn, line, sizeof(hello) - 1) ||
	    memcmp(line, hello, sizeof(hello) - 1))
		return errmsg_set(err, -EPROTO, "the source speaks a post-copy "
				  "protocol this rackvm does not know");
	return 1;
}

static int incoming_stream(int conn, const char *what,
			   const struct restore_options *o,
			   const struct machine_hooks *hooks,
			   struct machine **out, struct postcopy_dst **pc,
			   struct errmsg *err)
{
	int ret = postcopy_hello(conn, err);

	if (ret == 1) {
		migrate_conn_postcopy(conn);
		/* it tells the source itself, READY or ERROR */
		return postcopy_restore(conn, what, o, hooks, out, pc, err);
	}
	if (!ret)
		ret = snapshot_restore_stream(conn, what, o, hooks, out, err);
	if (ret) {
		say(conn, "ERROR %s\n", err->text);
	} else {
		say(conn, "READY\n%s", "");
		ret = wait_go(conn, err);
	}
	/* the source let go of its store: the remote pages are ours */
	if (!ret)
		ret = machine_pager_commit(*out, err);
	return ret;
}

int migrate_incoming(const char *uri, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct migrate_incoming **in, struct errmsg *err)
{
	char what[MIGRATE_URI_MAX + 32];
	struct postcopy_dst *pc = NULL;
	int ret, conn = -1;

	*out = NULL;
	*in = NULL;
	ret = listen_once(uri, &conn, err);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "the migration stream on %s", uri);
	ret = incoming_stream(conn, what, o, hooks, out, &pc, err);
	if (!ret) {
		*in = calloc(1, sizeof(**in));
		if (!*in)
			ret = errmsg_set(err, -ENOMEM, "out of memory");
	}
	if (ret) {
		machine_destroy(*out);
		*out = NULL;
		close(conn);
		return ret;
	}
	(*in)->conn = conn;
	(*in)->pc = pc;
	return 0;
}

void migrate_incoming_running(struct migrate_incoming *in)
{
	if (!in)
		return;
	if (in->pc)
		postcopy_dst_running(in->pc);
	else
		say(in->conn, "RUNNING\n%s", "");
	close(in->conn);
	free(in);
}

void migrate_incoming_abort(struct migrate_incoming *in)
{
	if (!in)
		return;
	close(in->conn);
	free(in);
}
