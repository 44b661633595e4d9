// SPDX-License-Identifier: MIT
/*
 * The memd store's connections between ops and at its end (see
 * store_memd_internal.h):
 *
 *   - Pooled connections idle for IDLE_CLOSE_MS are closed, all but the
 *     most recently used one per server: a VM that once paged hard must
 *     not hold a burst's worth of connections on every server for good
 *     (issue 13: the pools of ~30 VMs filled a memd's 256 slots).
 *   - That one is kept, so that memd sees the VM alive: memd drops a
 *     namespace that has had no connection for its --namespace-ttl.  It
 *     says something (a STATS) when nothing went over it for
 *     HEARTBEAT_MS, well within memd's default --idle-timeout (60 s), and
 *     a server left without a connection (memd closed it, or it failed)
 *     gets a new one then.
 *   - When the store is destroyed, each server it is connected to is told
 *     to RELEASE the namespace: the VM is gone, and so is the use of its
 *     pages.  Within RELEASE_WAIT_MS, so that a VM's end stays well
 *     within rackvm's shutdown bound whatever the servers do.  Only a
 *     store that opened does that: one that failed to open must not drop
 *     a namespace another VM may be using.
 *
 * A thread per store does the first two, waking every TICK_MS; it uses
 * the servers' pools and op_link() like any op.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "remote/store_memd_internal.h"
#include "util/full_io.h"

#define TICK_MS 1000
#define IDLE_CLOSE_MS 5000
#define HEARTBEAT_MS 20000
#define CALL_TIMEOUT_MS 1000
#define RELEASE_WAIT_MS 1000

struct idle_reaper {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;			/* written under lock, atomically */
	int64_t alive_ms[MAX_SERVERS];	/* a connection last known to work */
};

/* Waits until @fd is ready for @events, or until @deadline (ms). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left = deadline - now_ms();
	int n = left > 0 ? poll(&p, 1, (int)left) : 0;

	return n == 1 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* Sends a request without a body (STATS, RELEASE) on @c; its id in
 * *@id.  0 or -errno. */
static int send_empty(struct conn *c, uint8_t op, uint64_t *id,
		      int64_t deadline)
{
	uint8_t msg[MEMD_HDR_SIZE];
	struct memd_hdr h = { .op = op, .id = c->next_id++ };
	size_t sent = 0;
	int ret = 0;

	*id = h.id;
	memd_hdr_encode(&h, msg);
	while (!ret && sent < sizeof(msg)) {
		size_t n;

		ret = send_some(c->fd, msg + sent, sizeof(msg) - sent, &n);
		sent += n;
		if (!ret && sent < sizeof(msg))
			ret = wait_fd(c->fd, POLLOUT, deadline);
	}
	return ret;
}

/* Reads exactly @len bytes from the non-blocking @fd by @deadline. */
static int read_exact(int fd, uint8_t *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);
		int ret;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret)
			return ret;
	}
	return 0;
}

/* The reply to request (@op, @id) on @c: its status, or -errno (then @c
 * is not fit for reuse). */
static int read_reply(struct conn *c, uint8_t op, uint64_t id,
		      int64_t deadline)
{
	uint8_t hdr[MEMD_HDR_SIZE], body[MEMD_STATS_SIZE];
	struct memd_hdr h;
	int ret = read_exact(c->fd, hdr, sizeof(hdr), deadline);

	if (!ret && (memd_hdr_decode(hdr, &h) ||
		     memd_check_reply(&h, op, id, 0, NULL)))
		ret = -EBADMSG;
	if (!ret)
		ret = read_exact(c->fd, body, h.body_len, deadline);
	return ret ? ret : h.status;
}

static bool remote_down(struct remote *r)
{
	bool down;

	pthread_mutex_lock(&r->lock);
	down = r->down;
	pthread_mutex_unlock(&r->lock);
	return down;
}

/* Says something to server @s over a connection of the pool (or a new
 * one); true if it answered.  Not to a server that is down: the ops
 * retry it, and the thread must not block on it while the store may be
 * destroyed. */
static bool heartbeat(struct memd_store *st, unsigned s)
{
	int64_t deadline = now_ms() + CALL_TIMEOUT_MS;
	struct link *l;
	struct op op;
	uint64_t id;
	int status = -1;

	if (remote_down(&st->servers[s]))
		return false;
	op_init(&op, st);
	l = &op.links[s];
	if (op_link(&op, s)) {
		status = send_empty(l->conn, MEMD_OP_STATS, &id, deadline);
		if (!status)
			status = read_reply(l->conn, MEMD_OP_STATS, id, deadline);
		/* a broken exchange leaves the connection unfit for the pool */
		if (status) {
			conn_close(l->conn);
			l->conn = NULL;
		}
	}
	op_finish(&op);
	return status == MEMD_ST_OK;
}

