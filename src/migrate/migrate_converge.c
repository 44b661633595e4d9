// SPDX-License-Identifier: MIT
/*
 * Auto-converge (migrate.h): a pre-copy whose guest writes pages faster
 * than the link carries them never gets to a short stop-and-copy, so the
 * source holds the vCPUs paused for a growing share of each 100 ms
 * (sched/throttle.h) until it does.  The rule, after each round but the
 * first (which sends everything): if the pages written during the round
 * are more than half of those it sent, the guest outruns the link; the
 * throttle starts at 20% and adds 10% for each round that still does,
 * up to 99%.  Throttling slows the guest, never changes what it
 * computes; it ends before the stop-and-copy.
 */
#include "migrate/migrate_internal.h"

#include <string.h>

#include "sched/throttle.h"

#define CONVERGE_FIRST_PERCENT 30
#define CONVERGE_STEP_PERCENT 20
#define CONVERGE_MAX_PERCENT 99

int migrate_converge_round(struct migration *mg, unsigned round,
			   uint64_t sent, uint64_t dirtied, struct errmsg *err)
{
	unsigned pct;
	int ret;

	if (!mg->opt.auto_converge || !round || dirtied * 2 <= sent)
		return 0;
	if (!mg->throttle) {
		ret = throttle_create(mg->vm, 0, &mg->throttle, err);
		if (ret)
			return ret;
	}
	pct = throttle_get(mg->throttle);
	pct = pct ? pct + CONVERGE_STEP_PERCENT : CONVERGE_FIRST_PERCENT;
	if (pct > CONVERGE_MAX_PERCENT)
		pct = CONVERGE_MAX_PERCENT;
	ret = throttle_set(mg->throttle, pct);
	if (ret)
		return errmsg_set(err, ret, "auto-converge: throttle to %u%%: %s",
				  pct, strerror(-ret));
	pthread_mutex_lock(&mg->lock);
	mg->st.throttle_percent = pct;
	pthread_mutex_unlock(&mg->lock);
	return 0;
}

void migrate_converge_end(struct migration *mg)
{
	throttle_destroy(mg->throttle);
	mg->throttle = NULL;
}
