/* SPDX-License-Identifier: MIT */
/*
 * A machine: a VM built from a struct machine_config, with every device,
 * the working-set monitor and the pager the config asks for, driven
 * through an explicit lifecycle.  `rackvm run`, the API, hostd and
 * migration all build VMs through this layer; none of them assembles
 * devices itself.  Library code: nothing here prints or exits; what a
 * user should see arrives through struct machine_hooks.
 *
 * States and the legal transitions (anything else is -EBUSY, and the
 * machine is unchanged):
 *
 *   machine_create() -> CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *                          |                  |                          |
 *                          |        request_shutdown                     |
 *                          |                  v                          |
 *                          |            SHUTTING_DOWN                    |
 *                          |                  |                          |
 *                          +------stop--------+-----------stop-----------+
 *                                             v
 *                         STOPPED (the VM ended: guest, signal, stop)
 *                         FAILED  (rackvm or KVM could not go on)
 *
 * RUNNING, PAUSED and SHUTTING_DOWN become STOPPED or FAILED on their own
 * when the guest ends the VM (power-off, reset, crash) or a device or the
 * pager fails; machine_state() reports that at once, machine_wait()
 * collects it.  A start that fails leaves the machine FAILED.
 *
 * Ownership: machine_create() copies the config (the caller keeps its
 * own) and on failure frees everything it built, so *out is only set on
 * success.  machine_destroy() works from every state: it stops the VM if
 * it runs, waits for its threads and frees everything, devices before
 * the pager that serves their page faults, the pager before guest RAM.
 *
 * Threads: every call may come from any thread except machine_destroy(),
 * which must be the last call and must not race any other.  The hooks
 * run on rackvm's own threads (the monitor's, the pager's) and must not
 * call back into the machine.
 */
#ifndef RACKVM_MACHINE_MACHINE_H
#define RACKVM_MACHINE_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/config.h"
#include "memory/pager.h"
#include "memory/wss_monitor.h"
#include "util/errmsg.h"
#include "virtio/mmio.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

struct machine;
struct virtio_balloon;

enum machine_state {
	MACHINE_CREATED,
	MACHINE_RUNNING,
	MACHINE_PAUSED,
	MACHINE_SHUTTING_DOWN,
	MACHINE_STOPPED,
	MACHINE_FAILED,
};

/* What the machine tells its owner; any member may be NULL. */
struct machine_hooks {
	void *opaque;
	/* each working-set interval, on the monitor's thread */
	void (*wss_point)(void *opaque, const struct wss_point *p);
	/* the pager's events (server lost, page lost), on its threads */
	void (*pager_event)(void *opaque, const struct pager_event *ev);
	/* The kernel to boot when the config names none (the CLI's bundled
	 * guest); it must outlive the machine.  NULL: a config without a
	 * kernel is refused. */
	const uint8_t *default_kernel;
	size_t default_kernel_size;
};

/* Validates @cfg, reads the kernel and initrd, creates the VM, guest RAM,
 * the pager and its store, the devices and the monitor, and loads the
 * kernel: everything short of running a vCPU.  "stdio" as the console is
 * this process's stdin and stdout. */
int machine_create(const struct machine_config *cfg,
		   const struct machine_hooks *hooks, struct machine **out,
		   struct errmsg *err);
/* machine_create() for a VM whose state comes from a snapshot or a
 * migration stream (migrate/): no kernel or initrd is read or loaded;
 * the caller loads guest RAM, the vCPUs' and the devices' state into the
 * CREATED machine, and machine_start() then runs the vCPUs from there. */
int machine_create_for_restore(const struct machine_config *cfg,
			       const struct machine_hooks *hooks,
			       struct machine **out, struct errmsg *err);
/* CREATED -> RUNNING: starts the pager's threads, the vCPUs, then the
 * monitor. */
int machine_start(struct machine *m, struct errmsg *err);
/* RUNNING -> PAUSED: returns once every vCPU stopped at an instruction
 * boundary (devices and the pager keep serving).  PAUSED -> RUNNING. */
int machine_pause(struct machine *m);
int machine_resume(struct machine *m);
/* RUNNING -> SHUTTING_DOWN: presses the ACPI power button; a guest with
 * ACPI (Linux) powers off, which makes the machine STOPPED.  A guest that
 * does not listen keeps running: the caller decides when to
 * machine_stop().  -ENOTSUP if the guest was not booted with ACPI tables
 * (the bundled guest): nothing changed. */
