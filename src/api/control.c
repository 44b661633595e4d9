// SPDX-License-Identifier: MIT
/*
 * The control channel, see control.h.
 *
 * One server thread polls the listening socket and a stop eventfd, and
 * serves one client at a time: commands are rare and short (a balloon
 * target, a stats query), and a client that stalls is dropped after
 * CONTROL_IDLE_MS, so serialising them costs nothing and keeps the
 * handlers single-threaded.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/control.h"
#include "util/unix_socket.h"

struct control_command {
	const char *name;
	const char *help;
	control_handler_fn fn;
	void *opaque;
};

struct control_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int stop_fd;
	pthread_t thread;
	bool started;
	struct control_command commands[CONTROL_MAX_COMMANDS];
	unsigned ncommands;
};

int control_server_create(const char *path, struct control_server **out,
			  struct errmsg *err)
{
	struct control_server *s;
	int ret;

	if (strlen(path) >= sizeof(s->path))
		return errmsg_set(err, -ENAMETOOLONG, "control socket path '%s' is "
				  "too long", path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->listen_fd = -1;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		ret = errmsg_set(err, -errno, "control socket: %s", strerror(errno));
		control_server_destroy(s);
		return ret;
	}
	/* the channel changes the VM: only its owner may use it (0600) */
	ret = unix_listen(path, 4, &s->listen_fd, err);
	if (ret) {
		control_server_destroy(s);	/* s->path empty: nothing to unlink */
		return ret;
	}
	strcpy(s->path, path);
	*out = s;
	return 0;
}

int control_server_register(struct control_server *s, const char *name,
			    const char *help, control_handler_fn fn,
			    void *opaque)
{
	if (s->started)
		return -EBUSY;
	for (unsigned i = 0; i < s->ncommands; i++)
		if (!strcmp(s->commands[i].name, name))
			return -EEXIST;
	if (s->ncommands == CONTROL_MAX_COMMANDS)
		return -ENOSPC;
	s->commands[s->ncommands++] = (struct control_command){
		name, help, fn, opaque };
	return 0;
}

static void reply_help(const struct control_server *s, char *reply,
		       size_t size)
{
	size_t used;

	used = (size_t)snprintf(reply, size, "ok help: list the commands");
	for (unsigned i = 0; i < s->ncommands && used < size; i++)
		used += (size_t)snprintf(reply + used, size - used, "; %s",
					 s->commands[i].help);
}

