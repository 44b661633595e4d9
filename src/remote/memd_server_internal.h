/* SPDX-License-Identifier: MIT */
/*
 * The memd server's insides, shared by its files and by nothing else:
 *   memd_server.c            the public API: creating the server, its
 *                            listening socket, the event loop (I/O,
 *                            deadlines, background work), stopping
 *   memd_server_accept.c     who gets a connection: accepting, the limits
 *                            per peer and in all, the HELLO and idle
 *                            deadlines, closing
 *   memd_server_conn.c       the protocol: connections' buffers, framing,
 *                            requests and replies
 *   memd_server_auth.c       the handshake: the server's identity and
 *                            sealing keys, the HELLO steps
 *   memd_server_namespace.c  namespaces' lives: creating and joining
 *                            (for the handshake), leaving, RELEASE,
 *                            expiry, freeing their pages in the background
 *   memd_server_storage.c    the pages: slabs, PUT, GET, DROP, the
 *                            capacity and the quota
 *   memd_server_index.c      a namespace's page index (memd_server_index.h)
 *
 * Contract between them:
 *   - Everything runs on the loop thread (memd_server_run()'s caller)
 *     except the counters, which memd_server_stats() reads from any
 *     thread: they are atomics, touched only through counter_add() and
 *     counter_get().
 *   - The connection code never looks inside a namespace or a slab: it
 *     asks the storage code, with the request decoded, and gets a
 *     MEMD_ST_* status back.  The storage code never sees a connection or
 *     a reply buffer: it is told the client's name for its log lines, and
 *     is told when a connection joins or leaves a namespace.
 *   - Capacity is the storage code's: it alone counts bytes in c.used;
 *     connection buffers are outside the capacity.
 *   - A connection closed while the loop handles a batch of events may
 *     still have an event later in that batch: conn_end() takes it out
 *     of every list and closes its socket at once, but frees it only in
 *     conns_bury(), after the batch.
 *   - No request does work that grows with a namespace's size: growing
 *     an index and freeing a dropped namespace are done in bounded steps,
 *     by requests and by storage_background() between batches.
 */
#ifndef RACKVM_REMOTE_MEMD_SERVER_INTERNAL_H
#define RACKVM_REMOTE_MEMD_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "remote/memd_server.h"
#include "remote/memd_server_index.h"
#include "util/clock.h"

#define PEER_KEY_SIZE 16		/* crypto_shorthash_KEYBYTES */

/* A circular doubly linked list, or an entry of one (kernel style). */
struct list {
	struct list *prev, *next;
};

static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}

static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}

static inline void list_add_tail(struct list *head, struct list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}

/* Takes @e out of its list; it is then an empty list of its own. */
static inline void list_del(struct list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	list_init(e);
}

#define list_entry(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct peer;				/* memd_server_accept.c's */
struct handshake;			/* memd_server_auth.c's */

/* A client's connection: accepted and closed by memd_server_accept.c,
 * its bytes and requests memd_server_conn.c's. */
struct conn {
	struct list link;		/* in s->waiting or s->active */
	struct conn *dead_next;		/* in s->graveyard */
	int fd;
	uint32_t events;		/* the epoll interest set now */
	char peer[64];
	struct peer *from;		/* its peer's count */
	uint64_t since_ns;		/* accepted; after HELLO: last active */
	struct handshake *hs;		/* between the HELLO steps */
	struct namespace *ns;		/* after a successful HELLO */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_head, out_len, out_cap;
	bool closing;			/* read no more; close once flushed */
	bool dead;			/* closed: ignore its events */
};

/* A namespace: the storage files' (memd_server_namespace.c and
 * memd_server_storage.c); the connection code holds only pointers. */
struct namespace {
	struct list all;		/* in s->namespaces, until released */
	struct list orphan;		/* in s->orphans while nconns == 0 */
	struct namespace *work_next;	/* in the background queue */
	bool queued;			/* in the background queue */
	bool released;			/* its pages are being freed */
	bool quota_logged;		/* said so since it last stored */
	unsigned nconns;		/* connections that said HELLO to it */
	uint64_t orphaned_ns;		/* when nconns fell to 0 */
	char name[MEMD_NAME_MAX + 1];
	/* what its clients prove they know, never their secret (see
	 * memd_server_auth.c) */
	uint8_t verifier[MEMD_KEY_SIZE];
	struct memd_index index;
};

