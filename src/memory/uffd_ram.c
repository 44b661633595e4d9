// SPDX-License-Identifier: MIT
#include "memory/uffd_ram.h"
#include "util/page.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memory/uffd_ram_internal.h"

static int uffd_open(uint64_t want, uint64_t *got, struct errmsg *err)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	int fd;

	/* no UFFD_USER_MODE_ONLY: the guest's faults come from KVM in the
	 * kernel (get_user_pages), and those are the ones we want */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errmsg_set(err, -errno,
				  "userfaultfd: %s (root or vm.unprivileged_userfaultfd=1)",
				  strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int ret = -errno;

		close(fd);
		return errmsg_set(err, ret, "UFFDIO_API: %s", strerror(-ret));
	}
	if (got)
		*got = api.features;
	return fd;
}

/* An API handshake fixes the features for good, so the supported set
 * is asked on a throwaway descriptor first. */
static int supported_features(uint64_t *have, struct errmsg *err)
{
	int fd = uffd_open(0, have, err);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int modes_supported(uint64_t have, unsigned modes, struct errmsg *err)
{
	if ((modes & UFFD_RAM_MINOR) && !(have & UFFD_FEATURE_MINOR_SHMEM))
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd minor faults on shmem "
				  "(UFFD_FEATURE_MINOR_SHMEM) unsupported by this kernel");
	if ((modes & UFFD_RAM_WP) && !(have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM))
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd write-protect on shmem "
				  "(UFFD_FEATURE_WP_HUGETLBFS_SHMEM, Linux 5.19+) "
				  "unsupported by this kernel");
	if ((modes & UFFD_RAM_MISSING) && !(have & UFFD_FEATURE_MISSING_SHMEM))
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd missing faults on shmem unsupported by this kernel");
	return 0;
}

/*
 * Whether UFFDIO_CONTINUE can map a page write-protected in one step
 * (UFFDIO_CONTINUE_MODE_WP, Linux 6.5): no feature bit says so, and
 * kernels before it refuse the mode with EINVAL, so it is tried on one
 * page of a scratch memfd.
 */
static bool probe_continue_wp(void)
{
	uint64_t want = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	uint64_t got = 0;
	static const uint8_t one = 1;
	bool works = false;
	void *map = MAP_FAILED;
	int memfd, uffd = -1;

	memfd = memfd_create("rackvm-uffd-probe", MFD_CLOEXEC);
	if (memfd < 0)
		return false;
	if (ftruncate(memfd, PAGE_SIZE) || pwrite(memfd, &one, 1, 0) != 1)
		goto out;
	map = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED)
		goto out;
	uffd = uffd_open(want, &got, NULL);
	if (uffd < 0 || (got & want) != want)
		goto out;
	{
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)map, .len = PAGE_SIZE },
			.mode = UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP,
		};
		struct uffdio_continue c = {
			.range = { .start = (uintptr_t)map, .len = PAGE_SIZE },
			.mode = UFFDIO_CONTINUE_MODE_WP,
		};

		works = ioctl(uffd, UFFDIO_REGISTER, &reg) == 0 &&
			ioctl(uffd, UFFDIO_CONTINUE, &c) == 0;
	}
out:
	if (uffd >= 0)
		close(uffd);
	if (map != MAP_FAILED)
		munmap(map, PAGE_SIZE);
	close(memfd);
	return works;
}

int uffd_ram_probe(unsigned modes, struct errmsg *err)
{
	uint64_t have = 0;
	int ret = supported_features(&have, err);

	return ret ? ret : modes_supported(have, modes, err);
}

bool uffd_ram_has_wp(const struct uffd_ram *u)
{
	if (u->started)
		return u->registered & UFFD_RAM_WP;
	return u->features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
}

bool uffd_ram_continue_protects(const struct uffd_ram *u)
{
	return u->continue_wp;
}

void uffd_ram_use_two_step_continue(struct uffd_ram *u)
{
	u->continue_wp = false;
}

bool uffd_ram_has_poison(const struct uffd_ram *u)
{
	return u->ioctls & (1ull << _UFFDIO_POISON);
}

int uffd_ram_error(const struct uffd_ram *u)
{
	return __atomic_load_n(&u->thread_error, __ATOMIC_RELAXED);
}

unsigned uffd_ram_nthreads(const struct uffd_ram *u)
{
	return u->threads_started;
}

pthread_t uffd_ram_thread(const struct uffd_ram *u, unsigned i)
{
	return u->threads[i < u->threads_started ? i : 0];
}

uint64_t uffd_ram_cpu_ns(const struct uffd_ram *u, enum uffd_fault_kind kind)
{
	return __atomic_load_n(&u->cpu_ns[kind], __ATOMIC_RELAXED);
}

uint64_t uffd_ram_faults(const struct uffd_ram *u, enum uffd_fault_kind kind)
{
	return __atomic_load_n(&u->faults[kind], __ATOMIC_RELAXED);
}

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

/* --- dispatch ------------------------------------------------------------- */

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

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
	struct timespec ts;
	uint64_t now, last;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
static void *fault_thread(void *arg)
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
		t0 = thread_cpu_ns();
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
				   thread_cpu_ns() - t0, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* --- lifetime ------------------------------------------------------------- */

int uffd_ram_create(const struct guest_mem *mem, unsigned nthreads,
		    struct uffd_ram **out, struct errmsg *err)
{
	uint64_t have = 0, want;
	pthread_rwlockattr_t attr;
	struct uffd_ram *u;
	int ret;

