// SPDX-License-Identifier: MIT
/*
 * The fault threads of guest RAM's userfaultfd, and the dispatch of
 * each fault to its users (uffd_ram.h says in which order, and what the
 * defaults do).
 *
 * Each thread reads one message at a time, holds users_lock for reading
 * while the observers and the resolver run (so that detach waits for
 * them), and accounts the CPU time it spent per fault kind.  Any thread
 * also wakes every waiter once a second (last_sweep_ns decides which),
 * which bounds what a lost wake-up costs.  uffd_ram_map_back() runs the
 * minor resolver the same way for pages no thread waits for, on its
 * caller's thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "memory/uffd_ram_internal.h"
#include "util/page.h"
#include "util/clock.h"

/* --- dispatch ------------------------------------------------------------- */

/* Keeps the first error resolving a fault for uffd_ram_error(): a fault
 * that cannot be resolved is retried for ever, so its owner must learn
 * of it and end the VM. */
static void note_error(struct uffd_ram *u, int error)
{
	int none = 0;

	if (error && error != -EAGAIN)
		__atomic_compare_exchange_n(&u->thread_error, &none, error,
					    false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
}

/* The defaults must never leave a thread waiting: on failure they wake
 * it, and the fault is retried (and comes back if it still is one). */
static void resolve_default(struct uffd_ram *u, uint64_t page,
			    enum uffd_fault_kind kind)
{
	int ret;

	switch (kind) {
	case UFFD_FAULT_MISSING:
		ret = uffd_ram_zeropage(u, page, 1);
		break;
	case UFFD_FAULT_MINOR:
		/* a page mapped or punched meanwhile is skipped: the wake
		 * lets its thread retry (a punched page: as a missing fault) */
		note_error(u, uffd_ram_continue(u, page, 1));
		uffd_ram_wake(u, page, 1);
		return;
	case UFFD_FAULT_WP:
	default:
		ret = uffd_ram_protect(u, page, 1, false);
		break;
	}
	if (ret && ret != -EEXIST)
		note_error(u, ret);
	if (ret)
		uffd_ram_wake(u, page, 1);
}

static enum uffd_fault_kind fault_kind(const struct uffd_msg *m)
{
	if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
		return UFFD_FAULT_WP;
	if (m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR)
		return UFFD_FAULT_MINOR;
	return UFFD_FAULT_MISSING;
}

static void dispatch(struct uffd_ram *u, const struct uffd_msg *m)
{
	uint64_t addr = m->arg.pagefault.address & ~(PAGE_SIZE - 1);
	uint64_t base = (uintptr_t)u->mem->base;
	enum uffd_fault_kind kind = fault_kind(m);
	const struct uffd_ram_user *resolver = NULL;
	uint64_t page;

	if (addr < base || addr >= base + u->mem->size)
		return;	/* only guest RAM is registered */
	page = (addr - base) / PAGE_SIZE;
	__atomic_fetch_add(&u->faults[kind], 1, __ATOMIC_RELAXED);
	pthread_rwlock_rdlock(&u->users_lock);
	for (unsigned i = 0; i < u->nusers; i++) {
		const struct uffd_ram_user *user = &u->users[i];

		if (user->note && (user->observe & UFFD_OBSERVE(kind)))
			user->note(user->opaque, page, kind);
		if ((kind == UFFD_FAULT_MISSING && user->missing) ||
		    (kind == UFFD_FAULT_MINOR && user->minor) ||
		    (kind == UFFD_FAULT_WP && user->wp))
			resolver = user;
	}
	if (!resolver)
		resolve_default(u, page, kind);
	else if (kind == UFFD_FAULT_MISSING)
		resolver->missing(resolver->opaque, page);
	else if (kind == UFFD_FAULT_MINOR)
		resolver->minor(resolver->opaque, page, true);
	else
		resolver->wp(resolver->opaque, page);
	pthread_rwlock_unlock(&u->users_lock);
}

int uffd_ram_map_back(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	const struct uffd_ram_user *resolver = NULL;
	int ret = 0;

	if (!in_ram(u, page, count))
		return -EINVAL;
	pthread_rwlock_rdlock(&u->users_lock);
	for (unsigned i = 0; i < u->nusers; i++)
		if (u->users[i].minor)
			resolver = &u->users[i];
	if (resolver) {
		for (uint64_t i = 0; i < count; i++)
			resolver->minor(resolver->opaque, page + i, false);
	} else {
		ret = uffd_ram_continue(u, page, count);
	}
	pthread_rwlock_unlock(&u->users_lock);
	return ret;
}

/* --- the fault threads ---------------------------------------------------- */

/*
 * Once a second, every thread waiting on a fault in guest RAM is woken.
 * A woken thread retries its access: one whose page is there goes on,
 * one whose page is not faults again and is resolved anew, so a spurious
 * wake costs one fault.  This bounds what a lost wake-up costs, whether
 * in a resolver's state machine or in the kernel (userfaultfd's
 * write-protection on shmem has had such bugs), to a second's stall
 * instead of a vCPU stuck for ever.
 */
#define SWEEP_NS 1000000000ull

static void sweep_waiters(struct uffd_ram *u)
{
	uint64_t now = monotonic_ns(), last;

	last = __atomic_load_n(&u->last_sweep_ns, __ATOMIC_RELAXED);
	if (now - last < SWEEP_NS ||
	    !__atomic_compare_exchange_n(&u->last_sweep_ns, &last, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	uffd_ram_wake(u, 0, u->npages);
}

/* One message per read: a resolver may block for a while (a fetch from
 * a remote store), and messages it held would wait for it while the
 * other threads idle. */
void *uffd_ram_fault_thread(void *arg)
{
	struct uffd_ram *u = arg;
	struct pollfd fds[2] = {
		{ .fd = u->uffd, .events = POLLIN },
		{ .fd = u->stop_fd, .events = POLLIN },
	};

	pthread_setname_np(pthread_self(), "ram-faults");
	for (;;) {
		struct uffd_msg msg;
		uint64_t t0;
		ssize_t n;

		int ready = poll(fds, 2, (int)(SWEEP_NS / 1000000));

		if (ready < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			break;
		sweep_waiters(u);
		if (!ready)
			continue;
		t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		n = read(u->uffd, &msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;	/* another thread took it */
			__atomic_store_n(&u->thread_error, -errno,
					 __ATOMIC_RELAXED);
			break;
		}
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		dispatch(u, &msg);
		__atomic_fetch_add(&u->cpu_ns[fault_kind(&msg)],
				   clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0, __ATOMIC_RELAXED);
	}
	return NULL;
}
