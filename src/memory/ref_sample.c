// SPDX-License-Identifier: MIT
#include "memory/ref_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "memory/dirty_log.h"

#define PAGE 4096ull

/* uapi values from Linux 6.3+ that Debian 12's headers predate */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

/* per-page sample state, a byte each, changed with atomics: the fault
 * thread moves ARMED -> TOUCHED, the rotating thread resets */
enum { PAGE_IDLE = 0, PAGE_ARMED = 1, PAGE_TOUCHED = 2 };

struct ref_sample {
	const struct guest_mem *mem;
	uint64_t npages;
	int uffd;
	bool wp;			/* pages come back write-protected */
	int stop_fd;			/* eventfd: the fault thread ends */
	pthread_t thread;
	bool thread_started;
	uint64_t faults;		/* atomic */
	int thread_error;		/* atomic: first error of the thread */

	/* rotating thread only */
	uint8_t *state;			/* npages bytes */
	unsigned char *resident;	/* mincore vector, npages bytes */
	uint32_t *sample;		/* pages armed in this interval */
	uint64_t nsample;
	uint64_t population;
	uint64_t rng;			/* xorshift64* state */
};

static int uffd_with(uint64_t want, uint64_t *got, struct errmsg *err)
{
	struct uffdio_api api = { .api = UFFD_API, .features = want };
	int fd;

	/* no UFFD_USER_MODE_ONLY: the guest's faults come from KVM in the
	 * kernel (get_user_pages), and those are the ones we want */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errmsg_set(err, -errno,
				  "userfaultfd: %s (reference sampling needs it; "
				  "root or vm.unprivileged_userfaultfd=1)",
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

/*
 * Minor faults on shmem are required.  Write-protect on shmem is wanted:
 * KVM marks a page dirty whenever it builds a writable mapping for it,
 * even on a read, so a page we revoked would show up in the dirty log at
 * its next read.  Handing pages back write-protected keeps KVM's mapping
 * read-only until a real write (which then takes a second, WP fault).
 * An API handshake fixes the features for good, so the supported set is
 * asked on a throwaway descriptor first.
 */
static int open_uffd(struct errmsg *err, bool *wp)
{
	uint64_t have = 0, want = UFFD_FEATURE_MINOR_SHMEM;
	int fd = uffd_with(0, &have, err);

	if (fd < 0)
		return fd;
	close(fd);
	if (!(have & UFFD_FEATURE_MINOR_SHMEM))
		return errmsg_set(err, -ENOTSUP,
				  "userfaultfd minor faults on shmem "
				  "(UFFD_FEATURE_MINOR_SHMEM) unsupported by this kernel");
	if (have & UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
		want |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (wp)
		*wp = want & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	return uffd_with(want, NULL, err);
}

int ref_sample_probe(struct errmsg *err)
{
	int fd = open_uffd(err, NULL);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* Maps the page back; on failure (the balloon punched it meanwhile:
 * ENOENT) wakes the waiter so it retries as an ordinary fault.  The
 * faulting thread must never be left waiting. */
static void resolve(struct ref_sample *rs, uint64_t addr, bool wp_fault)
{
	struct uffdio_continue cont = {
		.range = { .start = addr, .len = PAGE },
		.mode = rs->wp ? UFFDIO_CONTINUE_MODE_WP : 0,
	};
	struct uffdio_writeprotect unprotect = {
		.range = { .start = addr, .len = PAGE }, .mode = 0,
	};
	struct uffdio_range wake = { .start = addr, .len = PAGE };

	for (int tries = 0; tries < 8; tries++) {
		int ret = wp_fault ?
			  ioctl(rs->uffd, UFFDIO_WRITEPROTECT, &unprotect) :
			  ioctl(rs->uffd, UFFDIO_CONTINUE, &cont);

		if (ret == 0 || (!wp_fault && errno == EEXIST))
			return;	/* EEXIST: someone mapped it already */
		if (errno != EAGAIN && errno != EINTR)
			break;
	}
	ioctl(rs->uffd, UFFDIO_WAKE, &wake);
}

static void handle_fault(struct ref_sample *rs, const struct uffd_msg *m)
{
	uint64_t addr = m->arg.pagefault.address & ~(PAGE - 1);
	uint64_t base = (uintptr_t)rs->mem->base;
	uint8_t armed = PAGE_ARMED;

	if (addr >= base && addr < base + rs->mem->size)
		__atomic_compare_exchange_n(&rs->state[(addr - base) / PAGE],
					    &armed, PAGE_TOUCHED, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	__atomic_fetch_add(&rs->faults, 1, __ATOMIC_RELAXED);
	resolve(rs, addr, m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP);
}

/* Never touches guest RAM itself: it is what resolves faults on it. */
static void *fault_thread(void *arg)
{
	struct ref_sample *rs = arg;
	struct pollfd fds[2] = {
		{ .fd = rs->uffd, .events = POLLIN },
		{ .fd = rs->stop_fd, .events = POLLIN },
	};
	struct uffd_msg msgs[64];

	pthread_setname_np(pthread_self(), "wss-faults");
	for (;;) {
		ssize_t n;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			break;
		n = read(rs->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			__atomic_store_n(&rs->thread_error, -errno,
					 __ATOMIC_RELAXED);
			break;
		}
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(rs, &msgs[i]);
	}
	return NULL;
}

pthread_t ref_sample_fault_thread(const struct ref_sample *rs)
{
	return rs->thread;
}

bool ref_sample_reads_look_written(const struct ref_sample *rs)
{
	return !rs->wp;
}

int ref_sample_create(const struct guest_mem *mem, uint64_t seed,
		      struct ref_sample **out, struct errmsg *err)
{
	struct uffdio_register reg;
	struct ref_sample *rs;
	int ret;

	if (mem->hugetlb)
		return errmsg_set(err, -ENOTSUP,
				  "reference sampling needs 4 KiB guest pages (not --hugetlb)");
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	rs->mem = mem;
	rs->npages = mem->size / PAGE;
	rs->uffd = -1;
	rs->stop_fd = -1;
	rs->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	rs->state = calloc(rs->npages, 1);
	rs->resident = malloc(rs->npages);
	rs->sample = malloc(rs->npages * sizeof(*rs->sample));
	if (!rs->state || !rs->resident || !rs->sample) {
		ret = errmsg_set(err, -ENOMEM, "reference sampling: out of memory");
		goto fail;
	}
	ret = open_uffd(err, &rs->wp);
	if (ret < 0)
		goto fail;
	rs->uffd = ret;
	reg = (struct uffdio_register){
		.range = { .start = (uintptr_t)mem->base, .len = mem->size },
		.mode = UFFDIO_REGISTER_MODE_MINOR |
			(rs->wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	if (ioctl(rs->uffd, UFFDIO_REGISTER, &reg) < 0) {
		ret = errmsg_set(err, errno == EINVAL ? -ENOTSUP : -errno,
				 "registering guest RAM for minor faults: %s",
				 strerror(errno));
		goto fail;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_CONTINUE))) {
		ret = errmsg_set(err, -ENOTSUP, "UFFDIO_CONTINUE unavailable on guest RAM");
		goto fail;
	}
	rs->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (rs->stop_fd < 0) {
		ret = errmsg_set(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = -pthread_create(&rs->thread, NULL, fault_thread, rs);
	if (ret) {
		errmsg_set(err, ret, "starting the fault thread: %s", strerror(-ret));
		goto fail;
	}
	rs->thread_started = true;
	*out = rs;
	return 0;
fail:
	ref_sample_destroy(rs);
	return ret;
}

void ref_sample_destroy(struct ref_sample *rs)
{
	uint64_t one = 1;

	if (!rs)
		return;
	if (rs->thread_started) {
		if (write(rs->stop_fd, &one, sizeof(one)) < 0) {
			/* an eventfd write of 1 cannot fail here */
		}
		pthread_join(rs->thread, NULL);
	}
	/* closing unregisters RAM and wakes every waiter: their faults
	 * retry and find an ordinary shmem page */
	if (rs->uffd >= 0)
		close(rs->uffd);
	if (rs->stop_fd >= 0)
		close(rs->stop_fd);
	free(rs->state);
	free(rs->resident);
	free(rs->sample);
	free(rs);
}

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, bound) (bound > 0), by rejection: no modulo bias. */
static uint64_t random_below(uint64_t *s, uint64_t bound)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % bound, r;

	do
		r = next_random(s);
	while (r >= limit);
	return r % bound;
}

/*
 * Maps back @count pages from @first that were revoked and not touched.
 * Left revoked they would each cost the guest a fault round trip
 * whenever it next touches them, intervals later, long after the
 * sample that revoked them was counted: a cold region the guest
 * returns to would crawl.  Mapping a page adds a PTE, which needs no
 * MMU-notifier invalidation, so this runs with the vCPUs going.
 * EEXIST (the guest touched it meanwhile) and ENOENT (the balloon
 * punched it) skip that page.
 */
static void restore_run(struct ref_sample *rs, uint64_t first, uint64_t count)
{
	uint64_t base = (uintptr_t)rs->mem->base;

	while (count) {
		struct uffdio_continue cont = {
			.range = { .start = base + first * PAGE,
				   .len = count * PAGE },
			.mode = rs->wp ? UFFDIO_CONTINUE_MODE_WP : 0,
		};
		uint64_t done;

		if (ioctl(rs->uffd, UFFDIO_CONTINUE, &cont) == 0)
			return;
		if (errno == EAGAIN || errno == EINTR)
			done = cont.mapped > 0 ? (uint64_t)cont.mapped / PAGE : 0;
		else if (errno == EEXIST || errno == ENOENT)
			done = (cont.mapped > 0 ? (uint64_t)cont.mapped / PAGE : 0) + 1;
		else
			return;	/* the page just faults through us later */
		if (done > count)
			done = count;
		first += done;
		count -= done;
	}
}

static void collect(struct ref_sample *rs, const uint64_t *written,
		    uint64_t *touched, struct ref_sample_result *res)
{
	uint64_t run_first = 0, run_len = 0;

	res->population = rs->population;
	res->sampled = rs->nsample;
	for (uint64_t i = 0; i < rs->nsample; i++) {
		uint32_t p = rs->sample[i];

		if (__atomic_exchange_n(&rs->state[p], PAGE_IDLE,
					__ATOMIC_RELAXED) != PAGE_TOUCHED) {
			/* the sample is in page order: merge neighbours */
			if (run_len && run_first + run_len == p) {
				run_len++;
			} else {
				restore_run(rs, run_first, run_len);
				run_first = p;
				run_len = 1;
			}
			continue;
		}
		res->touched++;
		if (!written || !bitmap_test(written, p))
			res->touched_unwritten++;
		if (touched)
			bitmap_set(touched, p);
	}
	restore_run(rs, run_first, run_len);
	rs->nsample = 0;
}

/* Selection sampling (Knuth's algorithm S): exactly n of the resident
 * pages, each subset equally likely, in page order, one pass. */
static void choose(struct ref_sample *rs, uint64_t n)
{
	uint64_t seen = 0;

	for (uint64_t p = 0; p < rs->npages && rs->nsample < n; p++) {
		if (!(rs->resident[p] & 1))
			continue;
		if (random_below(&rs->rng, rs->population - seen) <
		    n - rs->nsample)
			rs->sample[rs->nsample++] = (uint32_t)p;
		seen++;
	}
}

int ref_sample_arm(struct ref_sample *rs, struct errmsg *err)
{
	bool all = rs->nsample && rs->nsample == rs->population;
	uint8_t *base = rs->mem->base;

	for (uint64_t i = 0; i < rs->nsample; i++)
		__atomic_store_n(&rs->state[rs->sample[i]], PAGE_ARMED,
				 __ATOMIC_RELAXED);
	/* MADV_DONTNEED on a shared shmem mapping: PTEs go, pages stay
	 * (dirty bits move to the page), no content is lost */
	if (all) {
		if (madvise(base, rs->mem->size, MADV_DONTNEED) < 0)
			return errmsg_set(err, -errno, "madvise: %s", strerror(errno));
		return 0;
	}
	for (uint64_t i = 0; i < rs->nsample; i++)
		if (madvise(base + (uint64_t)rs->sample[i] * PAGE, PAGE,
			    MADV_DONTNEED) < 0)
			return errmsg_set(err, -errno, "madvise: %s", strerror(errno));
	return 0;
}

int ref_sample_rotate(struct ref_sample *rs, uint64_t n,
		      const uint64_t *written, uint64_t *touched,
		      struct ref_sample_result *res, struct errmsg *err)
{
	int thread_error = __atomic_load_n(&rs->thread_error, __ATOMIC_RELAXED);

	memset(res, 0, sizeof(*res));
	collect(rs, written, touched, res);
	res->faults = __atomic_load_n(&rs->faults, __ATOMIC_RELAXED);
	if (thread_error)
		return errmsg_set(err, thread_error, "userfaultfd read: %s",
				  strerror(-thread_error));

	/* which pages are RAM the guest has: page cache residency, holes
	 * (balloon, never touched) excluded */
	if (mincore(rs->mem->base, rs->mem->size, rs->resident) < 0)
		return errmsg_set(err, -errno, "mincore: %s", strerror(errno));
	rs->population = 0;
	for (uint64_t p = 0; p < rs->npages; p++)
		rs->population += rs->resident[p] & 1;
	if (n > rs->population)
		n = rs->population;
	choose(rs, n);
	return 0;
}
