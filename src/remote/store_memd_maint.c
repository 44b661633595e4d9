// SPDX-License-Identifier: MIT
/*
 * The memd store's maintenance thread (see store_memd_internal.h): what
 * must happen although no op asks for it, and must not happen on an op's
 * path.  Each tick it brings back the failed servers that are due for a
 * retry (remote_recover(): waiting for the requests of before the
 * failure, cleaning the fenced pages, then letting ops in), checks on
 * idle ones (remote_probe()), writes off the copies of servers down for
 * longer than down_after (write_off_down_servers()), gives one batch of
 * pages short of copies their missing ones (repair_tick()), and, once a
 * second, closes idle pooled connections and keeps one per server alive
 * (pool_upkeep(), store_memd_idle.c).  Ticks follow each other quickly while the repair
 * gets somewhere, less so while a server is down, slowly otherwise: the
 * work per tick is bounded, its rate too.
 *
 * Threads: its own; it shares the store with the op threads through the
 * servers' locks only.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "remote/store_memd_internal.h"

#define TICK_REPAIR_MS 10		/* the repair got somewhere */
#define TICK_BUSY_MS 50			/* a server is down */
#define TICK_IDLE_MS 250

/* One pass over the servers and one repair batch; how long to wait
 * before the next. */
static unsigned maint_tick(struct memd_store *st)
{
	bool any_down = false;

	/* not ours yet (store_handover.h): nothing but staying connected */
	if (memd_adopting(st)) {
		pool_upkeep(st);
		return TICK_IDLE_MS;
	}
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
	pool_upkeep(st);
	write_off_down_servers(st);
	if (repair_tick(st))
		return TICK_REPAIR_MS;
	return any_down ? TICK_BUSY_MS : TICK_IDLE_MS;
}

static void *maint_main(void *arg)
{
	struct memd_store *st = arg;

	pthread_setname_np(pthread_self(), "memd-maint");
	pthread_mutex_lock(&st->maint_lock);
	while (!st->maint_stop) {
		struct timespec until;
		unsigned ms;

		pthread_mutex_unlock(&st->maint_lock);
		ms = maint_tick(st);
		pthread_mutex_lock(&st->maint_lock);
		until = monotonic_deadline(ms * 1000000ull);
		if (!st->maint_stop)
			pthread_cond_timedwait(&st->maint_wake, &st->maint_lock,
					       &until);
	}
	pthread_mutex_unlock(&st->maint_lock);
	return NULL;
}

int maint_start(struct memd_store *st, struct errmsg *err)
{
	int ret;

	/* started again after a handover that was cancelled */
	__atomic_store_n(&st->maint_stop, false, __ATOMIC_RELAXED);
	ret = pthread_create(&st->maint, NULL, maint_main, st);

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
	__atomic_store_n(&st->maint_stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&st->maint_wake);
	pthread_mutex_unlock(&st->maint_lock);
	pthread_join(st->maint, NULL);
	st->maint_running = false;
}

bool maint_stopping(struct memd_store *st)
{
	/* read without the lock: a late look costs a step, nothing else */
	return __atomic_load_n(&st->maint_stop, __ATOMIC_RELAXED);
}
