// SPDX-License-Identifier: MIT
/*
 * Setting up guest RAM's userfaultfd: what the kernel can do (asked on
 * throwaway descriptors, so that the real one negotiates only what it
 * has), create and destroy, the users attaching and detaching, and the
 * start, which registers guest RAM once with the modes the users need
 * and starts the fault threads (uffd_ram_fault.c); plus the queries.
 *
 * Attach, detach and start take users_lock for writing: attach and
 * detach may come from any thread at any time, and a fault thread
 * holds the lock for reading while it calls a user.  Start runs once,
 * after the users attached: a second start fails.
 */
#include "memory/uffd_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "memory/uffd_ram_internal.h"
#include "util/full_io.h"
#include "util/page.h"

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
	if (ftruncate(memfd, PAGE_SIZE) || pwrite_full(memfd, &one, 1, 0))
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

/* Before the start, the feature the kernel agreed to; after it, the
 * ioctl the registration offers. */
bool uffd_ram_has_poison(const struct uffd_ram *u)
{
	if (u->fence_only)
		return false;
	if (u->started)
		return u->ioctls & (1ull << _UFFDIO_POISON);
	return u->features & UFFD_FEATURE_POISON;
}

enum uffd_refusal uffd_ram_refusal(const struct uffd_ram *u)
{
	return uffd_ram_has_poison(u) ? UFFD_REFUSE_POISON : UFFD_REFUSE_FENCE;
}

void uffd_ram_use_fence(struct uffd_ram *u)
{
	u->fence_only = true;
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
	u->fence_fd = -1;
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
	/* made now, not when a page is lost: refusing must not fail for
	 * want of a descriptor */
	u->fence_fd = memfd_create("rackvm-fence", MFD_CLOEXEC);
	if (u->fence_fd < 0) {
		ret = errmsg_set(err, -errno, "memfd_create: %s", strerror(errno));
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
	if (u->fence_fd >= 0)
		close(u->fence_fd);
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
		ret = -pthread_create(&u->threads[i], NULL, uffd_ram_fault_thread, u);
		if (ret)
			return errmsg_set(err, ret, "starting fault thread %u: %s",
					  i, strerror(-ret));
		u->threads_started++;
	}
	return 0;
}
