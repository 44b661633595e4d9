// SPDX-License-Identifier: MIT
/*
 * The API's HTTP server, see api_server.h.  libmicrohttpd parses HTTP
 * (and answers malformed requests itself, 400); this file collects a
 * request's body within API_BODY_MAX, hands the request to
 * api_dispatch() (or the configured dispatch function) and queues the response it built.
 */
#include <errno.h>
#include <libgen.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_json.h"
#include "api/api_server.h"
#include "util/unix_socket.h"

struct api_server {
	struct api_ctx ctx;
	api_dispatch_fn dispatch;	/* NULL: api_dispatch() on ctx */
	void *opaque;
	struct MHD_Daemon *daemon;
	int listen_fd;		/* ours: MHD is quiesced before it is closed */
	char *path;
	/* requests begun and not yet answered in full: the answer to
	 * PUT /vm/stop must reach its client although it ends the VM, and
	 * so the server, while its handler is still running */
	unsigned in_flight;
};

/* One request's state, from its first call to its completion. */
struct pending {
	struct api_server *server;
	char *body;
	size_t len;
	bool too_big;
	bool answered;		/* a response is queued */
};

static enum MHD_Result queue(struct MHD_Connection *c, struct pending *p,
			     struct api_response *r)
{
	struct MHD_Response *mr;
	enum MHD_Result ret;
	size_t len = r->body ? strlen(r->body) : 0;

	mr = MHD_create_response_from_buffer(len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!mr) {
		api_response_free(r);
		return MHD_NO;	/* MHD closes the connection */
	}
	r->body = NULL;		/* MHD frees it with the response */
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : "application/json");
	if (r->allow[0])
		MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
	ret = MHD_queue_response(c, r->status, mr);
	MHD_destroy_response(mr);
	p->answered = ret == MHD_YES;
	return ret;
}

static enum MHD_Result too_big(struct MHD_Connection *c, struct pending *p)
{
	struct api_response r = { 0 };

	api_reply_error(&r, 413, "the body is larger than %u bytes", API_BODY_MAX);
	return queue(c, p, &r);
}

/* Takes the body's next piece; past the limit the rest is dropped. */
static void take(struct pending *p, const char *data, size_t n)
{
	char *grown;

	if (p->too_big || !n)
		return;
	if (n > API_BODY_MAX - p->len) {
		p->too_big = true;
		return;
	}
	grown = realloc(p->body, p->len + n);
	if (!grown) {
		p->too_big = true;	/* answered 413: the body was too big for us */
		return;
	}
	memcpy(grown + p->len, data, n);
	p->body = grown;
	p->len += n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct api_server *s = cls;
	struct pending *p = *req_cls;
	struct api_response r;
	struct api_request req;
	const char *clen;

	(void)version;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return MHD_NO;
		*req_cls = p;
		p->server = s;
		__atomic_add_fetch(&s->in_flight, 1, __ATOMIC_RELAXED);
		/* a declared body over the limit is refused before it is read */
		clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (clen && strtoull(clen, NULL, 10) > API_BODY_MAX)
			return too_big(c, p);
		return MHD_YES;
	}
	if (p->answered) {
		*upload_size = 0;	/* the rest of a refused body: dropped */
		return MHD_YES;
	}
	if (*upload_size) {
		take(p, upload, *upload_size);
		*upload_size = 0;
		if (p->too_big)
			return too_big(c, p);
		return MHD_YES;
	}
	req = (struct api_request){
		.method = method, .path = url,
		.since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"),
		.body = p->body, .body_len = p->len,
	};
	if (s->dispatch)
		s->dispatch(s->opaque, &req, &r);
	else
		api_dispatch(&s->ctx, &req, &r);
	return queue(c, p, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (p) {
		__atomic_sub_fetch(&p->server->in_flight, 1, __ATOMIC_RELAXED);
		free(p->body);
		free(p);
		*req_cls = NULL;
	}
}

int api_default_socket(const char *name, char *buf, size_t len,
		       struct errmsg *err)
{
	const char *dir = geteuid() == 0 ? "/run" : getenv("XDG_RUNTIME_DIR");
	int n;

	if (!dir || !*dir)
		return errmsg_set(err, -ENOENT, "no API socket path: XDG_RUNTIME_DIR "
				  "is not set (give --api-socket PATH)");
	n = snprintf(buf, len, "%s/rackvm/%s.sock", dir, name);
	if (n < 0 || (size_t)n >= len)
		return errmsg_set(err, -ENAMETOOLONG, "the API socket path "
				  "%s/rackvm/%s.sock is too long", dir, name);
	return 0;
}

/* The directory of @path: created mode 0700, or one that is ours and
 * closed to others. */
static int private_dir(const char *path, struct errmsg *err)
{
	char *copy = strdup(path), *dir;
	struct stat st;
	int ret = 0;

	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	dir = dirname(copy);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		ret = errmsg_set(err, -errno, "API socket directory %s: %s", dir,
				 strerror(errno));
	else if (lstat(dir, &st) < 0)
		ret = errmsg_set(err, -errno, "API socket directory %s: %s", dir,
				 strerror(errno));
	else if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
		 (st.st_mode & 077))
		ret = errmsg_set(err, -EPERM, "API socket directory %s must be a "
				 "directory of this user with mode 0700", dir);
	free(copy);
	return ret;
}

int api_server_create(const struct api_server_config *cfg,
		      struct api_server **out, struct errmsg *err)
{
	struct api_server *s;
	int ret;

	*out = NULL;
	if (cfg->private_dir) {
		ret = private_dir(cfg->path, err);
		if (ret)
			return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(cfg->path))) {
		free(s);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	s->ctx = cfg->ctx;
	s->dispatch = cfg->dispatch;
	s->opaque = cfg->opaque;
	ret = unix_listen(cfg->path, API_MAX_CONNECTIONS, &s->listen_fd, err);
	if (ret) {
		free(s->path);
		free(s);
		return ret;
	}
	/* No MHD_USE_ERROR_LOG: library code prints nothing; clients get
	 * their errors in the responses. */
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				     MHD_USE_ITC,
		0, NULL, NULL, on_request, s,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_END);
	if (!s->daemon) {
		ret = errmsg_set(err, -EIO, "API socket %s: the HTTP server "
				 "(libmicrohttpd) did not start", cfg->path);
		api_server_destroy(s);
		return ret;
	}
	*out = s;
	return 0;
}

void api_server_destroy(struct api_server *s)
{
	if (!s)
		return;
	if (s->daemon) {
		/* quiesced, MHD takes no new connection and leaves the
		 * listening socket to us (MHD_USE_ITC lets it tell its
		 * thread); the requests begun get API_DRAIN_MS to be answered */
		MHD_quiesce_daemon(s->daemon);
		for (unsigned ms = 0; ms < API_DRAIN_MS &&
		     __atomic_load_n(&s->in_flight, __ATOMIC_RELAXED); ms += 10)
			usleep(10000);
		MHD_stop_daemon(s->daemon);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	unlink(s->path);
	free(s->path);
	free(s);
}
