// SPDX-License-Identifier: MIT
/*
 * The memd page store: pages on one or more `rackvm memd` servers,
 * optionally replicated.  Spec: HOST:PORT[,HOST:PORT...][,replicas=N]
 * (at most MAX_SERVERS servers, N from 1 to their number, default 1).
 *
 * Placement: pages are placed in groups of 16 (page >> GROUP_SHIFT), so
 * that a run stays in one request where it can.  Each group ranks the
 * servers by rendezvous hashing (a hash of the group seeded by a hash of
 * the server's "HOST:PORT" as written): the ranking is stable, does not
 * depend on the order of the spec, and adding a server moves only the
 * groups it wins.  A group's home is the first N servers of its ranking.
 *
 * put writes every page to its N home servers.  A server that is down,
 * fails, or is full is replaced by the next one in the ranking, so put
 * succeeds as long as every page got at least one acknowledged copy: N
 * copies when N servers were up and had room, fewer (but never none)
 * otherwise.  It fails with -ENOSPC when some page found no room, and
 * -EAGAIN when no server could take it.
 * get reads each page from the first copy in ranking order that is
 * reachable and holds it with a good checksum (page_checksum()), falling
 * back to the next one on a dead server, a missing page or a bad
 * checksum.
 *
 * Copies that are not current.  The checksum covers a page's contents
 * and number, not its version: a copy left on a server that missed a
 * later put or drop (because it was down) would pass the check.  So the
 * client remembers, per server, the pages whose copy there must not be
 * read (the "fenced" bitmap, one bit per guest page), and per page
 * whether a current copy may live outside its home (the "spilled"
 * bitmap).  After a put, every server that may hold a copy but did not
 * acknowledge the new one is fenced for the page; a drop fences the
 * servers it cannot reach.  A server that comes back after a failure
 * first drops every page fenced on it, and is used again only then.  The
 * bitmaps cost (servers + 1) bits per guest page, allocated zeroed and
 * written only after failures.
 * A failed put drops (or fences) every page of the batch everywhere:
 * the contract allows a failed put to make pages unreadable, never to
 * leave part of the new data readable.
 *
 * Opening connects to every server and registers the namespace; it
 * succeeds when at least one server answers (the others are retried as
 * above), and fails with -EACCES when any refuses the secret.
 *
 * Concurrency: the ops may run on several threads at once for different
 * pages; two ops on one page must not overlap (the pager serialises
 * them), since which copy is current is decided per page.  Each op checks out a connection per server it needs from that server's
 * pool (connecting and saying HELLO when the pool is empty), sends all
 * its requests to all servers pipelined, reads the replies as they come,
 * and gives the connections back.  A server that fails is marked down:
 * its idle connections are closed, and reconnecting is tried again at
 * most every RETRY_MS, by one thread at a time.  A request that makes no
 * progress for IO_TIMEOUT_MS marks its server down.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "remote/memd_proto.h"
#include "remote/store_backends.h"
#include "util/full_io.h"
#include "util/parse.h"

#define MAX_SERVERS 16
#define GROUP_SHIFT 4
#define RETRY_MS 200
#define IO_TIMEOUT_MS 3000
#define CONNECT_TIMEOUT_MS 2000
#define MAX_IDLE 8			/* idle connections kept per server */
#define REQ_MAX_PIECES 64
#define LABEL_MAX (MEMD_HOST_MAX + 8)

struct conn {
	struct conn *next;
	int fd;
	uint64_t generation;		/* of its server when it was opened */
	uint64_t next_id;
	uint8_t *tx;			/* MEMD_MAX_MSG: the request being sent */
	size_t tx_len, tx_off;
	uint8_t *rx;			/* MEMD_MAX_MSG: replies being read */
	size_t rx_len;
};

struct remote {
	char host[MEMD_HOST_MAX];
	uint16_t port;
	char label[LABEL_MAX];		/* HOST:PORT as given */
	uint64_t seed;			/* its rendezvous hashing seed */
	uint64_t *fenced;		/* guest pages not to read here */
	pthread_mutex_t lock;		/* the fields below */
	struct conn *idle;
	unsigned nidle;
	uint64_t generation;		/* bumped at each failure */
	bool down;			/* failed; not used until recovered */
	bool recovering;		/* a thread is reconnecting it */
	int64_t last_failure_ms;
	char why[sizeof(struct errmsg)];	/* the last failure */
};

struct memd_store {
	struct page_store base;
	struct remote servers[MAX_SERVERS];
	unsigned nservers, replicas;
	char namespace_name[MEMD_NAME_MAX + 1];
	uint8_t secret[MEMD_SECRET_MAX];
	size_t secret_len;
	uint64_t ram_pages;
	uint64_t *spilled;		/* a current copy may be off home */
};

/* Pages of one caller run within one group, with the same servers. */
struct piece {
	uint64_t first;
	uint32_t count;
	uint32_t run;			/* index of the caller's run */
	uint8_t *data;			/* NULL for drops */
	uint64_t *sums;
	uint8_t order[MAX_SERVERS];	/* the group's server ranking */
	uint32_t home;			/* the first N of @order, as a mask */
	uint32_t allowed;		/* servers this op may use for it */
	uint32_t tried;
	uint32_t acked;			/* servers that stored/returned/dropped it */
	uint32_t round;			/* servers it goes to in this round */
	enum { PIECE_PENDING, PIECE_OK, PIECE_FAILED, PIECE_SPLIT } state;
	bool full, unreachable, bad_sum;
};

