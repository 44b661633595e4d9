// SPDX-License-Identifier: MIT
/*
 * The memd store's maintenance thread (see store_memd_internal.h): what
 * must happen although no op asks for it, and must not happen on an op's
 * path.  Each tick it brings back the failed servers that are due for a
 * retry (remote_recover(): waiting for the requests of before the
 * failure, cleaning the fenced pages, then letting ops in) and checks on
 * idle ones (remote_probe()).  A tick is short while a server is down,
 * long otherwise.
 *
 * Threads: its own; it shares the store with the op threads through the
 * servers' locks only.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "remote/store_memd_internal.h"

#define TICK_BUSY_MS 50			/* a server is down */
#define TICK_IDLE_MS 250

/* One pass over the servers; true if one of them is down. */
static bool maint_tick(struct memd_store *st)
{
	bool any_down = false;

	for (unsigned s = 0; s < st->nservers; s++) {
		struct remote *r = &st->servers[s];
		bool down;

		remote_recover(st, s);
		remote_probe(st, s);
		pthread_mutex_lock(&r->lock);
		down = r->down;
		pthread_mutex_unlock(&r->lock);
		any_down |= down;
	}
	return any_down;
}

static void *maint_main(void *arg)
{
	struct memd_store *st = arg;

	pthread_setname_np(pthread_self(), "memd-maint");
	pthread_mutex_lock(&st->maint_lock);
	while (!st->maint_stop) {
		struct timespec until;
		bool busy;

		pthread_mutex_unlock(&st->maint_lock);
		busy = maint_tick(st);
		pthread_mutex_lock(&st->maint_lock);
		until = monotonic_deadline((busy ? TICK_BUSY_MS : TICK_IDLE_MS) *
					   1000000ull);
		if (!st->maint_stop)
			pthread_cond_timedwait(&st->maint_wake, &st->maint_lock,
					       &until);
	}
	pthread_mutex_unlock(&st->maint_lock);
	return NULL;
}

int maint_start(struct memd_store *st, struct errmsg *err)
{
	int ret = pthread_create(&st->maint, NULL, maint_main, st);

	if (ret)
		return errmsg_set(err, -ret, "memd: cannot start the maintenance "
				  "thread: %s", strerror(ret));
	st->maint_running = true;
	return 0;
}

void maint_stop(struct memd_store *st)
{
	if (!st->maint_running)
		return;
	pthread_mutex_lock(&st->maint_lock);
	st->maint_stop = true;
	pthread_cond_broadcast(&st->maint_wake);
	pthread_mutex_unlock(&st->maint_lock);
	pthread_join(st->maint, NULL);
	st->maint_running = false;
}
