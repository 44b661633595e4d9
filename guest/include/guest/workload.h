/* SPDX-License-Identifier: MIT */
/*
 * A workload is what the command line asks the runtime to run.  Each one
 * lives in its own file in guest/workloads/ and is listed in
 * guest/workloads/workloads.c.  run() ends the guest with guest_done()
 * (or a failure); should it return, the runtime fails the guest so that a
 * forgotten ending cannot pass silently.
 */
#ifndef GUEST_WORKLOAD_H
#define GUEST_WORKLOAD_H

#include <stddef.h>

#include "guest/cmdline.h"

struct workload {
	const char *name;
	const char *usage;		/* parameters, for the list */
	const char *const *params;	/* accepted keys, NULL-terminated */
	void (*run)(const struct cmdline *c);
};

extern const struct workload *const workloads[];

const struct workload *workload_find(const char *name);

#endif
