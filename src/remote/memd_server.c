// SPDX-License-Identifier: MIT
/*
 * The memd server, see memd_server.h: creating it, its listening socket,
 * the event loop, stopping it from any thread, its address and counters.
 * Who is connected is memd_server_accept.c's, the requests
 * memd_server_conn.c's, namespaces and pages memd_server_namespace.c's
 * and memd_server_storage.c's; memd_server_internal.h is what they share.
 *
 * The loop does, in turn: the connections and namespaces whose deadline
 * has passed, one step of background work (growing indexes, freeing
 * released namespaces), and one batch of socket events, waiting for them
 * until the next deadline, or not at all while background work remains.
 *
 * Threads: memd_server_run()'s caller is the loop thread; create and
 * destroy happen outside a run; stop, address, port and stats may be
 * called from any thread (they read what create fixed, or atomics).
 */
#include "remote/memd_server_internal.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_EVENTS 64

__attribute__((format(printf, 3, 4)))
void say(struct memd_server *s, enum memd_log_level level,
	 const char *fmt, ...)
{
	char line[320];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->log(s->log_opaque, level, line);
}

__attribute__((format(printf, 4, 5)))
void say_limited(struct memd_server *s, struct log_limit *limit,
		 enum memd_log_level level, const char *fmt, ...)
{
	uint64_t now = monotonic_ns();
	char line[320];
	va_list ap;

	if (limit->last_ns && now - limit->last_ns < NSEC_PER_SEC) {
		limit->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (limit->held)
		say(s, level, "%s (and %llu more like it in the last %.0f s)",
		    line, (unsigned long long)limit->held,
		    (double)(now - limit->last_ns) / 1e9);
	else
		say(s, level, "%s", line);
	limit->last_ns = now;
	limit->held = 0;
}

void format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
		 size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

/* ---- the server ---------------------------------------------------------- */

static int open_listener(struct memd_server *s, const char *listen_addr,
			 struct errmsg *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char host[MEMD_HOST_MAX], port[8];
	uint16_t port_num;
	int ret, one = 1;

	ret = memd_parse_hostport(listen_addr, host, sizeof(host), &port_num, err);
	if (ret)
		return ret;
	snprintf(port, sizeof(port), "%u", port_num);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret)
		return errmsg_set(err, -EINVAL, "cannot listen on %s: %s",
				  listen_addr, gai_strerror(ret));
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
				SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
			ret = -errno;
			close(fd);
			continue;
		}
		s->listen_fd = fd;
		s->addr_len = sizeof(s->addr);
		getsockname(fd, (struct sockaddr *)&s->addr, &s->addr_len);
		ret = 0;
		break;
	}
	freeaddrinfo(res);
	if (ret)
		return errmsg_set(err, ret, "cannot listen on %s: %s", listen_addr,
				  strerror(-ret));
	return 0;
}

