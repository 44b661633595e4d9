/* SPDX-License-Identifier: MIT */
/*
 * The shared userfaultfd's insides, for src/memory/uffd_ram*.c only
 * (uffd_ram.h is the API and its contract with the users).
 *
 * Files, and the threads that run them:
 *   uffd_ram.c        probing the kernel, create/destroy, attaching users,
 *                     registering guest RAM and starting the fault
 *                     threads; the queries; any thread
 *   uffd_ram_ops.c    the page operations (UFFDIO_COPY, ZEROPAGE,
 *                     CONTINUE, WRITEPROTECT, WAKE, POISON) with their
 *                     retries, and the refusal of a lost page (poison
 *                     or fence); any thread, mostly the users' resolvers
 *   uffd_ram_fault.c  the fault threads: read one message, tell the
 *                     observers, call the resolver or the default; and
 *                     the once-a-second wake of every waiter
 *
 * What protects what in struct uffd_ram:
 *   - set by create, read-only after: mem, npages, uffd, features,
 *     nthreads, stop_fd; and by start, before the fault threads run:
 *     ioctls, registered, threads[], threads_started;
 *   - continue_wp: set by create; only tests clear it, through
 *     uffd_ram_use_two_step_continue(); fence_only likewise, set by
 *     tests through uffd_ram_use_fence(), fence_fd by create;
 *   - atomic: thread_error, cpu_ns[], faults[], last_sweep_ns;
 *   - users_lock: users[], nusers, started; held for reading by a fault
 *     thread while a callback runs, for writing by attach, detach and
 *     start.
 * The fault threads never touch guest RAM through the mapping: they are
 * what resolves faults on it.
 *
 * What the files share is declared here: uffd_ram_fault_thread() for the
 * start, and in_ram(), a one-line check, static inline.
 */
#ifndef RACKVM_MEMORY_UFFD_RAM_INTERNAL_H
#define RACKVM_MEMORY_UFFD_RAM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include <linux/userfaultfd.h>

#include "memory/uffd_ram.h"

/* uapi values from Linux 6.3+ / 6.6+ that Debian 12's headers predate */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define _UFFDIO_POISON 0x08
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

struct uffd_ram {
	const struct guest_mem *mem;
	uint64_t npages;
	int uffd;
	uint64_t features;		/* negotiated */
	uint64_t ioctls;		/* available on the registered range */
	bool continue_wp;		/* UFFDIO_CONTINUE_MODE_WP works */
	bool fence_only;		/* tests: refuse by fence, not poison */
	int fence_fd;			/* an empty memfd: what a fence maps */
	unsigned registered;		/* UFFD_RAM_* once started */
	unsigned nthreads;
	pthread_t threads[UFFD_RAM_MAX_THREADS];
	unsigned threads_started;
	int stop_fd;			/* eventfd: the fault threads end */
	int thread_error;		/* atomic: first read or resolve error */
	uint64_t cpu_ns[UFFD_FAULT_KINDS];	/* atomic */
	uint64_t faults[UFFD_FAULT_KINDS];	/* atomic */
	uint64_t last_sweep_ns;		/* atomic: see sweep_waiters() */

	/* fault threads read the users under the read lock; attach and
	 * detach take the write lock, so a detached user's callbacks are
	 * over when detach returns */
	pthread_rwlock_t users_lock;
	struct uffd_ram_user users[UFFD_RAM_MAX_USERS];
	unsigned nusers;
	bool started;			/* under users_lock */
};

/* Pages [page, page + count) are guest RAM, and there is at least one. */
static inline bool in_ram(const struct uffd_ram *u, uint64_t page,
			  uint64_t count)
{
	return count && page < u->npages && count <= u->npages - page;
}

/* uffd_ram_fault.c: one of the fault threads, for pthread_create(). */
void *uffd_ram_fault_thread(void *arg);

#endif
