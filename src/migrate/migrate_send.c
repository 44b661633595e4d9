// SPDX-License-Identifier: MIT
/*
 * The source side of a migration (migrate.h): rounds of guest RAM while
 * the guest runs, then the stop-and-copy and the handover; post-copy
 * (and hybrid's end) is postcopy_send.c's.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/migrate_internal.h"
#include "migrate/stream.h"
#include "rackvm/version.h"
#include "util/clock.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"
#include "vm/vm_dirty.h"
#include "vm/vm_state.h"

void migrate_set_phase(struct migration *mg, enum migrate_phase p)
{
	pthread_mutex_lock(&mg->lock);
	mg->st.phase = p;
	pthread_mutex_unlock(&mg->lock);
}

void migrate_mark(struct migration *mg, enum migrate_mark m)
{
	__atomic_store_n(&mg->mark[m], monotonic_ns(), __ATOMIC_RELEASE);
}

/* Under mg->lock: the downtime's parts, once RUNNING came. */
static void downtime_parts(struct migration *mg, struct migrate_status *st)
{
	uint64_t at[MIGRATE_MARKS], prev = mg->paused_at;
	double *part[MIGRATE_MARKS] = { &st->pause_ms, &st->quiesce_ms,
					&st->copy_ms, &st->load_ms,
					&st->start_ms };

	for (unsigned i = 0; i < MIGRATE_MARKS; i++) {
		at[i] = __atomic_load_n(&mg->mark[i], __ATOMIC_ACQUIRE);
		if (!at[i] || at[i] < prev)
			return;
		prev = at[i];
	}
	prev = mg->paused_at;
	for (unsigned i = 0; i < MIGRATE_MARKS; i++) {
		*part[i] = (double)(at[i] - prev) / 1e6;
		prev = at[i];
	}
	st->have_downtime_parts = true;
}

/* Keeps the stream at or under the bandwidth cap. */
void migrate_throttle(struct migration *mg, uint64_t round_start,
		      uint64_t round_bytes)
{
	uint64_t due, now;

	if (!mg->opt.max_bandwidth)
		return;
	due = round_start + round_bytes * 1000000000ull / mg->opt.max_bandwidth;
	now = monotonic_ns();
	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / 1000000000ull),
				       (long)((due - now) % 1000000000ull) };

		nanosleep(&ts, NULL);
	}
}

int migrate_send_run(struct migration *mg, struct stream_writer *w,
		     uint64_t first, uint64_t n, struct errmsg *err)
{
	int ret;

	if (__atomic_load_n(&mg->cancel, __ATOMIC_RELAXED))
		return errmsg_set(err, -ECANCELED, "cancelled");
	ret = pread_full(mg->vm->mem.memfd, mg->buf, n * PAGE_SIZE,
			 first * PAGE_SIZE);
	if (ret)
		return errmsg_set(err, ret, "reading guest RAM: %s",
				  strerror(-ret));
	ret = stream_put_pages(w, first, mg->buf, (uint32_t)n, err);
	pthread_mutex_lock(&mg->lock);
	mg->st.pages_sent += n;
	mg->st.bytes_sent += n * PAGE_SIZE;
	pthread_mutex_unlock(&mg->lock);
	return ret;
}

/* Sends every page set in mg->todo, in runs of up to STREAM_PAGES_MAX,
 * read from the memfd (the guest may write them meanwhile: the dirty
 * log then has them for the next round), short runs written together.
 * Clears todo. */
int migrate_send_todo(struct migration *mg, struct stream_writer *w,
		      struct errmsg *err)
{
	uint64_t start = monotonic_ns(), sent = 0, p = 0;
	int ret = stream_writer_batch(w, true, err);

