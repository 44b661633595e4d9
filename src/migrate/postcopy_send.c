// SPDX-License-Identifier: MIT
/*
 * The source side of post-copy, and of hybrid after its pre-copy rounds
 * (migrate.h): the pause, the hot set, the PENDING set, the state and
 * HANDOVER; then the serve loop, which sends GO once the destination is
 * READY and answers each page request before the next run of the
 * background push, until every page went (END) and the destination said
 * DONE and RUNNING.
 *
 * The hot set, for plain post-copy: the pages the guest writes during a
 * short dirty-log window (HOT_WINDOW_MS) before the pause, at most
 * HOT_MAX_PAGES.  Pages just written are the stack and the data the
 * guest works on, which it touches again first after it resumes: sent
 * before the handover, they cost no fault.  Pages only read (code) are
 * not seen by a dirty log and come by faults.  The cap bounds what the
 * set adds to the downtime (16 MiB: ~15 ms at 10 Gbit/s).  For hybrid,
 * the pages still dirty after the rounds were all written recently: up
 * to HOT_MAX_PAGES of them are the hot set.
 *
 * mg->todo holds the pages still to send after the handover; only this
 * thread touches it.  The urgent ring and the flags are the reader's
 * (postcopy_ctl.c), under mg->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "migrate/migrate_internal.h"
#include "util/clock.h"
#include "util/page.h"
#include "vm/vm.h"
#include "vm/vm_dirty.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "PENDING bitmaps are sent as the bytes of u64 words"
#endif

#define HOT_WINDOW_MS 100
#define HOT_MAX_PAGES 4096
#define PUSH_RUN 32		/* pages per background section: 128 KiB */
#define URGENT_RUN 8		/* a requested page and the next pending */

static bool test_bit(const uint64_t *b, uint64_t p)
{
	return b[p / 64] >> (p % 64) & 1;
}

static void clear_bit(uint64_t *b, uint64_t p)
{
	b[p / 64] &= ~(1ull << (p % 64));
}

/* Keeps at most @max bits of @b set (the lowest pages). */
static void cap_bits(uint64_t *b, uint64_t npages, uint64_t max)
{
	uint64_t seen = 0;

	for (uint64_t p = 0; p < npages; p++)
		if (test_bit(b, p) && ++seen > max)
			clear_bit(b, p);
}

/* Pauses the VM; @hot gets the pages written in a short window before
 * (plain post-copy) or the pages dirty since the last round (hybrid);
 * mg->todo every page still to send. */
static int pause_and_split(struct migration *mg, uint64_t *hot,
			   struct errmsg *err)
{
	struct timespec window = { 0, HOT_WINDOW_MS * 1000000L };
	size_t words = (mg->npages + 63) / 64;
	int64_t dirty;
	int ret;

	if (mg->opt.mode == MIGRATE_MODE_POSTCOPY &&
	    machine_state(mg->m) == MACHINE_RUNNING) {
		ret = vm_track_writes_begin(mg->vm, err);
		if (ret)
			return ret;
		mg->tracking = true;
		nanosleep(&window, NULL);
	}
	ret = migrate_pause(mg, err);
	if (ret)
		return ret;
	if (mg->tracking) {
		dirty = vm_track_writes_collect(mg->vm, hot, err);
		if (dirty < 0)
			return (int)dirty;
		vm_track_device_writes(mg->vm, hot);
	}
	if (mg->opt.mode == MIGRATE_MODE_POSTCOPY) {
		migrate_mark_data_pages(mg, mg->todo);
		for (size_t i = 0; i < words; i++)	/* written: has data */
			mg->todo[i] |= hot[i];
	} else {
		for (size_t i = 0; i < words; i++)
			mg->todo[i] |= hot[i];
		memcpy(hot, mg->todo, words * 8);
	}
	cap_bits(hot, mg->npages, HOT_MAX_PAGES);
	for (size_t i = 0; i < words; i++)
		mg->todo[i] &= ~hot[i];
	return 0;
}

/* The hot set, the PENDING set, the state, HANDOVER. */
static int send_handover_part(struct migration *mg, struct stream_writer *w,
			      uint64_t *hot, struct errmsg *err)
{
	uint64_t *todo = mg->todo, step = STREAM_PENDING_MAX & ~63u;
	int ret;

	mg->todo = hot;		/* migrate_send_todo()'s bitmap */
	ret = migrate_send_todo(mg, w, err);
	mg->todo = todo;
	for (uint64_t p = 0; !ret && p < mg->npages; p += step) {
		uint64_t n = mg->npages - p < step ? mg->npages - p : step;

		if (migrate_count_bits(todo + p / 64, n) == 0)
			continue;
		ret = stream_put_pending(w, p, (const uint8_t *)(todo + p / 64),
					 (uint32_t)n, err);
	}
	if (!ret)
		ret = migrate_put_state(w, mg->vm, err);
	if (!ret)
		ret = stream_put(w, (enum stream_type)STREAM_HANDOVER, NULL, 0,
				 err);
	migrate_mark(mg, MIGRATE_MARK_SENT);
	return ret;
}

