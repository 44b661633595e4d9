// SPDX-License-Identifier: MIT
/*
 * The source's reader of the destination's lines during post-copy
 * (migrate_internal.h): page requests go into the urgent ring, READY,
 * RUNNING and DONE into flags, and an ERROR, a protocol error or the
 * connection's end into pc.error; the sender is woken on each.  Every
 * line is untrusted: a page number is checked against guest RAM, a
 * line has a length limit, and text shown to users is made printable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/migrate_internal.h"
#include "util/clock.h"

#define LINE_MAX_BYTES 256

/* Under mg->lock. */
static void fail(struct migration *mg, int ret, const char *fmt,
		 const char *text)
{
	if (!mg->pc.error) {
		mg->pc.error = ret;
		snprintf(mg->pc.error_text, sizeof(mg->pc.error_text), fmt,
			 text);
	}
}

static void request(struct migration *mg, const char *arg)
{
	struct postcopy_src *pc = &mg->pc;
	unsigned long long page;
	char *end;

	errno = 0;
	page = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || page >= mg->npages) {
		fail(mg, -EPROTO, "the destination asked for page '%.40s', "
		     "not one of the guest's", arg);
		return;
	}
	pc->requests++;
	/* full: the push brings the page anyway, a little later */
	if (pc->tail - pc->head >= POSTCOPY_URGENT_RING)
		return;
	pc->ring[pc->tail % POSTCOPY_URGENT_RING] = page;
	pc->ring_at[pc->tail % POSTCOPY_URGENT_RING] = monotonic_ns();
	pc->tail++;
}

/* Under mg->lock: one line, its '\n' gone, made printable. */
static void handle(struct migration *mg, char *line)
{
	struct postcopy_src *pc = &mg->pc;

	if (!strncmp(line, "REQ ", 4)) {
		request(mg, line + 4);
	} else if (!strcmp(line, "READY")) {
		pc->ready = true;
		migrate_mark(mg, MIGRATE_MARK_READY);
	} else if (!strcmp(line, "RUNNING")) {
		pc->running = true;
		pc->running_at = monotonic_ns();
		migrate_mark(mg, MIGRATE_MARK_RUNNING);
		mg->st.downtime_ms = (double)(pc->running_at - mg->paused_at) / 1e6;
	} else if (!strcmp(line, "DONE") || !strncmp(line, "DONE ", 5)) {
		pc->done = true;
		snprintf(pc->done_line, sizeof(pc->done_line), "%s", line);
	} else if (!strcmp(line, "ENDED") || !strncmp(line, "ENDED ", 6)) {
		pc->ended = true;
		snprintf(pc->done_line, sizeof(pc->done_line), "%s", line);
	} else if (!strncmp(line, "ERROR ", 6)) {
		fail(mg, -EREMOTEIO, "the destination failed: %s", line + 6);
	} else {
		fail(mg, -EPROTO, "the destination said '%.64s'", line);
	}
}

static void *reader(void *arg)
{
	struct migration *mg = arg;
	char buf[LINE_MAX_BYTES + 1];
	size_t have = 0;

	for (;;) {
		ssize_t r = read(mg->fd, buf + have, LINE_MAX_BYTES - have);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&mg->lock);
		if (r <= 0) {
			/* after DONE and RUNNING the end is expected */
			if (!(mg->pc.done && mg->pc.running) && !mg->pc.ended)
				fail(mg, r < 0 ? -errno : -ECONNRESET, "%s",
				     r < 0 ? strerror(errno) : "the destination "
				     "closed the connection");
			pthread_cond_broadcast(&mg->cond);
			pthread_mutex_unlock(&mg->lock);
			return NULL;
		}
		have += (size_t)r;
		while ((nl = memchr(buf, '\n', have))) {
			*nl = 0;
			for (char *c = buf; c < nl; c++)
				if (*c < 0x20 || *c > 0x7e)
					*c = '?';
			handle(mg, buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == LINE_MAX_BYTES)
			fail(mg, -EPROTO, "the destination sent a line over %s "
			     "bytes", "256");
		pthread_cond_broadcast(&mg->cond);
		if (mg->pc.error) {
			pthread_mutex_unlock(&mg->lock);
			return NULL;
		}
		pthread_mutex_unlock(&mg->lock);
	}
}

int postcopy_reader_start(struct migration *mg, struct errmsg *err)
{
	int ret = pthread_create(&mg->pc.reader, NULL, reader, mg);

	if (ret)
		return errmsg_set(err, -ret, "cannot start a thread: %s",
				  strerror(ret));
	mg->pc.reader_started = true;
	return 0;
}

void postcopy_reader_join(struct migration *mg)
{
	if (!mg->pc.reader_started)
		return;
	pthread_join(mg->pc.reader, NULL);
	mg->pc.reader_started = false;
}
