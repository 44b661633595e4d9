// SPDX-License-Identifier: MIT
/*
 * The memcached store's connections (see store_memcached_internal.h):
 * libmemcached keeps the sockets; this file sets up the one handle the
 * spec describes (servers, binary protocol, consistent hashing, timeouts),
 * lends clones of it to ops, and turns its return codes into errnos and
 * messages that name the page and the server.
 *
 * Threads: any op thread.  The pool is under ms->lock; a handle taken
 * from it is the taking thread's alone until it gives it back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/store_memcached_internal.h"
#include "util/parse.h"

#define MAX_SERVERS 64
#define CONNECT_TIMEOUT_MS 1000
#define POLL_TIMEOUT_MS 1000
#define RETRY_TIMEOUT_S 1

/* --- errors ----------------------------------------------------------- */

bool mc_unreachable(memcached_return_t rc)
{
	switch (rc) {
	case MEMCACHED_CONNECTION_FAILURE:
	case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
	case MEMCACHED_CONNECTION_BIND_FAILURE:
	case MEMCACHED_HOST_LOOKUP_FAILURE:
	case MEMCACHED_WRITE_FAILURE:
	case MEMCACHED_READ_FAILURE:
	case MEMCACHED_UNKNOWN_READ_FAILURE:
	case MEMCACHED_ERRNO:
	case MEMCACHED_TIMEOUT:
	case MEMCACHED_SERVER_MARKED_DEAD:
	case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
	case MEMCACHED_SOME_ERRORS:
	case MEMCACHED_NO_SERVERS:
		return true;
	default:
		return false;
	}
}

int mc_errno(memcached_return_t rc)
{
	if (mc_unreachable(rc))
		return -EAGAIN;
	switch (rc) {
	case MEMCACHED_NOTFOUND:
		return -ENOENT;
	case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
	case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
		return -ENOSPC;
	case MEMCACHED_AUTH_FAILURE:
	case MEMCACHED_AUTH_PROBLEM:
		return -EACCES;
	default:
		return -EIO;
	}
}

/* "host:port" of the server holding @p. */
void server_of(memcached_st *h, const struct mc_page *p, char *buf,
	       size_t len)
{
	memcached_return_t rc;
	const memcached_instance_st *in =
		memcached_server_by_key(h, p->key, p->key_len, &rc);

	if (in)
		snprintf(buf, len, "%s:%u", memcached_server_name(in),
			 (unsigned)memcached_server_port(in));
	else
		snprintf(buf, len, "?");
}

/* Reports @rc for page @p in an op named @what. */
int page_error(memcached_st *h, const struct mc_page *p,
	       const char *what, memcached_return_t rc,
	       struct errmsg *err)
{
	char server[MAX_HOST + 8];
	int ret = mc_errno(rc);

	server_of(h, p, server, sizeof(server));
	if (ret == -ENOENT)
		return errmsg_set(err, ret,
				  "memcached: page 0x%llx is not on %s (evicted, "
				  "or never stored)",
				  (unsigned long long)p->page, server);
	if (ret == -ENOSPC)
		return errmsg_set(err, ret,
				  "memcached: %s is full, it refused page 0x%llx",
				  server, (unsigned long long)p->page);
	if (ret == -EAGAIN)
		return errmsg_set(err, ret,
				  "memcached: cannot reach %s for the %s of page 0x%llx (%s)",
				  server, what, (unsigned long long)p->page,
				  memcached_strerror(h, rc));
	return errmsg_set(err, ret, "memcached: %s of page 0x%llx on %s: %s",
			  what, (unsigned long long)p->page, server,
			  rc == MEMCACHED_ERRNO || !memcached_failed(rc) ?
				  memcached_last_error_message(h) :
				  memcached_strerror(h, rc));
}

/* --- the handle pool ------------------------------------------------------ */

memcached_st *handle_take(struct mc_store *ms, struct errmsg *err)
{
	memcached_st *h = NULL;

	pthread_mutex_lock(&ms->lock);
	while (!ms->n_idle && ms->n_made == MAX_HANDLES)
		pthread_cond_wait(&ms->handle_free, &ms->lock);
	if (ms->n_idle) {
		h = ms->idle[--ms->n_idle];
	} else {
		h = memcached_clone(NULL, ms->proto);
		if (h)
			ms->n_made++;
	}
	pthread_mutex_unlock(&ms->lock);
	if (!h)
		errmsg_set(err, -ENOMEM, "memcached: cannot make a connection handle");
	return h;
}

void handle_give(struct mc_store *ms, memcached_st *h)
{
	pthread_mutex_lock(&ms->lock);
	ms->idle[ms->n_idle++] = h;
	pthread_cond_signal(&ms->handle_free);
	pthread_mutex_unlock(&ms->lock);
}