/* Closes @r's pooled connections idle for IDLE_CLOSE_MS but the most
 * recently used; moves *@alive to that one's last use. */
static void prune(struct remote *r, int64_t now, int64_t *alive)
{
	struct conn *closing = NULL, **pp;

	pthread_mutex_lock(&r->lock);
	pp = &r->idle;
	if (*pp) {
		if ((*pp)->idle_since_ms > *alive)
			*alive = (*pp)->idle_since_ms;
		pp = &(*pp)->next;
	}
	while (*pp) {
		struct conn *c = *pp;

		if (now - c->idle_since_ms < IDLE_CLOSE_MS) {
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
}

static void *reaper_main(void *arg)
{
	struct memd_store *st = arg;
	struct idle_reaper *rp = st->reaper;

	pthread_mutex_lock(&rp->lock);
	while (!rp->stop) {
		struct timespec ts = monotonic_deadline(TICK_MS * 1000000ull);
		int64_t now;

		pthread_cond_timedwait(&rp->wake, &rp->lock, &ts);
		if (rp->stop)
			break;
		pthread_mutex_unlock(&rp->lock);
		now = now_ms();
		/* stop is read without the lock here: a late look costs a
		 * server's round, nothing else */
		for (unsigned s = 0; s < st->nservers &&
		     !__atomic_load_n(&rp->stop, __ATOMIC_RELAXED); s++) {
			prune(&st->servers[s], now, &rp->alive_ms[s]);
			if (now - rp->alive_ms[s] >= HEARTBEAT_MS &&
			    heartbeat(st, s))
				rp->alive_ms[s] = now_ms();
		}
		pthread_mutex_lock(&rp->lock);
	}
	pthread_mutex_unlock(&rp->lock);
	return NULL;
}

int idle_reaper_start(struct memd_store *st, struct errmsg *err)
{
	struct idle_reaper *rp = calloc(1, sizeof(*rp));
	pthread_condattr_t attr;
	int ret;

	if (!rp)
		return errmsg_set(err, -ENOMEM, "out of memory");
	for (unsigned s = 0; s < st->nservers; s++)
		rp->alive_ms[s] = now_ms();
	pthread_mutex_init(&rp->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rp->wake, &attr);
	pthread_condattr_destroy(&attr);
	st->reaper = rp;
	ret = pthread_create(&rp->thread, NULL, reaper_main, st);
	if (ret) {
		pthread_cond_destroy(&rp->wake);
		pthread_mutex_destroy(&rp->lock);
		free(rp);
		st->reaper = NULL;
		return errmsg_set(err, -ret, "cannot start the memd backend's "
				  "connection thread");
	}
	return 0;
}

void idle_reaper_stop(struct memd_store *st)
{
	struct idle_reaper *rp = st->reaper;

	if (!rp)
		return;
	pthread_mutex_lock(&rp->lock);
	__atomic_store_n(&rp->stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&rp->wake);
	pthread_mutex_unlock(&rp->lock);
	pthread_join(rp->thread, NULL);
	pthread_cond_destroy(&rp->wake);
	pthread_mutex_destroy(&rp->lock);
	free(rp);
	st->reaper = NULL;
}

/* A pooled connection to @r, if it is up and has one. */
static struct conn *take_idle(struct remote *r)
{
	struct conn *c = NULL;

	pthread_mutex_lock(&r->lock);
	if (!r->down && r->idle) {
		c = r->idle;
		r->idle = c->next;
		r->nidle--;
	}
	pthread_mutex_unlock(&r->lock);
	return c;
}

void release_namespace(struct memd_store *st)
{
	int64_t deadline = now_ms() + RELEASE_WAIT_MS;
	struct conn *c[MAX_SERVERS];
	uint64_t id[MAX_SERVERS];

	/*
	 * Only over the connection each server's pool keeps: the VM is
	 * ending, and must not wait to connect or for servers that are down;
	 * sent to all at once, the answers awaited for RELEASE_WAIT_MS in
	 * all.  A server that gets no RELEASE drops the namespace when its
	 * TTL runs out.
	 */
	for (unsigned s = 0; s < st->nservers; s++) {
		c[s] = take_idle(&st->servers[s]);
		if (c[s] && send_empty(c[s], MEMD_OP_RELEASE, &id[s], deadline)) {
			conn_close(c[s]);
			c[s] = NULL;
		}
	}
	for (unsigned s = 0; s < st->nservers; s++) {
		if (c[s])
			read_reply(c[s], MEMD_OP_RELEASE, id[s], deadline);
		/* the server closes it after the reply */
		conn_close(c[s]);
	}
}
