/* SPDX-License-Identifier: MIT */
/*
 * The memd page store's insides, shared by its files and by nothing else
 * (the design, placement and fencing rules are in store_memd.c):
 *   store_memd.c            the page_store ops and opening the store
 *   store_memd_conn.c       connections to one server: connect, the idle
 *                           pool, marking a server down, reconnecting
 *   store_memd_hello.c      the handshake on a new connection
 *   store_memd_pipeline.c   an op's requests: batching, sending them to
 *                           every server at once, reading the replies
 *   store_memd_placement.c  which servers a page goes to or is read from,
 *                           round by round, and why an op failed
 *   store_memd_fence.c      which copies are current: the fenced and
 *                           spilled bitmaps, drops, and cleaning up a
 *                           server that comes back
 *   store_memd_maint.c      the maintenance thread: brings failed servers
 *                           back, checks on idle ones, and runs the
 *                           repair and the pools' upkeep
 *   store_memd_idle.c       connections between ops (closing idle ones,
 *                           keeping one alive per server, on the
 *                           maintenance thread) and RELEASE at the
 *                           store's end
 *   store_memd_handover.c   the namespace handed over to another process
 *                           (a VM that migrates): steps, export, import
 *   store_memd_repair.c     copies put back where they are missing
 *                           (re-replication), the page claims that
 *                           keep it apart from puts and drops, and
 *                           writing off the copies of a server down for
 *                           longer than down_after
 *
 * Contract between them:
 *   - struct memd_store is filled by store_memd_open() and then read-only,
 *     but for each server's pool fields (under its lock, store_memd_conn.c
 *     only), the page bitmaps (atomic word updates: fenced, spilled,
 *     stored and short in store_memd_fence.c, claimed in
 *     store_memd_repair.c), and the maintenance thread's own fields.
 *   - struct op is one page_store op in progress, on the caller's stack:
 *     one thread, no lock.  Its links hold connections checked out of the
 *     servers' pools; op_finish() gives them back.
 *   - Ops run on any of the pager's threads, several at once, never two
 *     on one page (the pager serialises them): which copies of a page are
 *     current is decided by the op that holds it.  The repair, on the
 *     maintenance thread, is a third party: puts and drops claim their
 *     pages (waiting while the repair holds one), the repair only takes
 *     pages nobody holds.  A get needs no claim: the repair adds copies
 *     of the same contents, never changes a copy a get could read.
 *     Cleaning a server that comes back runs on the maintenance thread,
 *     once no connection of before the failure is out and while no op
 *     can use the server.
 *   - An error that ends an op (-ENOMEM, a bug: -EPROTO) goes to
 *     op_fatal(), the first one wins.  Anything one server does wrong
 *     (unreachable, refusing us, an error status, a broken reply) only
 *     takes its link down, and the op goes on with the other servers.
 */
#ifndef RACKVM_REMOTE_STORE_MEMD_INTERNAL_H
#define RACKVM_REMOTE_STORE_MEMD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "remote/memd_proto.h"
#include "remote/store_backends.h"
#include "remote/store_handover.h"
#include "util/errmsg.h"
#include "util/clock.h"

#define MAX_SERVERS 16
#define GROUP_SHIFT 4
#define REQ_MAX_PIECES 64
#define LABEL_MAX (MEMD_HOST_MAX + 8)
#define REPAIR_BATCH 256		/* pages the repair takes at a time */
#define RETRY_MS 200			/* a failed server is retried after */
#define DOWN_AFTER_MS 30000		/* down_after's default */
#define WRITE_OFF_EVERY_MS 1000		/* a written-off server rescanned */

/* A connection to one server: in its idle list, or checked out by one op. */
struct conn {
	struct conn *next;
	struct remote *owner;
	bool idle;			/* in the pool (else counted in nbusy) */
	int fd;
	uint64_t generation;		/* of its server when it was opened */
	uint64_t next_id;
	uint8_t *tx;			/* MEMD_MAX_MSG: the request being sent */
	size_t tx_len, tx_off;
	uint8_t *rx;			/* MEMD_MAX_MSG: replies being read */
	size_t rx_len;
	int64_t idle_since_ms;		/* when it went back to the pool */
};

