/* SPDX-License-Identifier: MIT */
/*
 * The /dev/kvm system handle: API version and capability checks, and what
 * the host CPU supports (CPUID, MSR list).
 */
#ifndef RACKVM_VM_KVM_H
#define RACKVM_VM_KVM_H

#include <stddef.h>

#include "util/errmsg.h"

struct kvm_cpuid2;

struct kvm {
	int fd;
	size_t vcpu_mmap_size;
	struct kvm_cpuid2 *supported_cpuid;	/* KVM_GET_SUPPORTED_CPUID */
	int max_vcpus;
	/* optional features, probed */
	int has_immediate_exit;
};

struct kvm_required_cap {
	int cap;		/* KVM_CAP_* */
	const char *name;	/* "KVM_CAP_IRQCHIP" */
	const char *why;	/* what rackvm uses it for */
};

/* The capabilities kvm_open() requires, in the order it checks them
 * (`rackvm doctor` lists them from here too). */
const struct kvm_required_cap *kvm_required_caps(size_t *count);

/*
 * Opens @path (normally "/dev/kvm"), checks KVM_API_VERSION == 12 and every
 * capability rackvm relies on.  -ENOENT / -EACCES when the device is
 * missing or not accessible (the CLI exits 2), -ENOTSUP naming the first
 * missing capability otherwise.
 */
int kvm_open(struct kvm *kvm, const char *path, struct errmsg *err);
void kvm_close(struct kvm *kvm);

#endif
