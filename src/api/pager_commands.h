/* SPDX-License-Identifier: MIT */
/*
 * The pager's control command:
 *   pager-stats   "ok resident=N remote=N zero=N stored=N
 *                 under_replicated=N lost=N unreachable=N faults=N
 *                 evictions=N": the pager's counters now (the end line's,
 *                 memory/pager.h) and what its store says of its copies:
 *                 stored, the pages it holds (0 for a store that does not
 *                 count them), under-replicated and lost ones.  For a
 *                 watcher that compares them with the servers' own
 *                 counts while the VM runs (tests/chaos).
 */
#ifndef RACKVM_API_PAGER_COMMANDS_H
#define RACKVM_API_PAGER_COMMANDS_H

#include "api/control.h"
#include "memory/pager.h"

int pager_commands_register(struct control_server *s, struct pager *p);

#endif