	while (!ret && p < mg->npages) {
		uint64_t first, n = 0;

		if (!(mg->todo[p / 64] >> (p % 64) & 1)) {
			p = mg->todo[p / 64] >> (p % 64) ? p + 1 : (p / 64 + 1) * 64;
			continue;
		}
		first = p;
		while (p < mg->npages && n < STREAM_PAGES_MAX &&
		       (mg->todo[p / 64] >> (p % 64) & 1)) {
			mg->todo[p / 64] &= ~(1ull << (p % 64));
			p++;
			n++;
		}
		ret = migrate_send_run(mg, w, first, n, err);
		sent += n * PAGE_SIZE;
		migrate_throttle(mg, start, sent);
	}
	return ret ? ret : stream_writer_batch(w, false, err);
}

/* Round 0: every page that holds data (holes of the memfd read as
 * zeros, which a new VM's RAM already is). */
void migrate_mark_data_pages(struct migration *mg, uint64_t *bitmap)
{
	int fd = mg->vm->mem.memfd;
	off_t off = 0, d, h;

	while ((d = lseek(fd, off, SEEK_DATA)) >= 0) {
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > mg->vm->mem.size)
			h = (off_t)mg->vm->mem.size;
		for (uint64_t p = (uint64_t)d / PAGE_SIZE;
		     p < ((uint64_t)h + PAGE_SIZE - 1) / PAGE_SIZE; p++)
			bitmap[p / 64] |= 1ull << (p % 64);
		off = h;
	}
	if (off == 0 && errno != ENXIO) {	/* no SEEK_DATA: everything */
		for (uint64_t p = 0; p < mg->npages; p++)
			bitmap[p / 64] |= 1ull << (p % 64);
	}
}

uint64_t migrate_count_bits(const uint64_t *bitmap, uint64_t npages)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(bitmap[w]);
	return n;
}

static uint64_t max_downtime_ns(const struct migration *mg)
{
	return mg->opt.max_downtime_ns ? mg->opt.max_downtime_ns :
	       MIGRATE_DEFAULT_DOWNTIME_MS * 1000000ull;
}

/* Waits until the destination has loaded every page sent so far, so
 * that none waits in a socket for the stop-and-copy (stream.h). */
static int migrate_sync(struct migration *mg, struct stream_writer *w,
			struct errmsg *err)
{
	int ret = stream_put(w, (enum stream_type)STREAM_SYNC, NULL, 0, err);

	return ret ? ret : migrate_expect_reply(mg, "SYNCED", err);
}

/* Rounds while the guest runs, until what is left to send fits the
 * downtime budget or the round limit is reached. */
int migrate_precopy(struct migration *mg, struct stream_writer *w,
		    unsigned max_rounds, struct errmsg *err)
{
	int ret = vm_track_writes_begin(mg->vm, err);

	if (ret)
		return ret;
	mg->tracking = true;
	migrate_set_phase(mg, MIGRATE_PRECOPY);
	migrate_mark_data_pages(mg, mg->todo);
	for (unsigned round = 0; ; round++) {
		uint64_t t = monotonic_ns(), left,
			 pages = migrate_count_bits(mg->todo, mg->npages);
		double secs, bw, expected;
		int64_t dirty;

		ret = migrate_send_todo(mg, w, err);
		if (!ret)
			ret = migrate_sync(mg, w, err);
		if (ret)
			break;
		dirty = vm_track_writes_collect(mg->vm, mg->todo, err);
		if (dirty < 0) {
			ret = (int)dirty;
			break;
		}
		secs = (double)(monotonic_ns() - t) / 1e9;
		left = migrate_count_bits(mg->todo, mg->npages);
		bw = secs > 0 && pages ? (double)(pages * PAGE_SIZE) / secs : 0;
		expected = bw > 0 ? (double)(left * PAGE_SIZE) / bw * 1e3 : 0;
		pthread_mutex_lock(&mg->lock);
		mg->st.round = round + 1;
		mg->st.pages_remaining = left;
		mg->st.dirty_pages_per_s = secs > 0 ? (double)left / secs : 0;
		if (bw > 0)
			mg->st.bandwidth = bw;
		mg->st.expected_downtime_ms = expected;
		mg->st.eta_s = expected / 1e3;
		pthread_mutex_unlock(&mg->lock);
		if (expected * 1e6 <= (double)max_downtime_ns(mg) ||
		    round + 1 >= max_rounds)
			break;
		ret = migrate_converge_round(mg, round, pages, left, err);
		if (ret)
			break;
	}
	migrate_converge_end(mg);
	return ret;
}

