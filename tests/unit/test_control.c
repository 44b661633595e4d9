// SPDX-License-Identifier: MIT
/* The control channel: command parsing and dispatch, the balloon's
 * commands (bad sizes), and a real socket with hostile input. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/balloon_commands.h"
#include "api/control.h"
#include "harness.h"
#include "virtio/mmio.h"

static int echo_cmd(void *opaque, int argc, char **argv, char *reply,
		    size_t size)
{
	int *calls = opaque;

	(*calls)++;
	if (argc > 1 && !strcmp(argv[1], "fail")) {
		snprintf(reply, size, "asked to fail");
		return -EINVAL;
	}
	snprintf(reply, size, "argc=%d", argc);
	return 0;
}

static void sock_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/ctl.sock", harness_tmpdir());
}

TEST(control_execute_parses_and_dispatches)
{
	struct control_server *s;
	char path[108], reply[CONTROL_REPLY_MAX], longline[400];
	int calls = 0;

	sock_path(path, sizeof(path));
	CHECK_EQ(control_server_create(path, &s, NULL), 0);
	CHECK_EQ(control_server_register(s, "echo", "echo ARGS", echo_cmd, &calls), 0);
	CHECK_EQ(control_server_register(s, "echo", "again", echo_cmd, &calls), -EEXIST);
	control_server_execute(s, "echo a  b\tc", reply, sizeof(reply));
	CHECK(!strcmp(reply, "ok argc=4"));
	control_server_execute(s, "echo fail", reply, sizeof(reply));
	CHECK(!strcmp(reply, "error: asked to fail"));
	control_server_execute(s, "   ", reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: empty command", 20));
	control_server_execute(s, "nope", reply, sizeof(reply));
	CHECK(!strcmp(reply, "error: unknown command 'nope' (try help)"));
	control_server_execute(s, "echo \x1b[2J", reply, sizeof(reply));
	CHECK(!strcmp(reply, "error: the command has non-printable bytes"));
	control_server_execute(s, "echo 1 2 3 4 5 6 7 8", reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: more than", 16));
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	control_server_execute(s, longline, reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: the command is longer", 28));
	control_server_execute(s, "help", reply, sizeof(reply));
	CHECK(!strcmp(reply, "ok help: list the commands; echo ARGS"));
	CHECK_EQ(calls, 2);
	control_server_destroy(s);
	CHECK(access(path, F_OK) != 0);		/* unlinked */
}

TEST(control_balloon_commands_reject_bad_sizes)
{
	struct control_server *s;
	struct virtio_balloon *b;
	struct virtio_balloon_options opt = { 0 };
	char path[108], reply[CONTROL_REPLY_MAX];
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, 16 << 20, false, NULL), 0);
	CHECK_EQ(virtio_balloon_create(&vm, 0, &opt, &b, NULL), 0);
	sock_path(path, sizeof(path));
	CHECK_EQ(control_server_create(path, &s, NULL), 0);
	CHECK_EQ(balloon_commands_register(s, b), 0);
	control_server_execute(s, "balloon", reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: usage: balloon SIZE", 26));
	control_server_execute(s, "balloon -4M", reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: invalid size '-4M'", 25));
	control_server_execute(s, "balloon 99999999999999999999999", reply, sizeof(reply));
	CHECK(!strncmp(reply, "error: invalid size", 19));
	control_server_execute(s, "balloon 1000", reply, sizeof(reply));
	CHECK(strstr(reply, "not a multiple of 4K") != NULL);
	control_server_execute(s, "balloon 17M", reply, sizeof(reply));
	CHECK(strstr(reply, "larger than guest RAM") != NULL);
	control_server_execute(s, "balloon 8M", reply, sizeof(reply));
	CHECK(!strcmp(reply, "ok"));
	control_server_execute(s, "balloon-stats", reply, sizeof(reply));
	CHECK(!strncmp(reply, "ok target_pages=2048 actual_pages=0 ", 36));
	control_server_destroy(s);
	vm_destroy(&vm);
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until the peer closes or 2 s pass. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
	size_t have = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 2000) != 1)
			break;
		n = read(fd, buf + have, size - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	buf[have] = 0;
	return (ssize_t)have;
}

TEST(control_socket_round_trip_and_hostile_lines)
{
	struct control_server *s;
	char path[108], reply[CONTROL_REPLY_MAX], big[2048];
	struct errmsg err = { "" };
	int calls = 0, fd;

	sock_path(path, sizeof(path));
	CHECK_EQ(control_server_create(path, &s, NULL), 0);
	CHECK_EQ(control_server_register(s, "echo", "echo", echo_cmd, &calls), 0);
	CHECK_EQ(control_server_start(s, NULL), 0);
	CHECK_EQ(control_server_register(s, "late", "late", echo_cmd, &calls), -EBUSY);

	CHECK_EQ(control_request(path, "echo x", reply, sizeof(reply), 2000, &err), 0);
	CHECK(!strcmp(reply, "ok argc=2"));

	/* two commands in one write, one with CRLF, one with a NUL */
	fd = connect_to(path);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "echo\r\nec\0ho\n", 12), 12);
	shutdown(fd, SHUT_WR);
	read_all(fd, big, sizeof(big));
	close(fd);
	CHECK(!strcmp(big, "ok argc=1\nerror: the command has a NUL byte\n"));

	/* a line with no end: an error, then the server hangs up */
	fd = connect_to(path);
	CHECK(fd >= 0);
	memset(big, 'a', sizeof(big));
	CHECK(write(fd, big, sizeof(big)) > 0);
	read_all(fd, big, sizeof(big));
	close(fd);
	CHECK(!strncmp(big, "error: line longer than 255 bytes\n", 34));

	/* still serving */
	CHECK_EQ(control_request(path, "echo y z", reply, sizeof(reply), 2000, &err), 0);
	CHECK(!strcmp(reply, "ok argc=3"));
	control_server_destroy(s);
	CHECK(control_request(path, "echo", reply, sizeof(reply), 2000, &err) < 0);
	CHECK(strstr(err.text, "cannot reach") != NULL);
}

TEST(control_socket_path_checks)
{
	struct control_server *s, *s2;
	char path[108], longpath[200];
	struct errmsg err = { "" };
	FILE *f;

	sock_path(path, sizeof(path));
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	CHECK_EQ(control_server_create(longpath, &s, &err), -ENAMETOOLONG);
	/* a live socket is not taken over; a stale one is */
	CHECK_EQ(control_server_create(path, &s, NULL), 0);
	CHECK_EQ(control_server_create(path, &s2, &err), -EADDRINUSE);
	control_server_destroy(s);
	/* a regular file in the way is left alone */
	f = fopen(path, "w");
	CHECK(f != NULL);
	fclose(f);
	CHECK_EQ(control_server_create(path, &s, &err), -EEXIST);
	unlink(path);
}
