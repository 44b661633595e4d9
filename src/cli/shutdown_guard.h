/* SPDX-License-Identifier: MIT */
/*
 * A bound on how long `rackvm run` takes to end once its VM is ending
 * (a signal, the guest, an error): SHUTDOWN_BOUND_MS.
 *
 * Normally every thread stops within milliseconds.  One may not: a vCPU
 * or device thread waiting in a userfaultfd fault for a page whose only
 * copy is on a page store that does not answer.  Nothing but the page
 * releases it on kernels without UFFDIO_POISON (Linux 6.6) or, for a
 * vCPU, without interruptible KVM faults (6.3), and rackvm never hands a
 * thread made-up data.  So the guard, armed when the VM's end is
 * requested, ends the process with the VM's usual exit status (128 + N
 * for signal N) if the teardown is not done in time; exit_group() takes
 * the stuck threads with it.  What was not written by then (the pager's
 * stats line, --wss-csv) is lost, and rackvm says so on stderr.
 *
 * The guard knows nothing of the VM: it cannot touch one being torn
 * down.
 */
#ifndef RACKVM_CLI_SHUTDOWN_GUARD_H
#define RACKVM_CLI_SHUTDOWN_GUARD_H

/* The documented bound (README, exit status). */
#define SHUTDOWN_BOUND_MS 5000
/* When the guard acts: the rest of the bound is for the exit itself. */
#define SHUTDOWN_GUARD_MS 3500

struct shutdown_guard;

/* Starts the clock: exit status @status and @why (the VM's end, one line)
 * for the message.  NULL if no thread could be started (then there is no
 * bound, and nothing else changes). */
struct shutdown_guard *shutdown_guard_arm(int status, const char *why);
/* What the teardown waits for now, for the message (a string literal,
 * e.g. "the vCPUs to stop"). */
void shutdown_guard_stage(struct shutdown_guard *g, const char *waiting_for);
void shutdown_guard_disarm(struct shutdown_guard *g);

#endif
