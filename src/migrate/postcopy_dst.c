// SPDX-License-Identifier: MIT
/*
 * The destination's guest RAM during post-copy (postcopy_dst.h).
 *
 * Each page has a state (an atomic byte): FINAL (not pending: in, or a
 * hole that is a zero page), PENDING, REQUESTED (a fault asked the
 * source), ARRIVED (filled in from the stream) or LOST (refused).  Only
 * the receiver moves a page to ARRIVED, after its UFFDIO_COPY, which
 * woke every thread waiting there; a fault thread that finds a page
 * REQUESTED leaves it to that copy.
 */
#include "migrate/postcopy_dst.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memory/uffd_ram.h"
#include "migrate/postcopy_latency.h"
#include "util/clock.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"

#define FAULT_THREADS 2

enum page_state { FINAL, PENDING, REQUESTED, ARRIVED, LOST };

struct postcopy_dst {
	struct vm *vm;
	struct uffd_ram *uffd;
	int conn;
	uint64_t npages;
	uint8_t *state;			/* enum page_state, atomic */
	uint64_t *fault_at;		/* atomic: when a REQUESTED page faulted */
	uint64_t pending;		/* atomic: pages still to come */
	struct stream_reader *reader;
	pthread_t receiver;
	bool receiver_started;

	pthread_mutex_t send_lock;	/* one line at a time */
	pthread_mutex_t lock;		/* below; go_cond on a change */
	pthread_cond_t go_cond;
	bool go, done, running, stopping;
	int error;
	char error_text[480];
	struct latency_hist faults;	/* fault to page in */
};

void postcopy_dst_say(struct postcopy_dst *p, const char *line)
{
	pthread_mutex_lock(&p->send_lock);
	(void)send_full(p->conn, line, strlen(line));	/* a dead source: the
							 * receiver learns */
	pthread_mutex_unlock(&p->send_lock);
}

static uint8_t get_state(struct postcopy_dst *p, uint64_t page)
{
	return __atomic_load_n(&p->state[page], __ATOMIC_ACQUIRE);
}

/* Every page not in yet is refused: no thread waits for ever, none
 * reads zeros where the guest's data was. */
static void refuse_pending(struct postcopy_dst *p)
{
	uint64_t page = 0;

	while (page < p->npages) {
		uint64_t n = 0;

		while (page + n < p->npages) {
			uint8_t s = get_state(p, page + n);

			if (s != PENDING && s != REQUESTED && s != LOST)
				break;
			__atomic_store_n(&p->state[page + n], LOST,
					 __ATOMIC_RELEASE);
			n++;
		}
		if (n && p->uffd)
			uffd_ram_refuse(p->uffd, page, n);
		page += n ? n : 1;
	}
}

/* The stream failed.  After GO the VM cannot go on: its missing pages
 * are refused and it ends; before, the restorer hears of it. */
static void fail(struct postcopy_dst *p, int ret, const char *why)
{
	bool go;

	pthread_mutex_lock(&p->lock);
	if (p->error || p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->error = ret;
	snprintf(p->error_text, sizeof(p->error_text), "%s", why);
	go = p->go;
	pthread_cond_broadcast(&p->go_cond);
	pthread_mutex_unlock(&p->lock);
	/* the reason first: a vCPU refused a page ends the VM too */
	if (go)
		vm_request_exit(p->vm, VM_EXIT_HOST_ERROR, 0, 0, "post-copy "
				"migration: %s; %" PRIu64 " guest pages never came "
				"from the source: the VM cannot go on", why,
				__atomic_load_n(&p->pending, __ATOMIC_RELAXED));
	refuse_pending(p);
}

/* On a fault thread: a missing page's first touch (or a later one). */
static void on_missing(void *opaque, uint64_t page)
{
	struct postcopy_dst *p = opaque;
	uint8_t s = PENDING;
	char line[40];
	int ret;

	if (page >= p->npages)
		return;
	if (__atomic_compare_exchange_n(&p->state[page], &s, REQUESTED, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&p->fault_at[page], monotonic_ns(),
				 __ATOMIC_RELEASE);
		snprintf(line, sizeof(line), "REQ %" PRIu64 "\n", page);
		postcopy_dst_say(p, line);
		return;
	}
	switch (s) {
	case REQUESTED:		/* its copy wakes this thread */
		return;
	case LOST:
		uffd_ram_refuse(p->uffd, page, 1);
		return;
	default:
		/* FINAL or ARRIVED: in, or a zero page (a hole, or one the
		 * balloon gave back) */
		ret = uffd_ram_zeropage(p->uffd, page, 1);
		if (ret == -EEXIST)
			ret = uffd_ram_wake(p->uffd, page, 1);
		if (ret)
			uffd_ram_wake(p->uffd, page, 1);
	}
}

struct put {
	struct postcopy_dst *p;
	char why[160];
};

static int put_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t stream_offset)
{
	struct put *put = opaque;
	struct postcopy_dst *p = put->p;
	uint8_t s = get_state(p, page);
	uint64_t at;
	int ret;

	(void)stream_offset;
	if (s != PENDING && s != REQUESTED) {
		snprintf(put->why, sizeof(put->why), "page %" PRIu64 " %s",
			 page, s == ARRIVED ? "came twice" : "was not pending");
		return -EBADMSG;
	}
	ret = data ? uffd_ram_copy(p->uffd, page, 1, data) :
		     uffd_ram_zeropage(p->uffd, page, 1);
	if (ret) {
		snprintf(put->why, sizeof(put->why), "page %" PRIu64 ": %s",
			 page, strerror(-ret));
		return ret;
	}
	s = __atomic_exchange_n(&p->state[page], ARRIVED, __ATOMIC_ACQ_REL);
	if (s == REQUESTED) {
		at = __atomic_load_n(&p->fault_at[page], __ATOMIC_ACQUIRE);
		pthread_mutex_lock(&p->lock);
		latency_add(&p->faults, monotonic_ns() - at);
		pthread_mutex_unlock(&p->lock);
	}
	__atomic_sub_fetch(&p->pending, 1, __ATOMIC_RELAXED);
	return 0;
}