/* One request on one link. */
struct creq {
	uint8_t op;
	uint64_t id;
	int status;			/* MEMD_ST_*, or -1 before a reply */
	size_t nruns;
	struct page_run runs[MEMD_MAX_RUNS];
	uint32_t last_run;		/* caller run of runs[nruns - 1] */
	uint32_t npages;
	uint32_t npieces;
	uint32_t piece[REQ_MAX_PIECES];
};

enum link_state { LINK_UNKNOWN, LINK_UP, LINK_DOWN };

/* An op's use of one server. */
struct link {
	enum link_state state;
	int error;			/* why it is down (-errno) */
	struct conn *conn;
	struct creq *reqs;
	size_t nreqs, cap;
	size_t encoded, replied;
	int64_t last_progress_ms;
	bool failed;
};

struct op {
	struct memd_store *st;
	struct link links[MAX_SERVERS];
	struct piece *pieces;
	size_t npieces, cap;
	int fatal;			/* ends the op: -EACCES, -ENOMEM, ... */
	struct errmsg fatal_why;
	struct errmsg last_why;		/* the last server failure seen */
};

/* How drop_pages() picks the servers of each page. */
enum drop_mode {
	DROP_PAGES,		/* every server that may hold a copy */
	DROP_STALE,		/* the servers fenced for it (after a put) */
	DROP_EVERYWHERE,	/* all servers (after a failed put) */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t all_servers(const struct memd_store *st)
{
	return (uint32_t)((1ull << st->nservers) - 1);
}

/* ---- bitmaps (shared by threads: atomic word updates) ------------------- */

static bool bit_test(const uint64_t *map, uint64_t i)
{
	return __atomic_load_n(&map[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

static void bit_set(uint64_t *map, uint64_t i)
{
	__atomic_fetch_or(&map[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
}

static void bit_clear(uint64_t *map, uint64_t i)
{
	__atomic_fetch_and(&map[i / 64], ~(1ull << (i % 64)), __ATOMIC_RELAXED);
}

static uint32_t fenced_mask(const struct memd_store *st, uint64_t page)
{
	uint32_t m = 0;

	for (unsigned s = 0; s < st->nservers; s++)
		if (bit_test(st->servers[s].fenced, page))
			m |= 1u << s;
	return m;
}

/* ---- placement ------------------------------------------------------------ */

static void rank_servers(const struct memd_store *st, uint64_t group,
			 uint8_t *order)
{
	uint64_t weight[MAX_SERVERS];

	for (unsigned s = 0; s < st->nservers; s++) {
		weight[s] = XXH3_64bits_withSeed(&group, sizeof(group),
						 st->servers[s].seed);
		order[s] = (uint8_t)s;
	}
	for (unsigned i = 1; i < st->nservers; i++) {
		uint8_t s = order[i];
		unsigned j = i;

		for (; j > 0 && weight[order[j - 1]] < weight[s]; j--)
			order[j] = order[j - 1];
		order[j] = s;
	}
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->tx);
	free(c->rx);
	free(c);
}

static void conn_close_list(struct conn *c)
{
	while (c) {
		struct conn *next = c->next;

		conn_close(c);
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

static struct conn *conn_new(int fd)
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
	return c;
}

static void remote_mark_down(struct remote *r, const char *why)
{
	struct conn *idle;

	pthread_mutex_lock(&r->lock);
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

static void remote_release(struct remote *r, struct conn *c)
{
	pthread_mutex_lock(&r->lock);
	if (c->generation == r->generation && !r->down && r->nidle < MAX_IDLE) {
		c->next = r->idle;
		r->idle = c;
		r->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	conn_close(c);
}

/* ---- ops: links, requests, the exchange ----------------------------------- */

static void op_init(struct op *op, struct memd_store *st)
{
	memset(op, 0, sizeof(*op));
	op->st = st;
}

__attribute__((format(printf, 3, 4)))
static void op_fatal(struct op *op, int err, const char *fmt, ...)
{
	va_list ap;

	if (op->fatal)
		return;
	op->fatal = err;
	va_start(ap, fmt);
	vsnprintf(op->fatal_why.text, sizeof(op->fatal_why.text), fmt, ap);
	va_end(ap);
}

static void link_reset(struct link *l)
{
	l->nreqs = l->encoded = l->replied = 0;
}

static void op_finish(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];
		struct conn *c = l->conn;

		/* only a connection with nothing half-sent or half-read is
		 * fit for the next op */
		if (c && !c->rx_len && c->tx_off == c->tx_len)
			remote_release(&op->st->servers[s], c);
		else
			conn_close(c);
		free(l->reqs);
	}
	free(op->pieces);
}

static void link_fail(struct op *op, unsigned s, int error, const char *what)
{
	struct link *l = &op->links[s];
	struct remote *r = &op->st->servers[s];

	errmsg_set(&op->last_why, error, "%s: %s", r->label, what);
	l->failed = true;
	l->state = LINK_DOWN;
	l->error = error;
	conn_close(l->conn);
	l->conn = NULL;
	remote_mark_down(r, op->last_why.text);
}

static struct creq *link_new_req(struct link *l, uint8_t opcode)
{
	struct creq *q;

	if (l->nreqs == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;

		q = realloc(l->reqs, cap * sizeof(*q));
		if (!q)
			return NULL;
		l->reqs = q;
		l->cap = cap;
	}
	q = &l->reqs[l->nreqs++];
	memset(q, 0, sizeof(*q));
	q->op = opcode;
	q->status = -1;
	return q;
}

/* Encodes the next request into the connection's tx buffer. */
static int link_encode(struct op *op, struct link *l)
{
	struct memd_store *st = op->st;
	struct creq *q = &l->reqs[l->encoded];
	struct conn *c = l->conn;
	int len;

	q->id = c->next_id++;
	if (q->op == MEMD_OP_HELLO) {
		len = memd_encode_hello(c->tx, q->id, st->namespace_name,
					st->secret, st->secret_len);
		if (len < 0)
			return len;
		c->tx_len = (size_t)len;
	} else {
		c->tx_len = memd_encode_runs(c->tx, q->op, q->id, q->runs, q->nruns);
		if (!c->tx_len)
			return -EPROTO;
	}
	c->tx_off = 0;
	l->encoded++;
	return 0;
}

static bool link_has_tx(const struct link *l)
{
	return l->conn->tx_off < l->conn->tx_len || l->encoded < l->nreqs;
}

/* Sends what the socket takes; 0 or -errno. */
static int link_send(struct op *op, struct link *l)
{
	struct conn *c = l->conn;

	while (link_has_tx(l)) {
		size_t sent;
		int ret;

		if (c->tx_off == c->tx_len) {
			ret = link_encode(op, l);
			if (ret)
				return ret;
		}
		ret = send_some(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off,
				&sent);
		c->tx_off += sent;
		if (sent)
			l->last_progress_ms = now_ms();
		if (ret || c->tx_off < c->tx_len)
			return ret;
	}
	return 0;
}

/* Takes the complete replies out of the rx buffer. */
static int link_parse(struct link *l, struct errmsg *why)
{
	struct conn *c = l->conn;
	size_t pos = 0;
	int ret = 0;

	while (c->rx_len - pos >= MEMD_HDR_SIZE) {
		struct memd_hdr h;
		struct creq *q;
		const uint8_t *body;

		if (memd_hdr_decode(c->rx + pos, &h) || l->replied >= l->encoded) {
			ret = errmsg_set(why, -EBADMSG, "a malformed or unasked-for reply");
			break;
		}
		q = &l->reqs[l->replied];
		ret = memd_check_reply(&h, q->op, q->id, q->npages, why);
		if (ret)
			break;
		if (c->rx_len - pos - MEMD_HDR_SIZE < h.body_len)
			break;
		body = c->rx + pos + MEMD_HDR_SIZE;
		if (q->op == MEMD_OP_GET && h.status == MEMD_ST_OK &&
		    memd_decode_get_reply(body, h.body_len, q->runs, q->nruns)) {
			ret = errmsg_set(why, -EBADMSG, "a malformed GET reply");
			break;
		}
		q->status = h.status;
		l->replied++;
		pos += MEMD_HDR_SIZE + h.body_len;
	}
	if (pos) {
		memmove(c->rx, c->rx + pos, c->rx_len - pos);
		c->rx_len -= pos;
	}
	return ret;
}

static int link_recv(struct link *l, struct errmsg *why)
{
	struct conn *c = l->conn;
	ssize_t n = recv(c->fd, c->rx + c->rx_len, MEMD_MAX_MSG - c->rx_len, 0);

	if (n == 0)
		return errmsg_set(why, -ECONNRESET, "the server closed the connection");
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 :
			errmsg_set(why, -errno, "%s", strerror(errno));
	c->rx_len += (size_t)n;
	l->last_progress_ms = now_ms();
	return link_parse(l, why);
}

static bool link_busy(const struct link *l)
{
	return l->conn && !l->failed && l->replied < l->nreqs;
}

/* Sends every link's requests and reads their replies, all links at once,
 * until each has its replies or has failed. */
static void exchange(struct op *op)
{
	unsigned n = op->st->nservers;

	for (unsigned s = 0; s < n; s++)
		op->links[s].last_progress_ms = now_ms();
	for (;;) {
		struct pollfd pfd[MAX_SERVERS];
		unsigned who[MAX_SERVERS], npfd = 0;
		int timeout = -1;

		for (unsigned s = 0; s < n; s++) {
			struct link *l = &op->links[s];
			struct errmsg why;
			int64_t left;
			int ret;

			if (!link_busy(l))
				continue;
			ret = link_send(op, l);
			if (ret) {
				errmsg_set(&why, ret, "%s", strerror(-ret));
				link_fail(op, s, ret, why.text);
				continue;
			}
			left = l->last_progress_ms + IO_TIMEOUT_MS - now_ms();
			if (left <= 0) {
				link_fail(op, s, -ETIMEDOUT, "no reply in time");
				continue;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
			pfd[npfd] = (struct pollfd){
				.fd = l->conn->fd,
				.events = POLLIN | (link_has_tx(l) ? POLLOUT : 0) };
			who[npfd++] = s;
		}
		if (!npfd)
			return;
		if (poll(pfd, npfd, timeout) < 0)
			continue;	/* EINTR; anything else shows as a timeout */
		for (unsigned i = 0; i < npfd; i++) {
			struct errmsg why;
			int ret;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ret = link_recv(&op->links[who[i]], &why);
			if (ret)
				link_fail(op, who[i], ret, why.text);
		}
	}
}

/* ---- connecting, and recovering a server -------------------------------- */

/* Says HELLO on *@c; if the connection fails it is closed and *@c set to
 * NULL. */
static int conn_hello(struct memd_store *st, unsigned s, struct conn **c,
		      struct errmsg *err)
{
	struct remote *r = &st->servers[s];
	struct op op;
	struct creq *q;
	int status;

	op_init(&op, st);
	op.links[s] = (struct link){ .state = LINK_UP, .conn = *c };
	q = link_new_req(&op.links[s], MEMD_OP_HELLO);
	if (!q) {
		op.links[s].conn = NULL;
		op_finish(&op);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	exchange(&op);
	status = q->status;
	*c = op.links[s].conn;		/* NULL if the link failed */
	op.links[s].conn = NULL;
	op_finish(&op);
	switch (status) {
	case MEMD_ST_OK:
		return 0;
	case MEMD_ST_BAD_SECRET:
		return errmsg_set(err, -EACCES, "memd server %s refused the secret "
				  "of namespace '%s'", r->label, st->namespace_name);
	case MEMD_ST_FULL:
		return errmsg_set(err, -ENOSPC, "memd server %s is full: no room "
				  "for namespace '%s'", r->label, st->namespace_name);
	case -1:
		return errmsg_set(err, -ECONNRESET, "%s", op.last_why.text);
	default:
		return errmsg_set(err, -EPROTO, "memd server %s: HELLO answered %s",
				  r->label, memd_status_name((unsigned)status));
	}
}

/* Connects and says HELLO.  On failure the connection is closed. */
static int conn_open(struct memd_store *st, unsigned s, struct conn **out,
		     struct errmsg *err)
{
	struct conn *c;
	int fd = -1, ret;

	ret = tcp_connect(&st->servers[s], &fd, err);
	if (ret)
		return ret;
	c = conn_new(fd);
	if (!c)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = conn_hello(st, s, &c, err);
	if (ret) {
		conn_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

/* Adds a DROP of [first, first + count) to @l, a request per limit. */
static int add_drop_run(struct link *l, uint64_t first, uint32_t count)
{
	struct creq *q = l->nreqs ? &l->reqs[l->nreqs - 1] : NULL;

	if (!q || q->nruns == MEMD_MAX_RUNS ||
	    q->npages + count > MEMD_MAX_DROP_PAGES) {
		q = link_new_req(l, MEMD_OP_DROP);
		if (!q)
			return -ENOMEM;
	}
	q->runs[q->nruns++] = (struct page_run){ .first = first, .count = count };
	q->npages += count;
	return 0;
}

/* Drops, on a server coming back, the pages fenced on it, a batch of
 * requests at a time, clearing their bits once acknowledged. */
static int clean_fenced(struct memd_store *st, unsigned s, struct conn **c,
			struct errmsg *err)
{
	uint64_t *fenced = st->servers[s].fenced;
	uint64_t page = 0;
	int ret = 0;

	while (page < st->ram_pages && !ret) {
		struct op op;
		struct link *l;

		op_init(&op, st);
		l = &op.links[s];
		*l = (struct link){ .state = LINK_UP, .conn = *c };
		while (page < st->ram_pages && l->nreqs < 64 && !ret) {
			uint64_t end;

			if (page % 64 == 0 &&
			    !__atomic_load_n(&fenced[page / 64], __ATOMIC_RELAXED)) {
				page += 64;
				continue;
			}
			if (!bit_test(fenced, page)) {
				page++;
				continue;
			}
			for (end = page + 1; end < st->ram_pages &&
			     end - page < MEMD_MAX_DROP_PAGES && bit_test(fenced, end);)
				end++;
			ret = add_drop_run(l, page, (uint32_t)(end - page));
			page = end;
		}
		if (!ret && l->nreqs)
			exchange(&op);
		for (size_t i = 0; i < l->nreqs && !ret; i++) {
			struct creq *q = &l->reqs[i];

			if (q->status != MEMD_ST_OK) {
				ret = errmsg_set(err, -EAGAIN, "%s",
						 op.last_why.text[0] ?
						 op.last_why.text : "cleanup refused");
				break;
			}
			for (size_t j = 0; j < q->nruns; j++)
				for (uint32_t k = 0; k < q->runs[j].count; k++)
					bit_clear(fenced, q->runs[j].first + k);
		}
		if (l->failed && !ret)
			ret = errmsg_set(err, -EAGAIN, "%s", op.last_why.text);
		*c = l->conn;			/* NULL if the link failed */
		l->conn = NULL;
		op_finish(&op);
	}
	return ret;
}

/*
 * A connection to server @s for one op: an idle one, or a new one if the
 * server is up or due for a retry.  -EAGAIN (with why) when it is down,
 * -EACCES when it refuses our secret.
 */
static int remote_acquire(struct memd_store *st, unsigned s,
			  struct conn **out, struct errmsg *err)
{
	struct remote *r = &st->servers[s];
	struct conn *c = NULL, *stale = NULL;
	bool recovering = false;
	uint64_t generation;
	int ret;

	pthread_mutex_lock(&r->lock);
	while ((c = r->idle)) {
		r->idle = c->next;
		r->nidle--;
		if (c->generation == r->generation && conn_idle_ok(c))
			break;
		c->next = stale;
		stale = c;
	}
	if (!c && r->down) {
		if (r->recovering || now_ms() - r->last_failure_ms < RETRY_MS) {
			ret = errmsg_set(err, -EAGAIN, "%s", r->why);
			pthread_mutex_unlock(&r->lock);
			conn_close_list(stale);
			return ret;
		}
		r->recovering = recovering = true;
	}
	generation = r->generation;
	pthread_mutex_unlock(&r->lock);
	conn_close_list(stale);
	if (c) {
		*out = c;
		return 0;
	}

	ret = conn_open(st, s, &c, err);
	if (!ret && recovering) {
		ret = clean_fenced(st, s, &c, err);
		if (ret)
			conn_close(c);
	}
	pthread_mutex_lock(&r->lock);
	if (!ret && !recovering && (r->down || r->generation != generation)) {
		/* it failed meanwhile: its fenced pages are not clean yet */
		ret = errmsg_set(err, -EAGAIN, "%s", r->why);
		conn_close(c);
	}
	if (ret && ret != -EAGAIN) {
		r->down = true;
		r->last_failure_ms = now_ms();
		r->generation++;
		snprintf(r->why, sizeof(r->why), "%s", err ? err->text : "");
	}
	if (recovering) {
		r->recovering = false;
		if (!ret)
			r->down = false;
		else
			r->last_failure_ms = now_ms();
	}
	if (!ret)
		c->generation = r->generation;
	pthread_mutex_unlock(&r->lock);
	if (!ret)
		*out = c;
	return ret;
}

/* True when this op can use server @s (connecting on first use). */
static bool op_link(struct op *op, unsigned s)
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
	if (ret == -EACCES || ret == -ENOMEM)
		op_fatal(op, ret, "%s", why.text);
	return false;
}

/* ---- pieces ----------------------------------------------------------------- */

static struct piece *add_piece(struct op *op, const struct piece *p)
{
	if (op->npieces == op->cap) {
		size_t cap = op->cap ? op->cap * 2 : 16;
		struct piece *n = realloc(op->pieces, cap * sizeof(*n));

		if (!n)
			return NULL;
		op->pieces = n;
		op->cap = cap;
	}
	op->pieces[op->npieces] = *p;
	return &op->pieces[op->npieces++];
}

typedef uint32_t (*page_servers_fn)(const struct memd_store *st,
				    const struct piece *group, uint64_t page);

/*
 * Cuts the runs into pieces: within a group, and, with @servers, where
 * the servers @servers gives a page change (pages given none are left
 * out unless @keep_empty).  Without @servers every piece may use every
 * server.
 */
static int split_runs(struct op *op, const struct page_run *runs, size_t n,
		      page_servers_fn servers, bool keep_empty)
{
	struct memd_store *st = op->st;

	for (size_t i = 0; i < n; i++) {
		for (uint32_t pos = 0; pos < runs[i].count;) {
			uint64_t page = runs[i].first + pos;
			uint64_t group = page >> GROUP_SHIFT;
			uint64_t group_end = (group + 1) << GROUP_SHIFT;
			uint32_t len = (uint32_t)(group_end - page);
			struct piece p = { .run = (uint32_t)i };

			if (len > runs[i].count - pos)
				len = runs[i].count - pos;
			rank_servers(st, group, p.order);
			for (unsigned k = 0; k < st->replicas; k++)
				p.home |= 1u << p.order[k];
			for (uint32_t k = 0; k < len;) {
				uint32_t m = servers ? servers(st, &p, page + k) :
						       all_servers(st);
				uint32_t end = k + 1;

				while (servers && end < len &&
				       servers(st, &p, page + end) == m)
					end++;
				if (!servers)
					end = len;
				p.first = page + k;
				p.count = end - k;
				p.data = runs[i].data ? runs[i].data +
					 (size_t)(pos + k) * PAGE_STORE_PAGE : NULL;
				p.sums = runs[i].sums ? runs[i].sums + pos + k : NULL;
				p.allowed = m;
				if ((m || keep_empty) && !add_piece(op, &p)) {
					op_fatal(op, -ENOMEM, "out of memory");
					return -ENOMEM;
				}
				k = end;
			}
			pos += len;
		}
	}
	return 0;
}

/* Builds this round's requests: each server's pieces, in order, merging
 * neighbours of one caller run into one run of the request. */
static int build_requests(struct op *op, uint8_t opcode)
{
	uint32_t max_pages = opcode == MEMD_OP_DROP ? MEMD_MAX_DROP_PAGES :
						      MEMD_MAX_PAGES;

	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];
		struct creq *q = NULL;

		link_reset(l);
		for (size_t i = 0; i < op->npieces; i++) {
			struct piece *p = &op->pieces[i];
			struct page_run *last;
			bool joins;

			if (!(p->round & 1u << s))
				continue;
			last = q && q->nruns ? &q->runs[q->nruns - 1] : NULL;
			joins = last && q->last_run == p->run &&
				last->first + last->count == p->first;
			if (!q || q->npieces == REQ_MAX_PIECES ||
			    q->npages + p->count > max_pages ||
			    (!joins && q->nruns == MEMD_MAX_RUNS)) {
				q = link_new_req(l, opcode);
				if (!q) {
					op_fatal(op, -ENOMEM, "out of memory");
					return -ENOMEM;
				}
				joins = false;
			}
			if (joins) {
				q->runs[q->nruns - 1].count += p->count;
			} else {
				q->runs[q->nruns++] = (struct page_run){
					.first = p->first, .count = p->count,
					.data = p->data, .sums = p->sums };
				q->last_run = p->run;
			}
			q->npages += p->count;
			q->piece[q->npieces++] = (uint32_t)i;
		}
	}
	return 0;
}

/* Runs the round's requests; statuses other than these end the op. */
static void run_round(struct op *op, uint8_t opcode)
{
	if (build_requests(op, opcode))
		return;
	exchange(op);
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs; i++) {
			int st = l->reqs[i].status;

			if (st == MEMD_ST_BAD_SECRET || st == MEMD_ST_BAD_REQUEST)
				op_fatal(op, st == MEMD_ST_BAD_SECRET ? -EACCES : -EPROTO,
					 "memd server %s answered %s to a %s",
					 op->st->servers[s].label,
					 memd_status_name((unsigned)st),
					 opcode == MEMD_OP_PUT ? "PUT" :
					 opcode == MEMD_OP_GET ? "GET" : "DROP");
		}
	}
}

/* ---- put ---------------------------------------------------------------------- */

/* Picks the next servers for the pieces short of copies; false when none
 * is left to try. */
static bool put_pick_targets(struct op *op)
{
	bool any = false;

	for (size_t i = 0; i < op->npieces && !op->fatal; i++) {
		struct piece *p = &op->pieces[i];
		int need = (int)op->st->replicas - __builtin_popcount(p->acked);

		p->round = 0;
		for (unsigned k = 0; k < op->st->nservers && need > 0; k++) {
			unsigned s = p->order[k];

			if (p->tried & 1u << s)
				continue;
			p->tried |= 1u << s;
			if (!op_link(op, s)) {
				p->unreachable = true;
				p->full |= op->links[s].error == -ENOSPC;
				continue;
			}
			p->round |= 1u << s;
			need--;
			any = true;
		}
	}
	return any && !op->fatal;
}

static void put_collect(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs; i++) {
			struct creq *q = &l->reqs[i];

			for (uint32_t j = 0; j < q->npieces; j++) {
				struct piece *p = &op->pieces[q->piece[j]];

				if (q->status == MEMD_ST_OK)
					p->acked |= 1u << s;
				else if (q->status == MEMD_ST_FULL)
					p->full = true;
				else
					p->unreachable = true;
			}
		}
	}
}

/* After a successful put: the new copies are the only readable ones. */
static void put_commit(struct op *op)
{
	struct memd_store *st = op->st;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];

		for (uint32_t k = 0; k < p->count; k++) {
			uint64_t page = p->first + k;
			bool spilled = bit_test(st->spilled, page);

			for (unsigned s = 0; s < st->nservers; s++) {
				uint32_t bit = 1u << s;

				if (p->acked & bit)
					bit_clear(st->servers[s].fenced, page);
				else if ((p->home & bit) || spilled)
					bit_set(st->servers[s].fenced, page);
			}
			if (p->acked & ~p->home)
				bit_set(st->spilled, page);
			else if (spilled)
				bit_clear(st->spilled, page);
		}
	}
}

static int drop_pages(struct memd_store *st, const struct page_run *runs,
		      size_t n, enum drop_mode mode, struct errmsg *err);

/* Why a put failed, from its first piece with no copy. */
static int put_failure(struct op *op, struct errmsg *err)
{
	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];

