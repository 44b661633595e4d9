/* SPDX-License-Identifier: MIT */
/*
 * Model-specific registers every vCPU starts with: the values a PC
 * firmware leaves behind and a Linux guest expects (fast strings on,
 * MTRRs enabled with write-back default, SYSCALL/SYSENTER MSRs cleared).
 */
#ifndef RACKVM_VM_MSR_H
#define RACKVM_VM_MSR_H

#include "util/errmsg.h"

/* -EIO naming the first MSR KVM refused. */
int msr_set_boot_values(int vcpu_fd, struct errmsg *err);

#endif
