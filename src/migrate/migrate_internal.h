/* SPDX-License-Identifier: MIT */
/*
 * What a snapshot and a migration write alike (snapshot.c), for
 * migrate/ only.
 */
#ifndef RACKVM_MIGRATE_MIGRATE_INTERNAL_H
#define RACKVM_MIGRATE_MIGRATE_INTERNAL_H

#include "machine/machine.h"
#include "migrate/stream.h"
#include "rackvm/version.h"
#include "util/errmsg.h"

#define MIGRATE_PRODUCER "rackvm " RACKVM_VERSION

/* The CONFIG section: @m's config as JSON. */
int migrate_put_config(struct stream_writer *w, struct machine *m,
		       struct errmsg *err);
/* Every vCPU, then the in-kernel state (the vCPUs are paused), then
 * every registered device (they are quiesced). */
int migrate_put_state(struct stream_writer *w, struct vm *vm,
		      struct errmsg *err);

#endif