		if (p->acked)
			continue;
		if (p->full)
			return errmsg_set(err, -ENOSPC, "no memd server has room for "
					  "page %llu (capacity reached)",
					  (unsigned long long)p->first);
		return errmsg_set(err, -EAGAIN, "no memd server could store page "
				  "%llu (%s)", (unsigned long long)p->first,
				  op->last_why.text[0] ? op->last_why.text :
				  "all down");
	}
	return 0;
}

static int check_runs(const struct memd_store *st, const struct page_run *runs,
		      size_t n, bool need_data, struct errmsg *err)
{
	return page_runs_check("memd", runs, n, st->ram_pages, need_data, err);
}

static int memd_put(struct page_store *ps, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	struct errmsg ignored;
	struct op op;
	int ret;

	ret = check_runs(st, runs, n, true, err);
	if (ret)
		return ret;
	op_init(&op, st);
	split_runs(&op, runs, n, NULL, true);
	while (!op.fatal && put_pick_targets(&op)) {
		run_round(&op, MEMD_OP_PUT);
		put_collect(&op);
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) :
			 put_failure(&op, err);
	if (!ret)
		put_commit(&op);
	op_finish(&op);
	if (ret) {
		drop_pages(st, runs, n, DROP_EVERYWHERE, &ignored);
		return ret;
	}
	/* old copies left on live servers off the new homes */
	drop_pages(st, runs, n, DROP_STALE, &ignored);
	return 0;
}

