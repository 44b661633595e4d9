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
 *   - When the store is destroyed, each server it can reach is told to
 *     RELEASE the namespace: the VM is gone, and so is the use of its
 *     pages.  Only a store that opened does that: one that failed to
 *     open must not drop a namespace another VM may be using.
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
#define CALL_TIMEOUT_MS 2000

struct idle_reaper {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	int64_t alive_ms[MAX_SERVERS];	/* a connection last known to work */
};

/* Waits until @fd is ready for @events or CALL_TIMEOUT_MS passed. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n = poll(&p, 1, CALL_TIMEOUT_MS);

	return n == 1 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* Reads exactly @len bytes from the non-blocking @fd. */
static int read_exact(int fd, uint8_t *buf, size_t len)
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
		ret = wait_fd(fd, POLLIN);
		if (ret)
			return ret;
	}
	return 0;
}

/* One request without a body (STATS, RELEASE) on @c, on its own: the
 * reply's status, or -errno (then @c is not fit for reuse). */
static int conn_call(struct conn *c, uint8_t op)
{
	uint8_t msg[MEMD_HDR_SIZE], body[MEMD_STATS_SIZE];
	struct memd_hdr h = { .op = op, .id = c->next_id++ };
	size_t sent = 0;
	int ret = 0;

	memd_hdr_encode(&h, msg);
	while (!ret && sent < sizeof(msg)) {
		size_t n;

		ret = send_some(c->fd, msg + sent, sizeof(msg) - sent, &n);
		sent += n;
		if (!ret && sent < sizeof(msg))
			ret = wait_fd(c->fd, POLLOUT);
	}
	if (!ret)
		ret = read_exact(c->fd, msg, sizeof(msg));
	if (!ret && (memd_hdr_decode(msg, &h) ||
		     memd_check_reply(&h, op, c->next_id - 1, 0, NULL)))
		ret = -EBADMSG;
	if (!ret)
		ret = read_exact(c->fd, body, h.body_len);
	return ret ? ret : h.status;
}

/* Sends @opcode to server @s over a connection of the pool (or a new
 * one); true if it answered OK. */
static bool call_server(struct memd_store *st, unsigned s, uint8_t opcode)
{
	struct link *l;
	struct op op;
	int status = -1;

	op_init(&op, st);
	l = &op.links[s];
	if (op_link(&op, s)) {
		status = conn_call(l->conn, opcode);
		/* a broken exchange leaves the connection unfit: not back to
		 * the pool; nor after RELEASE, which the server answers by
		 * closing it */
		if (status || opcode == MEMD_OP_RELEASE) {
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
		for (unsigned s = 0; s < st->nservers; s++) {
			prune(&st->servers[s], now, &rp->alive_ms[s]);
			if (now - rp->alive_ms[s] >= HEARTBEAT_MS &&
			    call_server(st, s, MEMD_OP_STATS))
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
	rp->stop = true;
	pthread_cond_signal(&rp->wake);
	pthread_mutex_unlock(&rp->lock);
	pthread_join(rp->thread, NULL);
	pthread_cond_destroy(&rp->wake);
	pthread_mutex_destroy(&rp->lock);
	free(rp);
	st->reaper = NULL;
}

void release_namespace(struct memd_store *st)
{
	for (unsigned s = 0; s < st->nservers; s++) {
		struct remote *r = &st->servers[s];
		bool down;

		/* a server known to be down is not waited for: its copy of
		 * the namespace goes when its TTL runs out */
		pthread_mutex_lock(&r->lock);
		down = r->down;
		pthread_mutex_unlock(&r->lock);
		if (!down)
			call_server(st, s, MEMD_OP_RELEASE);
	}
}
