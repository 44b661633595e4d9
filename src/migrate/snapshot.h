/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: a paused VM's whole state in one file (the stream of
 * migrate/stream.h), and a VM built again from such a file, which then
 * goes on where the original stopped.
 *
 * What a snapshot holds, in stream order: the config (JSON), guest RAM
 * (every page, zero pages as markers, holes of the memfd never read),
 * each vCPU, the in-kernel irqchip, PIT and clock, and each device that
 * registered its state (vm/vm_state.h) after it was quiesced.  The VM
 * must be paused (the API's PUT /vm/state "paused"); it stays paused,
 * so the caller decides whether it resumes or stops.
 *
 * Restoring builds a machine from the snapshot's config, loads
 * everything into it, and leaves it
 * CREATED: machine_start() resumes the guest.  Eagerly, every page is
 * written into guest RAM before that; lazily, guest RAM starts empty
 * and each page is read from the snapshot file when the guest (or a
 * device) first touches it, through userfaultfd, so a large VM resumes
 * at once and reads only what it uses; the file must then stay in place
 * for the VM's whole run, and must not be compressed.
 *
 * A VM with the pager (--mem-local) is saved whole: the pager is frozen
 * (pager_handover_begin()), every page that is not zero is read through
 * it, from RAM or from the store, and it is thawed as before; its
 * restore is eager, onto a new store from the config.  Not yet: a lazy
 * restore of a VM with the pager or the working-set monitor (refused
 * with a message).  A snapshot is as secret as the guest's memory: the
 * file is created mode 0600.
 *
 * Threads: snapshot_*() from any one thread (the API's); they block for
 * as long as the file takes to write or read.
 */
#ifndef RACKVM_MIGRATE_SNAPSHOT_H
#define RACKVM_MIGRATE_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/machine.h"
#include "util/errmsg.h"

struct snapshot_options {
	bool compress;		/* zstd on guest RAM (no lazy restore then) */
};

struct snapshot_result {
	uint64_t bytes;		/* the stream's size */
	uint64_t pages;		/* guest pages in it */
	uint64_t zero_pages;	/* of them, sent as markers */
	uint64_t ns;		/* how long it took */
};

/* The PAUSED machine @m into @fd (a file, a pipe, a socket).  -EBUSY if
 * it is not paused, or the error that stopped it (the file, the
 * pager's store). */
int snapshot_write(struct machine *m, int fd, const struct snapshot_options *o,
		   struct snapshot_result *res, struct errmsg *err);
/* snapshot_write() into the new file @path: an existing file is never
 * replaced (-EEXIST), and a snapshot that failed half-way is removed. */
int snapshot_save(struct machine *m, const char *path,
		  const struct snapshot_options *o, struct snapshot_result *res,
		  struct errmsg *err);

/* What belongs to the run, not to the machine: the console (NULL:
 * stdio) and the API socket (NULL: none, or the name's default socket)
 * never come from the snapshot, whose VM may still use them; the name
 * does unless given. */
/* How long a restore took, for the caller to report (bench/migrate
 * reads it from rackvm run's stderr). */
struct restore_times {
	double built_ms;	/* the machine built from the config */
	double ready_ms;	/* everything loaded: the vCPUs may start */
};

struct restore_options {
	bool lazy;
	const char *name;
	const char *api_socket;
	const char *console;
	struct restore_times *times;	/* filled on success if not NULL */
};

/* A CREATED machine from the snapshot in @path, everything loaded; a
 * snapshot that is corrupt, truncated, of another version or misses a
 * part the machine needs is refused with the section named.  @hooks as
 * for machine_create(). */
int snapshot_restore(const char *path, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct errmsg *err);

/* snapshot_restore() from a stream already open on @fd (a migration's
 * socket: never lazily); @what names it in messages.  The fd stays
 * open. */
int snapshot_restore_stream(int fd, const char *what,
			    const struct restore_options *o,
			    const struct machine_hooks *hooks,
			    struct machine **out, struct errmsg *err);

#endif
