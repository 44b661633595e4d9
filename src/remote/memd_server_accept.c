// SPDX-License-Identifier: MIT
/*
 * Who gets one of the memd server's connections, and for how long (see
 * memd_server_internal.h):
 *
 *   - A peer (an IPv4 address, or an IPv6 /64, which one host can fill
 *     with addresses) has at most s->max_per_peer connections: a new one
 *     beyond is closed at once.  Peers are counted in a hash table keyed
 *     like the page index (SipHash under a random key), so that addresses
 *     cannot be picked to collide either; it has a bucket per possible
 *     connection, and an entry only while the peer has one.
 *   - At s->max_clients, a new connection takes the slot of the oldest
 *     one that has not said HELLO: a client says HELLO as soon as it is
 *     connected, so one that has not is the likeliest to be idle or
 *     hostile, and a crowd of them cannot keep a real client out.  With
 *     none to take, the new one is closed at once.
 *   - A connection that has not said HELLO (both steps of the handshake
 *     answered OK) s->hello_timeout_ns after it was accepted is closed,
 *     however far it got; so is one that has moved no bytes for
 *     s->idle_timeout_ns.  Both kinds sit in a list in deadline order
 *     (s->waiting by accept time, s->active by last activity, a
 *     connection moving to its tail when it is active), so the loop
 *     only ever looks at the heads.
 *
 * Threads: the loop thread only (the connections' count is a counter
 * that memd_server_stats() reads from anywhere).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote/memd_server_internal.h"

#define PEER_ADDR_MAX 8			/* an IPv4 address, an IPv6 /64 */

struct peer {
	struct peer *next;		/* in its bucket */
	uint8_t addr[PEER_ADDR_MAX];
	uint8_t len;
	unsigned conns;
};

/* ---- peers ------------------------------------------------------------------ */

int peers_init(struct memd_server *s)
{
	uint64_t buckets = 64;

	while (buckets < s->max_clients)
		buckets *= 2;
	s->peers = calloc(buckets, sizeof(*s->peers));
	if (!s->peers)
		return -ENOMEM;
	s->peer_mask = buckets - 1;
	crypto_shorthash_keygen(s->peer_key);
	return 0;
}

void peers_free(struct memd_server *s)
{
	/* a peer exists only while it has connections: none are left */
	free(s->peers);
	s->peers = NULL;
	explicit_bzero(s->peer_key, sizeof(s->peer_key));
}

/* What identifies @sa's peer: IPv4 addresses (IPv4-mapped IPv6 ones
 * too) whole, IPv6 by their /64.  0 bytes for anything else. */
static uint8_t peer_addr(const struct sockaddr_storage *sa, uint8_t *out)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (sa->ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (!memcmp(a, v4mapped, sizeof(v4mapped))) {
			memcpy(out, a + 12, 4);
			return 4;
		}
		memcpy(out, a, 8);
		return 8;
	}
	return 0;
}

static struct peer **peer_bucket(struct memd_server *s, const uint8_t *addr,
				 uint8_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, addr, len, s->peer_key);
	memcpy(&v, h, sizeof(v));
	return &s->peers[v & s->peer_mask];
}

/* @sa's peer, made with no connections if new; NULL when out of memory. */
static struct peer *peer_get(struct memd_server *s,
			     const struct sockaddr_storage *sa)
{
	uint8_t addr[PEER_ADDR_MAX];
	uint8_t len = peer_addr(sa, addr);
	struct peer **bucket = peer_bucket(s, addr, len), *p;

	for (p = *bucket; p; p = p->next)
		if (p->len == len && !memcmp(p->addr, addr, len))
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	memcpy(p->addr, addr, len);
	p->len = len;
	p->next = *bucket;
	*bucket = p;
	return p;
}

/* A connection of @p's is gone; the last one takes @p with it. */
static void peer_put(struct memd_server *s, struct peer *p)
{
	struct peer **pp;

	if (--p->conns)
		return;
	for (pp = peer_bucket(s, p->addr, p->len); *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	free(p);
}

/* ---- connections ------------------------------------------------------------ */

static void listen_interest(struct memd_server *s, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.ptr = &s->listen_fd };

	epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
	s->accept_paused = !on;
}

void conn_end(struct memd_server *s, struct conn *c)
{
	if (c->dead)
		return;
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	list_del(&c->link);
	if (c->ns)
		namespace_leave(s, c->ns);
	c->ns = NULL;
	peer_put(s, c->from);
	c->dead = true;
	c->dead_next = s->graveyard;
	s->graveyard = c;
	counter_add(&s->c.connections, -1);
	if (s->accept_paused)
		listen_interest(s, true);
}