/* Splits @line in place on blanks; -E2BIG for too many words. */
static int split(char *line, char **argv)
{
	char *save = NULL;
	int argc = 0;

	for (char *tok = strtok_r(line, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (argc == CONTROL_MAX_ARGS)
			return -E2BIG;
		argv[argc++] = tok;
	}
	return argc;
}

static bool printable(const char *line)
{
	for (const unsigned char *p = (const unsigned char *)line; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p >= 0x7f)
			return false;
	return true;
}

void control_server_execute(struct control_server *s, const char *line,
			    char *reply, size_t size)
{
	char buf[CONTROL_LINE_MAX];
	char data[CONTROL_REPLY_MAX];
	char *argv[CONTROL_MAX_ARGS];
	int argc, ret;

	if (strlen(line) >= sizeof(buf)) {
		snprintf(reply, size, "error: the command is longer than %d bytes",
			 CONTROL_LINE_MAX - 1);
		return;
	}
	if (!printable(line)) {
		snprintf(reply, size, "error: the command has non-printable bytes");
		return;
	}
	strcpy(buf, line);
	argc = split(buf, argv);
	if (argc < 0) {
		snprintf(reply, size, "error: more than %d words", CONTROL_MAX_ARGS);
		return;
	}
	if (argc == 0) {
		snprintf(reply, size, "error: empty command (try help)");
		return;
	}
	if (!strcmp(argv[0], "help")) {
		reply_help(s, reply, size);
		return;
	}
	for (unsigned i = 0; i < s->ncommands; i++) {
		if (strcmp(argv[0], s->commands[i].name))
			continue;
		data[0] = 0;
		ret = s->commands[i].fn(s->commands[i].opaque, argc, argv, data,
					sizeof(data));
		if (ret)
			snprintf(reply, size, "error: %s",
				 data[0] ? data : strerror(-ret));
		else
			snprintf(reply, size, "ok%s%s", data[0] ? " " : "", data);
		return;
	}
	snprintf(reply, size, "error: unknown command '%s' (try help)", argv[0]);
}

static bool send_line(int fd, const char *text)
{
	char buf[CONTROL_REPLY_MAX];
	size_t len, done = 0;

	snprintf(buf, sizeof(buf) - 1, "%s", text);
	len = strlen(buf);
	buf[len++] = '\n';
	while (done < len) {
		/* MSG_NOSIGNAL: a client that went away is no reason to die */
		ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* Serves one client until it hangs up, misbehaves, idles or we stop. */
static void serve_client(struct control_server *s, int fd)
{
	char buf[CONTROL_LINE_MAX];
	char reply[CONTROL_REPLY_MAX];
	size_t have = 0;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = s->stop_fd, .events = POLLIN } };
		char *nl;
		ssize_t n;

		n = poll(p, 2, CONTROL_IDLE_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (p[1].revents & POLLIN))
			return;
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		have += (size_t)n;
		while ((nl = memchr(buf, '\n', have))) {
			size_t len = (size_t)(nl - buf);

			bool has_nul = memchr(buf, 0, len) != NULL;

			*nl = 0;
			if (len && buf[len - 1] == '\r')
				buf[len - 1] = 0;
			if (has_nul)
				snprintf(reply, sizeof(reply),
					 "error: the command has a NUL byte");
			else
				control_server_execute(s, buf, reply, sizeof(reply));
			if (!send_line(fd, reply))
				return;
			have -= len + 1;
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf)) {
			/* no newline in a full buffer: we cannot find the
			 * next command boundary, so say why and hang up */
			snprintf(reply, sizeof(reply),
				 "error: line longer than %d bytes", CONTROL_LINE_MAX - 1);
			send_line(fd, reply);
			return;
		}
	}
}

static void *server_thread(void *arg)
{
	struct control_server *s = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN },
				       { .fd = s->stop_fd, .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[1].revents & POLLIN)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_client(s, fd);
		close(fd);
	}
}

int control_server_start(struct control_server *s, struct errmsg *err)
{
	int ret = -pthread_create(&s->thread, NULL, server_thread, s);

	if (ret)
		return errmsg_set(err, ret, "control thread: %s", strerror(-ret));
	s->started = true;
	return 0;
}

void control_server_destroy(void *obj)
{
	struct control_server *s = obj;

	if (!s)
		return;
	if (s->started) {
		(void)eventfd_write(s->stop_fd, 1);
		pthread_join(s->thread, NULL);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->path[0])
		unlink(s->path);
	free(s);
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int client_exchange(int fd, const char *line, char *reply,
			   size_t size, int timeout_ms)
{
	size_t have = 0;
	char *nl;

	if (!send_line(fd, line))
		return -EPIPE;
	for (;;) {
		ssize_t n;
		int ret = wait_fd(fd, POLLIN, timeout_ms);

		if (ret)
			return ret;
		if (have + 1 >= size)
			return -EPROTO;
		n = recv(fd, reply + have, size - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPROTO;
		have += (size_t)n;
		reply[have] = 0;
		nl = memchr(reply, '\n', have);
		if (nl) {
			*nl = 0;
			return 0;
		}
	}
}

int control_request(const char *path, const char *line, char *reply,
		    size_t size, int timeout_ms, struct errmsg *err)
{
	int fd, ret;

	if (size == 0)
		return -EINVAL;
	reply[0] = 0;
	if (strlen(line) >= CONTROL_LINE_MAX || strchr(line, '\n'))
		return errmsg_set(err, -EINVAL, "the command is longer than %d bytes "
				  "or has a newline", CONTROL_LINE_MAX - 1);
	ret = unix_connect(path, &fd, err);
	if (ret)
		return ret;
	ret = client_exchange(fd, line, reply, size, timeout_ms);
	close(fd);
	if (ret == -ETIMEDOUT)
		return errmsg_set(err, ret, "no reply from %s within %d ms", path,
				  timeout_ms);
	if (ret)
		return errmsg_set(err, -EPROTO, "%s: no reply line (%s)", path,
				  strerror(-ret));
	return 0;
}