int machine_request_shutdown(struct machine *m);
/* CREATED, RUNNING, PAUSED or SHUTTING_DOWN -> STOPPED: ends the VM now,
 * as pulling the plug would (the exit says "stopped").  The _signal form
 * records that signal @signo asked (exit status 128 + signo). */
int machine_stop(struct machine *m);
int machine_stop_signal(struct machine *m, int signo);
/* Blocks until the VM ended (from CREATED: until machine_stop()), then
 * finishes what the end needs (the pager settles, the CSV is written)
 * and returns how it ended.  A later call returns the same. */
void machine_wait(struct machine *m, struct vm_exit *out);
/* Stops, waits and frees; NULL is allowed. */
void machine_destroy(struct machine *m);

enum machine_state machine_state(struct machine *m);
const char *machine_state_name(enum machine_state s);
/* Readable once the VM ended or an end was requested (poll it). */
int machine_exit_fd(const struct machine *m);
/* The exit so far without waiting: false if the VM has not ended. */
bool machine_exit_peek(struct machine *m, struct vm_exit *out);

/* The VM itself, for migrate/ (its vCPUs, RAM and device states);
 * other users go through the calls above. */
struct vm *machine_vm(struct machine *m);
/*
 * For migrate/: a VM with --mem-local restored from a migration stream.
 * machine_create_for_restore() leaves its pager (and the monitor, which
 * is tied to it) to machine_restore_pager(), since the page map from the
 * stream (migrate/pagemap.h) decides the store: the one it names (the
 * source's memd namespace, handed over) or, if it names none, the
 * config's.  The map is imported; call it before any guest RAM is
 * loaded.  -EINVAL if the machine does not await a map.
 */
struct pagemap;
struct pager;
bool machine_awaits_pagemap(const struct machine *m);
int machine_restore_pager(struct machine *m, const struct pagemap *map,
			  struct errmsg *err);
/* Guest RAM's fault handling (uffd, pager) from now on rather than at
 * machine_start(): once a restore loaded RAM, a device's state load may
 * touch it.  Later calls do nothing. */
int machine_start_memory(struct machine *m, struct errmsg *err);
/* The migration's GO came: a handed-over store is this VM's own now
 * (pager_handover_commit()); 0 without one. */
int machine_pager_commit(struct machine *m, struct errmsg *err);
/* The pager, for migrate/ (its handover); NULL without one. */
struct pager *machine_pager(struct machine *m);

/* Accessors for reports and the API.  The config is the machine's copy. */
const struct machine_config *machine_config(const struct machine *m);
unsigned machine_ncpus(const struct machine *m);
/* A snapshot of vCPU @i's counters; -EINVAL for no such vCPU. */
int machine_vcpu_stats(struct machine *m, unsigned i, struct vcpu_stats *out);
/* Virtio device @i (in config order: disks, NICs, rng, balloon,
 * console); -ENOENT past the last. */
int machine_device_stats(struct machine *m, unsigned i,
			 struct virtio_mmio_stats *out);
/* -ENOENT without a pager. */
int machine_pager_stats(struct machine *m, struct pager_stats *out);
/* Bytes of guest RAM in host memory now (guest_mem_host_bytes). */
uint64_t machine_host_resident(struct machine *m);
/* The page store's description ("memd:h:p (2 replicas)"), "" without. */
void machine_store_describe(struct machine *m, char *buf, size_t len);
/* NULL when the config has none. */
struct wss_monitor *machine_wss_monitor(struct machine *m);
struct virtio_balloon *machine_balloon(struct machine *m);
/* Run-time memory changes (the API's PATCH /vm/memory), any state:
 * the pager's resident limit, a multiple of 4K from
 * MACHINE_MIN_LOCAL_BYTES to the guest's RAM (a lower one is met by
 * evicting, a higher one lets pages back in as the guest touches them),
 * and the balloon's target size, a multiple of 4K up to the guest's RAM.
 * -ENOENT without a pager / balloon, -EINVAL for a size out of range;
 * @err says which and what is valid.  Neither waits for the guest. */
int machine_set_mem_local(struct machine *m, uint64_t bytes,
			  struct errmsg *err);
int machine_set_balloon_target(struct machine *m, uint64_t bytes,
			       struct errmsg *err);
/* Nanoseconds since machine_start(); 0 before. */
uint64_t machine_uptime_ns(struct machine *m);

#endif
