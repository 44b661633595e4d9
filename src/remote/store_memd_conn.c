// SPDX-License-Identifier: MIT
/*
 * The memd store's connections (see store_memd_internal.h): TCP connect
 * with a timeout and the handshake (store_memd_hello.c), each server's
 * pool of idle connections, and a server's down state: marked down by the
 * op that saw it fail, brought back after RETRY_MS (longer while it
 * keeps failing) by the maintenance thread, which first waits for the
 * requests still in flight on the connections of before the failure,
 * then cleans up its fenced pages, and only then lets ops use it again.
 * The pools' upkeep (store_memd_idle.c) goes through remote_prune() and
 * remote_take_idle() here.
 *
 * Threads: any op thread, and the maintenance thread (recovery, probes,
 * the pools' upkeep); at the store's end, the thread that destroys it.
 * A server's pool and state (struct remote below its lock) change only
 * under that lock; a connection out of the pool belongs to the one op
 * that checked it out, and counts in its server's nbusy until it is back
 * in the pool or closed.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote/store_memd_internal.h"

#define RETRY_MAX_MS 2000		/* RETRY_MS doubling while it fails */
#define CONNECT_TIMEOUT_MS 2000
#define MAX_IDLE 8			/* idle connections kept per server */
#define PROBE_MS 1000			/* an idle server is checked on */
/* How long recovery waits for requests of before a failure: longer
 * than an op's I/O timeout, several times over. */
#define RECOVER_WAIT_MS 10000

/* A connection out of the pool is counted in its server's nbusy, so that
 * recovery can wait for the requests sent before a failure. */
static void conn_unbusy(struct conn *c)
{
	struct remote *r = c->owner;

	pthread_mutex_lock(&r->lock);
	if (--r->nbusy == 0)
		pthread_cond_broadcast(&r->unbusy);
	pthread_mutex_unlock(&r->lock);
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	free(c->tx);
	free(c->rx);
	free(c);
}

void conn_close(struct conn *c)
{
	if (!c)
		return;
	if (!c->idle)
		conn_unbusy(c);
	conn_free(c);
}

/* Idle connections only: they are not counted. */
void conn_close_list(struct conn *c)
{
	while (c) {
		struct conn *next = c->next;

		conn_free(c);
		c = next;
	}
}

/* An idle connection has nothing to read: if it has, the server closed
 * it (or broke the protocol). */
static bool conn_idle_ok(const struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

static int tcp_connect(const struct remote *r, int *out, struct errmsg *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[8];
	int ret, fd = -1, one = 1;

	snprintf(port, sizeof(port), "%u", r->port);
	ret = getaddrinfo(r->host, port, &hints, &res);
	if (ret)
		return errmsg_set(err, -EHOSTUNREACH, "%s: %s", r->label,
				  gai_strerror(ret));
	ret = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p = { .events = POLLOUT };
		socklen_t len = sizeof(ret);
		int soerr = 0;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
			soerr = errno;
		} else {
			p.fd = fd;
			if (poll(&p, 1, CONNECT_TIMEOUT_MS) != 1)
				soerr = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
				soerr = errno;
		}
		if (!soerr) {
			ret = 0;
			break;
		}
		ret = -soerr;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (ret)
		return errmsg_set(err, ret, "%s: %s", r->label, strerror(-ret));
	/* requests and replies are awaited: no Nagle delay */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = fd;
	return 0;
}

static struct conn *conn_new(struct remote *r, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c) {
		c->tx = malloc(MEMD_MAX_MSG);
		c->rx = malloc(MEMD_MAX_MSG);
	}
	if (!c || !c->tx || !c->rx) {
		if (c) {
			free(c->tx);
			free(c->rx);
			free(c);
		}
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->next_id = 1;
	c->owner = r;
	pthread_mutex_lock(&r->lock);
	r->nbusy++;
	pthread_mutex_unlock(&r->lock);
	return c;
}

