// SPDX-License-Identifier: MIT
/* Unix stream sockets at a path, see unix_socket.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/unix_socket.h"

static int make_addr(const char *path, struct sockaddr_un *addr,
		     struct errmsg *err)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(addr->sun_path))
		return errmsg_set(err, -ENAMETOOLONG,
				  "socket path '%s' is empty or longer than %zu bytes",
				  path, sizeof(addr->sun_path) - 1);
	memcpy(addr->sun_path, path, strlen(path));
	return 0;
}

/* A socket file left by a rackvm that died may be replaced; a live one
 * or any other file may not. */
static int clear_stale_socket(const struct sockaddr_un *addr,
			      struct errmsg *err)
{
	struct stat st;
	int fd, ret;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 :
			errmsg_set(err, -errno, "socket %s: %s",
				   addr->sun_path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errmsg_set(err, -EEXIST, "socket %s: a file that "
				  "is not a socket is in the way", addr->sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "socket: %s", strerror(errno));
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (ret == 0)
		return errmsg_set(err, -EADDRINUSE, "socket %s is in use "
				  "by a running process", addr->sun_path);
	if (unlink(addr->sun_path) < 0 && errno != ENOENT)
		return errmsg_set(err, -errno, "socket %s: %s",
				  addr->sun_path, strerror(errno));
	return 0;
}

int unix_listen(const char *path, int backlog, int *out, struct errmsg *err)
{
	struct sockaddr_un addr;
	int fd, ret;

	*out = -1;
	ret = make_addr(path, &addr, err);
	if (!ret)
		ret = clear_stale_socket(&addr, err);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = errmsg_set(err, -errno, "socket %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	/* Before the chmod the file has the umask's mode; connecting needs
	 * write permission, which a usual umask (022, 077) gives no one
	 * else, so the window lets no stranger in. */
	if (chmod(path, 0600) < 0 || listen(fd, backlog) < 0) {
		ret = errmsg_set(err, -errno, "socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return ret;
	}
	*out = fd;
	return 0;
}

int unix_connect(const char *path, int *out, struct errmsg *err)
{
	struct sockaddr_un addr;
	int fd, ret;

	*out = -1;
	ret = make_addr(path, &addr, err);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = errmsg_set(err, -errno, "cannot reach %s: %s", path,
				 strerror(errno));
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}