/* Page slots, memd_server_storage.c's. */
struct slabs {
	uint8_t **slab;			/* max_slabs pointers */
	uint32_t nslabs, max_slabs;
	uint32_t free_head;		/* NO_SLOT: none free */
	uint64_t nfree;
};

/* Written by the loop thread, read by memd_server_stats() anywhere. */
struct counters {
	_Atomic uint64_t used, pages, namespaces, connections, pages_put,
		pages_got, pages_dropped, full_refusals, bad_secrets;
};

/* Log lines of one kind at most once a second; the rest are counted. */
struct log_limit {
	uint64_t last_ns;
	uint64_t held;			/* lines not said since */
};

struct memd_server {
	int epoll_fd, listen_fd, stop_fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t capacity;
	uint64_t quota_pages;		/* per namespace; 0: none */
	uint64_t namespace_ttl_ns, hello_timeout_ns, idle_timeout_ns;
	unsigned max_clients, max_per_peer;
	memd_log_fn log;
	void *log_opaque;
	uint8_t index_key[MEMD_INDEX_KEY_SIZE];	/* page indexes' hashes */
	uint8_t peer_key[PEER_KEY_SIZE];	/* the peer table's hashes */
	/* memd_server_auth.c's, drawn at create */
	uint8_t identity[MEMD_ID_SIZE];
	uint8_t seal_pk[MEMD_SEAL_PK_SIZE], seal_sk[MEMD_SEAL_PK_SIZE];
	struct slabs slabs;
	struct list namespaces;		/* live ones */
	struct list orphans;		/* live, no connection, oldest first */
	struct namespace *work_head, *work_tail;	/* background queue */
	struct list waiting;		/* connections before HELLO, oldest first */
	struct list active;		/* after HELLO, least recently active first */
	struct conn *graveyard;		/* closed, freed after this batch */
	struct peer **peers;		/* hash buckets, peer_mask + 1 */
	uint64_t peer_mask;
	bool accept_paused;		/* out of fds: wait for a close */
	bool full_logged;		/* said so since the last stored PUT */
	struct log_limit refused_log, evicted_log, timeout_log;
	struct counters c;
};

static inline void counter_add(_Atomic uint64_t *c, int64_t delta)
{
	atomic_fetch_add_explicit(c, (uint64_t)delta, memory_order_relaxed);
}

static inline uint64_t counter_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- memd_server.c ------------------------------------------------------- */

/* One line to the configured log, if any. */
__attribute__((format(printf, 3, 4)))
void say(struct memd_server *s, enum memd_log_level level, const char *fmt,
	 ...);
/* The same, at most once a second for @limit: a flood of connections
 * must not become a flood of log lines. */
__attribute__((format(printf, 4, 5)))
void say_limited(struct memd_server *s, struct log_limit *limit,
		 enum memd_log_level level, const char *fmt, ...);
/* "1.2.3.4:5", "[::1]:5", or "?" */
void format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
		 size_t size);

/* ---- memd_server_accept.c: who is connected ------------------------------ */

/* The peer table for s->max_clients; -ENOMEM. */
int peers_init(struct memd_server *s);
void peers_free(struct memd_server *s);
/* Takes every client waiting on the listening socket. */
void accept_clients(struct memd_server *s);
/* Closes @c now (see the contract above); any connection, at any time. */
void conn_end(struct memd_server *s, struct conn *c);
/* Frees the connections closed since the last call. */
void conns_bury(struct memd_server *s);
void conns_close_all(struct memd_server *s);
/* Closes the connections past their HELLO or idle deadline; the next
 * deadline (monotonic ns), or 0 if there is none. */
uint64_t conns_expire(struct memd_server *s, uint64_t now);
/* Moves @c to the connections that said HELLO. */
void conn_said_hello(struct memd_server *s, struct conn *c);
/* @c moved bytes: its idle deadline starts again. */
void conn_touch(struct memd_server *s, struct conn *c, uint64_t now);

/* ---- memd_server_conn.c: the protocol ------------------------------------- */

/* Does what epoll says @c is ready for; may close it. */
void conn_event(struct memd_server *s, struct conn *c, uint32_t events);