	if (mem->hugetlb)
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd on guest RAM needs 4 KiB pages (not --hugetlb)");
	if (nthreads < 1 || nthreads > UFFD_RAM_MAX_THREADS)
		return errmsg_set(err, -EINVAL, "fault threads: give 1 to %d",
				  UFFD_RAM_MAX_THREADS);
	ret = supported_features(&have, err);
	if (ret)
		return ret;
	u = calloc(1, sizeof(*u));
	if (!u)
		return errmsg_set(err, -ENOMEM, "userfaultfd: out of memory");
	u->mem = mem;
	u->npages = mem->size / PAGE_SIZE;
	u->nthreads = nthreads;
	u->stop_fd = -1;
	/* writers first: a detach must not wait behind a stream of faults */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&u->users_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	want = have & (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |
		       UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_POISON);
	u->uffd = uffd_open(want, &u->features, err);
	if (u->uffd < 0) {
		ret = u->uffd;
		goto fail;
	}
	u->continue_wp = probe_continue_wp();
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (u->stop_fd < 0) {
		ret = errmsg_set(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = u;
	return 0;
fail:
	uffd_ram_destroy(u);
	return ret;
}

void uffd_ram_destroy(void *obj)
{
	struct uffd_ram *u = obj;
	uint64_t one = 1;

	if (!u)
		return;
	if (u->threads_started &&
	    write(u->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write of 1 cannot fail here */
	}
	for (unsigned i = 0; i < u->threads_started; i++)
		pthread_join(u->threads[i], NULL);
	/* closing unregisters RAM and wakes every waiter: their faults
	 * retry as ordinary ones */
	if (u->uffd >= 0)
		close(u->uffd);
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	pthread_rwlock_destroy(&u->users_lock);
	free(u);
}

int uffd_ram_attach(struct uffd_ram *u, const struct uffd_ram_user *user,
		    struct errmsg *err)
{
	int ret = modes_supported(u->features, user->modes, err);

	if (ret)
		return ret;
	pthread_rwlock_wrlock(&u->users_lock);
	if (u->nusers == UFFD_RAM_MAX_USERS)
		ret = errmsg_set(err, -EBUSY, "userfaultfd: too many users");
	else if (u->started && (user->modes & ~u->registered))
		ret = errmsg_set(err, -EBUSY,
				 "userfaultfd on guest RAM already registered "
				 "without the modes this needs");
	for (unsigned i = 0; !ret && i < u->nusers; i++)
		if ((user->missing && u->users[i].missing) ||
		    (user->minor && u->users[i].minor) ||
		    (user->wp && u->users[i].wp))
			ret = errmsg_set(err, -EBUSY,
					 "userfaultfd: two resolvers for one fault kind");
	if (!ret)
		u->users[u->nusers++] = *user;
	pthread_rwlock_unlock(&u->users_lock);
	return ret;
}

void uffd_ram_detach(struct uffd_ram *u, void *opaque)
{
	pthread_rwlock_wrlock(&u->users_lock);
	for (unsigned i = 0; i < u->nusers; i++) {
		if (u->users[i].opaque != opaque)
			continue;
		memmove(&u->users[i], &u->users[i + 1],
			(u->nusers - i - 1) * sizeof(u->users[0]));
		u->nusers--;
		break;
	}
	pthread_rwlock_unlock(&u->users_lock);
}

static int register_ram(struct uffd_ram *u, unsigned modes,
			struct errmsg *err)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)u->mem->base,
			   .len = u->mem->size },
		.mode = ((modes & UFFD_RAM_MISSING) ? UFFDIO_REGISTER_MODE_MISSING : 0) |
			((modes & UFFD_RAM_MINOR) ? UFFDIO_REGISTER_MODE_MINOR : 0) |
			((modes & UFFD_RAM_WP) ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	uint64_t need = 1ull << _UFFDIO_WAKE;

	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg) < 0)
		return errmsg_set(err, errno == EINVAL ? -ENOTSUP : -errno,
				  "registering guest RAM with userfaultfd: %s",
				  strerror(errno));
	if (modes & UFFD_RAM_MISSING)
		need |= (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_ZEROPAGE);
	if (modes & UFFD_RAM_MINOR)
		need |= 1ull << _UFFDIO_CONTINUE;
	if (modes & UFFD_RAM_WP)
		need |= 1ull << _UFFDIO_WRITEPROTECT;
	if ((reg.ioctls & need) != need)
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd ioctls missing on guest RAM (have %#llx, need %#llx)",
				  (unsigned long long)reg.ioctls,
				  (unsigned long long)need);
	u->ioctls = reg.ioctls;
	if (!(u->features & UFFD_FEATURE_POISON))
		u->ioctls &= ~(1ull << _UFFDIO_POISON);
	return 0;
}

int uffd_ram_start(struct uffd_ram *u, struct errmsg *err)
{
	unsigned modes = 0;
	int ret;

	pthread_rwlock_wrlock(&u->users_lock);
	for (unsigned i = 0; i < u->nusers; i++)
		modes |= u->users[i].modes;
	if (u->started)
		ret = errmsg_set(err, -EINVAL, "userfaultfd already started");
	else if (!modes)
		ret = errmsg_set(err, -EINVAL, "userfaultfd: nobody needs it");
	else
		ret = register_ram(u, modes, err);
	if (!ret) {
		u->registered = modes;
		u->started = true;
	}
	pthread_rwlock_unlock(&u->users_lock);
	if (ret)
		return ret;
	for (unsigned i = 0; i < u->nthreads; i++) {
		ret = -pthread_create(&u->threads[i], NULL, fault_thread, u);
		if (ret)
			return errmsg_set(err, ret, "starting fault thread %u: %s",
					  i, strerror(-ret));
		u->threads_started++;
	}
	return 0;
}