int migrate_pause(struct migration *mg, struct errmsg *err)
{
	int ret;

	migrate_set_phase(mg, MIGRATE_STOP_AND_COPY);
	mg->paused_at = monotonic_ns();
	if (machine_state(mg->m) == MACHINE_RUNNING) {
		ret = machine_pause(mg->m);
		if (ret)
			return errmsg_set(err, ret, "cannot pause the VM: %s",
					  strerror(-ret));
		mg->paused_by_us = true;
	} else if (machine_state(mg->m) != MACHINE_PAUSED) {
		return errmsg_set(err, -ECANCELED, "the VM is %s",
				  machine_state_name(machine_state(mg->m)));
	}
	migrate_mark(mg, MIGRATE_MARK_PAUSED);
	ret = vm_state_quiesce_all(mg->vm, err);
	if (ret)
		return ret;
	mg->quiesced = true;
	migrate_mark(mg, MIGRATE_MARK_QUIESCED);
	return 0;
}

int migrate_send_state_end(struct migration *mg, struct stream_writer *w,
			   struct errmsg *err)
{
	int ret = migrate_put_state(w, mg->vm, err);

	if (!ret)
		ret = stream_finish(w, err);
	migrate_mark(mg, MIGRATE_MARK_SENT);
	if (!ret)
		ret = migrate_expect_reply(mg, "READY", err);
	migrate_mark(mg, MIGRATE_MARK_READY);
	return ret;
}

/* The VM paused and its devices quiet: the rest, and the handover. */
static int stop_and_copy(struct migration *mg, struct stream_writer *w,
			 struct errmsg *err)
{
	int64_t dirty;
	int ret = migrate_pause(mg, err);

	if (ret)
		return ret;
	dirty = vm_track_writes_collect(mg->vm, mg->todo, err);
	if (dirty < 0)
		return (int)dirty;
	vm_track_device_writes(mg->vm, mg->todo);
	ret = migrate_send_todo(mg, w, err);
	return ret ? ret : migrate_send_state_end(mg, w, err);
}

/* Past this point the source never runs the VM again. */
static void hand_over(struct migration *mg, struct errmsg *err)
{
	static const char go[] = "GO\n";
	struct vm *vm = mg->vm;
	int ret;

	migrate_set_phase(mg, MIGRATE_HANDOVER);
	if (send(mg->fd, go, sizeof(go) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(go) - 1)
		ret = errmsg_set(err, -errno, "sending GO: %s", strerror(errno));
	else
		ret = migrate_expect_reply(mg, "RUNNING", err);
	if (!ret)
		migrate_mark(mg, MIGRATE_MARK_RUNNING);
	/* GO may have arrived either way: the store's pages are the
	 * destination's to use, and this VM never runs again */
	migrate_pager_settle(mg, true);
	pthread_mutex_lock(&mg->lock);
	mg->st.downtime_ms = (double)(monotonic_ns() - mg->paused_at) / 1e6;
	mg->st.total_s = (double)(monotonic_ns() - mg->t0) / 1e9;
	mg->st.phase = ret ? MIGRATE_UNCONFIRMED : MIGRATE_COMPLETED;
	if (ret)
		snprintf(mg->st.error, sizeof(mg->st.error), "handed over to "
			 "%.200s, which did not confirm it runs the VM: %.200s",
			 mg->opt.uri, err->text);
	pthread_mutex_unlock(&mg->lock);
	if (ret)
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, 0, 0, "migration: handed "
				"over to %.200s, which did not confirm it runs the VM "
				"(%.200s): this VM stops rather than risk a second copy",
				mg->opt.uri, err->text);
	else
		vm_request_exit(vm, VM_EXIT_STOPPED, 0, 0, "migrated to %s",
				mg->opt.uri);
}

