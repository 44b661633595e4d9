/* SPDX-License-Identifier: MIT */
/*
 * Machines running the bundled guest ($GUEST_ELF, set by tests/run) for
 * the unit tests that need one, with the reasons such a test skips.
 */
#ifndef RACKVM_TESTS_GUEST_MACHINE_H
#define RACKVM_TESTS_GUEST_MACHINE_H

#include <stdint.h>

#include "machine/machine.h"

/* machine_config_init() for the guest running @workload in @mem_size
 * bytes, its console to /dev/null; NULL, or why the test must skip. */
const char *guest_machine_config(struct machine_config *cfg,
				 const char *workload, uint64_t mem_size);

/* machine_create(@cfg) into *@m with its result in *@ret; NULL, or why
 * the test must skip (no /dev/kvm; no userfaultfd for a pager). */
const char *guest_machine_create(const struct machine_config *cfg,
				 struct machine **m, int *ret);

#endif
