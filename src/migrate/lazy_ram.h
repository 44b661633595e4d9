/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM filled on demand from a snapshot file (a lazy restore,
 * snapshot.h): every page starts missing, and its first touch, by a
 * vCPU or a device thread, is a userfaultfd fault that reads the page
 * from the file (or maps a zero page) and wakes whoever waits.  Pages
 * are read only when touched: a VM resumes before its RAM is read, and
 * a page it never touches is never read.
 *
 * Checksums: the restore reads a raw RAM section's head only and defers
 * its checksum (stream_reader_defer_ram()); such a section is added here
 * (lazy_ram_add_section()) and its pages, zero pages included (the zero
 * bitmap is unverified too), are tagged with it.  The first fault on any
 * of its pages reads the whole section and checks it, once: faults on
 * the same section meanwhile wait for that check, and no page of it is
 * served before it passed.  A section that fails (or cannot be read)
 * ends the VM with the section named; its pages are never served, every
 * fault on them refused.  A section whose pages all came again later
 * (the last copy wins) is never read at all.  Sections the reader
 * checked in full (a section not deferred) need no check here.
 *
 * The file must stay unchanged while the VM runs: a page is read again
 * from it when served, after its section's check.  A page that cannot
 * be read then ends the VM with the page named; the waiting thread gets
 * no data (uffd_ram_refuse()), never a wrong page.
 *
 * Memory: 12 bytes per guest page, and a table of deferred sections of
 * at most one entry per guest page (an honest snapshot holds each page
 * in one section); more is refused (-EBADMSG).
 *
 * Lifetime: lazy_ram_create() with the VM's RAM (no uffd on it yet),
 * lazy_ram_add_section() and lazy_ram_set() for what the snapshot holds,
 * lazy_ram_start() before anything touches guest RAM, then the VM owns
 * it (vm_own() with lazy_ram_destroy()); the fd is the caller's until
 * create, which dups it.  Setting and adding happen before the start,
 * from one thread; the fault threads only read them.
 */
#ifndef RACKVM_MIGRATE_LAZY_RAM_H
#define RACKVM_MIGRATE_LAZY_RAM_H

#include <stdint.h>

#include "migrate/stream.h"
#include "util/errmsg.h"

struct vm;
struct lazy_ram;

/* The section of pages whose section was checked in full already. */
#define LAZY_RAM_CHECKED 0u

int lazy_ram_create(struct vm *vm, int fd, const char *path,
		    struct lazy_ram **out, struct errmsg *err);
/* A RAM section whose checksum was deferred; *@section is what
 * lazy_ram_set() takes for its pages.  -ENOMEM, or -EBADMSG past the
 * table's limit (the message says why). */
int lazy_ram_add_section(struct lazy_ram *l, const struct stream_deferred *d,
			 uint32_t *section, struct errmsg *err);
/* Page @page's 4096 bytes are at @offset in the file (0: a zero page,
 * which is also what a page never set is), in @section
 * (LAZY_RAM_CHECKED, or one lazy_ram_add_section() gave). */
void lazy_ram_set(struct lazy_ram *l, uint64_t page, uint64_t offset,
		  uint32_t section);
int lazy_ram_start(struct lazy_ram *l, struct errmsg *err);
/* Pages read from the file and zero pages mapped so far. */
void lazy_ram_counts(const struct lazy_ram *l, uint64_t *read,
		     uint64_t *zero);
/* Deferred sections checked so far, passed or not: each at most once. */
uint32_t lazy_ram_sections_checked(const struct lazy_ram *l);
/* void * for vm_own(). */
void lazy_ram_destroy(void *l);

#endif