/* All in: DONE with the faults' latency (and the connection closes
 * once RUNNING went too). */
/* Under p->lock: "@word faults=N p50_us=A p99_us=B\n". */
static void faults_line(struct postcopy_dst *p, const char *word, char *line,
			size_t len)
{
	snprintf(line, len, "%s faults=%" PRIu64 " p50_us=%.0f p99_us=%.0f\n",
		 word, p->faults.count,
		 latency_percentile_ms(&p->faults, 50) * 1e3,
		 latency_percentile_ms(&p->faults, 99) * 1e3);
}

static void all_in(struct postcopy_dst *p)
{
	char line[160];
	bool close_now;

	pthread_mutex_lock(&p->lock);
	faults_line(p, "DONE", line, sizeof(line));
	p->done = true;
	close_now = p->running;
	pthread_mutex_unlock(&p->lock);
	postcopy_dst_say(p, line);
	if (close_now)
		shutdown(p->conn, SHUT_RDWR);
}

/* One section after the handover: 1 at END, 0 to go on, or -errno with
 * @why. */
static int take(struct postcopy_dst *p, const struct stream_section *s,
		char *why, size_t len)
{
	struct put put = { .p = p };
	struct errmsg err = { "" };
	bool go;
	int ret;

	pthread_mutex_lock(&p->lock);
	go = p->go;
	pthread_mutex_unlock(&p->lock);
	switch ((unsigned)s->type) {
	case STREAM_RAM:
		ret = stream_section_pages(s, p->npages, put_page, &put, &err);
		if (ret)
			snprintf(why, len, "section %u: %.300s", s->index,
				 put.why[0] ? put.why : err.text);
		return ret;
	case STREAM_GO:
		if (go)
			break;
		pthread_mutex_lock(&p->lock);
		p->go = true;
		pthread_cond_broadcast(&p->go_cond);
		pthread_mutex_unlock(&p->lock);
		return 0;
	case STREAM_END:
		if (!go)
			break;
		if (__atomic_load_n(&p->pending, __ATOMIC_RELAXED)) {
			snprintf(why, len, "section %u: END with %" PRIu64
				 " pages still pending", s->index,
				 __atomic_load_n(&p->pending, __ATOMIC_RELAXED));
			return -EBADMSG;
		}
		return 1;
	default:
		break;
	}
	snprintf(why, len, "section %u (%s) %s the handover", s->index,
		 stream_type_name(s->type), go ? "after" : "between HANDOVER "
		 "and GO,");
	return -EPROTO;
}

static void *receiver(void *arg)
{
	struct postcopy_dst *p = arg;
	struct stream_section s;
	struct errmsg err = { "" };
	char why[400];
	int ret;

	pthread_setname_np(pthread_self(), "postcopy-recv");
	for (;;) {
		ret = stream_next(p->reader, &s, &err);
		if (ret) {
			snprintf(why, sizeof(why), "the stream from the "
				 "source: %.360s", err.text);
			break;
		}
		ret = take(p, &s, why, sizeof(why));
		if (ret)
			break;
	}
	if (ret == 1)
		all_in(p);
	else
		fail(p, ret, why);
	return NULL;
}

