/* SPDX-License-Identifier: MIT */
/*
 * One userfaultfd for guest RAM, shared by everyone who needs faults on
 * it.  A mapping can be registered with only one userfaultfd, and two
 * subsystems want faults on guest RAM: the reference sampler (minor
 * faults, write-protect; memory/ref_sample.h) and the pager (missing
 * faults, write-protect; memory/pager.h).
 *
 * Users attach before uffd_ram_start(), which registers the whole
 * mapping once with the union of the modes they need and starts K fault
 * threads.  Every fault is dispatched by kind:
 *   1. each user observing that kind is told (note()), in attach order;
 *   2. then the one resolver of that kind resolves it, or, without one,
 *      the default does:
 *        missing  a zero page (UFFDIO_ZEROPAGE): the guest's first touch
 *        minor    the page is mapped back (UFFDIO_CONTINUE), write-
 *                 protected whenever write-protect mode is registered,
 *                 so that mapping a page never lifts a protection
 *                 someone else relies on
 *        wp       the protection is lifted (UFFDIO_WRITEPROTECT)
 * Write-protect faults have one resolver because two users arm them: the
 * pager (a page it is evicting) and the sampler (pages it hands back
 * write-protected).  The rule: the pager resolves every write-protect
 * fault when it is attached, and lifts a protection only under its own
 * per-page lock, so a lift for the sampler cannot undo an eviction's.
 * It resolves minor faults too, for the same reason: before Linux 6.5
 * UFFDIO_CONTINUE cannot map a page write-protected, so a page is mapped
 * and then protected, and a write in between would escape an eviction
 * that was copying the page; under the pager's lock no eviction is.
 * Which way the kernel works is probed at uffd_ram_create().
 *
 * A fault that cannot be resolved (the kernel refuses the operation) is
 * not left looping silently: the faulting thread is woken to retry, and
 * the error is kept for uffd_ram_error(), whose readers end the VM.  On
 * kernels before 6.3 a vCPU waiting for a fault inside KVM_RUN does not
 * see kicks, so nobody may wait for a vCPU while holding up the faults
 * (vm_pause_within() bounds such waits).
 *
 * A resolver must, before returning, resolve the fault, wake the
 * faulting thread, or know that someone else will (a page another fault
 * thread is filling in: its UFFDIO_COPY wakes every waiter).  The fault
 * threads never touch guest RAM through the mapping: they are what
 * resolves faults on it.
 *
 * Page numbers are memfd offsets / 4096 (memory/dirty_log.h).
 *
 * Threads: attach/detach from any thread (detach waits until no fault
 * thread is inside that user's callbacks); the page operations from any
 * thread, typically a user's callbacks or its own worker.
 *
 * Teardown: uffd_ram_destroy() stops the fault threads and closes the
 * uffd, which unregisters guest RAM and wakes every waiter: the fault is
 * then retried as an ordinary one (a hole becomes a zero page).  So the
 * users that keep state the guest needs (the pager) must stay attached
 * until nothing touches guest RAM any more.
 */
#ifndef RACKVM_MEMORY_UFFD_RAM_H
#define RACKVM_MEMORY_UFFD_RAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* Registration modes a user needs. */
#define UFFD_RAM_MISSING 1u
#define UFFD_RAM_MINOR 2u
#define UFFD_RAM_WP 4u

enum uffd_fault_kind {
	UFFD_FAULT_MISSING,	/* the page is not in the memfd */
	UFFD_FAULT_MINOR,	/* in the memfd, not mapped */
	UFFD_FAULT_WP,		/* a write to a write-protected page */
	UFFD_FAULT_KINDS,
};

#define UFFD_OBSERVE(kind) (1u << (kind))

#define UFFD_RAM_MAX_USERS 4
#define UFFD_RAM_MAX_THREADS 16

struct uffd_ram;

struct uffd_ram_user {
	unsigned modes;		/* UFFD_RAM_* this user needs registered */
	unsigned observe;	/* UFFD_OBSERVE() bits: kinds note() sees */
	void (*note)(void *opaque, uint64_t page, enum uffd_fault_kind kind);
	/* Resolvers (NULL: the default); at most one user each. */
	void (*missing)(void *opaque, uint64_t page);
	void (*wp)(void *opaque, uint64_t page);
	/* @fault false: no thread waits, the page is mapped back for
	 * uffd_ram_map_back() (a revoked page nobody touched). */
	void (*minor)(void *opaque, uint64_t page, bool fault);
	void *opaque;		/* identifies the user for detach */
};

/* 0 if this kernel and process can register guest RAM in @modes
 * (UFFD_RAM_*), else -ENOTSUP / -EPERM with the reason in @err. */
int uffd_ram_probe(unsigned modes, struct errmsg *err);

/* Opens the uffd (every feature among those rackvm uses that the kernel
 * has) for @mem, 4 KiB pages only; @nthreads fault threads (1..16) once
 * started. */
int uffd_ram_create(const struct guest_mem *mem, unsigned nthreads,
		    struct uffd_ram **out, struct errmsg *err);
/* void * for vm_own(). */
void uffd_ram_destroy(void *u);

/* -ENOTSUP if the kernel lacks a mode, -EBUSY if a resolver is taken or
 * the uffd already started without the modes needed. */
