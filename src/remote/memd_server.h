/* SPDX-License-Identifier: MIT */
/*
 * The memd server: keeps other hosts' evicted guest pages in its memory
 * and serves them over TCP (the protocol is memd_proto.h).
 *
 * One thread runs an epoll loop over non-blocking sockets; pages live in
 * namespaces, each guarded by a secret that never reaches the server:
 * the handshake (memd_proto.h) has the client prove it knows a verifier
 * derived from the secret, the server's identity and the namespace's
 * name, and the server prove it knows it too.  The server keeps only the
 * verifier, brought (sealed to the server's key) by the HELLO that
 * created the namespace; a wrong proof is refused, logged, and its
 * connection closed.  A client that reconnects with the right secret
 * finds its namespace's pages.  The server draws a random identity when
 * it starts and tells it in every handshake, with whether this HELLO
 * created the namespace: pages live only in memory, and that is how a
 * client learns that a restart lost them.
 *
 * Capacity: @capacity bounds the bytes the server allocates for pages
 * and for everything that grows with them: page slabs (mapped 512 pages
 * at a time, 2 MiB + 8 KiB with their 16-byte tags), each namespace's index
 * (a hash table, counted at its peak while it grows) and the namespaces
 * themselves.  A PUT (or the HELLO of a new namespace) that would go over
 * it is refused with FULL before anything is allocated or written, and
 * the server goes on serving; slabs freed by DROP are reused, never
 * returned to the system before the server ends.
 * Outside @capacity, per connection: a read buffer of at most one
 * message and a write buffer of at most two (MEMD_MAX_MSG each, ~257
 * KiB; both freed whenever they are empty), at most @max_clients
 * connections.  A client that sends faster than it reads its replies is
 * throttled: its requests are not read while its write buffer holds more
 * than one message.
 *
 * Fairness between clients (the rules clients see are in memd_proto.h):
 *   - each namespace holds at most @namespace_quota bytes of pages (a
 *     PUT beyond is refused with FULL, and the client places the pages
 *     elsewhere); none by default: a server cannot know how many
 *     tenants it will have, and a quota that refuses pages while memory
 *     is free costs the VM that owns them, so sharing a server among
 *     tenants that must not crowd each other out is a choice its
 *     operator makes with --namespace-quota;
 *   - a namespace ends on RELEASE, or after @namespace_ttl_ns without a
 *     connection (its VM is gone without saying so: crashed, killed);
 *     its pages are then freed in the background;
 *   - connections: at most @max_conns_per_peer per peer (an IPv4
 *     address, an IPv6 /64), @hello_timeout_ns to say HELLO (both
 *     steps of the handshake), closed after @idle_timeout_ns without a
 *     byte, and when all @max_clients
 *     are taken a new one replaces the oldest that has not said HELLO;
 *   - the page index hashes page numbers with a key drawn at start, so
 *     no choice of pages makes lookups slow, and grows a few buckets per
 *     request: no request waits for another namespace's large operation.
 *
 * Threads: memd_server_run() runs the loop on the calling thread until
 * memd_server_stop(), which any thread (or a signal handler) may call;
 * memd_server_port() and memd_server_stats() may be called from any
 * thread.  memd_server_destroy() (after run has returned, or without
 * run) closes every socket and frees every page.
 */
#ifndef RACKVM_REMOTE_MEMD_SERVER_H
#define RACKVM_REMOTE_MEMD_SERVER_H

#include <stdint.h>

#include "remote/memd_proto.h"
#include "util/errmsg.h"

/*
 * Defaults.  1024 clients: 100 VMs with a few pager threads each fit with
 * room to spare, each idle connection costing a socket and ~300 bytes.
 * 256 per peer: a quarter of the slots, so a host can run dozens of VMs
 * against one memd, but one peer cannot take every slot.  5 s for HELLO:
 * a client says it right after connecting.  60 s idle: clients close
 * pooled connections idle for a few seconds and send something on the
 * one they keep every 20 s (store_memd_idle.c), so this closes only
 * connections nobody looks after.  10 min TTL: a VM that crashed gives
 * its memory back then, while a memd outage or network cut shorter than
 * that (during which its VMs are paused, not lost) keeps their pages.
 */
#define MEMD_DEFAULT_MAX_CLIENTS 1024
#define MEMD_DEFAULT_MAX_CONNS_PER_PEER 256
#define MEMD_DEFAULT_HELLO_TIMEOUT_NS (5ull * 1000000000)
#define MEMD_DEFAULT_IDLE_TIMEOUT_NS (60ull * 1000000000)
#define MEMD_DEFAULT_NAMESPACE_TTL_NS (600ull * 1000000000)
/* Capacity bounds: one slab, and what 32-bit slot numbers reach. */
#define MEMD_MIN_CAPACITY (4ull << 20)
#define MEMD_MAX_CAPACITY (16ull << 40)

enum memd_log_level {
	MEMD_LOG_INFO,		/* a namespace created or ended, capacity or
				 * a quota reached, a connection timed out */
	MEMD_LOG_WARN,		/* a wrong secret, a malformed request, a
				 * connection refused or closed for room */
};

/* Called on the loop thread with one line (no newline). */
typedef void (*memd_log_fn)(void *opaque, enum memd_log_level level,
			    const char *line);

/* Zero in a limit means its default. */
struct memd_server_config {
	const char *listen;	/* "ADDR:PORT" or "[V6]:PORT"; port 0: any */
	uint64_t capacity;	/* MEMD_MIN_CAPACITY..MEMD_MAX_CAPACITY bytes */
	uint64_t namespace_quota;	/* bytes of pages; 0: no quota */
	unsigned max_clients;
	unsigned max_conns_per_peer;
	uint64_t hello_timeout_ns;
	uint64_t idle_timeout_ns;
	uint64_t namespace_ttl_ns;
	memd_log_fn log;	/* may be NULL */
	void *log_opaque;
};

struct memd_server;

/* Checks the config, binds and listens.  -EINVAL (bad address,
 * capacity or quota), -EADDRINUSE, ... with the reason in @err. */
int memd_server_create(const struct memd_server_config *cfg,
		       struct memd_server **out, struct errmsg *err);

/* Serves clients until memd_server_stop(); 0, or -errno if the loop
 * itself fails (epoll).  May be called again after it returned. */
int memd_server_run(struct memd_server *s, struct errmsg *err);

/* Makes memd_server_run() return soon; async-signal-safe. */
void memd_server_stop(struct memd_server *s);

/* The address the server listens on, with the real port: "127.0.0.1:7070",
 * "[::1]:7070". */
void memd_server_address(const struct memd_server *s, char *buf, size_t len);
uint16_t memd_server_port(const struct memd_server *s);

/* Its identity (MEMD_ID_SIZE bytes), drawn at create: what clients see
 * change when it restarts.  Any thread. */
void memd_server_identity(const struct memd_server *s, uint8_t *out);

/* A snapshot of the counters (namespace_pages is 0). */
void memd_server_stats(struct memd_server *s, struct memd_stats *out);

void memd_server_destroy(struct memd_server *s);

#endif