/* ---- get ---------------------------------------------------------------------- */

static uint32_t get_candidates(const struct memd_store *st,
			       const struct piece *group, uint64_t page)
{
	uint32_t m = group->home;

	if (bit_test(st->spilled, page))
		m = all_servers(st);
	return m & ~fenced_mask(st, page);
}

/* Each pending piece's next candidate in ranking order; false when no
 * piece has one left. */
static bool get_pick_sources(struct op *op)
{
	bool any = false;

	for (size_t i = 0; i < op->npieces && !op->fatal; i++) {
		struct piece *p = &op->pieces[i];

		p->round = 0;
		if (p->state != PIECE_PENDING)
			continue;
		for (unsigned k = 0; k < op->st->nservers && !p->round; k++) {
			unsigned s = p->order[k];

			if (!(p->allowed & 1u << s) || (p->tried & 1u << s))
				continue;
			p->tried |= 1u << s;
			if (op_link(op, s))
				p->round = 1u << s;
			else
				p->unreachable = true;
		}
		if (p->round)
			any = true;
		else
			p->state = PIECE_FAILED;
	}
	return any && !op->fatal;
}

/* Splits off the pages of @p whose checksum failed as new pending
 * pieces; the rest of @p is done. */
static int get_retry_bad_pages(struct op *op, size_t idx, const bool *bad)
{
	struct piece p = op->pieces[idx];

	op->pieces[idx].state = PIECE_SPLIT;
	for (uint32_t k = 0; k < p.count;) {
		struct piece part = p;
		uint32_t end = k + 1;

		if (!bad[k]) {
			k++;
			continue;
		}
		while (end < p.count && bad[end])
			end++;
		part.first = p.first + k;
		part.count = end - k;
		part.data = p.data + (size_t)k * PAGE_STORE_PAGE;
		part.sums = p.sums + k;
		part.state = PIECE_PENDING;
		part.bad_sum = true;
		if (!add_piece(op, &part)) {
			op_fatal(op, -ENOMEM, "out of memory");
			return -ENOMEM;
		}
		k = end;
	}
	return 0;
}

