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
 *     gets a new one then (the maintenance thread's probes,
 *     remote_probe(), usually give it one sooner).
 *   - When the store is destroyed, each server it is connected to is told
 *     to RELEASE the namespace: the VM is gone, and so is the use of its
 *     pages.  Within RELEASE_WAIT_MS, so that a VM's end stays well
 *     within rackvm's shutdown bound whatever the servers do.  Only over
 *     pooled connections, whose handshake the server passed (so only the
 *     namespace our secret guards is released), and only by a store that
 *     opened: one that failed to open must not drop a namespace another
 *     VM may be using.
 *
 * The first two are the maintenance thread's (pool_upkeep(), a round
 * every UPKEEP_MS), through the servers' pools (store_memd_conn.c) and
 * op_link() like any op; RELEASE comes after that thread has stopped.
 */
#include "remote/store_memd_internal.h"

#define UPKEEP_MS 1000
#define IDLE_CLOSE_MS 5000
#define HEARTBEAT_MS 20000
#define CALL_TIMEOUT_MS 1000
#define RELEASE_WAIT_MS 1000

/* Puts a request without a body (STATS, RELEASE) in c->tx; its length,
 * its id in *@id. */
static size_t encode_empty(struct conn *c, uint8_t op, uint64_t *id)
{
	*id = c->next_id++;
	return op == MEMD_OP_STATS ? memd_encode_stats_request(c->tx, *id) :
				     memd_encode_release(c->tx, *id);
}

/* Says something to server @s over a connection of the pool (or a new
 * one); true if it answered.  A server that is down is left to the
 * recovery (op_link() does not connect to it). */
static bool heartbeat(struct memd_store *st, unsigned s)
{
	int64_t deadline = now_ms() + CALL_TIMEOUT_MS;
	struct memd_hdr h = { .status = MEMD_ST_OK };
	struct errmsg why;
	struct link *l;
	struct op op;
	uint64_t id;
	int ret = -1;

	op_init(&op, st);
	l = &op.links[s];
	if (op_link(&op, s)) {
		ret = conn_send(l->conn, encode_empty(l->conn, MEMD_OP_STATS, &id),
				deadline);
		if (!ret)
			ret = conn_recv(l->conn, MEMD_OP_STATS, id, 0, deadline,
					&h, &why);
		/* a broken exchange leaves the connection unfit for the pool */
		if (ret) {
			conn_close(l->conn);
			l->conn = NULL;
		}
	}
	op_finish(&op);
	return !ret && h.status == MEMD_ST_OK;
}

void pool_upkeep(struct memd_store *st)
{
	int64_t now = now_ms();

	if (now - st->upkeep_ms < UPKEEP_MS)
		return;
	st->upkeep_ms = now;
	/* a round stops early when the store is being destroyed: a
	 * heartbeat may wait CALL_TIMEOUT_MS */
	for (unsigned s = 0; s < st->nservers && !maint_stopping(st); s++) {
		int64_t last = remote_prune(&st->servers[s], now, IDLE_CLOSE_MS);

		if (last > st->alive_ms[s])
			st->alive_ms[s] = last;
		if (now - st->alive_ms[s] >= HEARTBEAT_MS && heartbeat(st, s))
			st->alive_ms[s] = now_ms();
	}
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
		c[s] = remote_take_idle(&st->servers[s]);
		if (c[s] && conn_send(c[s], encode_empty(c[s], MEMD_OP_RELEASE,
							 &id[s]), deadline)) {
			conn_close(c[s]);
			c[s] = NULL;
		}
	}
	for (unsigned s = 0; s < st->nservers; s++) {
		struct errmsg why;
		struct memd_hdr h;

		if (c[s])
			conn_recv(c[s], MEMD_OP_RELEASE, id[s], 0, deadline, &h,
				  &why);
		/* the server closes it after the reply */
		conn_close(c[s]);
	}
}
