// SPDX-License-Identifier: MIT
/*
 * The page operations on guest RAM's userfaultfd (uffd_ram.h), callable
 * from any thread: mostly the users' resolvers on the fault threads, and
 * the users' own threads (the pager's evictor, the sampler).  They take
 * no lock of ours: what they read of struct uffd_ram is fixed once the
 * uffd started (continue_wp aside, which only tests change).
 *
 * The kernel answers -EAGAIN while the mm changes under an operation,
 * after doing part of it: the operations go on from where it got to, up
 * to UFFD_RETRIES times.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "memory/uffd_ram_internal.h"
#include "util/page.h"

/* How often a page operation retries the kernel's -EAGAIN (the mm is
 * changing under it) before it gives up. */
#define UFFD_RETRIES 64

static uint64_t page_addr(const struct uffd_ram *u, uint64_t page)
{
	return (uintptr_t)u->mem->base + page * PAGE_SIZE;
}

/* Partial progress an interrupted ioctl reports (negative: none). */
static uint64_t pages_done(int64_t bytes, uint64_t count)
{
	uint64_t done = bytes > 0 ? (uint64_t)bytes / PAGE_SIZE : 0;

	return done < count ? done : count;
}

int uffd_ram_copy(struct uffd_ram *u, uint64_t page, uint64_t count,
		  const void *src)
{
	const uint8_t *from = src;

	if (!in_ram(u, page, count))
		return -EINVAL;
	for (int tries = 0; count && tries < UFFD_RETRIES; tries++) {
		struct uffdio_copy c = {
			.dst = page_addr(u, page), .src = (uintptr_t)from,
			.len = count * PAGE_SIZE,
		};
		uint64_t done;

		if (ioctl(u->uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		done = pages_done(c.copy, count);
		page += done;
		count -= done;
		from += done * PAGE_SIZE;
	}
	return count ? -EAGAIN : 0;
}

int uffd_ram_zeropage(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	if (!in_ram(u, page, count))
		return -EINVAL;
	for (int tries = 0; count && tries < UFFD_RETRIES; tries++) {
		struct uffdio_zeropage z = {
			.range = { .start = page_addr(u, page),
				   .len = count * PAGE_SIZE },
		};
		uint64_t done;

		if (ioctl(u->uffd, UFFDIO_ZEROPAGE, &z) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		done = pages_done(z.zeropage, count);
		page += done;
		count -= done;
	}
	return count ? -EAGAIN : 0;
}

/*
 * Without UFFDIO_CONTINUE_MODE_WP a page is mapped first and protected
 * after (its faulting threads are woken only then): a write by another
 * thread in between is not caught.  That costs the sampler at most a read
 * logged as a write; users whose correctness rests on the protection
 * resolve minor faults themselves, under a lock of their own (uffd_ram.h).
 */
int uffd_ram_continue(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	bool wp = u->registered & UFFD_RAM_WP;
	bool wp_after = wp && !u->continue_wp;
	uint64_t first = page, total = count;
	int tries = 0, ret = 0;

	if (!in_ram(u, page, count))
		return -EINVAL;
	while (count) {
		struct uffdio_continue c = {
			.range = { .start = page_addr(u, page),
				   .len = count * PAGE_SIZE },
			.mode = wp_after ? UFFDIO_CONTINUE_MODE_DONTWAKE :
				wp ? UFFDIO_CONTINUE_MODE_WP : 0,
		};
		uint64_t done = count;
		int e = 0;

		if (ioctl(u->uffd, UFFDIO_CONTINUE, &c) < 0) {
			e = errno;
			done = pages_done(c.mapped, count);
		}
		if (wp_after && done) {
			int r = uffd_ram_protect(u, page, done, true);

			ret = ret ? ret : r;
		}
		/* EEXIST: mapped meanwhile; not in the memfd (punched, a
		 * hole): ENOENT, EFAULT since Linux 6.6: skip that page */
		if (e == EEXIST || e == ENOENT || e == EFAULT) {
			done++;
		} else if (e && ((e != EAGAIN && e != EINTR) ||
				 ++tries >= UFFD_RETRIES)) {
			ret = -e;
			break;
		}
		if (done > count)
			done = count;
		page += done;
		count -= done;
	}
	if (wp_after)
		uffd_ram_wake(u, first, total);
	return ret;
}

int uffd_ram_protect(struct uffd_ram *u, uint64_t page, uint64_t count,
		     bool protect)
{
	struct uffdio_writeprotect w = {
		.range = { .start = page_addr(u, page), .len = count * PAGE_SIZE },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (!in_ram(u, page, count))
		return -EINVAL;
	for (int tries = 0; tries < UFFD_RETRIES; tries++) {
		if (ioctl(u->uffd, UFFDIO_WRITEPROTECT, &w) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

int uffd_ram_wake(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	struct uffdio_range r = { .start = page_addr(u, page),
				  .len = count * PAGE_SIZE };

	if (!in_ram(u, page, count))
		return -EINVAL;
	return ioctl(u->uffd, UFFDIO_WAKE, &r) ? -errno : 0;
}

int uffd_ram_poison(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	if (!in_ram(u, page, count))
		return -EINVAL;
	if (!uffd_ram_has_poison(u))
		return -ENOTSUP;
	for (int tries = 0; count && tries < UFFD_RETRIES; tries++) {
		struct uffdio_poison p = {
			.range = { .start = page_addr(u, page),
				   .len = count * PAGE_SIZE },
		};
		uint64_t done;

		if (ioctl(u->uffd, UFFDIO_POISON, &p) == 0)
			return 0;
		/* poison goes only where no entry is, and a write-protect
		 * marker (left by a protected page being punched) is one:
		 * lifting the protection clears it */
		if (errno == EEXIST && !tries &&
		    (u->registered & UFFD_RAM_WP) &&
		    !uffd_ram_protect(u, page, count, false))
			continue;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		done = pages_done(p.updated, count);
		page += done;
		count -= done;
	}
	return count ? -EAGAIN : 0;
}

/*
 * The fence (uffd_ram.h, enum uffd_refusal): the pages' part of guest
 * RAM's mapping becomes a shared mapping of an empty memfd, in which
 * every page lies beyond the end of the file.  MAP_FIXED swaps the
 * mappings under the mm's write lock, and a thread waiting in a
 * userfaultfd fault holds no lock while it waits, so each waiter is
 * either queued on the uffd before the swap (the wake after it releases
 * it) or faults after it and meets the fence directly: none can wait on
 * past the wake.  A retried access then fails like one on poison: the
 * kernel finds no page and answers SIGBUS (a load or store), EFAULT (a
 * syscall's copy, KVM's get_user_pages).  The memfd behind guest RAM is
 * untouched: only the mapping lost the page.
 */
static int fence(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	void *at = (void *)(uintptr_t)page_addr(u, page);

	if (mmap(at, count * PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, u->fence_fd, 0) == MAP_FAILED)
		return -errno;
	return uffd_ram_wake(u, page, count);
}

int uffd_ram_refuse(struct uffd_ram *u, uint64_t page, uint64_t count)
{
	int ret;

	if (!in_ram(u, page, count))
		return -EINVAL;
	if (uffd_ram_has_poison(u)) {
		ret = uffd_ram_poison(u, page, count);
		/* poisoned already (a fault that came in late): wake it */
		if (ret == -EEXIST && count == 1)
			ret = uffd_ram_wake(u, page, 1);
		if (!ret)
			return 0;
	}
	/* also where poisoning failed: nobody may be left waiting */
	return fence(u, page, count);
}