static void get_collect(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs && !op->fatal; i++) {
			struct creq *q = &l->reqs[i];

			for (uint32_t j = 0; j < q->npieces; j++) {
				size_t idx = q->piece[j];
				struct piece *p = &op->pieces[idx];
				bool bad[1u << GROUP_SHIFT], any_bad = false;

				if (q->status == -1)
					p->unreachable = true;
				if (q->status != MEMD_ST_OK)
					continue;
				for (uint32_t k = 0; k < p->count; k++) {
					bad[k] = page_checksum(p->first + k,
							       p->data + (size_t)k * PAGE_STORE_PAGE) !=
						 p->sums[k];
					any_bad |= bad[k];
				}
				if (!any_bad)
					p->state = PIECE_OK;
				else if (get_retry_bad_pages(op, idx, bad))
					return;
			}
		}
	}
}

/* The batch's error: a bad checksum everywhere beats a missing page,
 * which beats one that may be on a server out of reach. */
static int get_failure(struct op *op, struct errmsg *err)
{
	const struct piece *worst = NULL;
	int rank = 0;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];
		int r;

		if (p->state != PIECE_FAILED)
			continue;
		r = p->unreachable ? 1 : p->bad_sum ? 3 : 2;
		if (r > rank) {
			rank = r;
			worst = p;
		}
	}
	if (!worst)
		return 0;
	if (rank == 3)
		return errmsg_set(err, -EBADMSG, "page %llu came back with a bad "
				  "checksum from every memd copy",
				  (unsigned long long)worst->first);
	if (rank == 2)
		return errmsg_set(err, -ENOENT, "page %llu is not stored on any "
				  "memd server", (unsigned long long)worst->first);
	return errmsg_set(err, -EAGAIN, "no memd server holding page %llu is "
			  "reachable (%s)", (unsigned long long)worst->first,
			  op->last_why.text[0] ? op->last_why.text :
			  "all down");
}

