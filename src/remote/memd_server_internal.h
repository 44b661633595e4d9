/* SPDX-License-Identifier: MIT */
/*
 * The memd server's insides, shared by its files and by nothing else:
 *   memd_server.c          the public API: creating the server, its
 *                          listening socket, the event loop, stopping
 *   memd_server_conn.c     the protocol: clients' connections, their
 *                          buffers, framing, requests and replies
 *   memd_server_storage.c  the pages: namespaces, slabs, the page index,
 *                          the capacity
 *   memd_server_auth.c     the handshake: the server's identity and
 *                          sealing keys, the HELLO steps
 *
 * Contract between them:
 *   - Everything runs on the loop thread (memd_server_run()'s caller)
 *     except the counters, which memd_server_stats() reads from any
 *     thread: they are atomics, touched only through counter_add() and
 *     counter_get().
 *   - The connection code never looks inside a namespace or a slab: it
 *     asks the storage code, with the request decoded, and gets a
 *     MEMD_ST_* status back.  The storage code never sees a connection or
 *     a reply buffer: it is told the client's name for its log lines.
 *   - Capacity is the storage code's: it alone counts bytes in c.used;
 *     connection buffers are outside the capacity.
 */
#ifndef RACKVM_REMOTE_MEMD_SERVER_INTERNAL_H
#define RACKVM_REMOTE_MEMD_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "remote/memd_server.h"

#define KEY_SIZE 192			/* >= XXH3_SECRET_SIZE_MIN */

struct conn;				/* memd_server_conn.c's */
struct namespace;			/* memd_server_storage.c's */
struct handshake;			/* memd_server_auth.c's */

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

struct memd_server {
	int epoll_fd, listen_fd, stop_fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t capacity;
	unsigned max_clients;
	memd_log_fn log;
	void *log_opaque;
	uint8_t key[KEY_SIZE];
	/* memd_server_auth.c's, drawn at create */
	uint8_t identity[MEMD_ID_SIZE];
	uint8_t seal_pk[MEMD_SEAL_PK_SIZE], seal_sk[MEMD_SEAL_PK_SIZE];
	struct slabs slabs;
	struct namespace *namespaces;
	struct conn *conns;
	bool accept_paused;		/* out of fds: wait for a close */
	bool full_logged;		/* said so since the last stored PUT */
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
/* "1.2.3.4:5", "[::1]:5", or "?" */
void format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
		 size_t size);

/* ---- memd_server_conn.c: connections ------------------------------------- */

/* Takes every client waiting on the listening socket. */
void accept_clients(struct memd_server *s);
/* Does what epoll says @c is ready for; may close it. */
void conn_event(struct memd_server *s, struct conn *c, uint32_t events);
void conns_close_all(struct memd_server *s);

/* ---- memd_server_storage.c: namespaces and pages ------------------------- */

/* The slab table for s->capacity, and s->key. */
int storage_init(struct memd_server *s, struct errmsg *err);
/* Every namespace and page; after storage_init(), failed or not. */
void storage_free(struct memd_server *s);

/*
 * Namespaces, for the handshake: the one named so (NULL: none), a new one
 * with its verifier (OK with *@ns set, or FULL), and its verifier.
 */
struct namespace *namespace_find(struct memd_server *s, const char *name,
				 size_t len);
int namespace_create(struct memd_server *s, const char *name, size_t len,
		     const uint8_t *verifier, const char *peer,
		     struct namespace **ns);
const uint8_t *namespace_verifier(const struct namespace *ns);
/*
 * The requests, each answering a MEMD_ST_* status.  @peer names the
 * client in log lines.
 *   PUT    stores every page of @req or none: OK or FULL;
 *   GET    the slots of @req's pages, for slots_encode(): OK, or NO_PAGE
 *          when one is not stored;
 *   DROP   forgets @req's pages: OK.
 */
int namespace_put(struct memd_server *s, struct namespace *ns,
		  const struct memd_request *req, const char *peer);
int namespace_find_pages(const struct namespace *ns,
			 const struct memd_request *req, uint32_t *slots,
			 uint32_t *n);
int namespace_drop(struct memd_server *s, struct namespace *ns,
		   const struct memd_request *req);
/* The page records of @n slots into @out. */
void slots_encode(const struct memd_server *s, const uint32_t *slots,
		  uint32_t n, uint8_t *out);
uint64_t namespace_pages(const struct namespace *ns);

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