/* One server of the spec. */
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
	unsigned nbusy;			/* connections out of the pool */
	pthread_cond_t unbusy;		/* nbusy dropped to 0 */
	bool down;			/* failed; not used until recovered */
	int64_t down_since_ms;		/* when it last went down */
	bool identified;		/* identity: who holds our copies */
	uint8_t identity[MEMD_ID_SIZE];
	bool reset_pending;		/* a HELLO saw it lost our copies */
	int64_t last_failure_ms;
	int64_t retry_ms;		/* after last_failure_ms */
	int64_t last_probe_ms;
	char why[sizeof(struct errmsg)];	/* the last failure */
};

struct memd_store {
	struct page_store base;
	struct remote servers[MAX_SERVERS];
	unsigned nservers, replicas;
	unsigned min_replicas;		/* copies a put needs, <= replicas */
	char namespace_name[MEMD_NAME_MAX + 1];
	uint8_t key[MEMD_KEY_SIZE];	/* K, from the secret (not kept) */
	uint64_t ram_pages;
	uint64_t *spilled;		/* a current copy may be off home */
	uint64_t *stored;		/* the store holds a copy */
	uint64_t *short_copies;		/* stored with fewer than N copies */
	uint64_t *claimed;		/* a put, drop or repair holds it */
	uint64_t nshort, nlost;		/* atomics: pages short, lost */
	int64_t down_after_ms;		/* a server down this long has lost
					 * its copies (0: never) */
	pthread_mutex_t claim_lock;	/* waiting for the repair's claims */
	pthread_cond_t claim_done;
	/* the repair's, on the maintenance thread */
	uint64_t repair_cursor;
	uint8_t *repair_data;		/* REPAIR_BATCH pages */
	uint8_t *repair_tags;		/* REPAIR_BATCH tags */
	/* the pools' upkeep (store_memd_idle.c), on the maintenance thread */
	int64_t upkeep_ms;		/* its last round */
	int64_t alive_ms[MAX_SERVERS];	/* a connection last known to work */
	int64_t written_off_ms[MAX_SERVERS];	/* its copies' last write-off */
	/* handing the namespace over (store_handover.h, store_memd_handover.c):
	 * written with no op in flight and the maintenance thread stopped
	 * or (ADOPTING -> OWNER) reading it atomically */
	enum { MEMD_OWNER, MEMD_HANDING_OVER, MEMD_RELEASED,
	       MEMD_ADOPTING } handover;
	uint32_t handover_lost;		/* at BEGIN: servers that lost our
					 * copies, not recovered yet */
	/* the maintenance thread */
	pthread_t maint;
	pthread_mutex_t maint_lock;	/* maint_stop */
	pthread_cond_t maint_wake;
	bool maint_stop, maint_running;	/* maint_stop: atomic reads too */
};

/* Pages of one caller run within one group, with the same servers. */
struct piece {
	uint64_t first;
	uint32_t count;
	uint32_t run;			/* index of the caller's run */
	uint8_t *data;			/* NULL for drops */
	uint8_t *tags;			/* count * PAGE_TAG_SIZE; NULL for drops */
	const uint32_t *gens;		/* NULL: copies are not opened (the
					 * repair moves them as they are) */
	uint8_t order[MAX_SERVERS];	/* the group's server ranking */
	uint32_t home;			/* the first N of @order, as a mask */
	uint32_t allowed;		/* servers this op may use for it */
	uint32_t tried;
	uint32_t acked;			/* servers that stored/returned/dropped it */
	uint32_t round;			/* servers it goes to in this round */
	enum { PIECE_PENDING, PIECE_OK, PIECE_FAILED, PIECE_SPLIT } state;
	bool full, unreachable, bad_sum;
	bool refused;			/* a server refused us (auth, protocol) */
	bool alone;			/* in a request of its own (a GET whose
					 * NO_PAGE must name its one page) */
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
	int fatal;			/* ends the op: -ENOMEM, ... */
	struct errmsg fatal_why;
	struct errmsg last_why;		/* the last server failure seen */
};

