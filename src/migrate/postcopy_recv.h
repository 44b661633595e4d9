/* SPDX-License-Identifier: MIT */
/*
 * The destination's restore of a post-copy or hybrid stream (migrate.h,
 * postcopy_recv.c), for migrate_recv.c.
 */
#ifndef RACKVM_MIGRATE_POSTCOPY_RECV_H
#define RACKVM_MIGRATE_POSTCOPY_RECV_H

#include "machine/machine.h"
#include "migrate/snapshot.h"
#include "util/errmsg.h"

struct postcopy_dst;

/*
 * Reads the stream on @conn (after the hello line) up to HANDOVER,
 * builds the machine, serves its missing pages from the source, loads
 * the state, says READY and waits for GO: then the machine is CREATED
 * and *@pc, which the machine owns, says RUNNING once it runs.  Any
 * failure is told to the source ("ERROR why") and returned, the
 * machine gone; @what names the stream in messages.
 */
int postcopy_restore(int conn, const char *what,
		     const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct postcopy_dst **pc, struct errmsg *err);

#endif
