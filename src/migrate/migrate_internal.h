/* SPDX-License-Identifier: MIT */
/*
 * What a snapshot and a migration write alike (snapshot.c), and the
 * source side of a migration's insides, shared by its files (migrate/
 * only):
 *   migrate_send.c   the thread, pre-copy rounds, stop-and-copy, handover
 *   migrate_conn.c   the connection: connect, the destination's replies
 *   postcopy_send.c  post-copy after the pause: the pending set, the hot
 *                    set, the serve loop (urgent pages before the push)
 *   postcopy_ctl.c   the source's reader of the destination's lines
 *                    during post-copy (REQ, READY, RUNNING, DONE, ERROR)
 *
 * struct migration: opt, m, vm, npages are set at the start and read-only
 * after; st under lock; todo, buf, the flags paused_by_us, quiesced,
 * tracking: the migration thread only; the post-copy fields as
 * postcopy_send.c says.
 */
#ifndef RACKVM_MIGRATE_MIGRATE_INTERNAL_H
#define RACKVM_MIGRATE_MIGRATE_INTERNAL_H

#include <pthread.h>

#include "machine/machine.h"
#include "migrate/migrate.h"
#include "migrate/postcopy_latency.h"
#include "migrate/stream.h"
#include "rackvm/version.h"
#include "util/errmsg.h"

#define MIGRATE_PRODUCER "rackvm " RACKVM_VERSION
/* A post-copy or hybrid source opens the connection with this line,
 * before the stream: the destination then reads it as one (migrate.h). */
#define MIGRATE_POSTCOPY_HELLO "POSTCOPY 1\n"

/* The CONFIG section: @m's config as JSON. */
int migrate_put_config(struct stream_writer *w, struct machine *m,
		       struct errmsg *err);
/* Every vCPU, then the in-kernel state (the vCPUs are paused), then
 * every registered device (they are quiesced). */
int migrate_put_state(struct stream_writer *w, struct vm *vm,
		      struct errmsg *err);

#define POSTCOPY_URGENT_RING 1024

/* The source's post-copy state, shared by its sender and its reader of
 * the destination's lines; under migration.lock, cond signalled on any
 * change. */
struct postcopy_src {
	pthread_t reader;
	bool reader_started;
	uint64_t ring[POSTCOPY_URGENT_RING];	/* requested pages */
	uint64_t ring_at[POSTCOPY_URGENT_RING];	/* when each came */
	unsigned head, tail;
	bool ready, running, done;
	bool ended;			/* the VM ended on the destination */
	uint64_t running_at;		/* when RUNNING came */
	int error;			/* the reader's, with error_text */
	char error_text[400];
	char done_line[260];		/* the destination's DONE line */
	uint64_t requests;		/* every REQ read */
	struct latency_hist urgent;	/* request read to page sent, for
					 * pages the push had not sent */
};

/* The steps of the stop-and-copy, timed for the downtime's breakdown
 * (migrate_status): each mark is when that step ended. */
enum migrate_mark {
	MIGRATE_MARK_PAUSED,
	MIGRATE_MARK_QUIESCED,
	MIGRATE_MARK_SENT,
	MIGRATE_MARK_READY,
	MIGRATE_MARK_RUNNING,
	MIGRATE_MARKS,
};

struct migration {
	struct machine *m;
	struct vm *vm;
	struct migrate_options opt;
	pthread_t thread;
	pthread_mutex_t lock;		/* guards st, pc */
	pthread_cond_t cond;		/* pc changed */
	struct migrate_status st;
	int fd;
	bool cancel;			/* atomic */
	uint64_t npages;
	uint64_t *todo;			/* pages to send this round */
	uint8_t *buf;			/* STREAM_PAGES_MAX pages */
	uint64_t t0, paused_at;
	uint64_t mark[MIGRATE_MARKS];	/* when each step of the stop ended */
	bool paused_by_us, quiesced, tracking;
	bool pager_frozen;		/* pager_handover_begin() done */
	struct throttle *throttle;	/* auto-converge's, while it acts */
	struct postcopy_src pc;
};

/* migrate_send.c */
void migrate_set_phase(struct migration *mg, enum migrate_phase p);
/* Now, as the end of step @m (any thread; under mg->lock or not). */
void migrate_mark(struct migration *mg, enum migrate_mark m);
/* Sleeps as long as keeps @bytes since @start under the bandwidth cap. */
void migrate_throttle(struct migration *mg, uint64_t start, uint64_t bytes);
int migrate_send_todo(struct migration *mg, struct stream_writer *w,
		      struct errmsg *err);
/* Sends pages [first, first + n) (n <= STREAM_PAGES_MAX), counted. */
int migrate_send_run(struct migration *mg, struct stream_writer *w,
		     uint64_t first, uint64_t n, struct errmsg *err);
void migrate_mark_data_pages(struct migration *mg, uint64_t *bitmap);
uint64_t migrate_count_bits(const uint64_t *bitmap, uint64_t npages);
/* Pauses the VM (unless it is) and quiesces its devices. */
int migrate_pause(struct migration *mg, struct errmsg *err);
/* The paused VM's state, END, and the destination's READY. */
int migrate_send_state_end(struct migration *mg, struct stream_writer *w,
			   struct errmsg *err);
int migrate_precopy(struct migration *mg, struct stream_writer *w,
		    unsigned max_rounds, struct errmsg *err);

/* migrate_converge.c: after pre-copy round @round (0 first), which sent
 * @sent pages while the guest wrote @dirtied, throttles the guest harder
 * if it outruns the link (and opt.auto_converge); _end lifts it. */
/* migrate_pager.c: the stop-and-copy of a VM that pages, through READY;
 * then migrate_pager_settle() with whether GO was sent. */
int migrate_pager_stop_and_copy(struct migration *mg, struct stream_writer *w,
				struct errmsg *err);
void migrate_pager_settle(struct migration *mg, bool handed_over);

int migrate_converge_round(struct migration *mg, unsigned round,
			   uint64_t sent, uint64_t dirtied, struct errmsg *err);
void migrate_converge_end(struct migration *mg);

/* migrate_conn.c */
int migrate_connect(struct migration *mg, struct errmsg *err);
int migrate_read_reply(int fd, char *line, size_t len, struct errmsg *err);
int migrate_expect_reply(struct migration *mg, const char *want,
			 struct errmsg *err);
/* For post-copy: no reply timeout (the destination may stay silent for
 * long), a dead peer found by keepalives and a send timeout. */
void migrate_conn_postcopy(int fd);

/* postcopy_send.c: everything after the pre-copy rounds (none for
 * "postcopy").  A failure before GO is returned (the caller rolls back);
 * after GO it returns 0 having ended the VM (completed or lost) and set
 * the phase. */
int postcopy_send(struct migration *mg, struct stream_writer *w,
		  struct errmsg *err);

/* postcopy_ctl.c */
int postcopy_reader_start(struct migration *mg, struct errmsg *err);
/* After a shutdown() of the socket. */
void postcopy_reader_join(struct migration *mg);

#endif
