/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM filled on demand from a snapshot file (a lazy restore,
 * snapshot.h): every page starts missing, and its first touch, by a
 * vCPU or a device thread, is a userfaultfd fault that reads the page
 * from the file (or maps a zero page) and wakes whoever waits.  Pages
 * are read only when touched: a VM resumes before its RAM is read, and
 * a page it never touches is never read.
 *
 * The file must stay unchanged while the VM runs (its sections were
 * checked when the snapshot was opened, not at each read).  A page that
 * cannot be read then ends the VM with the page named; the waiting
 * thread gets no data (uffd_ram_refuse()), never a wrong page.
 *
 * Lifetime: lazy_ram_create() with the VM's RAM (no uffd on it yet),
 * lazy_ram_set() for each page the snapshot holds, lazy_ram_start()
 * before anything touches guest RAM, then the VM owns it (vm_own() with
 * lazy_ram_destroy()); the fd is the caller's until create, which dups
 * it.
 */
#ifndef RACKVM_MIGRATE_LAZY_RAM_H
#define RACKVM_MIGRATE_LAZY_RAM_H

#include <stdint.h>

#include "util/errmsg.h"

struct vm;
struct lazy_ram;

int lazy_ram_create(struct vm *vm, int fd, const char *path,
		    struct lazy_ram **out, struct errmsg *err);
/* Page @page's 4096 bytes are at @offset in the file (0: a zero page,
 * which is also what a page never set is). */
void lazy_ram_set(struct lazy_ram *l, uint64_t page, uint64_t offset);
int lazy_ram_start(struct lazy_ram *l, struct errmsg *err);
/* Pages read from the file and zero pages mapped so far. */
void lazy_ram_counts(const struct lazy_ram *l, uint64_t *read,
		     uint64_t *zero);
/* void * for vm_own(). */
void lazy_ram_destroy(void *l);

#endif
