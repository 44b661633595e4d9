// SPDX-License-Identifier: MIT
#include "cli/shutdown_guard.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct shutdown_guard {
	int status;
	char why[512];
	const char *stage;	/* under lock */
	bool disarmed;		/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t done;	/* monotonic clock */
	struct timespec deadline;
	pthread_t thread;
};

static void *guard_thread(void *arg)
{
	struct shutdown_guard *g = arg;
	const char *stage;

	pthread_setname_np(pthread_self(), "shutdown-guard");
	pthread_mutex_lock(&g->lock);
	while (!g->disarmed &&
	       pthread_cond_timedwait(&g->done, &g->lock, &g->deadline) !=
	       ETIMEDOUT)
		;
	stage = g->stage;
	if (g->disarmed) {
		pthread_mutex_unlock(&g->lock);
		return NULL;
	}
	pthread_mutex_unlock(&g->lock);
	fprintf(stderr, "rackvm: %s\n", g->why);
	fprintf(stderr, "rackvm: still waiting for %s %.1f s after the VM "
		"ended (a thread waiting for guest memory that no page store "
		"returns?): exiting without the rest of the teardown\n",
		stage, SHUTDOWN_GUARD_MS / 1000.0);
	_exit(g->status);
}

struct shutdown_guard *shutdown_guard_arm(int status, const char *why)
{
	struct shutdown_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;

	if (!g)
		return NULL;
	g->status = status;
	snprintf(g->why, sizeof(g->why), "%s", why);
	g->stage = "the vCPUs to stop";
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->done, &ca);
	pthread_condattr_destroy(&ca);
	g->deadline = monotonic_deadline(SHUTDOWN_GUARD_MS * 1000000ull);
	if (pthread_create(&g->thread, NULL, guard_thread, g)) {
		pthread_cond_destroy(&g->done);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	return g;
}

void shutdown_guard_stage(struct shutdown_guard *g, const char *waiting_for)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stage = waiting_for;
	pthread_mutex_unlock(&g->lock);
}

void shutdown_guard_disarm(struct shutdown_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->disarmed = true;
	pthread_cond_signal(&g->done);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->done);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