static int memd_get(struct page_store *ps, const struct page_run *runs,
		    size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	struct op op;
	int ret;

	ret = check_runs(st, runs, n, true, err);
	if (ret)
		return ret;
	op_init(&op, st);
	/* a page with no candidate left fails as missing */
	split_runs(&op, runs, n, get_candidates, true);
	while (!op.fatal && get_pick_sources(&op)) {
		run_round(&op, MEMD_OP_GET);
		get_collect(&op);
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) :
			 get_failure(&op, err);
	op_finish(&op);
	return ret;
}

/* ---- drop --------------------------------------------------------------------- */

static uint32_t drop_targets(const struct memd_store *st,
			     const struct piece *group, uint64_t page)
{
	uint32_t m = group->home | fenced_mask(st, page);

	return bit_test(st->spilled, page) ? all_servers(st) : m;
}

static uint32_t stale_targets(const struct memd_store *st,
			      const struct piece *group, uint64_t page)
{
	(void)group;
	return fenced_mask(st, page);
}

static uint32_t every_server(const struct memd_store *st,
			     const struct piece *group, uint64_t page)
{
	(void)group;
	(void)page;
	return all_servers(st);
}

/* Drops on the servers @mode picks; those that cannot be reached are
 * fenced for the pages instead.  Fails only for a fatal error. */
