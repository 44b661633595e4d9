/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: one thread each, an explicit state machine, and a kick that
 * cannot be lost.
 *
 *   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *        \                 |                        |
 *         `------------> STOPPED <-----------------'
 *
 * The vCPU thread owns its state transitions; other threads only post a
 * request (pause, stop) and kick.  A kick sets kvm_run->immediate_exit and
 * sends SIGNAL_VCPU_KICK to the thread: if the thread is inside KVM_RUN the
 * signal makes it return -EINTR; if it is about to enter, immediate_exit
 * makes KVM_RUN return at once.  Either way the request is seen before the
 * guest runs again.
 */
#ifndef RACKVM_VM_VCPU_H
#define RACKVM_VM_VCPU_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "util/errmsg.h"

struct vm;
struct vcpu_entry;

enum vcpu_state {
	VCPU_CREATED,
	VCPU_RUNNING,
	VCPU_PAUSED,
	VCPU_STOPPED,
};

enum vcpu_request {
	VCPU_REQ_NONE = 0,
	VCPU_REQ_PAUSE = 1,
	VCPU_REQ_STOP = 2,
	VCPU_REQ_SETTLE = 4,	/* with PAUSE: finish the last exit first */
};

#define VCPU_EXIT_REASONS 64	/* counters for KVM_EXIT_* below this */
#define SIGNAL_VCPU_KICK (SIGRTMIN + 0)

struct vcpu_stats {
	uint64_t exits[VCPU_EXIT_REASONS];
	uint64_t eintr;		/* KVM_RUN interrupted by a kick */
	uint64_t io_unclaimed;	/* PIO/MMIO to an address no device claims */
	int tid;		/* the vCPU thread's id (its CPU time is in
				 * /proc/self/task/TID/schedstat), 0 before */
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	/* vm->dirty_ring_entries entries, mapped when the VM uses the
	 * dirty ring; the reader's harvest index lives with the reader */
	struct kvm_dirty_gfn *dirty_ring;
	pthread_t thread;
	bool thread_started;

	/* under vm->lock */
	enum vcpu_state state;
	int request;		/* VCPU_REQ_* bits */

	struct vcpu_stats stats;	/* written only by the vCPU thread */
	/* written by the vCPU thread (atomically), read by a settled pause:
	 * the last exit was served in userspace and KVM finishes it on the
	 * next KVM_RUN (see finish_exit() in vcpu.c) */
	bool exit_unfinished;
};

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned id,
	      struct errmsg *err);
void vcpu_destroy(struct vcpu *vcpu);

/* Sets registers for the boot CPU from the loader's entry state. */
int vcpu_set_boot_state(struct vcpu *vcpu, const struct vcpu_entry *entry,
			struct errmsg *err);

int vcpu_start(struct vcpu *vcpu);
/* Makes the thread leave KVM_RUN soon; call after posting a request. */
void vcpu_kick(struct vcpu *vcpu);

const char *vcpu_state_name(enum vcpu_state s);
const char *kvm_exit_reason_name(unsigned reason);

#endif
