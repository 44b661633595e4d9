/* SPDX-License-Identifier: MIT */
/*
 * The devices' part of a VM's state, for snapshots and migration: every
 * device that holds state registers save and load functions under a
 * name that is stable across runs of the same config ("uart@0x3f8",
 * "virtio-mmio@2"), and whoever saves the VM (migrate/) walks the list.
 *
 * The protocol, with the vCPUs paused (vm_pause_settled()):
 *   quiesce     each device finishes the requests it has in flight,
 *               publishes their results to the guest (used rings,
 *               interrupts) and stops taking new ones, so that its state
 *               and guest RAM hold still;
 *   save        the device's state as bytes (util/state_buf.h), starting
 *               with a version of the layout;
 *   unquiesce   it serves its queues again (the source VM resumes, or
 *               the snapshot is done).
 * On the receiving side the VM is built from the same config, and load
 * applies each saved state before the vCPUs start: a device then runs
 * as if it had never stopped, its queues where the guest left them.  A
 * load checks every value (a stream is untrusted input), applies
 * nothing on error and says why in @err.
 *
 * Registration happens while the VM is built (single-threaded); the
 * list is freed by vm_destroy().  A device without state (a port that
 * only reports) registers nothing.
 */
#ifndef RACKVM_VM_VM_STATE_H
#define RACKVM_VM_VM_STATE_H

#include "util/errmsg.h"
#include "util/state_buf.h"

struct vm;

#define VM_STATE_NAME_MAX 32

struct vm_state_ops {
	/* NULL: the device has no threads of its own to stop */
	int (*quiesce)(void *opaque);
	void (*unquiesce)(void *opaque);
	int (*save)(void *opaque, struct state_buf *out);
	int (*load)(void *opaque, struct state_reader *in, struct errmsg *err);
	/* a stream without this part restores all the same (state that
	 * only helps, added after streams without it existed) */
	bool optional;
};

struct vm_state_entry {
	char name[VM_STATE_NAME_MAX];
	const struct vm_state_ops *ops;	/* static, outlives the VM */
	void *opaque;
};

/* -EINVAL for an empty or too long name, -EEXIST for a name taken,
 * -ENOMEM. */
int vm_state_register(struct vm *vm, const char *name,
		      const struct vm_state_ops *ops, void *opaque);
unsigned vm_state_count(const struct vm *vm);
/* Registration order; NULL past the end. */
const struct vm_state_entry *vm_state_at(const struct vm *vm, unsigned i);
/* NULL if no device registered @name. */
const struct vm_state_entry *vm_state_find(const struct vm *vm,
					   const char *name);
/* Frees the list (vm_destroy() calls it). */
void vm_state_release(struct vm *vm);

/* Quiesces every device in registration order; on a failure unquiesces
 * those already quiesced and returns it, with the device named in @err. */
int vm_state_quiesce_all(struct vm *vm, struct errmsg *err);
void vm_state_unquiesce_all(struct vm *vm);

#endif
