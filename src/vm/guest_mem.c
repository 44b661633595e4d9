// SPDX-License-Identifier: MIT
#include "vm/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <linux/memfd.h>
#include <unistd.h>

#include "util/page.h"

#define HUGE_2M (2ull << 20)

static void add_region(struct guest_mem *m, uint64_t gpa, uint64_t size,
		       uint64_t offset)
{
	struct guest_region *r = &m->regions[m->nregions++];

	r->gpa = gpa;
	r->size = size;
	r->memfd_offset = offset;
	r->hva = m->base + offset;
}

int guest_mem_init(struct guest_mem *m, uint64_t size, bool hugetlb,
		   struct errmsg *err)
{
	uint64_t align = hugetlb ? HUGE_2M : PAGE_SIZE;
	unsigned flags = MFD_CLOEXEC;
	uint64_t low;
	int ret;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (size < GUEST_MEM_MIN_SIZE || size % align)
		return errmsg_set(err, -EINVAL,
				  "guest memory size %llu is not a multiple of %llu bytes of at least 2 MiB",
				  (unsigned long long)size,
				  (unsigned long long)align);
	if (hugetlb)
		flags |= MFD_HUGETLB | MFD_HUGE_2MB;
	m->memfd = memfd_create("rackvm-guest-ram", flags);
	if (m->memfd < 0)
		return errmsg_set(err, -errno, "memfd_create%s: %s",
				  hugetlb ? " (hugetlb)" : "", strerror(errno));
	if (ftruncate(m->memfd, (off_t)size) < 0) {
		ret = errmsg_set(err, -errno, "sizing guest memory to %llu bytes: %s",
				 (unsigned long long)size, strerror(errno));
		goto fail;
	}
	/* MAP_NORESERVE: guest RAM is overcommitted by design; pages are
	 * allocated when the guest first touches them. */
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, m->memfd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		ret = errmsg_set(err, -errno, "mapping guest memory: %s",
				 strerror(errno));
		goto fail;
	}
	m->size = size;
	m->hugetlb = hugetlb;

	low = size < GUEST_MMIO_HOLE_START ? size : GUEST_MMIO_HOLE_START;
	add_region(m, 0, low, 0);
	if (size > low)
		add_region(m, GUEST_MMIO_HOLE_END, size - low, low);
	return 0;
fail:
	close(m->memfd);
	m->memfd = -1;
	return ret;
}

void guest_mem_note_device_write(const struct guest_mem *m, const void *hva,
				 uint64_t len)
{
	uintptr_t at = (uintptr_t)hva, base = (uintptr_t)m->base;
	uint64_t off, last;

	/* Called for every buffer a device fills: when no migration
	 * tracks writes this is one relaxed load.  The acquire fence then
	 * orders the bitmap accesses after the flag was seen set. */
	if (!len || !__atomic_load_n(&m->device_tracking, __ATOMIC_RELAXED))
		return;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* Integers, not pointer arithmetic: a pointer outside the mapping
	 * must be refused before any page index exists. */
	if (at < base || at - base >= m->size || len > m->size - (at - base))
		return;		/* not guest RAM: nothing to migrate */
	off = at - base;
	last = (off + len - 1) / PAGE_SIZE;
	for (uint64_t p = off / PAGE_SIZE; p <= last; p++)
		__atomic_fetch_or(&m->device_written[p / 64], 1ull << (p % 64),
				  __ATOMIC_RELAXED);
}

void guest_mem_destroy(struct guest_mem *m)
{
	free(m->device_written);
	m->device_written = NULL;
	if (m->base)
		munmap(m->base, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->base = NULL;
	m->memfd = -1;
	m->nregions = 0;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->regions[i];

		/* written so that no sum can overflow */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa)) {
			if (gpa - r->gpa == r->size && len == 0)
				continue; /* one past the end is not RAM */
			return r->hva + (gpa - r->gpa);
		}
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src,
		    uint64_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst,
		   uint64_t len)
{
	const void *src = guest_mem_ptr(m, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_top(const struct guest_mem *m)
{
	const struct guest_region *r = &m->regions[m->nregions - 1];

	return r->gpa + r->size;
}

uint64_t guest_mem_low_top(const struct guest_mem *m)
{
	return m->regions[0].size;
}

uint64_t guest_mem_host_bytes(const struct guest_mem *m)
{
	struct stat st;

	if (fstat(m->memfd, &st))
		return 0;
	return (uint64_t)st.st_blocks * 512;
}