/* Sends the pending run that starts at @page (at most @max pages),
 * clearing it from todo; how many pages went, or -errno. */
static int64_t send_pending_run(struct migration *mg, struct stream_writer *w,
				uint64_t page, uint64_t max, struct errmsg *err)
{
	uint64_t n = 0;
	int ret;

	while (page + n < mg->npages && n < max && test_bit(mg->todo, page + n))
		clear_bit(mg->todo, page + n++);
	if (!n)
		return 0;
	ret = migrate_send_run(mg, w, page, n, err);
	if (ret)
		return ret;
	pthread_mutex_lock(&mg->lock);
	mg->st.pages_remaining -= n;
	pthread_mutex_unlock(&mg->lock);
	return (int64_t)n;
}

/* The next pending page at or after *@cursor (wrapping), if any. */
static bool next_pending(struct migration *mg, uint64_t *cursor)
{
	for (uint64_t i = 0, p = *cursor; i < mg->npages; i++, p++) {
		if (p >= mg->npages)
			p = 0;
		if (!(p % 64) && !mg->todo[p / 64] && p + 64 <= mg->npages) {
			i += 63;
			p += 63;
			continue;
		}
		if (test_bit(mg->todo, p)) {
			*cursor = p;
			return true;
		}
	}
	return false;
}

struct serve {
	bool go_sent, end_sent;
	uint64_t cursor, push_start, pushed;
};

/* When the background push may send its next run: at once, or as late
 * as keeps it under the bandwidth cap (urgent pages are not held). */
static uint64_t push_due(const struct migration *mg, const struct serve *s)
{
	if (!mg->opt.max_bandwidth || !s->go_sent)
		return 0;
	return s->push_start + (uint64_t)((double)s->pushed * 1e9 /
					  (double)mg->opt.max_bandwidth);
}

/* Under mg->lock: whether the sender has anything to do. */
static bool work(struct migration *mg, const struct serve *s, uint64_t due)
{
	const struct postcopy_src *pc = &mg->pc;

	return pc->error || __atomic_load_n(&mg->cancel, __ATOMIC_RELAXED) ||
	       pc->head != pc->tail || (pc->ready && !s->go_sent) ||
	       (s->go_sent && !s->end_sent && monotonic_ns() >= due) ||
	       (s->end_sent && pc->done && pc->running) || pc->ended;
}

/* Under mg->lock: until there is work, or the push is due. */
static void wait_work(struct migration *mg, const struct serve *s)
{
	uint64_t due = push_due(mg, s);
	struct timespec ts;

	while (!work(mg, s, due)) {
		if (s->go_sent && !s->end_sent) {
			ts.tv_sec = (time_t)(due / 1000000000ull);
			ts.tv_nsec = (long)(due % 1000000000ull);
			pthread_cond_timedwait(&mg->cond, &mg->lock, &ts);
		} else {
			pthread_cond_wait(&mg->cond, &mg->lock);
		}
	}
}

/* One step of the serve loop: 1 when done, 0 to go on, or -errno. */
static int serve_step(struct migration *mg, struct stream_writer *w,
		      struct serve *s, struct errmsg *err)
{
	struct postcopy_src *pc = &mg->pc;
	uint64_t page = 0, at = 0;
	bool urgent, go;
	int64_t n;

