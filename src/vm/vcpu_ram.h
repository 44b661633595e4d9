/* SPDX-License-Identifier: MIT */
/*
 * A vCPU's trouble with guest RAM, for vcpu.c: KVM_RUN under a SIGBUS
 * recovery point, and the accesses KVM gave up on.  Guest RAM can hold
 * pages no one can provide (the pager lost them: memory/uffd_ram.h
 * refuses them by poison or by a fence) or pages with a memory error;
 * KVM reports a vCPU's access to one as a SIGBUS to the vCPU thread,
 * as KVM_RUN failing with EFAULT, or, for an access it was emulating,
 * as an MMIO exit at the page's address.  Each ends the VM with a
 * message naming the page where it is known; none ends the process or
 * hands the guest made-up bytes.
 *
 * vCPU thread only.
 */
#ifndef RACKVM_VM_VCPU_RAM_H
#define RACKVM_VM_VCPU_RAM_H

#include <stdint.h>

struct vcpu;

/* One KVM_RUN: 0 or its -errno.  -EFAULT: the guest met unusable RAM
 * and the VM's end was requested (a caught SIGBUS, or KVM's EFAULT). */
int vcpu_ram_run(struct vcpu *vcpu);

/* An MMIO exit at guest RAM (@ram, @len bytes): the access is done here. */
void vcpu_ram_mmio(struct vcpu *vcpu, uint8_t *ram, unsigned len);

#endif
