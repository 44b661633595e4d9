/* SPDX-License-Identifier: MIT */
/*
 * Surviving a SIGBUS on guest RAM.
 *
 * A guest page can be unusable: the pager lost it (the store says it is
 * gone or corrupt, or the store is unreachable while the VM ends) and
 * answered its faults with "no data" (memory/uffd_ram.h: poison, or a
 * fence where the kernel has no poison), or the hardware reported a
 * memory error in it.  A thread that then loads from or stores to the
 * page in user mode gets SIGBUS; a syscall that copies to or from it
 * fails with EFAULT instead, and KVM, for a vCPU, sends the vCPU thread
 * SIGBUS (poison: BUS_MCEERR_AR) or fails KVM_RUN with EFAULT.  The
 * default action of SIGBUS ends the whole process, and with it the
 * message that says which page was lost.
 *
 * ram_sigbus_call() runs a function with a recovery point: a SIGBUS the
 * kernel raises for an address inside guest RAM while the function runs
 * on this thread abandons the function where it stands and returns
 * -EFAULT with the address.  The function must be one that may be cut
 * short there: it takes no lock and allocates nothing that only its own
 * epilogue would release (the callers hold their locks across the call
 * and release them after it).  Every other SIGBUS (another address, a
 * thread outside ram_sigbus_call(), one sent with kill()) goes to the
 * handler that was there before, or to the default action.
 *
 * Users: the virtio I/O threads around serving a queue or a backend
 * (virtio/mmio_io.c), and vCPU threads around KVM_RUN (vm/vcpu.c).  Both
 * then mark what they were doing failed and end the VM with a message.
 *
 * Threads: any; the recovery point is per thread.
 */
#ifndef RACKVM_VM_RAM_SIGBUS_H
#define RACKVM_VM_RAM_SIGBUS_H

#include <stdint.h>

#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* Installs the process's SIGBUS handler (once: later calls do nothing).
 * ram_sigbus_call() works only after it. */
int ram_sigbus_install(struct errmsg *err);

/* Runs fn(arg).  0 if it returned; -EFAULT if it was abandoned on a
 * SIGBUS at an address in @mem's mapping, whose memfd offset goes to
 * @offset (may be NULL).  Calls nest: the innermost one catches. */
int ram_sigbus_call(const struct guest_mem *mem, void (*fn)(void *arg),
		    void *arg, uint64_t *offset);

#endif
