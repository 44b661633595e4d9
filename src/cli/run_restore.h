/* SPDX-License-Identifier: MIT */
/*
 * `rackvm run --restore FILE` and `rackvm run --incoming tcp:ADDR:PORT`:
 * the flags of a run that resumes a snapshot (migrate/snapshot.h) or a
 * VM migrating here (migrate/migrate.h).  The machine comes from there,
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
	const char *incoming;		/* tcp:ADDR:PORT: a migration's */
	struct restore_options opts;	/* strings point into argv */
};

extern const char run_restore_usage[];

/* True if --restore or --incoming is among the flags. */
bool run_restore_asked(int argc, char **argv);
/* 0, 1 for --help, -EINVAL with the reason in @err. */
int run_restore_parse(struct run_restore *r, int argc, char **argv,
		      struct errmsg *err);

#endif