void remote_mark_down(struct remote *r, const char *why)
{
	struct conn *idle;

	pthread_mutex_lock(&r->lock);
	if (!r->down)
		r->down_since_ms = now_ms();
	r->down = true;
	r->last_failure_ms = now_ms();
	r->generation++;
	snprintf(r->why, sizeof(r->why), "%s", why);
	idle = r->idle;
	r->idle = NULL;
	r->nidle = 0;
	pthread_mutex_unlock(&r->lock);
	conn_close_list(idle);
}

void remote_release(struct remote *r, struct conn *c)
{
	pthread_mutex_lock(&r->lock);
	if (c->generation == r->generation && !r->down && r->nidle < MAX_IDLE) {
		c->idle_since_ms = now_ms();
		c->next = r->idle;
		c->idle = true;
		r->idle = c;
		r->nidle++;
		if (--r->nbusy == 0)
			pthread_cond_broadcast(&r->unbusy);
		c = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	conn_close(c);
}

/* Connects and says HELLO; what the server said of itself in @res.  On
 * failure the connection is closed. */
static int conn_open(struct memd_store *st, unsigned s, struct conn **out,
		     struct hello_result *res, struct errmsg *err)
{
	struct conn *c;
	int fd = -1, ret;

	ret = tcp_connect(&st->servers[s], &fd, err);
	if (ret)
		return ret;
	c = conn_new(&st->servers[s], fd);
	if (!c)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = conn_hello(st, s, c, res, err);
	if (ret) {
		conn_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

/*
 * Whether the server at @r's address lost our copies since we last
 * spoke (under its lock): a new identity is a memd that restarted, with
 * nothing in memory; a HELLO that created our namespace means it was not
 * there any more.  Either way no copy we put there before is left, and,
 * whoever created the namespace since, what it holds now is not ours to
 * read.  The first HELLO to a server only says who it is.
 */
static bool remote_lost_copies(const struct remote *r,
			       const struct hello_result *res)
{
	return r->reset_pending ||
	       (r->identified && (res->created ||
				  memcmp(r->identity, res->identity, MEMD_ID_SIZE)));
}

static void remote_identify(struct remote *r, const struct hello_result *res)
{
	memcpy(r->identity, res->identity, MEMD_ID_SIZE);
	r->identified = true;
	r->reset_pending = false;
}

/* Marks @r failed (under its lock) unless it already is. */
static void remote_fail_locked(struct remote *r, const char *why)
{
	if (!r->down) {
		r->down = true;
		r->down_since_ms = now_ms();
		r->generation++;
		snprintf(r->why, sizeof(r->why), "%s", why);
	}
	r->last_failure_ms = now_ms();
}

/* A connection out of @r's pool, checked out (under its lock), or NULL;
 * the stale ones met on the way onto *@stale, to be closed. */
static struct conn *pool_take_locked(struct remote *r, struct conn **stale)
{
	struct conn *c;

	while ((c = r->idle)) {
		r->idle = c->next;
		r->nidle--;
		if (c->generation == r->generation && conn_idle_ok(c)) {
			c->idle = false;
			r->nbusy++;
			return c;
		}
		c->next = *stale;
		*stale = c;
	}
	return NULL;
}

struct conn *remote_take_idle(struct remote *r)
{
	struct conn *c = NULL, *stale = NULL;

	pthread_mutex_lock(&r->lock);
	if (!r->down)
		c = pool_take_locked(r, &stale);
	pthread_mutex_unlock(&r->lock);
	conn_close_list(stale);
	return c;
}

int64_t remote_prune(struct remote *r, int64_t now, int64_t idle_ms)
{
	struct conn *closing = NULL, **pp;
	int64_t last = 0;

	pthread_mutex_lock(&r->lock);
	pp = &r->idle;
	if (*pp) {
		last = (*pp)->idle_since_ms;
		pp = &(*pp)->next;
	}
	while (*pp) {
		struct conn *c = *pp;

		if (now - c->idle_since_ms < idle_ms) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		r->nidle--;
		c->next = closing;
		closing = c;
	}
	pthread_mutex_unlock(&r->lock);
	conn_close_list(closing);
	return last;
}

/*
 * A connection to server @s for one op: an idle one, or a new one if the
 * server is up.  -EAGAIN (with why) when it is down: bringing it back is
 * the maintenance thread's (remote_recover()), never an op's, so that an
 * op neither waits for a cleanup nor uses a server before it is clean.
 * -EACCES when it refuses our secret (it is then down as well).
 */
static int remote_acquire(struct memd_store *st, unsigned s,
			  struct conn **out, struct errmsg *err)
{
	struct remote *r = &st->servers[s];
	struct conn *c = NULL, *stale = NULL;
	struct hello_result res;
	uint64_t generation;
	int ret;

	pthread_mutex_lock(&r->lock);
	c = pool_take_locked(r, &stale);
	if (!c && r->down) {
		ret = errmsg_set(err, -EAGAIN, "%s", r->why);
		pthread_mutex_unlock(&r->lock);
		conn_close_list(stale);
		return ret;
	}
	generation = r->generation;
	pthread_mutex_unlock(&r->lock);
	conn_close_list(stale);
	if (c) {
		*out = c;
		return 0;
	}

	ret = conn_open(st, s, &c, &res, err);
	pthread_mutex_lock(&r->lock);
	/* this HELLO may be the only one to say so (the next one finds
	 * the namespace it created): remembered for the recovery */
	if (!ret && remote_lost_copies(r, &res))
		r->reset_pending = true;
	if (!ret && (r->down || r->generation != generation)) {
		/* it failed meanwhile: its fenced pages are not clean yet */
		ret = errmsg_set(err, -EAGAIN, "%s", r->why);
	} else if (ret) {
		remote_fail_locked(r, err->text);
	} else if (r->reset_pending) {
		/* not ours to use until the maintenance thread has
		 * forgotten our copies there */
		ret = errmsg_set(err, -EAGAIN, "memd server %s lost our pages "
				 "(restarted?)", r->label);
		remote_fail_locked(r, err->text);
	} else {
		remote_identify(r, &res);
		c->generation = r->generation;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		conn_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

/*
 * Waits until no connection to @r opened before its failure is out: a
 * request still in flight on one (a PUT the server may have stored, whose
 * acknowledgement the op has yet to commit) must be settled before the
 * cleanup decides what to drop.  Ops finish in bounded time (the I/O
 * timeout), and @r, down, gives out no new connection meanwhile.  False
 * if they are not back within @ms.
 */
static bool remote_wait_unbusy(struct remote *r, int64_t ms)
{
	struct timespec until = monotonic_deadline((uint64_t)ms * 1000000);

	pthread_mutex_lock(&r->lock);
	while (r->nbusy &&
	       pthread_cond_timedwait(&r->unbusy, &r->lock, &until) == 0)
		;
	ms = r->nbusy;
	pthread_mutex_unlock(&r->lock);
	return !ms;
}

/*
 * Brings server @s back if it is down and due for a retry: waits for the
 * connections of before the failure, reconnects, drops its fenced pages
 * (or, if it lost everything, forgets every copy we had there), and only
 * then lets ops use it.  The maintenance thread's alone.
 */
void remote_recover(struct memd_store *st, unsigned s)
{
	struct remote *r = &st->servers[s];
	struct errmsg why = { "" };
	struct hello_result res;
	struct conn *c = NULL;
	bool lost;
	int ret;

	pthread_mutex_lock(&r->lock);
	if (!r->down || now_ms() - r->last_failure_ms < r->retry_ms) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	if (!remote_wait_unbusy(r, RECOVER_WAIT_MS))
		ret = errmsg_set(&why, -EAGAIN, "%s: requests of before its "
				 "failure still pending", r->label);
	else
		ret = conn_open(st, s, &c, &res, &why);
	if (!ret) {
		pthread_mutex_lock(&r->lock);
		lost = remote_lost_copies(r, &res);
		pthread_mutex_unlock(&r->lock);
		/* a server that lost everything holds nothing to clean:
		 * fencing what it had is all (the repair puts it back) */
		if (lost)
			forget_copies_on(st, s, 0);
		else
			ret = clean_fenced(st, s, &c, &why);
	}
	if (ret) {
		conn_close(c);
		pthread_mutex_lock(&r->lock);
		r->last_failure_ms = now_ms();
		/* a server that refuses us, or stays away: less often */
		r->retry_ms = r->retry_ms * 2 < RETRY_MAX_MS ? r->retry_ms * 2 :
							       RETRY_MAX_MS;
		snprintf(r->why, sizeof(r->why), "%s", why.text);
		pthread_mutex_unlock(&r->lock);
		return;
	}
	pthread_mutex_lock(&r->lock);
	remote_identify(r, &res);
	r->retry_ms = RETRY_MS;
	r->down = false;
	c->generation = r->generation;
	pthread_mutex_unlock(&r->lock);
	remote_release(r, c);
}

/*
 * Checks on an idle server now and then: pooled connections the server
 * closed (it restarted, or timed us out) are dropped, and a server left
 * with none gets a new one, whose HELLO says who answers now.  Left alone
 * while ops use the server: they see its failures themselves.  A pooled
 * connection that is fine stays as it was: a look is not a use, and its
 * last use is what the pools' upkeep goes by (store_memd_idle.c).
 */
void remote_probe(struct memd_store *st, unsigned s)
{
	struct remote *r = &st->servers[s];
	struct conn *c, *stale = NULL;
	struct errmsg why;
	bool due;

	pthread_mutex_lock(&r->lock);
	due = !r->down && !r->nbusy && now_ms() - r->last_probe_ms >= PROBE_MS;
	if (due) {
		r->last_probe_ms = now_ms();
		for (struct conn **pp = &r->idle; (c = *pp);) {
			if (c->generation == r->generation && conn_idle_ok(c)) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			r->nidle--;
			c->next = stale;
			stale = c;
		}
		due = !r->idle;
	}
	pthread_mutex_unlock(&r->lock);
	conn_close_list(stale);
	if (due && !remote_acquire(st, s, &c, &why))
		remote_release(r, c);
}

/* True when this op can use server @s (connecting on first use). */
bool op_link(struct op *op, unsigned s)
{
	struct link *l = &op->links[s];
	struct errmsg why;
	int ret;

	if (l->state != LINK_UNKNOWN)
		return l->state == LINK_UP;
	ret = remote_acquire(op->st, s, &l->conn, &why);
	if (!ret) {
		l->state = LINK_UP;
		return true;
	}
	l->state = LINK_DOWN;
	l->error = ret;
	op->last_why = why;
	/* a server refusing us is one server failing: others may serve */
	if (ret == -ENOMEM)
		op_fatal(op, ret, "%s", why.text);
	return false;
}

/* Connects to every server; fine as long as one answers.  -EACCES if any
 * refuses the secret. */
int connect_all(struct memd_store *st, struct errmsg *err)
{
	struct errmsg why, first = { "" };
	unsigned up = 0;
	int first_ret = 0;

	for (unsigned s = 0; s < st->nservers; s++) {
		struct conn *c;
		int ret = remote_acquire(st, s, &c, &why);

		if (!ret) {
			remote_release(&st->servers[s], c);
			up++;
			continue;
		}
		if (ret == -EACCES || ret == -ENOMEM)
			return errmsg_set(err, ret, "%s", why.text);
		if (!first_ret) {
			first_ret = ret;
			first = why;
		}
	}
	if (!up)
		return errmsg_set(err, first_ret, "cannot reach any memd server: %s",
				  first.text);
	return 0;
}