static int drop_pages(struct memd_store *st, const struct page_run *runs,
		      size_t n, enum drop_mode mode, struct errmsg *err)
{
	static const page_servers_fn pick[] = {
		[DROP_PAGES] = drop_targets,
		[DROP_STALE] = stale_targets,
		[DROP_EVERYWHERE] = every_server,
	};
	struct op op;
	int ret;

	op_init(&op, st);
	split_runs(&op, runs, n, pick[mode], false);
	for (size_t i = 0; i < op.npieces && !op.fatal; i++) {
		struct piece *p = &op.pieces[i];

		for (unsigned s = 0; s < st->nservers; s++)
			if ((p->allowed & 1u << s) && op_link(&op, s))
				p->round |= 1u << s;
	}
	if (!op.fatal) {
		run_round(&op, MEMD_OP_DROP);
		put_collect(&op);	/* the same: acked per server */
	}
	for (size_t i = 0; i < op.npieces && !op.fatal; i++) {
		const struct piece *p = &op.pieces[i];

		for (uint32_t k = 0; k < p->count; k++) {
			uint64_t page = p->first + k;

			for (unsigned s = 0; s < st->nservers; s++) {
				if (p->acked & 1u << s)
					bit_clear(st->servers[s].fenced, page);
				else if (p->allowed & 1u << s)
					bit_set(st->servers[s].fenced, page);
			}
			if (mode != DROP_STALE)
				bit_clear(st->spilled, page);
		}
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) : 0;
	op_finish(&op);
	return ret;
}

static int memd_drop(struct page_store *ps, const struct page_run *runs,
		     size_t n, struct errmsg *err)
{
	struct memd_store *st = (struct memd_store *)ps;
	int ret = check_runs(st, runs, n, false, err);

	return ret ? ret : drop_pages(st, runs, n, DROP_PAGES, err);
}

/* ---- the store -------------------------------------------------------------- */

