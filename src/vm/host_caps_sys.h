/* SPDX-License-Identifier: MIT */
/*
 * Internal to host_caps.c and host_caps_sys.c: adding an item, and the
 * items that do not need /dev/kvm (userfaultfd, huge pages, NUMA, PMU,
 * RDT, RAPL), read under @root (see struct host_caps_config).
 */
#ifndef RACKVM_VM_HOST_CAPS_SYS_H
#define RACKVM_VM_HOST_CAPS_SYS_H

#include "vm/host_caps.h"

/* Appends an item (the detail formatted); NULL when the list is full. */
struct host_cap *host_caps_add(struct host_caps *caps, const char *name,
			       enum host_cap_status status, bool required,
			       const char *meaning, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

void host_caps_probe_sys(struct host_caps *caps, const char *root);

#endif
