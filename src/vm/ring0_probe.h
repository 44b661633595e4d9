/* SPDX-License-Identifier: MIT */
/*
 * Does guest ring 0 run at hardware speed?  Some nested KVMs (a KVM inside
 * a VM whose own hypervisor assists it in software) run guest ring 3 at
 * full speed but emulate ring 0 about 1000x slower, and fail on some
 * instructions there (cmpxchg16b): Linux guests never finish booting on
 * them, while rackvm's bundled guest, which lives in ring 3, works.
 *
 * The probe builds a throwaway VM (64 KiB of RAM, one vCPU started
 * directly in 64-bit mode) and times a loop of @iterations dec/jnz pairs
 * in it, once at CPL 0 and once at CPL 3, against the same loop on the
 * host.  Each guest time is a KVM_RUN from entry to the loop's closing
 * port write, minus the same for a single iteration, so the cost of
 * entering and leaving the guest is not counted.  Minimum of a few runs.
 */
#ifndef RACKVM_VM_RING0_PROBE_H
#define RACKVM_VM_RING0_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "vm/kvm.h"

struct ring0_speed {
	bool vm_created;	/* KVM_CREATE_VM and the vCPU worked */
	uint64_t iterations;
	uint64_t host_ns;	/* the loop on this host */
	uint64_t ring0_ns;	/* the loop in the guest at CPL 0 */
	uint64_t ring3_ns;	/* and at CPL 3 */
};

/* Guest time over host time (at least 1 ns of host time assumed). */
double ring0_speed_ratio(uint64_t guest_ns, uint64_t host_ns);

/*
 * Runs the probe on @kvm (from kvm_open()).  0 on success; -errno with a
 * reason if the VM cannot be created or run (KVM_CREATE_VM failing is
 * itself news: rackvm run would fail the same way).
 */
int ring0_probe_run(const struct kvm *kvm, uint64_t iterations,
		    struct ring0_speed *out, struct errmsg *err);

#endif