int uffd_ram_attach(struct uffd_ram *u, const struct uffd_ram_user *user,
		    struct errmsg *err);
void uffd_ram_detach(struct uffd_ram *u, void *opaque);

int uffd_ram_start(struct uffd_ram *u, struct errmsg *err);

/* Write-protect mode registered (or, before the start, available). */
bool uffd_ram_has_wp(const struct uffd_ram *u);
/* UFFDIO_POISON usable (Linux 6.6+; asked of the kernel at create,
 * confirmed by the registration at the start). */
bool uffd_ram_has_poison(const struct uffd_ram *u);

/*
 * How uffd_ram_refuse() answers a fault on a page that nobody can
 * provide (the pager lost it):
 *   POISON  UFFDIO_POISON: the page's entry says "no data"; a thread
 *           touching it gets SIGBUS (BUS_MCEERR_AR), a syscall EFAULT,
 *           and KVM sends a vCPU thread SIGBUS
 *   FENCE   without poison (Linux < 6.6): the page's part of the guest
 *           RAM mapping is replaced by a mapping of an empty file, so
 *           that the page has no backing at all, then its waiters are
 *           woken; their retry finds the fence: SIGBUS (BUS_ADRERR) in
 *           a thread, EFAULT in a syscall and from KVM_RUN
 * Either way the waiting thread is released without data, and no access
 * can ever read or write the page again.  Why not a zero page or a
 * UFFDIO_WAKE alone: a wake makes the thread fault again and wait again
 * (the VM could not stop: a device thread waits holding its transport's
 * lock); a page of zeros would be consumed as data, by a vCPU before its
 * kick lands or by a device thread copying it straight to a disk image
 * (pwritev), and no later check can take such bytes back.  The fence
 * splits guest RAM's mapping (it is no longer one VMA); page operations
 * over ranges that cross a fence fail (-ENOENT), which is fine: a VM
 * with a refused page is ending.
 */
enum uffd_refusal {
	UFFD_REFUSE_POISON,
	UFFD_REFUSE_FENCE,
};

enum uffd_refusal uffd_ram_refusal(const struct uffd_ram *u);
/* For tests: fence even where the kernel has poison (call before the
 * first refusal). */
void uffd_ram_use_fence(struct uffd_ram *u);

/* Whether UFFDIO_CONTINUE maps pages write-protected in one step here
 * (else: mapped, protected, then woken). */
bool uffd_ram_continue_protects(const struct uffd_ram *u);
/* For tests: take the two-step path of kernels before 6.5 even here. */
void uffd_ram_use_two_step_continue(struct uffd_ram *u);

/* First error a fault thread hit reading the uffd, or a default
 * resolution hit (0 if none): faults may be stuck retrying. */
int uffd_ram_error(const struct uffd_ram *u);
unsigned uffd_ram_nthreads(const struct uffd_ram *u);
pthread_t uffd_ram_thread(const struct uffd_ram *u, unsigned i);
/* CPU time the fault threads spent on faults of @kind (reading and
 * dispatching them), and how many there were. */
uint64_t uffd_ram_cpu_ns(const struct uffd_ram *u, enum uffd_fault_kind kind);
uint64_t uffd_ram_faults(const struct uffd_ram *u, enum uffd_fault_kind kind);

/*
 * Operations on pages [page, page + count).  0 or -errno; -EINVAL for a
 * range outside guest RAM.  Each retries the kernel's transient -EAGAIN.
 */
/* UFFDIO_COPY from @src (count * 4096 bytes), waking the waiters.
 * -EEXIST if a page is there already (the pages before it were copied). */
int uffd_ram_copy(struct uffd_ram *u, uint64_t page, uint64_t count,
		  const void *src);
/* UFFDIO_ZEROPAGE; -EEXIST likewise. */
int uffd_ram_zeropage(struct uffd_ram *u, uint64_t page, uint64_t count);
/* UFFDIO_CONTINUE (write-protected when WP mode is registered: in one
 * step where the kernel can, else mapped, protected, then woken), skipping
 * pages that are mapped already or gone from the memfd. */
int uffd_ram_continue(struct uffd_ram *u, uint64_t page, uint64_t count);
/* Maps back revoked pages no thread is waiting for: through the minor
 * resolver when one is attached (page by page), else uffd_ram_continue(). */
int uffd_ram_map_back(struct uffd_ram *u, uint64_t page, uint64_t count);
/* Sets or lifts write protection; lifting wakes the writers. */
int uffd_ram_protect(struct uffd_ram *u, uint64_t page, uint64_t count,
		     bool protect);
int uffd_ram_wake(struct uffd_ram *u, uint64_t page, uint64_t count);
/* -ENOTSUP without UFFDIO_POISON. */
int uffd_ram_poison(struct uffd_ram *u, uint64_t page, uint64_t count);
/* Answers every fault on the pages, now and later, with no data (see
 * enum uffd_refusal) and wakes the threads waiting there.  Poison where
 * the kernel has it, the fence otherwise or if poisoning fails.  Final:
 * only for pages whose contents are gone for good, in a VM that ends. */
int uffd_ram_refuse(struct uffd_ram *u, uint64_t page, uint64_t count);

#endif
