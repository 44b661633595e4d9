/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine: the KVM VM fd, guest RAM, the in-kernel irqchip and
 * PIT, the port-I/O and MMIO buses, the vCPUs and the devices it owns.
 *
 * Lifetime: vm_create() -> devices register on the buses -> a loader fills
 * guest RAM and a struct vcpu_entry -> vm_start() -> vm_wait() returns when
 * something ended the VM (guest, device, signal, error) -> vm_destroy().
 *
 * Ending the VM: anyone (a device handler on a vCPU thread, a signal
 * handler thread, the API) calls vm_request_exit().  The first request
 * wins and is what vm_wait() reports; all vCPUs are kicked and stop.
 */
#ifndef RACKVM_VM_VM_H
#define RACKVM_VM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rackvm/guest_abi.h"
#include "util/errmsg.h"
#include "vm/bus.h"
#include "vm/guest_mem.h"
#include "vm/kvm.h"

struct vcpu;
struct vcpu_entry;
struct vm;
struct vm_state_entry;

enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_GUEST_DONE,	/* bundled guest reported UCALL_DONE */
	VM_EXIT_GUEST_FAILED,	/* guest assertion failure or exception */
	VM_EXIT_SHUTDOWN,	/* guest powered off (KVM system event) */
	VM_EXIT_RESET,		/* guest asked for a reset (i8042, system event) */
	VM_EXIT_TRIPLE_FAULT,	/* KVM_EXIT_SHUTDOWN */
	VM_EXIT_DEBUG_EXIT,	/* isa-debug-exit; code = process status */
	VM_EXIT_INTERNAL_ERROR,	/* KVM could not run/emulate the guest */
	VM_EXIT_SIGNAL,		/* host signal; code = signal number */
	VM_EXIT_STOPPED,	/* stopped by its owner (API, machine_stop) */
	VM_EXIT_HOST_ERROR,	/* rackvm itself failed */
};

struct vm_exit {
	enum vm_exit_reason reason;
	int code;
	unsigned vcpu_id;	/* vCPU that caused it, where one did */
	char detail[512];	/* one line for the user; may be empty */
};

/* Write tracking on guest RAM (see memory/dirty_log.h for the reader).
 * It is decided at vm_create() because the dirty ring must be enabled on
 * the VM before any vCPU exists. */
enum vm_dirty_log {
	VM_DIRTY_LOG_OFF = 0,
	VM_DIRTY_LOG_AUTO,	/* config only: bitmap if KVM has it, else ring */
	VM_DIRTY_LOG_RING,	/* KVM_CAP_DIRTY_LOG_RING(_ACQ_REL), per-vCPU rings */
	VM_DIRTY_LOG_BITMAP,	/* KVM_GET/CLEAR_DIRTY_LOG, manual protect */
};

struct vm_config {
	uint64_t mem_size;
	unsigned ncpus;
	bool hugetlb;
	enum vm_dirty_log dirty_log;
};

typedef void (*vm_ucall_fn)(void *opaque, struct vm *vm, unsigned vcpu_id,
			    const struct ucall *uc);

struct vm_owned {
	void (*destroy)(void *obj);
	void *obj;
};

struct vm {
	struct kvm kvm;
	int fd;
	struct guest_mem mem;
	struct bus pio_bus;
	struct bus mmio_bus;
	unsigned ncpus;
	struct vcpu *vcpus;

	/* Called on a vCPU thread for every valid ucall (may be NULL). */
	vm_ucall_fn ucall_handler;
	void *ucall_opaque;

	/* Destroyed in reverse order by vm_destroy(), after the vCPUs. */
	struct vm_owned *owned;
	unsigned nowned;

	pthread_mutex_t lock;		/* guards exit and vCPU states */
	pthread_cond_t state_changed;
	struct vm_exit exit;
	bool started;
	unsigned pause_depth;		/* vm_pause() calls not yet resumed */
	/* An eventfd that becomes readable once an exit was requested, so a
	 * main loop can poll it beside signals and sockets. */
	int exit_fd;

	/* Write tracking as enabled by vm_create(): OFF, RING or BITMAP.
	 * With RING each vCPU maps dirty_ring_entries kvm_dirty_gfn. */
	enum vm_dirty_log dirty_log;
	uint32_t dirty_ring_entries;
	/* Called on the vCPU thread on KVM_EXIT_DIRTY_RING_FULL: it must
	 * harvest and reset the rings before the vCPU may run again.  Set
	 * by the dirty log's owner (vm_dirty.c) while it has readers;
	 * without one a full ring ends the VM with a host error. */
	void (*dirty_ring_full)(void *opaque, struct vcpu *vcpu);
	void *dirty_ring_opaque;