static void memd_describe(struct page_store *ps, char *buf, size_t len)
{
	struct memd_store *st = (struct memd_store *)ps;
	size_t used = (size_t)snprintf(buf, len, "memd ");

	for (unsigned s = 0; s < st->nservers && used < len; s++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 s ? "," : "", st->servers[s].label);
	if (used < len)
		snprintf(buf + used, len - used, " replicas=%u", st->replicas);
}

static void memd_destroy(struct page_store *ps)
{
	struct memd_store *st = (struct memd_store *)ps;

	for (unsigned s = 0; s < st->nservers; s++) {
		conn_close_list(st->servers[s].idle);
		pthread_mutex_destroy(&st->servers[s].lock);
		free(st->servers[s].fenced);
	}
	free(st->spilled);
	explicit_bzero(st->secret, sizeof(st->secret));
	free(st);
}

static const struct page_store_ops memd_ops = {
	.put = memd_put,
	.get = memd_get,
	.drop = memd_drop,
	.describe = memd_describe,
	.destroy = memd_destroy,
};

#define SPEC_SYNTAX "HOST:PORT[,HOST:PORT...][,replicas=N]"

static int parse_server(struct memd_store *st, const char *item,
			struct errmsg *err)
{
	struct remote *r = &st->servers[st->nservers];
	struct errmsg why;

	if (st->nservers == MAX_SERVERS)
		return errmsg_set(err, -EINVAL, "invalid memd backend: more than "
				  "%d servers", MAX_SERVERS);
	if (memd_parse_hostport(item, r->host, sizeof(r->host), &r->port, &why))
		return errmsg_set(err, -EINVAL, "invalid memd backend: %s "
				  "(give " SPEC_SYNTAX ")", why.text);
	if (!r->port)
		return errmsg_set(err, -EINVAL, "invalid memd backend: server '%s' "
				  "has port 0", item);
	if (strlen(item) >= sizeof(r->label))
		return errmsg_set(err, -EINVAL, "invalid memd backend: '%s' is too "
				  "long", item);
	for (unsigned s = 0; s < st->nservers; s++)
		if (!strcmp(st->servers[s].label, item))
			return errmsg_set(err, -EINVAL, "invalid memd backend: "
					  "server %s is given twice", item);
	snprintf(r->label, sizeof(r->label), "%s", item);
	r->seed = XXH64(r->label, strlen(r->label), 0);
	st->nservers++;
	return 0;
}

static int parse_spec(struct memd_store *st, const char *args,
		      struct errmsg *err)
{
	char *copy = strdup(args), *item, *rest;
	unsigned replicas = 0;
	int ret = 0;

	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	for (item = copy; item && !ret; item = rest) {
		rest = strchr(item, ',');
		if (rest)
			*rest++ = 0;
		if (!*item) {
			ret = errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
					 "an empty item (give " SPEC_SYNTAX ")", args);
		} else if (!strncmp(item, "replicas=", 9)) {
			if (replicas || parse_uint(item + 9, 1, MAX_SERVERS, &replicas))
				ret = errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
						 "give replicas=N once, N from 1 to %d",
						 args, MAX_SERVERS);
		} else {
			ret = parse_server(st, item, err);
		}
	}
	free(copy);
	if (ret)
		return ret;
	if (!st->nservers)
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': give "
				  SPEC_SYNTAX, args);
	st->replicas = replicas ? replicas : 1;
	if (st->replicas > st->nservers)
		return errmsg_set(err, -EINVAL, "invalid memd backend '%s': "
				  "replicas=%u but only %u servers", args,
				  st->replicas, st->nservers);
	return 0;
}

/* Connects to every server; fine as long as one answers.  -EACCES if any
 * refuses the secret. */
static int connect_all(struct memd_store *st, struct errmsg *err)
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

int store_memd_open(const char *args, const struct page_store_params *p,
		    struct page_store **out, struct errmsg *err)
{
	struct memd_store *st = calloc(1, sizeof(*st));
	size_t words;
	int ret;

	if (!st)
		return errmsg_set(err, -ENOMEM, "out of memory");
	st->base.ops = &memd_ops;
	ret = parse_spec(st, args, err);
	if (!ret && (!p->ram_pages || p->ram_pages > MEMD_PAGE_LIMIT))
		ret = errmsg_set(err, -EINVAL, "memd backend: guest RAM of %llu "
				 "pages", (unsigned long long)p->ram_pages);
	if (!ret && (!memd_valid_name(p->namespace_name, strlen(p->namespace_name)) ||
		     p->secret_len < 1 || p->secret_len > MEMD_SECRET_MAX))
		ret = errmsg_set(err, -EINVAL, "memd backend: invalid namespace "
				 "name or secret");
	if (ret) {
		free(st);
		return ret;
	}
	snprintf(st->namespace_name, sizeof(st->namespace_name), "%s",
		 p->namespace_name);
	memcpy(st->secret, p->secret, p->secret_len);
	st->secret_len = p->secret_len;
	st->ram_pages = p->ram_pages;
	words = (size_t)((p->ram_pages + 63) / 64);
	st->spilled = calloc(words, sizeof(uint64_t));
	for (unsigned s = 0; s < st->nservers; s++) {
		pthread_mutex_init(&st->servers[s].lock, NULL);
		st->servers[s].fenced = calloc(words, sizeof(uint64_t));
		if (!st->servers[s].fenced)
			ret = -ENOMEM;
	}
	if (ret || !st->spilled) {
		memd_destroy(&st->base);
		return errmsg_set(err, -ENOMEM, "out of memory for the memd "
				  "backend's page maps");
	}
	ret = connect_all(st, err);
	if (ret) {
		memd_destroy(&st->base);
		return ret;
	}
	*out = &st->base;
	return 0;
}