/* Everything as it was before the migration: the source goes on. */
static void roll_back(struct migration *mg, int ret, struct errmsg *err)
{
	migrate_pager_settle(mg, false);
	if (mg->quiesced)
		vm_state_unquiesce_all(mg->vm);
	if (mg->tracking)
		vm_track_writes_end(mg->vm);
	if (mg->paused_by_us)
		machine_resume(mg->m);
	pthread_mutex_lock(&mg->lock);
	mg->st.phase = MIGRATE_FAILED;
	snprintf(mg->st.error, sizeof(mg->st.error), "%s",
		 err->text[0] ? err->text : strerror(-ret));
	pthread_mutex_unlock(&mg->lock);
}

static unsigned rounds(const struct migration *mg)
{
	if (mg->opt.mode == MIGRATE_MODE_HYBRID)
		return mg->opt.precopy_rounds ? mg->opt.precopy_rounds :
		       MIGRATE_DEFAULT_HYBRID_ROUNDS;
	return mg->opt.max_rounds ? mg->opt.max_rounds :
	       MIGRATE_DEFAULT_ROUNDS;
}

/* The stream's header; post-copy's hello line before it. */
static int start_stream(struct migration *mg, const struct stream_options *so,
			struct stream_writer **w, struct errmsg *err)
{
	static const char hello[] = MIGRATE_POSTCOPY_HELLO;

	if (mg->opt.mode != MIGRATE_MODE_PRECOPY &&
	    send(mg->fd, hello, sizeof(hello) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(hello) - 1)
		return errmsg_set(err, -errno, "sending to %s: %s", mg->opt.uri,
				  strerror(errno));
	return stream_writer_create(mg->fd, MIGRATE_PRODUCER, so, w, err);
}

static void *migration_thread(void *arg)
{
	struct stream_options so = { 0 };
	struct migration *mg = arg;
	struct stream_writer *w = NULL;
	struct errmsg err = { "" };
	bool paging = machine_pager(mg->m) != NULL;
	int ret;

	/* else it keeps the HTTP server's name, which started it */
	pthread_setname_np(pthread_self(), "migrate");
	so.compress = mg->opt.compress;
	ret = migrate_connect(mg, &err);
	if (!ret)
		ret = start_stream(mg, &so, &w, &err);
	if (!ret)
		ret = migrate_put_config(w, mg->m, &err);
	if (!ret && mg->opt.mode != MIGRATE_MODE_POSTCOPY && !paging)
		ret = migrate_precopy(mg, w, rounds(mg), &err);
	if (!ret && mg->opt.mode == MIGRATE_MODE_PRECOPY) {
		ret = paging ? migrate_pager_stop_and_copy(mg, w, &err) :
		      stop_and_copy(mg, w, &err);
		if (!ret)
			hand_over(mg, &err);
		if (!ret && mg->tracking)	/* the VM is over here */
			vm_track_writes_end(mg->vm);
	} else if (!ret) {
		ret = postcopy_send(mg, w, &err);
	}
	if (ret)
		roll_back(mg, ret, &err);
	stream_writer_destroy(w);
	pthread_mutex_lock(&mg->lock);
	mg->st.total_s = (double)(monotonic_ns() - mg->t0) / 1e9;
	if (mg->fd >= 0)
		close(mg->fd);
	mg->fd = -1;
	pthread_mutex_unlock(&mg->lock);
	return NULL;
}

int migration_start(struct machine *m, const struct migrate_options *o,
		    struct migration **out, struct errmsg *err)
{
	enum machine_state state = machine_state(m);
	const struct machine_config *cfg = machine_config(m);
	char host[MIGRATE_URI_MAX], port[16];
	pthread_condattr_t ca;
	struct migration *mg;
	int ret;

