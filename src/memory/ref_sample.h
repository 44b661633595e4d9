/* SPDX-License-Identifier: MIT */
/*
 * Reference tracking by sampling: page-reference logging in software.
 *
 * Each interval a uniform random sample of the resident guest pages has
 * its access revoked, and a fault thread records which sampled pages the
 * guest (or rackvm's own device threads) touch before the interval ends.
 *
 * Mechanism: userfaultfd in minor-fault mode on the MAP_SHARED memfd
 * mapping of guest RAM.  Revoking a page is MADV_DONTNEED on our mapping:
 * for shmem that drops only the page table entry, the page stays in the
 * memfd's page cache, and KVM's MMU notifier drops the guest's mapping
 * too.  The next access, from the guest through KVM or from any rackvm
 * thread, is a minor fault delivered to the uffd; the fault thread marks
 * the page touched and maps the same page back with UFFDIO_CONTINUE,
 * write-protected where the kernel allows (uffd-wp on shmem), so that
 * KVM does not log a read as a write; a later write takes one more fault
 * (UFFDIO_WRITEPROTECT lifts the protection).
 * Sampled pages the guest did not touch are mapped back (write-protected
 * likewise) when the interval ends, so a revoked page never lingers as
 * a fault the guest pays for intervals later.
 * Page contents are never copied, zeroed or punched: nothing can be lost.
 * Only the faulting thread waits, for that page only.
 *
 * Holes (pages never touched, or punched by the balloon) are not in the
 * page cache: they are not RAM the guest has, so they are never sampled
 * (mincore() each interval) and never faulted in by us.  A hole the guest
 * touches later is a normal fault (we do not register missing mode).
 *
 * Not available (ref_sample_create fails with -ENOTSUP and says why) when
 * the kernel lacks UFFD_FEATURE_MINOR_SHMEM, userfaultfd is forbidden, or
 * guest RAM is hugetlbfs (revoking would be per 2 MiB page).
 *
 * The userfaultfd is guest RAM's one uffd (memory/uffd_ram.h): the
 * sampler only observes minor and write-protect faults there, and their
 * resolution is uffd_ram's default (or, for write-protect faults, the
 * pager's when one runs).  ref_sample_create() makes a uffd of its own;
 * ref_sample_create_on() joins one shared with the pager.
 *
 * Threads: ref_sample_rotate() from one thread (the WSS sampler); the
 * fault threads are uffd_ram's.  Teardown: ref_sample_destroy() detaches
 * from the uffd (and, if it is its own, stops the fault threads and
 * closes it, which unregisters guest RAM and wakes any waiter: its fault
 * then resolves normally); pages left revoked simply fault back in.
 */
#ifndef RACKVM_MEMORY_REF_SAMPLE_H
#define RACKVM_MEMORY_REF_SAMPLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "memory/uffd_ram.h"
#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* ref_sample_rotate()'s @n for "every resident page" (full mode). */
#define REF_SAMPLE_ALL UINT64_MAX

struct ref_sample;

struct ref_sample_result {
	uint64_t population;	/* resident pages the sample was drawn from */
	uint64_t sampled;	/* pages in the sample */
	uint64_t touched;	/* sampled pages touched in the interval */
	uint64_t touched_unwritten; /* of those, not set in @written */
	uint64_t faults;	/* minor faults served (any page) so far */
};

/* 0 if this kernel and process can use minor-fault sampling, else
 * -ENOTSUP / -EPERM with the reason in @err. */
int ref_sample_probe(struct errmsg *err);

int ref_sample_create(const struct guest_mem *mem, uint64_t seed,
		      struct ref_sample **out, struct errmsg *err);
/* The same on a shared uffd for @mem, attached before uffd_ram_start()
 * (or started with minor mode registered already). */
int ref_sample_create_on(struct uffd_ram *uffd, const struct guest_mem *mem,
			 uint64_t seed, struct ref_sample **out,
			 struct errmsg *err);
void ref_sample_destroy(struct ref_sample *rs);

/*
 * Ends the current interval: reports in @res what the sample armed by the
 * previous ref_sample_arm() saw (all zero the first time), ORs the
 * touched sampled pages into @touched (may be NULL), counts those not in
 * @written (may be NULL: none written), then chooses the next sample of
 * @n resident pages (REF_SAMPLE_ALL: all of them).  ref_sample_arm()
 * maps back the last sample's untouched pages and revokes the new one;
 * between the two the caller may pause the vCPUs, because each revoked
 * (or, on older kernels, re-protected) page costs a TLB shootdown of
 * every vCPU in guest mode (KVM's MMU notifier), which a paused vCPU
 * does not need.
 */
int ref_sample_rotate(struct ref_sample *rs, uint64_t n,
		      const uint64_t *written, uint64_t *touched,
		      struct ref_sample_result *res, struct errmsg *err);

int ref_sample_arm(struct ref_sample *rs, struct errmsg *err);

/* True when this kernel cannot hand pages back write-protected: then
 * KVM logs a revoked page as dirty at its next read, and a dirty log
 * running beside the sampler over-counts writes (the estimate of W ∪ R
 * loses the sampled part of R).  See ref_sample.c. */
bool ref_sample_reads_look_written(const struct ref_sample *rs);

/* A fault thread (the first), for CPU accounting (pthread_getcpuclockid). */
pthread_t ref_sample_fault_thread(const struct ref_sample *rs);
/* CPU time spent serving the sampler's faults: the whole fault thread's
 * with a uffd of its own; on a shared one, the time spent on minor and
 * write-protect faults (not on the pager's missing faults). */
uint64_t ref_sample_fault_cpu_ns(const struct ref_sample *rs);

#endif
