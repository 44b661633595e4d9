/* SPDX-License-Identifier: MIT */
/*
 * What a snapshot restore (restore.c) and a post-copy arrival
 * (postcopy_recv.c) do alike, for migrate/ only: the VM's config from
 * the stream's CONFIG section with the run's own settings over it, and
 * the bookkeeping of the state parts (the VM, each vCPU, each device):
 * each section checked against the machine and counted once, a second
 * copy refused, and at the end every part the machine has must have
 * come.  Every byte is from an untrusted stream; errors name the
 * section.
 */
#ifndef RACKVM_MIGRATE_RESTORE_PARTS_H
#define RACKVM_MIGRATE_RESTORE_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/config.h"
#include "migrate/snapshot.h"
#include "migrate/stream.h"
#include "util/errmsg.h"

struct vm;

/* @c (initialised by the caller, released by it) from the CONFIG
 * section @s, with @o's name, API socket and console over it (never the
 * saved ones: the VM saved may still run and use them), validated. */
int restore_config(const struct stream_section *s,
		   const struct restore_options *o, struct machine_config *c,
		   struct errmsg *err);

struct restore_parts {
	struct vm *vm;
	bool have_vm;
	bool *have_cpu;		/* per vCPU */
	bool *have_dev;		/* per registered device (vm_state.h) */
};

int restore_parts_init(struct restore_parts *p, struct vm *vm,
		       struct errmsg *err);
void restore_parts_release(struct restore_parts *p);

/* A part's state bytes, checked and counted: @part is the vCPU's or the
 * device's number, 0 for the VM. */
struct restore_part {
	unsigned type;		/* STREAM_VM, STREAM_CPU or STREAM_DEVICE */
	unsigned part;
	unsigned index;		/* the section's */
	const uint8_t *data;	/* inside the section */
	size_t len;
};
int restore_parts_take(struct restore_parts *p, const struct stream_section *s,
		       struct restore_part *out, struct errmsg *err);
/* Loads @part (its data still valid) into the VM; all of it must be
 * used. */
int restore_parts_load(struct restore_parts *p, const struct restore_part *part,
		       struct errmsg *err);
/* Every part of the machine came; @what: "the snapshot", "the stream". */
int restore_parts_complete(const struct restore_parts *p, const char *what,
			   struct errmsg *err);

#endif