/* How drop_pages() picks the servers of each page. */
enum drop_mode {
	DROP_PAGES,		/* every server that may hold a copy */
	DROP_STALE,		/* the servers fenced for it (after a put) */
	DROP_EVERYWHERE,	/* all servers (after a failed put) */
};

/* Which servers page @page of @group may use, for split_runs(). */
typedef uint32_t (*page_servers_fn)(const struct memd_store *st,
				    const struct piece *group, uint64_t page);

/* Page bitmaps shared by threads: atomic word updates. */
static inline bool bit_test(const uint64_t *map, uint64_t i)
{
	return __atomic_load_n(&map[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

/* These return whether the bit was set before. */
static inline bool bit_set(uint64_t *map, uint64_t i)
{
	uint64_t bit = 1ull << (i % 64);

	return __atomic_fetch_or(&map[i / 64], bit, __ATOMIC_RELAXED) & bit;
}

static inline bool bit_clear(uint64_t *map, uint64_t i)
{
	uint64_t bit = 1ull << (i % 64);

	return __atomic_fetch_and(&map[i / 64], ~bit, __ATOMIC_RELAXED) & bit;
}

static inline int64_t now_ms(void)
{
	return (int64_t)(monotonic_ns() / 1000000);
}

static inline uint32_t all_servers(const struct memd_store *st)
{
	return (uint32_t)((1ull << st->nservers) - 1);
}

/* ---- store_memd.c: opening ------------------------------------------------ */

/* A store for the spec @args and namespace @name, allocated, not keyed
 * nor connected; memd_store_start() connects it (st->key set) and starts
 * its maintenance thread, and frees it on failure; memd_free() frees one
 * that never started. */
int memd_store_new(const char *args, const char *name, uint64_t ram_pages,
		   struct memd_store **out, struct errmsg *err);
int memd_store_start(struct memd_store *st, struct page_store **out,
		     struct errmsg *err);
void memd_free(struct memd_store *st);

/* ---- store_memd_handover.c: another process takes the namespace -------- */

extern const struct page_store_handover_ops memd_handover_ops;

/* True while the store only keeps its connections alive (ADOPTING). */
static inline bool memd_adopting(const struct memd_store *st)
{
	return __atomic_load_n(&st->handover, __ATOMIC_ACQUIRE) == MEMD_ADOPTING;
}

/* ---- store_memd_conn.c: connections and servers ------------------------- */

void conn_close(struct conn *c);
void conn_close_list(struct conn *c);
/* After a failure: closes the idle connections, retries after a while. */
void remote_mark_down(struct remote *r, const char *why);
/* Back to the pool, or closed if the server failed since it was opened. */
void remote_release(struct remote *r, struct conn *c);
bool op_link(struct op *op, unsigned s);
int connect_all(struct memd_store *st, struct errmsg *err);
/* The maintenance thread's: a failed server back once due, an idle one
 * checked on. */
void remote_recover(struct memd_store *st, unsigned s);
void remote_probe(struct memd_store *st, unsigned s);
/* The pools' upkeep (store_memd_idle.c): closes @r's pooled connections
 * idle for @idle_ms but the most recently used one, and says when that
 * one was last used (0: the pool is empty). */
int64_t remote_prune(struct remote *r, int64_t now, int64_t idle_ms);
/* A pooled connection to @r, checked out, if @r is up and has one. */
struct conn *remote_take_idle(struct remote *r);

/* ---- store_memd_hello.c: the handshake ---------------------------------- */

/* What a server said of itself in the handshake. */
struct hello_result {
	uint8_t identity[MEMD_ID_SIZE];
	bool created;			/* this HELLO created the namespace */
};

/* The handshake on @c, new: 0, -EACCES (refused, or the server failed to
 * prove it knows our verifier), -ENOSPC, -EPROTO, or a connection error. */
int conn_hello(struct memd_store *st, unsigned s, struct conn *c,
	       struct hello_result *res, struct errmsg *err);
/*
 * One exchange on @c, which has nothing else in flight: sends the first
 * @len bytes of c->tx by @deadline_ms (0 or -errno); reads the one reply
 * to request @id, op @op (@arg as for memd_check_reply()) into c->rx by
 * @deadline_ms: 0 with its header in @h and its body at c->rx +
 * MEMD_HDR_SIZE, or -errno with why in @err.
 */
int conn_send(struct conn *c, size_t len, int64_t deadline_ms);
int conn_recv(struct conn *c, uint8_t op, uint64_t id, uint32_t arg,
	      int64_t deadline_ms, struct memd_hdr *h, struct errmsg *err);

/* ---- store_memd_pipeline.c: requests and replies ------------------------ */

void op_init(struct op *op, struct memd_store *st);
__attribute__((format(printf, 3, 4)))
void op_fatal(struct op *op, int err, const char *fmt, ...);
void op_finish(struct op *op);
struct creq *link_new_req(struct link *l, uint8_t opcode);
void exchange(struct op *op);
void run_round(struct op *op, uint8_t opcode);

/* ---- store_memd_placement.c: pieces and the servers they use ------------ */

int split_runs(struct op *op, const struct page_run *runs, size_t n,
	       page_servers_fn servers, bool keep_empty);
/* Appends a copy of @p to the op's pieces; NULL when out of memory. */
struct piece *add_piece(struct op *op, const struct piece *p);
/* The home servers of @group, as a mask. */
uint32_t group_home(const struct memd_store *st, uint64_t group);
bool put_pick_targets(struct op *op);
void put_collect(struct op *op);
int put_failure(struct op *op, struct errmsg *err);
bool get_pick_sources(struct op *op);
void get_collect(struct op *op);
int get_failure(struct op *op, struct errmsg *err);

/* ---- store_memd_fence.c: current copies --------------------------------- */

uint32_t get_candidates(const struct memd_store *st, const struct piece *group,
			uint64_t page);
void put_commit(struct op *op);
/* After a repair: the copies it added are current too. */
void repair_commit(struct op *op);
/* A page's count of copies: short of N, or not. */
void note_copies(struct memd_store *st, uint64_t page, unsigned copies);
/*
 * Server @s lost everything of ours (it restarted, or our namespace was
 * re-created there; @sources 0), or is down for good (@sources: the
 * servers up now): every copy it may hold is fenced, and its page
 * counted short; with @sources, only the copies of pages that have a
 * current copy on one of @sources (a page whose copies are all out of
 * reach keeps them: the server may come back with them).  How many
 * pages it fenced.
 */
uint64_t forget_copies_on(struct memd_store *st, unsigned s, uint32_t sources);
int drop_pages(struct memd_store *st, const struct page_run *runs, size_t n,
	       enum drop_mode mode, struct errmsg *err);
int clean_fenced(struct memd_store *st, unsigned s, struct conn **c,
		 struct errmsg *err);

/* ---- store_memd_repair.c: claims and re-replication ---------------------- */

/* A put's or drop's pages: waits while the repair holds one. */
void claim_runs(struct memd_store *st, const struct page_run *runs, size_t n);
void release_runs(struct memd_store *st, const struct page_run *runs,
		  size_t n);
/* One batch of short pages given their missing copies; true if it got
 * some (call again soon).  The maintenance thread's. */
bool repair_tick(struct memd_store *st);
/* The copies on servers down for longer than down_after, written off
 * (fenced and counted short, for the repair to place elsewhere); looked
 * at every WRITE_OFF_EVERY_MS while a server stays down.  The
 * maintenance thread's. */
void write_off_down_servers(struct memd_store *st);

/* ---- store_memd_idle.c: between ops, and at the end --------------------- */

/* Closes idle connections but one per server, and keeps that one alive;
 * a round at most every second.  The maintenance thread's. */
void pool_upkeep(struct memd_store *st);
/* RELEASE on every server with a pooled connection (the store is
 * destroyed, the maintenance thread stopped); returns within a second. */
void release_namespace(struct memd_store *st);

/* ---- store_memd_maint.c: the maintenance thread ------------------------- */

int maint_start(struct memd_store *st, struct errmsg *err);
/* Stops and joins it; fine if it never started. */
void maint_stop(struct memd_store *st);
/* True once maint_stop() was called: long work looks between steps. */
bool maint_stopping(struct memd_store *st);
#endif
