/* SPDX-License-Identifier: MIT */
/*
 * Live migration over TCP, in three modes.  The source sends the stream
 * of migrate/stream.h.
 *
 * Pre-copy ("precopy", the default): the config, then guest RAM in
 * rounds while the guest runs (round 0 every page in use, then the pages
 * written since the previous round, from KVM's dirty log, vm/vm_dirty.h),
 * until what is left fits the downtime budget at the measured bandwidth
 * (or the round limit is reached); then it pauses the VM, quiesces its
 * devices, sends the last written pages, every page a device wrote
 * during the migration, the vCPUs, the in-kernel state and the devices,
 * and END.
 *
 * Post-copy ("postcopy"): the source pauses the VM at once, after the
 * config, and sends a hot set (the pages the guest wrote during a short
 * dirty-log window before the pause, at most 16 MiB: the stack and data
 * it works on, which it will touch again first), a PENDING set (every
 * other page that holds data), the state and HANDOVER; the guest then
 * runs on the destination, which registers the pending pages as missing
 * with userfaultfd: a vCPU or device thread touching one waits while
 * the destination asks the source for it ("REQ page"), and the source
 * answers a request before it goes on pushing the remaining pages in
 * the background.  END follows the last page; the destination answers
 * "DONE" once it holds every page, and only then does the source end.
 *
 * Hybrid ("hybrid"): pre-copy rounds (at most precopy_rounds, default
 * 3) while the guest runs, then post-copy for what is still dirty: a
 * bounded downtime for a guest that writes faster than the link.
 *
 * Never two running copies.  The handover:
 *   destination  everything loaded and checked      -> "READY\n"
 *   source       the VM stays paused for good       -> "GO\n" (post-copy:
 *                                                      a GO section)
 *   destination  vCPUs started                      -> "RUNNING\n"
 *   source       ends its VM ("migrated to ..."); in post-copy only once
 *                the destination also said "DONE" (every page is there)
 * Any failure before GO (a refused connection, a cut or corrupt stream,
 * a destination that refuses the config and says "ERROR why\n") leaves
 * the source as it was: its devices serve again and, unless it was
 * paused before, it resumes; the destination exits with the reason.
 * Once GO is sent the source never resumes: if RUNNING does not come
 * (the connection is cut in that instant), the destination may or may
 * not run the VM, and the source ends its VM saying so rather than risk
 * a second copy (UNCONFIRMED).
 *
 * Post-copy's risk: after GO the guest's RAM is split between the two
 * hosts until the last page arrived.  If the destination dies, or the
 * connection is cut, in that time, the VM is LOST: neither side has all
 * of it.  The source keeps every page until DONE, but its vCPU and
 * device state are stale the moment the destination ran, so it must not
 * resume; it ends its VM saying the VM is lost (phase "lost", exit
 * status 2).  The destination ends its VM with the reason, and every
 * page that never came is refused (uffd_ram_refuse(): a thread touching
 * it gets no data, never a page of zeros).  Pre-copy has no such window:
 * use it where losing the VM is worse than a longer migration.
 *
 * Auto-converge (migrate_converge.c, on unless opt.auto_converge is
 * off): a pre-copy whose guest writes faster than the link carries is
 * throttled by pause duty cycles, harder each round, until it fits.
 *
 * A VM that pages (--mem-local) migrates in pre-copy only
 * (migrate_pager.c): paused, its pager frozen, the page map goes first
 * (a PAGEMAP section: which pages are resident and sent, zero, or left
 * in the store with its credentials), then the resident pages.  Pages
 * in memd stay there: the destination's pager reads them on first touch
 * and owns the namespace once GO came (pager_handover_commit()); a
 * failure before GO thaws the source's pager as it was.
 *
 * Not yet: post-copy or hybrid of a VM with --mem-local or --wss (the
 * pager and the sampler would share guest RAM's userfaultfd with
 * post-copy's missing pages); refused with a message.
 *
 * Threads: migration_start() runs the source side on a thread of its
 * own (post-copy adds one that reads the destination's lines); the
 * status may be read from any thread.  The owner (the API) destroys the
 * migration before the machine.
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
#define MIGRATE_DEFAULT_HYBRID_ROUNDS 3

enum migrate_mode {
	MIGRATE_MODE_PRECOPY,
	MIGRATE_MODE_POSTCOPY,
	MIGRATE_MODE_HYBRID,
};

struct migrate_options {
	char uri[MIGRATE_URI_MAX];	/* tcp:HOST:PORT */
	uint64_t max_downtime_ns;	/* 0: the default */
	uint64_t max_bandwidth;		/* bytes/s; 0: as fast as it goes */
	bool compress;			/* zstd on guest RAM */
	unsigned max_rounds;		/* 0: the default */
	enum migrate_mode mode;
	unsigned precopy_rounds;	/* hybrid's; 0: the default */
	/* throttle a guest that writes faster than the link carries
	 * (migrate_converge.c); on unless turned off */
	bool auto_converge;
};