	pthread_mutex_lock(&mg->lock);
	wait_work(mg, s);
	if (pc->ended) {	/* nothing more to send: the VM is over */
		pthread_mutex_unlock(&mg->lock);
		return 1;
	}
	if (pc->error || __atomic_load_n(&mg->cancel, __ATOMIC_RELAXED)) {
		int ret = errmsg_set(err, pc->error ? pc->error : -ECANCELED,
				     "%s", pc->error ? pc->error_text :
				     "cancelled");

		pthread_mutex_unlock(&mg->lock);
		return ret;
	}
	urgent = pc->head != pc->tail;
	if (urgent) {
		page = pc->ring[pc->head % POSTCOPY_URGENT_RING];
		at = pc->ring_at[pc->head % POSTCOPY_URGENT_RING];
		pc->head++;
	}
	go = pc->ready && !s->go_sent;
	if (!urgent && !go && s->end_sent) {
		pthread_mutex_unlock(&mg->lock);
		return 1;
	}
	pthread_mutex_unlock(&mg->lock);
	if (urgent) {
		n = send_pending_run(mg, w, page, URGENT_RUN, err);
		if (n > 0) {
			pthread_mutex_lock(&mg->lock);
			latency_add(&pc->urgent, monotonic_ns() - at);
			pthread_mutex_unlock(&mg->lock);
		}
		return n < 0 ? (int)n : 0;
	}
	if (go) {
		s->go_sent = true;
		migrate_set_phase(mg, MIGRATE_POSTCOPY);
		s->push_start = monotonic_ns();
		return stream_put(w, (enum stream_type)STREAM_GO, NULL, 0, err);
	}
	if (!next_pending(mg, &s->cursor)) {
		s->end_sent = true;
		return stream_finish(w, err);
	}
	n = send_pending_run(mg, w, s->cursor, PUSH_RUN, err);
	if (n < 0)
		return (int)n;
	s->pushed += (uint64_t)n * PAGE_SIZE;
	return 0;
}

/* The destination's "DONE faults=N p50_us=A p99_us=B", into st. */
static void take_done_line(struct migration *mg)
{
	unsigned long long faults = 0, p50 = 0, p99 = 0;

	/* DONE, or ENDED when the VM ended there first: the same fields */
	if (sscanf(mg->pc.done_line, "%*s faults=%llu p50_us=%llu p99_us=%llu",
		   &faults, &p50, &p99) == 3) {
		mg->st.dest_faults = faults;
		mg->st.fault_p50_ms = (double)p50 / 1e3;
		mg->st.fault_p99_ms = (double)p99 / 1e3;
	}
}

/* After GO: the end, either way.  The source never resumes. */
static void finish(struct migration *mg, int ret, struct errmsg *err)
{
	uint64_t now = monotonic_ns();

	if (mg->tracking)
		vm_track_writes_end(mg->vm);
	mg->tracking = false;
	pthread_mutex_lock(&mg->lock);
	if (mg->pc.running)
		mg->st.downtime_ms = (double)(mg->pc.running_at -
					      mg->paused_at) / 1e6;
	mg->st.total_s = (double)(now - mg->t0) / 1e9;
	mg->st.phase = ret ? MIGRATE_LOST : MIGRATE_COMPLETED;
	mg->st.dest_ended = mg->pc.ended;
	if (ret)
		snprintf(mg->st.error, sizeof(mg->st.error), "the VM is lost: "
			 "post-copy to %.200s failed after the handover: %.200s",
			 mg->opt.uri, err->text);
	else
		take_done_line(mg);
	pthread_mutex_unlock(&mg->lock);
	if (ret)
		vm_request_exit(mg->vm, VM_EXIT_HOST_ERROR, 0, 0, "migration: "
				"the VM is lost: post-copy to %.200s failed after "
				"the handover (%.200s); this copy is stale and "
				"does not resume", mg->opt.uri, err->text);
	else
		vm_request_exit(mg->vm, VM_EXIT_STOPPED, 0, 0, "migrated to %s",
				mg->opt.uri);
}

static int serve(struct migration *mg, struct stream_writer *w,
		 struct errmsg *err)
{
	struct serve s = { 0 };
	int ret;

	migrate_set_phase(mg, MIGRATE_HANDOVER);
	migrate_conn_postcopy(mg->fd);
	ret = postcopy_reader_start(mg, err);
	while (!ret)
		ret = serve_step(mg, w, &s, err);
	/* the reader ends with the connection */
	shutdown(mg->fd, SHUT_RDWR);
	pthread_mutex_lock(&mg->lock);
	pthread_cond_broadcast(&mg->cond);
	pthread_mutex_unlock(&mg->lock);
	postcopy_reader_join(mg);
	if (!s.go_sent)
		return ret < 0 ? ret : -EPROTO;
	/* a send cut by the destination's end after ENDED is no loss */
	if (mg->pc.ended)
		ret = 0;
	finish(mg, ret < 0 ? ret : 0, err);
	return 0;
}

int postcopy_send(struct migration *mg, struct stream_writer *w,
		  struct errmsg *err)
{
	uint64_t *hot = calloc((mg->npages + 63) / 64 + 1, 8);
	int ret;

	if (!hot)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = pause_and_split(mg, hot, err);
	if (!ret) {
		pthread_mutex_lock(&mg->lock);
		mg->st.pages_remaining = migrate_count_bits(mg->todo,
							    mg->npages);
		pthread_mutex_unlock(&mg->lock);
		ret = send_handover_part(mg, w, hot, err);
	}
	free(hot);
	if (!ret)
		ret = serve(mg, w, err);
	return ret;
}
