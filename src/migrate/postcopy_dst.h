/* SPDX-License-Identifier: MIT */
/*
 * The destination's guest RAM during post-copy (migrate.h): the pages
 * the source said are pending (PENDING sections) start missing, with
 * userfaultfd; a vCPU or device thread touching one waits while a fault
 * thread asks the source for it ("REQ page\n"), and a receiver thread
 * reads what follows the handover on the connection (the answers and
 * the background push as RAM sections, GO, END) and fills each page in
 * (UFFDIO_COPY), which wakes whoever waits.  At END, with every page
 * in, it tells the source "DONE faults=N p50_us=A p99_us=B".
 *
 * Never a missing page read as zeros: a page is either in (received
 * before or after the handover), or known to be zero (not pending, and
 * a hole), or pending, and a pending page is only ever filled from the
 * stream.  If the stream fails after GO (the source died, the
 * connection was cut, a corrupt section), every page still pending is
 * refused (uffd_ram_refuse()) and the VM ends with the reason; before
 * GO the failure is returned to the restorer, which ends the VM that
 * never ran.  Pages in a RAM section are checked: inside guest RAM (the
 * stream layer), pending and not yet in (else the stream is corrupt).
 *
 * Lifetime: create with the VM's RAM (no uffd on it yet) and the
 * connection, which it owns from then (the stream reader given to start
 * must read that fd); mark the pending pages; start, which takes the
 * stream reader (positioned after HANDOVER); then the VM owns it
 * (vm_own() with postcopy_dst_destroy(), which refuses what never came
 * before it lets go of guest RAM).
 *
 * Threads: the lines to the source go out under one lock, whoever sends
 * them (a fault thread, the receiver, the restorer, run.c's RUNNING).
 */
#ifndef RACKVM_MIGRATE_POSTCOPY_DST_H
#define RACKVM_MIGRATE_POSTCOPY_DST_H

#include <stdint.h>

#include "migrate/stream.h"
#include "util/errmsg.h"

struct vm;
struct postcopy_dst;

int postcopy_dst_create(struct vm *vm, int conn, struct postcopy_dst **out,
			struct errmsg *err);
/* A PENDING section's pages (already bounds-checked against RAM). */
void postcopy_dst_mark(struct postcopy_dst *p, uint64_t first,
		       uint32_t npages, const uint8_t *bits);
/* Drops whatever the pending pages hold, registers guest RAM with
 * userfaultfd and starts the receiver on @r (which it owns from now,
 * also on failure). */
int postcopy_dst_start(struct postcopy_dst *p, struct stream_reader *r,
		       struct errmsg *err);
/* Blocks until the source's GO came (0) or the stream failed. */
int postcopy_dst_wait_go(struct postcopy_dst *p, struct errmsg *err);
/* One line to the source ("READY\n", "ERROR why\n"). */
void postcopy_dst_say(struct postcopy_dst *p, const char *line);
/* The vCPUs run: RUNNING to the source. */
void postcopy_dst_running(struct postcopy_dst *p);
/* void * for vm_own(); NULL is allowed. */
void postcopy_dst_destroy(void *p);

#endif
