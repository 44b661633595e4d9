/* SPDX-License-Identifier: MIT */
/*
 * What `rackvm run` prints about a machine on stderr: the working-set
 * line per interval, the pager's events, the setup lines, the pager's
 * stats line and the per-vCPU exit counters at the end.  Tests and
 * users read these lines; their format is kept stable.
 */
#ifndef RACKVM_CLI_RUN_REPORT_H
#define RACKVM_CLI_RUN_REPORT_H

#include "machine/machine.h"

/* The hooks that print the working-set lines and the pager's events. */
void run_report_hooks(struct machine_hooks *h);
/* After machine_create(): what the monitor tracks, what the pager keeps
 * where. */
void run_report_setup(struct machine *m);
/* After machine_wait(): the pager's stats line and, if asked for, the
 * exit counters. */
void run_report_end(struct machine *m);

#endif
