/* SPDX-License-Identifier: MIT */
/*
 * Live migration over TCP, pre-copy (the first mode; post-copy and the
 * hybrid come next).  The source sends the stream of migrate/stream.h:
 * the config, then guest RAM in rounds while the guest runs (round 0
 * every page in use, then the pages written since the previous round,
 * from KVM's dirty log, vm/vm_dirty.h), until what is left fits the
 * downtime budget at the measured bandwidth (or the round limit is
 * reached); then it pauses the VM, quiesces its devices, sends the last
 * written pages, every page a device wrote during the migration, the
 * vCPUs, the in-kernel state and the devices, and END.
 *
 * Never two running copies, never a lost VM.  The handover:
 *   destination  everything loaded and checked      -> "READY\n"
 *   source       the VM stays paused for good       -> "GO\n"
 *   destination  vCPUs started                      -> "RUNNING\n"
 *   source       ends its VM ("migrated to ...")
 * Any failure before GO (a refused connection, a cut or corrupt stream,
 * a destination that refuses the config and says "ERROR why\n") leaves
 * the source as it was: its devices serve again and, unless it was
 * paused before, it resumes; the destination exits with the reason.
 * Once GO is sent the source never resumes: if RUNNING does not come
 * (the connection is cut in that instant), the destination may or may
 * not run the VM, and the source ends its VM saying so rather than risk
 * a second copy.
 *
 * Not yet: post-copy and hybrid, auto-converge (a guest that dirties
 * faster than the link stops after the round limit, with a longer
 * downtime), a VM with --mem-local or with --wss write logging (KVM's
 * dirty log is the monitor's); each is refused with a message.
 *
 * Threads: migration_start() runs the source side on a thread of its
 * own; the status may be read from any thread.  The owner (the API)
 * destroys the migration before the machine.
 */
#ifndef RACKVM_MIGRATE_MIGRATE_H
#define RACKVM_MIGRATE_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/machine.h"
#include "migrate/snapshot.h"
#include "util/errmsg.h"

#define MIGRATE_URI_MAX 256
#define MIGRATE_DEFAULT_DOWNTIME_MS 30
#define MIGRATE_DEFAULT_ROUNDS 30

struct migrate_options {
	char uri[MIGRATE_URI_MAX];	/* tcp:HOST:PORT */
	uint64_t max_downtime_ns;	/* 0: the default */
	uint64_t max_bandwidth;		/* bytes/s; 0: as fast as it goes */
	bool compress;			/* zstd on guest RAM */
	unsigned max_rounds;		/* 0: the default */
};

enum migrate_phase {
	MIGRATE_CONNECTING,
	MIGRATE_PRECOPY,
	MIGRATE_STOP_AND_COPY,
	MIGRATE_HANDOVER,
	MIGRATE_COMPLETED,	/* the destination runs it; ours ended */
	MIGRATE_FAILED,		/* ours goes on as before */
	MIGRATE_UNCONFIRMED,	/* GO sent, RUNNING never came */
};

struct migrate_status {
	enum migrate_phase phase;
	unsigned round;
	uint64_t bytes_sent;
	uint64_t pages_sent;
	uint64_t pages_remaining;	/* written since they were last sent */
	double dirty_pages_per_s;	/* in the last round */
	double bandwidth;		/* bytes/s, the last round */
	double expected_downtime_ms;
	double downtime_ms;		/* paused to RUNNING, once known */
	double total_s;
	double eta_s;			/* rough: what is left at the bandwidth */
	char error[512];
};

struct migration;

/* "tcp:HOST:PORT": 0, or -EINVAL with a message. */
int migrate_parse_uri(const char *uri, char *host, size_t host_len,
		      char *port, size_t port_len, struct errmsg *err);

/* Starts migrating @m (RUNNING or PAUSED): -EBUSY in another state,
 * -ENOTSUP for what is not supported yet; the rest is reported through
 * the status, asynchronously. */
int migration_start(struct machine *m, const struct migrate_options *o,
		    struct migration **out, struct errmsg *err);
void migration_status(struct migration *mg, struct migrate_status *out);
/* Still under way (not COMPLETED, FAILED or UNCONFIRMED). */
bool migration_active(struct migration *mg);
/* Cuts it short if still under way (the source then resumes as after a
 * failure), waits for its thread, frees.  NULL is allowed. */
void migration_destroy(struct migration *mg);
const char *migrate_phase_name(enum migrate_phase p);

/* The destination: listens on @uri ("tcp:ADDR:PORT"), takes one
 * connection, builds the machine from the stream (as a restore does,
 * with @o's run settings) and answers READY; returns once the source
 * said GO, with the machine CREATED and the connection in *@conn.  Any
 * failure is told to the source ("ERROR why") and returned. */
int migrate_incoming(const char *uri, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     int *conn, struct errmsg *err);
/* After machine_start(): tells the source (RUNNING) and closes @conn. */
void migrate_incoming_running(int conn);

#endif