int postcopy_dst_create(struct vm *vm, int conn, struct postcopy_dst **out,
			struct errmsg *err)
{
	struct postcopy_dst *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p) {
		close(conn);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	p->vm = vm;
	p->npages = vm->mem.size / PAGE_SIZE;
	p->conn = conn;
	pthread_mutex_init(&p->send_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->go_cond, NULL);
	p->state = calloc(p->npages + 1, 1);
	p->fault_at = calloc(p->npages + 1, sizeof(*p->fault_at));
	if (!p->state || !p->fault_at) {
		postcopy_dst_destroy(p);
		return errmsg_set(err, -ENOMEM, "out of memory for the state "
				  "of %" PRIu64 " pages", p->npages);
	}
	*out = p;
	return 0;
}

void postcopy_dst_mark(struct postcopy_dst *p, uint64_t first,
		       uint32_t npages, const uint8_t *bits)
{
	for (uint32_t i = 0; i < npages && first + i < p->npages; i++) {
		if (!(bits[i / 8] >> (i % 8) & 1) ||
		    p->state[first + i] == PENDING)
			continue;
		p->state[first + i] = PENDING;
		p->pending++;
	}
}

/* What a pending page holds now (an earlier round's copy, in hybrid) is
 * stale: gone, so that its first touch is a missing fault. */
static int drop_pending(struct postcopy_dst *p, struct errmsg *err)
{
	uint64_t page = 0;

	while (page < p->npages) {
		uint64_t n = 0;

		while (page + n < p->npages && p->state[page + n] == PENDING)
			n++;
		if (n && fallocate(p->vm->mem.memfd, FALLOC_FL_PUNCH_HOLE |
				   FALLOC_FL_KEEP_SIZE, (off_t)(page * PAGE_SIZE),
				   (off_t)(n * PAGE_SIZE)) < 0)
			return errmsg_set(err, -errno, "dropping %" PRIu64
					  " stale pages: %s", n, strerror(errno));
		page += n ? n : 1;
	}
	return 0;
}

int postcopy_dst_start(struct postcopy_dst *p, struct stream_reader *r,
		       struct errmsg *err)
{
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING, .missing = on_missing, .opaque = p,
	};
	int ret;

	p->reader = r;
	ret = drop_pending(p, err);
	if (!ret)
		ret = uffd_ram_create(&p->vm->mem, FAULT_THREADS, &p->uffd, err);
	if (!ret)
		ret = uffd_ram_attach(p->uffd, &user, err);
	if (!ret)
		ret = uffd_ram_start(p->uffd, err);
	if (ret)
		return ret;
	ret = pthread_create(&p->receiver, NULL, receiver, p);
	if (ret)
		return errmsg_set(err, -ret, "cannot start a thread: %s",
				  strerror(ret));
	p->receiver_started = true;
	return 0;
}

int postcopy_dst_wait_go(struct postcopy_dst *p, struct errmsg *err)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (!p->go && !p->error)
		pthread_cond_wait(&p->go_cond, &p->lock);
	if (p->error)
		ret = errmsg_set(err, p->error, "%s", p->error_text);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void postcopy_dst_running(struct postcopy_dst *p)
{
	bool close_now;

	postcopy_dst_say(p, "RUNNING\n");
	pthread_mutex_lock(&p->lock);
	p->running = true;
	close_now = p->done;
	pthread_mutex_unlock(&p->lock);
	if (close_now)
		shutdown(p->conn, SHUT_RDWR);
}

void postcopy_dst_destroy(void *obj)
{
	struct postcopy_dst *p = obj;

	char line[160];
	bool ended;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	/* the VM ran here and is over with pages still to come: they are
	 * not needed any more, and the source must not call it lost */
	ended = p->running && !p->done && !p->error;
	if (ended)
		faults_line(p, "ENDED", line, sizeof(line));
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	if (ended)
		postcopy_dst_say(p, line);
	if (p->conn >= 0)
		shutdown(p->conn, SHUT_RDWR);
	if (p->receiver_started)
		pthread_join(p->receiver, NULL);
	if (p->state)
		refuse_pending(p);
	if (p->uffd)
		uffd_ram_destroy(p->uffd);	/* after: no fault reads state */
	stream_reader_destroy(p->reader);
	if (p->conn >= 0)
		close(p->conn);
	pthread_cond_destroy(&p->go_cond);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->send_lock);
	free(p->state);
	free(p->fault_at);
	free(p);
}
