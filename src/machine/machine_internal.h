/* SPDX-License-Identifier: MIT */
/*
 * The machine's insides, shared by machine.c (lifecycle, accessors),
 * machine_build.c (assembly from the config) and machine_memory.c (the
 * pager, its store and the working-set monitor).  Not for other folders.
 *
 * Ownership: the VM owns every device, the monitor,
 * the userfaultfd, the store and the pager (vm_own(), destroyed in
 * reverse order after the vCPUs stopped); the machine owns the VM, its
 * config copy, the kernel and initrd bytes and the console file.  The
 * pointers below are borrowed views of what the VM owns.
 */
#ifndef RACKVM_MACHINE_INTERNAL_H
#define RACKVM_MACHINE_INTERNAL_H

#include <pthread.h>

#include "boot/boot.h"
#include "machine/machine.h"

struct page_store;
struct uffd_ram;

struct machine {
	struct machine_config cfg;
	struct machine_hooks hooks;

	/* guards state, exit and waited; the VM has its own lock */
	pthread_mutex_t lock;
	enum machine_state state;
	bool waited;			/* machine_wait() finished the end */
	struct vm_exit exit;		/* valid once waited */
	uint64_t start_ns;

	struct vm vm;
	bool vm_created;
	/* built for a restore (migrate/snapshot.h): no kernel is loaded,
	 * the vCPUs start from the state loaded into them */
	bool restoring;
	struct boot_entry entry;

	uint8_t *kernel;		/* NULL: hooks.default_kernel */
	size_t kernel_size;
	uint8_t *initrd;
	size_t initrd_size;
	int console_out;		/* -1: none yet */
	int console_in;			/* -1: none */
	bool console_out_owned;

	/* owned by the VM (see above) */
	struct uffd_ram *uffd;
	struct page_store *store;
	struct pager *pager;
	struct wss_monitor *monitor;
	/* a restore's pager waits for the stream's page map (machine.h) */
	bool awaits_pagemap;
	bool memory_started;
	struct virtio_balloon *balloon;
};

/* machine_build.c: everything machine_create() does after the config
 * was copied; on failure the caller destroys the half-built machine. */
int machine_build(struct machine *m, struct errmsg *err);

/* machine_memory.c, in this order (why: memory/pager.h):
 *   machine_memory_create()   after vm_create(), before the devices;
 *   machine_memory_balloon()  after the devices: the pages the balloon
 *                             gives back go through the pager (which
 *                             the VM destroys after the balloon);
 *   machine_memory_monitor()  after the devices: the monitor, tied to
 *                             the pager;
 *   machine_memory_start()    before the vCPUs run: registers guest RAM
 *                             with the uffd, starts the fault threads;
 *   machine_memory_finish()   once the VM ended: the pager settles, the
 *                             CSV is written. */
int machine_memory_create(struct machine *m, struct errmsg *err);
void machine_memory_balloon(struct machine *m);
int machine_memory_monitor(struct machine *m, struct errmsg *err);
int machine_memory_start(struct machine *m, struct errmsg *err);
int machine_memory_finish(struct machine *m, struct errmsg *err);

#endif