void conns_bury(struct memd_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;

		s->graveyard = c->dead_next;
		free(c->in);
		free(c->out);
		handshake_free(c->hs);
		free(c);
	}
}

void conns_close_all(struct memd_server *s)
{
	while (!list_empty(&s->waiting))
		conn_end(s, list_entry(s->waiting.next, struct conn, link));
	while (!list_empty(&s->active))
		conn_end(s, list_entry(s->active.next, struct conn, link));
	conns_bury(s);
}

/* Room for one more connection from @from, already counted in it;
 * false: refuse it. */
static bool make_room(struct memd_server *s, const struct peer *from,
		      const char *peer)
{
	struct conn *oldest;

	if (from->conns > s->max_per_peer) {
		say_limited(s, &s->refused_log, MEMD_LOG_WARN, "refused %s: %u "
			    "connections from that peer already", peer,
			    s->max_per_peer);
		return false;
	}
	if (counter_get(&s->c.connections) < s->max_clients)
		return true;
	if (list_empty(&s->waiting)) {
		say_limited(s, &s->refused_log, MEMD_LOG_WARN, "refused %s: %u "
			    "clients already", peer, s->max_clients);
		return false;
	}
	oldest = list_entry(s->waiting.next, struct conn, link);
	say_limited(s, &s->evicted_log, MEMD_LOG_WARN, "closed %s, which had "
		    "not said HELLO, to make room for %s (%u clients)",
		    oldest->peer, peer, s->max_clients);
	conn_end(s, oldest);
	return true;
}

/* Sets up an accepted socket, or closes it. */
static void conn_open(struct memd_server *s, int fd,
		      const struct sockaddr_storage *addr, socklen_t len)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct peer *from = peer_get(s, addr);
	struct conn *c = NULL;
	int one = 1;
	char peer[64];

	if (!from) {
		close(fd);
		return;
	}
	/* counted before make_room(), which may close this peer's other
	 * connections: the peer must not go with them */
	from->conns++;
	format_addr((const struct sockaddr *)addr, len, peer, sizeof(peer));
	if (make_room(s, from, peer))
		c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->fd = fd;
	c->from = from;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	/* replies are small and awaited: do not let Nagle hold them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->events = ev.events;
	ev.data.ptr = c;
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev))
		goto fail;
	c->since_ns = monotonic_ns();
	list_add_tail(&s->waiting, &c->link);
	counter_add(&s->c.connections, 1);
	return;
fail:
	free(c);
	peer_put(s, from);
	close(fd);
}

void accept_clients(struct memd_server *s)
{
	for (;;) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&addr, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN) {
				/* out of fds or memory: the listening socket
				 * would stay readable; wait for a close */
				say(s, MEMD_LOG_WARN, "accept: %s; pausing until a "
				    "client leaves", strerror(errno));
				listen_interest(s, false);
			}
			return;
		}
		conn_open(s, fd, &addr, len);
	}
}

void conn_said_hello(struct memd_server *s, struct conn *c)
{
	c->since_ns = monotonic_ns();
	list_del(&c->link);
	list_add_tail(&s->active, &c->link);
}

void conn_touch(struct memd_server *s, struct conn *c, uint64_t now)
{
	if (!c->ns || c->dead)
		return;
	c->since_ns = now;
	list_del(&c->link);
	list_add_tail(&s->active, &c->link);
}

/* Closes @list's connections older than @timeout; its next deadline. */
static uint64_t expire_list(struct memd_server *s, struct list *list,
			    uint64_t timeout, uint64_t now, const char *what)
{
	while (!list_empty(list)) {
		struct conn *c = list_entry(list->next, struct conn, link);

		if (c->since_ns + timeout > now)
			return c->since_ns + timeout;
		say_limited(s, &s->timeout_log, MEMD_LOG_INFO, "closed %s: %s "
			    "for %.1f s", c->peer, what, (double)timeout / 1e9);
		conn_end(s, c);
	}
	return 0;
}

uint64_t conns_expire(struct memd_server *s, uint64_t now)
{
	uint64_t a = expire_list(s, &s->waiting, s->hello_timeout_ns, now,
				 "no HELLO");
	uint64_t b = expire_list(s, &s->active, s->idle_timeout_ns, now, "idle");

	return !a || (b && b < a) ? b : a;
}