	/* KVM's dirty log has one owner (vm_dirty.c) that hands each reader
	 * (the working-set monitor, a migration) its own view; created with
	 * the first reader, freed with the last, both under dirty_lock. */
	struct vm_dirty_owner *dirty_owner;
	pthread_mutex_t dirty_lock;
	/* a migration tracks writes (vm_track_writes_begin()) */
	bool tracking_writes;

	/* The devices' saved state (vm_state.h), in registration order. */
	struct vm_state_entry *states;
	unsigned nstates;
};

/* With cfg->dirty_log != OFF: RING fails with -ENOTSUP if KVM lacks the
 * dirty ring, BITMAP if it lacks manual protect; AUTO takes the bitmap,
 * else the ring (why: setup_dirty_log() in vm.c), else fails.  Memslots then carry
 * KVM_MEM_LOG_DIRTY_PAGES from the start. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct errmsg *err);
/* Initialises only what needs no KVM: buses, lock, exit state (fd = -1,
 * no RAM, no vCPUs).  vm_create() starts with it; unit tests of devices
 * use it alone (vm_set_irq_line() then returns -EBADF). */
void vm_init_bare(struct vm *vm);
/* Stops the vCPUs if still running, then frees everything the VM owns. */
void vm_destroy(struct vm *vm);

/* Sets the boot vCPU's registers from @entry and starts one thread per
 * vCPU (the others wait for INIT/SIPI in the in-kernel LAPIC).  @entry
 * NULL: every vCPU's state was loaded already (a restored VM), and each
 * goes on from there. */
int vm_start(struct vm *vm, const struct vcpu_entry *entry,
	     struct errmsg *err);
/* Blocks until the VM ended and every vCPU thread has stopped. */
void vm_wait(struct vm *vm, struct vm_exit *out);

/* First caller wins; later requests are ignored.  Async-signal-unsafe:
 * signal handling threads call it, not signal handlers. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, int code,
		     unsigned vcpu_id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
bool vm_exit_requested(struct vm *vm);
/* vm_exit_requested() that also copies the exit (without waiting). */
bool vm_exit_peek(struct vm *vm, struct vm_exit *out);

/* Stops every vCPU at an instruction boundary and returns once all are
 * paused (guest state can then be read or changed); resume restarts
 * them.  Pauses nest: the vCPUs run again only when every vm_pause()
 * has had its vm_resume(), so the working-set monitor's brief pauses
 * do not resume a VM an operator paused.  -EINVAL if the VM is not
 * running (or, for resume, not paused); -ECANCELED if the VM is ending
 * (then there is nothing to resume).
 * A vCPU waiting for a userfaultfd fault inside KVM_RUN cannot pause
 * (before Linux 6.3 not even the kick reaches it) until the fault is
 * served: whoever might hold up fault service must not wait here, and
 * should use vm_pause_within(). */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* vm_pause() for a caller that reads or saves the vCPUs' state: it also
 * waits until no vCPU holds an instruction half done (an IN whose data
 * KVM puts in a register on the next KVM_RUN), so the saved state
 * resumes correctly anywhere.  Undone by vm_resume(). */
int vm_pause_settled(struct vm *vm);
/* vm_pause() that gives up after @timeout_ns: -ETIMEDOUT, the request
 * withdrawn, nothing to resume. */
int vm_pause_within(struct vm *vm, uint64_t timeout_ns);
/* vm_pause() without the wait: asks every vCPU to pause and returns.
 * For a caller that must not wait for a vCPU that is itself waiting for
 * it (the pager, while a vCPU blocks in a page fault the pager cannot
 * serve yet: that vCPU pauses once its fault is served).  Undone by
 * vm_resume() like a vm_pause(). */
int vm_request_pause(struct vm *vm);

/* Drives an irqchip input (ISA IRQ / IOAPIC pin) to @level. */
int vm_set_irq_line(struct vm *vm, unsigned gsi, int level);

/* Gives ownership of @obj to the VM. */
int vm_own(struct vm *vm, void (*destroy)(void *obj), void *obj);

const char *vm_exit_reason_name(enum vm_exit_reason r);

#endif