	*out = NULL;
	if (state != MACHINE_RUNNING && state != MACHINE_PAUSED)
		return errmsg_set(err, -EBUSY, "the VM is %s",
				  machine_state_name(state));
	if (cfg->pager.enabled && o->mode != MIGRATE_MODE_PRECOPY)
		return errmsg_set(err, -ENOTSUP, "a VM with --mem-local migrates "
				  "in precopy mode only, not %s: post-copy's "
				  "faults and the pager's would share guest RAM",
				  migrate_mode_name(o->mode));
	if (o->mode != MIGRATE_MODE_PRECOPY && cfg->wss.enabled)
		return errmsg_set(err, -ENOTSUP, "a VM with --wss cannot migrate "
				  "in %s mode yet: use precopy",
				  migrate_mode_name(o->mode));
	ret = migrate_parse_uri(o->uri, host, sizeof(host), port, sizeof(port),
				err);
	if (ret)
		return ret;
	mg = calloc(1, sizeof(*mg));
	if (!mg)
		return errmsg_set(err, -ENOMEM, "out of memory");
	mg->m = m;
	mg->vm = machine_vm(m);
	mg->opt = *o;
	mg->fd = -1;
	mg->npages = mg->vm->mem.size / PAGE_SIZE;
	mg->todo = calloc((mg->npages + 63) / 64 + 1, 8);
	mg->buf = malloc(STREAM_PAGES_MAX * PAGE_SIZE);
	pthread_mutex_init(&mg->lock, NULL);
	pthread_condattr_init(&ca);	/* post-copy's timed waits */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mg->cond, &ca);
	pthread_condattr_destroy(&ca);
	mg->st.phase = MIGRATE_CONNECTING;
	mg->st.mode = o->mode;
	mg->t0 = monotonic_ns();
	if (!mg->todo || !mg->buf) {
		migration_destroy(mg);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	ret = pthread_create(&mg->thread, NULL, migration_thread, mg);
	if (ret) {
		mg->thread = 0;
		migration_destroy(mg);
		return errmsg_set(err, -ret, "cannot start a thread: %s",
				  strerror(ret));
	}
	*out = mg;
	return 0;
}

void migration_status(struct migration *mg, struct migrate_status *out)
{
	pthread_mutex_lock(&mg->lock);
	*out = mg->st;
	if (mg->st.phase < MIGRATE_COMPLETED)
		out->total_s = (double)(monotonic_ns() - mg->t0) / 1e9;
	out->urgent_requests = mg->pc.requests;
	out->urgent_p50_ms = latency_percentile_ms(&mg->pc.urgent, 50);
	out->urgent_p99_ms = latency_percentile_ms(&mg->pc.urgent, 99);
	downtime_parts(mg, out);
	pthread_mutex_unlock(&mg->lock);
}

bool migration_active(struct migration *mg)
{
	struct migrate_status st;

	migration_status(mg, &st);
	return st.phase < MIGRATE_COMPLETED;
}

void migration_destroy(struct migration *mg)
{
	if (!mg)
		return;
	__atomic_store_n(&mg->cancel, true, __ATOMIC_RELAXED);
	if (mg->thread) {
		/* a thread blocked on the socket wakes up when it is shut */
		pthread_mutex_lock(&mg->lock);
		if (mg->fd >= 0)
			shutdown(mg->fd, SHUT_RDWR);
		pthread_cond_broadcast(&mg->cond);
		pthread_mutex_unlock(&mg->lock);
		pthread_join(mg->thread, NULL);
	}
	pthread_cond_destroy(&mg->cond);
	pthread_mutex_destroy(&mg->lock);
	free(mg->todo);
	free(mg->buf);
	free(mg);
}

const char *migrate_phase_name(enum migrate_phase p)
{
	static const char *const names[] = {
		"connecting", "precopy", "stop_and_copy", "handover",
		"postcopy", "completed", "failed", "unconfirmed", "lost",
	};

	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

static const char *const mode_names[] = { "precopy", "postcopy", "hybrid" };

const char *migrate_mode_name(enum migrate_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}

int migrate_mode_parse(const char *s, enum migrate_mode *out)
{
	for (unsigned i = 0; s && i < 3; i++) {
		if (!strcmp(s, mode_names[i])) {
			*out = (enum migrate_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