/* ---- memd_server_namespace.c: namespaces ---------------------------------- */

/*
 * For the handshake (memd_server_auth.c, which checks the proofs): the
 * live namespace named so (NULL: none); a new one with @verifier (OK
 * with *@ns set, or FULL; @peer names the client in log lines); joining
 * one; a namespace's verifier.  A created or joined namespace counts the
 * connection until namespace_leave().
 */
struct namespace *namespace_find(struct memd_server *s, const char *name,
				 size_t len);
int namespace_create(struct memd_server *s, const char *name, size_t len,
		     const uint8_t *verifier, const char *peer,
		     struct namespace **ns);
void namespace_join(struct namespace *ns);
const uint8_t *namespace_verifier(const struct namespace *ns);
/* A connection that said HELLO to @ns is gone. */
void namespace_leave(struct memd_server *s, struct namespace *ns);
/* Drops @ns, which no connection is in any more, and frees its pages in
 * the background; @why ("released by ...") goes to the log. */
void namespace_release(struct memd_server *s, struct namespace *ns,
		       const char *why);
/* Releases the namespaces without a connection for the TTL; the next
 * such deadline (monotonic ns), or 0 if there is none. */
uint64_t namespaces_expire(struct memd_server *s, uint64_t now);
/* Queues @ns for background work (a growing index, a release). */
void namespace_queue(struct memd_server *s, struct namespace *ns);
/* One bounded step of background work; true while some remains. */
bool storage_background(struct memd_server *s);
/* Every namespace, at once: the server is going away. */
void namespaces_free(struct memd_server *s);

/* ---- memd_server_storage.c: pages ------------------------------------------ */

/* The slab table for s->capacity, the page indexes' key. */
int storage_init(struct memd_server *s, struct errmsg *err);
/* Every namespace and page; after storage_init(), failed or not. */
void storage_free(struct memd_server *s);
bool budget_allows(struct memd_server *s, uint64_t bytes);
/* Hands a page's slot back (a page of a released namespace). */
void slot_release(struct memd_server *s, uint32_t slot);

/*
 * The requests, each answering a MEMD_ST_* status.  @peer names the
 * client in log lines.
 *   PUT    stores every page of @req or none: OK or FULL (capacity or
 *          quota);
 *   GET    the slots of @req's pages, for slots_encode(): OK, or NO_PAGE
 *          when one is not stored;
 *   DROP   forgets @req's pages: OK.
 */
int namespace_put(struct memd_server *s, struct namespace *ns,
		  const struct memd_request *req, const char *peer);
int namespace_find_pages(struct namespace *ns, const struct memd_request *req,
			 uint32_t *slots, uint32_t *n);
int namespace_drop(struct memd_server *s, struct namespace *ns,
		   const struct memd_request *req);
/* The page records of @n slots into @out. */
void slots_encode(const struct memd_server *s, const uint32_t *slots,
		  uint32_t n, uint8_t *out);
uint64_t namespace_pages(const struct namespace *ns);
/* Keeps c.used in step with an index whose tables took @before bytes
 * before a call that may have allocated or freed one. */
void index_bytes_changed(struct memd_server *s, const struct memd_index *ix,
			 uint64_t before);

/* ---- memd_server_auth.c: the handshake ----------------------------------- */

/* The identity and the sealing key pair (sodium_init() first). */
int auth_init(struct memd_server *s, struct errmsg *err);
void auth_free(struct memd_server *s);
/*
 * HELLO step 1: a handshake begins in *@hs, the challenge goes in @body
 * (MEMD_CHALLENGE_SIZE); OK, BAD_REQUEST (one is under way) or -ENOMEM.
 * Step 2 ends it (*@hs freed): OK with *@ns joined or created and the
 * welcome in @body (MEMD_WELCOME_SIZE), BAD_SECRET, FULL or BAD_REQUEST.
 */
int hello_challenge(struct memd_server *s, struct handshake **hs,
		    const struct memd_request *req, uint8_t *body);
int hello_welcome(struct memd_server *s, struct handshake **hs,
		  const struct memd_request *req, const char *peer,
		  struct namespace **ns, uint8_t *body);
void handshake_free(struct handshake *hs);

#endif