/* --- the spec ---------------------------------------------------------------- */

/*
 * Splits one "HOST:PORT" or "[IPv6]:PORT" of the spec into @host and
 * @port.  Host names are checked for the characters a name or address
 * can have, so nothing else reaches the resolver.
 */
static int parse_server(const char *item, char *host, unsigned *port,
			struct errmsg *err)
{
	const char *colon = strrchr(item, ':');
	const char *h = item;
	size_t hlen;

	if (!colon)
		return errmsg_set(err, -EINVAL,
				  "memcached: '%s' is not HOST:PORT", item);
	hlen = (size_t)(colon - item);
	if (hlen >= 2 && item[0] == '[' && item[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(item, ':', hlen)) {
		return errmsg_set(err, -EINVAL,
				  "memcached: '%s': write an IPv6 address as [ADDR]:PORT",
				  item);
	}
	if (!hlen || hlen > MAX_HOST)
		return errmsg_set(err, -EINVAL,
				  "memcached: '%s' has no valid host", item);
	for (size_t i = 0; i < hlen; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789.-_:", h[i]) || !h[i])
			return errmsg_set(err, -EINVAL,
					  "memcached: '%s' has a bad character in its host",
					  item);
	if (parse_uint(colon + 1, 1, 65535, port))
		return errmsg_set(err, -EINVAL,
				  "memcached: '%s' needs a port in 1-65535", item);
	memcpy(host, h, hlen);
	host[hlen] = 0;
	return 0;
}

int add_servers(struct mc_store *ms, const char *args,
		struct errmsg *err)
{
	char *list = strdup(args), *save = NULL, *item;
	char seen[MAX_SERVERS][MAX_HOST + 8];
	unsigned count = 0;
	int ret = 0;

	if (!list)
		return errmsg_set(err, -ENOMEM, "memcached: out of memory");
	if (!*args || args[strlen(args) - 1] == ',' || strstr(args, ",,") ||
	    args[0] == ',')
		ret = errmsg_set(err, -EINVAL,
				 "memcached: give servers as HOST:PORT[,HOST:PORT...], not '%s'",
				 args);
	for (item = strtok_r(list, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save)) {
		char host[MAX_HOST + 1];
		unsigned port;
		memcached_return_t rc;

		ret = parse_server(item, host, &port, err);
		if (ret)
			break;
		if (count == MAX_SERVERS) {
			ret = errmsg_set(err, -EINVAL,
					 "memcached: at most %d servers", MAX_SERVERS);
			break;
		}
		snprintf(seen[count], sizeof(seen[count]), "%s:%u", host, port);
		for (unsigned i = 0; i < count; i++)
			if (!strcmp(seen[i], seen[count]))
				ret = errmsg_set(err, -EINVAL,
						 "memcached: server %s is listed twice",
						 seen[count]);
		if (ret)
			break;
		count++;
		rc = memcached_server_add(ms->proto, host, (in_port_t)port);
		if (memcached_failed(rc))
			ret = errmsg_set(err, -EINVAL, "memcached: adding %s: %s",
					 item, memcached_strerror(ms->proto, rc));
	}
	free(list);
	return ret;
}

int mc_configure(memcached_st *h, struct errmsg *err)
{
	static const struct {
		memcached_behavior_t behavior;
		uint64_t value;
	} settings[] = {
		{ MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1 },
		{ MEMCACHED_BEHAVIOR_TCP_NODELAY, 1 },
		{ MEMCACHED_BEHAVIOR_TCP_KEEPALIVE, 1 },
		{ MEMCACHED_BEHAVIOR_DISTRIBUTION,
		  MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA },
		{ MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, CONNECT_TIMEOUT_MS },
		{ MEMCACHED_BEHAVIOR_POLL_TIMEOUT, POLL_TIMEOUT_MS },
		{ MEMCACHED_BEHAVIOR_SND_TIMEOUT, POLL_TIMEOUT_MS * 1000 },
		{ MEMCACHED_BEHAVIOR_RCV_TIMEOUT, POLL_TIMEOUT_MS * 1000 },
		{ MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, RETRY_TIMEOUT_S },
		/* keys must stay where they are; see the header comment */
		{ MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS, 0 },
		{ MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0 },
	};

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		memcached_return_t rc = memcached_behavior_set(
			h, settings[i].behavior, settings[i].value);

		if (memcached_failed(rc))
			return errmsg_set(err, -EIO,
					  "memcached: libmemcached setting %d: %s",
					  (int)settings[i].behavior,
					  memcached_strerror(h, rc));
	}
	return 0;
}
