// SPDX-License-Identifier: MIT
/*
 * The VM throttle (throttle.h): one thread, one pause per period.
 */
#include "sched/throttle.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "vm/vm.h"

#define PERIOD_MIN_NS 1000000ull		/* 1 ms */
#define PERIOD_MAX_NS (10 * NSEC_PER_SEC)

struct throttle {
	struct vm *vm;
	uint64_t period_ns;
	pthread_t thread;
	pthread_mutex_t lock;		/* guards everything below */
	pthread_cond_t changed;		/* percent or stop changed */
	unsigned percent;
	bool stop;
	struct throttle_stats stats;
};

static struct timespec abs_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / NSEC_PER_SEC),
				  .tv_nsec = (long)(ns % NSEC_PER_SEC) };
}

/* Sleeps until @deadline (CLOCK_MONOTONIC ns), or sooner once the throttle
 * is stopped or turned off: a pause is then let go at once.  Caller
 * holds t->lock. */
static void sleep_until_locked(struct throttle *t, uint64_t deadline)
{
	while (!t->stop && t->percent && monotonic_ns() < deadline) {
		struct timespec ts = abs_timespec(deadline);

		pthread_cond_timedwait(&t->changed, &t->lock, &ts);
	}
}

/* One period: pause, hold until the paused share is over, resume, let the
 * vCPUs run for the rest.  The time spent waiting for the pause counts
 * against the paused share, and the running share starts once the
 * resume is done, so slow pauses and resumes (a loaded or nested host)
 * do not slow the guest more than asked: the period stretches instead.
 * Called and returns with t->lock held; drops it around the VM's calls,
 * which may wait. */
static void one_period_locked(struct throttle *t)
{
	uint64_t start = monotonic_ns(), held;
	uint64_t hold_ns = t->period_ns * t->percent / 100;
	uint64_t run_until = start + t->period_ns;
	int ret;

	pthread_mutex_unlock(&t->lock);
	ret = vm_pause_within(t->vm, hold_ns);
	pthread_mutex_lock(&t->lock);
	/* a VM that ended has every vCPU stopped, which a pause may also
	 * count as paused */
	if (ret == 0 && vm_exit_requested(t->vm)) {
		vm_resume(t->vm);
		ret = -ECANCELED;
	}
	if (ret == -ECANCELED) {
		t->stats.vm_ended = true;
		return;
	}
	if (ret == 0) {
		held = monotonic_ns();
		sleep_until_locked(t, start + hold_ns);
		pthread_mutex_unlock(&t->lock);
		/* -ECANCELED here: the VM is ending, nothing to undo */
		vm_resume(t->vm);
		pthread_mutex_lock(&t->lock);
		run_until = monotonic_ns();
		t->stats.held++;
		t->stats.held_ns += run_until - held;
		run_until += t->period_ns - hold_ns;
	} else if (ret == -ETIMEDOUT) {
		/* a vCPU could not stop in time (a userfaultfd fault not
		 * served yet): this period runs unthrottled */
		t->stats.skipped++;
	}
	/* -EINVAL: not started yet (or not running): try next period */
	sleep_until_locked(t, run_until);
}

static void *throttle_main(void *arg)
{
	struct throttle *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		if (!t->percent || t->stats.vm_ended)
			pthread_cond_wait(&t->changed, &t->lock);
		else
			one_period_locked(t);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int throttle_create(struct vm *vm, uint64_t period_ns, struct throttle **out,
		    struct errmsg *err)
{
	pthread_condattr_t attr;
	struct throttle *t;
	int ret;

	if (!period_ns)
		period_ns = THROTTLE_DEFAULT_PERIOD_NS;
	if (period_ns < PERIOD_MIN_NS || period_ns > PERIOD_MAX_NS)
		return errmsg_set(err, -EINVAL, "throttle period %llu ns: not "
				  "between 1 ms and 10 s",
				  (unsigned long long)period_ns);
	t = calloc(1, sizeof(*t));
	if (!t)
		return errmsg_set(err, -ENOMEM, "throttle: out of memory");
	t->vm = vm;
	t->period_ns = period_ns;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->changed, &attr);
	pthread_condattr_destroy(&attr);
	ret = pthread_create(&t->thread, NULL, throttle_main, t);
	if (ret) {
		pthread_cond_destroy(&t->changed);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return errmsg_set(err, -ret, "throttle thread: %s",
				  strerror(ret));
	}
	*out = t;
	return 0;
}

int throttle_set(struct throttle *t, unsigned percent)
{
	if (percent > THROTTLE_MAX_PERCENT)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	t->percent = percent;
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

unsigned throttle_get(struct throttle *t)
{
	unsigned percent;

	pthread_mutex_lock(&t->lock);
	percent = t->percent;
	pthread_mutex_unlock(&t->lock);
	return percent;
}

void throttle_stats(struct throttle *t, struct throttle_stats *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->stats;
	pthread_mutex_unlock(&t->lock);
}

void throttle_destroy(struct throttle *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);
	/* the thread resumes whatever it holds before it returns */
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->changed);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