enum migrate_phase {
	MIGRATE_CONNECTING,
	MIGRATE_PRECOPY,
	MIGRATE_STOP_AND_COPY,
	MIGRATE_HANDOVER,
	MIGRATE_POSTCOPY,	/* it runs there; pages still go */
	MIGRATE_COMPLETED,	/* the destination runs it; ours ended */
	MIGRATE_FAILED,		/* ours goes on as before */
	MIGRATE_UNCONFIRMED,	/* GO sent, RUNNING never came */
	MIGRATE_LOST,		/* post-copy cut after GO: the VM is lost */
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
	unsigned throttle_percent;	/* auto-converge's, the highest set */
	enum migrate_mode mode;
	/* post-copy: pages the destination asked for, and for those the
	 * push had not sent yet, how long from the request read to the
	 * page sent (ms) */
	uint64_t urgent_requests;
	double urgent_p50_ms, urgent_p99_ms;
	/* the destination's view, told with DONE: its faults on missing
	 * pages and their wait (fault to page in, ms) */
	uint64_t dest_faults;
	double fault_p50_ms, fault_p99_ms;
	/* a VM that pages: its pages the destination reads from the store
	 * (memd) where they are, not sent */
	uint64_t pages_left_in_store, bytes_left_in_store;
	/* post-copy: the VM ended on the destination before every page
	 * was sent (pages_remaining were not needed) */
	bool dest_ended;
	/* where the downtime went, once the destination runs (ms): the
	 * vCPUs' pause, the devices' quiesce, the last pages and the state
	 * (post-copy: the hot set and the state) onto the wire, the
	 * destination's load until READY, and GO until RUNNING */
	bool have_downtime_parts;
	double pause_ms, quiesce_ms, copy_ms, load_ms, start_ms;
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
/* Still under way (not COMPLETED, FAILED, UNCONFIRMED or LOST). */
bool migration_active(struct migration *mg);
/* Cuts it short if still under way (the source then resumes as after a
 * failure), waits for its thread, frees.  NULL is allowed. */
void migration_destroy(struct migration *mg);
const char *migrate_phase_name(enum migrate_phase p);
/* "precopy", "postcopy", "hybrid"; 0 or -EINVAL for another name. */
const char *migrate_mode_name(enum migrate_mode m);
int migrate_mode_parse(const char *s, enum migrate_mode *out);

/*
 * The destination: listens on @uri ("tcp:ADDR:PORT"), takes one
 * connection, builds the machine from the stream (as a restore does,
 * with @o's run settings; a post-copy stream with the missing pages
 * registered with userfaultfd and fetched from the source) and answers
 * READY; returns once the source said GO, with the machine CREATED and
 * *@in to tell the source once it runs.  Any failure is told to the
 * source ("ERROR why") and returned.  In post-copy, the machine owns
 * what fetches the pages: if the source goes away before every page
 * came, it ends the VM with the reason.
 */
struct migrate_incoming;
int migrate_incoming(const char *uri, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct migrate_incoming **in, struct errmsg *err);
/* After machine_start(): tells the source (RUNNING), frees @in. */
void migrate_incoming_running(struct migrate_incoming *in);
/* machine_start() failed: the source hears no RUNNING; frees @in.
 * NULL is allowed for both. */
void migrate_incoming_abort(struct migrate_incoming *in);

#endif
