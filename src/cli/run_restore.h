/* SPDX-License-Identifier: MIT */
/*
 * `rackvm run --restore FILE`: the flags of a run that resumes a
 * snapshot (migrate/snapshot.h).  The machine comes from the snapshot,
 * so only what belongs to this run may be given: the VM's name, its API
 * socket, its console, and --lazy; any other flag of `rackvm run` is a
 * usage error naming it.
 */
#ifndef RACKVM_CLI_RUN_RESTORE_H
#define RACKVM_CLI_RUN_RESTORE_H

#include <stdbool.h>

#include "migrate/snapshot.h"
#include "util/errmsg.h"

struct run_restore {
	const char *path;		/* NULL: not a restore */
	struct restore_options opts;	/* strings point into argv */
};

extern const char run_restore_usage[];

/* True if --restore is among the flags. */
bool run_restore_asked(int argc, char **argv);
/* 0, 1 for --help, -EINVAL with the reason in @err. */
int run_restore_parse(struct run_restore *r, int argc, char **argv,
		      struct errmsg *err);

#endif