static int epoll_add(struct memd_server *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static uint64_t or_default(uint64_t value, uint64_t def)
{
	return value ? value : def;
}

/* The config's limits, its zeros replaced by the defaults. */
static int take_config(struct memd_server *s, const struct memd_server_config *cfg,
		       struct errmsg *err)
{
	if (cfg->capacity < MEMD_MIN_CAPACITY || cfg->capacity > MEMD_MAX_CAPACITY)
		return errmsg_set(err, -EINVAL, "the capacity must be 4M to 16T, "
				  "not %llu bytes", (unsigned long long)cfg->capacity);
	if (cfg->namespace_quota && cfg->namespace_quota < PAGE_STORE_PAGE)
		return errmsg_set(err, -EINVAL, "a namespace quota must be at "
				  "least one page (4K), not %llu bytes",
				  (unsigned long long)cfg->namespace_quota);
	s->capacity = cfg->capacity;
	s->quota_pages = cfg->namespace_quota / PAGE_STORE_PAGE;
	s->max_clients = (unsigned)or_default(cfg->max_clients,
					      MEMD_DEFAULT_MAX_CLIENTS);
	s->max_per_peer = (unsigned)or_default(cfg->max_conns_per_peer,
					       MEMD_DEFAULT_MAX_CONNS_PER_PEER);
	s->namespace_ttl_ns = or_default(cfg->namespace_ttl_ns,
					 MEMD_DEFAULT_NAMESPACE_TTL_NS);
	s->hello_timeout_ns = or_default(cfg->hello_timeout_ns,
					 MEMD_DEFAULT_HELLO_TIMEOUT_NS);
	s->idle_timeout_ns = or_default(cfg->idle_timeout_ns,
					MEMD_DEFAULT_IDLE_TIMEOUT_NS);
	s->log = cfg->log;
	s->log_opaque = cfg->log_opaque;
	return 0;
}

int memd_server_create(const struct memd_server_config *cfg,
		       struct memd_server **out, struct errmsg *err)
{
	struct memd_server *s;
	int ret;

	/* the keyed hashes' keys come from libsodium's generator */
	if (sodium_init() < 0)
		return errmsg_set(err, -EIO, "libsodium cannot start");
	s = calloc(1, sizeof(*s));
	if (!s)
		return errmsg_set(err, -ENOMEM, "out of memory");
	s->epoll_fd = s->listen_fd = s->stop_fd = -1;
	list_init(&s->waiting);
	list_init(&s->active);
	list_init(&s->namespaces);
	list_init(&s->orphans);
	ret = take_config(s, cfg, err);
	if (!ret)
		ret = storage_init(s, err);
	if (!ret && peers_init(s))
		ret = errmsg_set(err, -ENOMEM, "out of memory");
	if (!ret)
		ret = auth_init(s, err);
	if (!ret)
		ret = open_listener(s, cfg->listen, err);
	if (ret)
		goto fail;
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epoll_fd < 0 || s->stop_fd < 0 ||
	    epoll_add(s, s->listen_fd, &s->listen_fd) ||
	    epoll_add(s, s->stop_fd, &s->stop_fd)) {
		ret = errmsg_set(err, -errno, "epoll: %s", strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	memd_server_destroy(s);
	return ret;
}

/* Deadlines and background work; how long the loop may then wait for
 * events (ms, -1: until one comes). */
static int housekeeping(struct memd_server *s)
{
	uint64_t now = monotonic_ns();
	uint64_t a = conns_expire(s, now), b = namespaces_expire(s, now);
	uint64_t next = !a || (b && b < a) ? b : a;

	/* no batch of events is being handled: what expired can go now */
	conns_bury(s);

	if (storage_background(s))
		return 0;
	if (!next)
		return -1;
	/* rounded up: waking before the deadline would spin */
	return (next - now) / 1000000 >= INT_MAX ? INT_MAX :
	       (int)((next - now + 999999) / 1000000);
}

int memd_server_run(struct memd_server *s, struct errmsg *err)
{
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(s->epoll_fd, evs, MAX_EVENTS, housekeeping(s));
		bool stop = false;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errmsg_set(err, -errno, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			uint64_t v;

			if (tag == &s->stop_fd)
				stop = read(s->stop_fd, &v, sizeof(v)) == sizeof(v);
			else if (tag == &s->listen_fd)
				accept_clients(s);
			else
				conn_event(s, tag, evs[i].events);
		}
		conns_bury(s);
		if (stop)
			return 0;
	}
}

void memd_server_stop(struct memd_server *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->stop_fd, &one, sizeof(one));

	(void)n;	/* a full counter already means "stop" */
}

void memd_server_address(const struct memd_server *s, char *buf, size_t len)
{
	format_addr((const struct sockaddr *)&s->addr, s->addr_len, buf, len);
}

uint16_t memd_server_port(const struct memd_server *s)
{
	if (s->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&s->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&s->addr)->sin_port);
}

void memd_server_stats(struct memd_server *s, struct memd_stats *out)
{
	*out = (struct memd_stats){
		.capacity = s->capacity,
		.used = counter_get(&s->c.used),
		.pages = counter_get(&s->c.pages),
		.namespaces = counter_get(&s->c.namespaces),
		.connections = counter_get(&s->c.connections),
		.pages_put = counter_get(&s->c.pages_put),
		.pages_got = counter_get(&s->c.pages_got),
		.pages_dropped = counter_get(&s->c.pages_dropped),
		.full_refusals = counter_get(&s->c.full_refusals),
		.bad_secrets = counter_get(&s->c.bad_secrets),
	};
}

void memd_server_destroy(struct memd_server *s)
{
	if (!s)
		return;
	conns_close_all(s);
	peers_free(s);
	storage_free(s);
	auth_free(s);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	free(s);
}
