// SPDX-License-Identifier: MIT
/*
 * Guest RAM filled on demand from a snapshot file (lazy_ram.h).
 */
#include "migrate/lazy_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/uffd_ram.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"

#define LAZY_RAM_THREADS 2

struct lazy_ram {
	struct vm *vm;
	struct uffd_ram *uffd;
	int fd;
	char path[256];
	uint64_t npages;
	uint64_t *offsets;	/* per page: its bytes in the file, 0: zero */
	uint64_t read;		/* atomics: counts for reports */
	uint64_t zero;
};

static void lost_page(struct lazy_ram *l, uint64_t page, int ret)
{
	uffd_ram_refuse(l->uffd, page, 1);
	vm_request_exit(l->vm, VM_EXIT_HOST_ERROR, 0, 0, "guest page %llu "
			"cannot be read from the snapshot %s: %s",
			(unsigned long long)page, l->path, strerror(-ret));
}

/* On a fault thread: the page's first touch. */
static void on_missing(void *opaque, uint64_t page)
{
	struct lazy_ram *l = opaque;
	uint8_t data[PAGE_SIZE];
	int ret;

	if (page >= l->npages)		/* cannot be: the uffd covers RAM */
		return;
	if (!l->offsets[page]) {
		ret = uffd_ram_zeropage(l->uffd, page, 1);
		__atomic_add_fetch(&l->zero, 1, __ATOMIC_RELAXED);
	} else {
		ret = pread_full(l->fd, data, PAGE_SIZE, l->offsets[page]);
		if (ret) {
			lost_page(l, page, ret);
			return;
		}
		ret = uffd_ram_copy(l->uffd, page, 1, data);
		__atomic_add_fetch(&l->read, 1, __ATOMIC_RELAXED);
	}
	/* another fault thread filled it first: its copy woke everyone */
	if (ret == -EEXIST)
		ret = uffd_ram_wake(l->uffd, page, 1);
	if (ret)
		lost_page(l, page, ret);
}

int lazy_ram_create(struct vm *vm, int fd, const char *path,
		    struct lazy_ram **out, struct errmsg *err)
{
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING, .missing = on_missing,
	};
	struct lazy_ram *l = calloc(1, sizeof(*l));
	int ret;

	*out = NULL;
	if (!l)
		return errmsg_set(err, -ENOMEM, "out of memory");
	l->vm = vm;
	l->fd = -1;
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->npages = vm->mem.size / PAGE_SIZE;
	l->offsets = calloc(l->npages ? l->npages : 1, sizeof(*l->offsets));
	if (!l->offsets) {
		lazy_ram_destroy(l);
		return errmsg_set(err, -ENOMEM, "out of memory for the index "
				  "of %llu pages", (unsigned long long)l->npages);
	}
	l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (l->fd < 0) {
		ret = -errno;
		lazy_ram_destroy(l);
		return errmsg_set(err, ret, "dup: %s", strerror(-ret));
	}
	ret = uffd_ram_create(&vm->mem, LAZY_RAM_THREADS, &l->uffd, err);
	user.opaque = l;
	if (!ret)
		ret = uffd_ram_attach(l->uffd, &user, err);
	if (ret) {
		lazy_ram_destroy(l);
		return ret;
	}
	*out = l;
	return 0;
}

void lazy_ram_set(struct lazy_ram *l, uint64_t page, uint64_t offset)
{
	if (page < l->npages)
		l->offsets[page] = offset;
}

int lazy_ram_start(struct lazy_ram *l, struct errmsg *err)
{
	return uffd_ram_start(l->uffd, err);
}

void lazy_ram_counts(const struct lazy_ram *l, uint64_t *read, uint64_t *zero)
{
	*read = __atomic_load_n(&l->read, __ATOMIC_RELAXED);
	*zero = __atomic_load_n(&l->zero, __ATOMIC_RELAXED);
}

void lazy_ram_destroy(void *obj)
{
	struct lazy_ram *l = obj;

	if (!l)
		return;
	/* stops the fault threads first: none reads the index after */
	if (l->uffd)
		uffd_ram_destroy(l->uffd);
	if (l->fd >= 0)
		close(l->fd);
	free(l->offsets);
	free(l);
}
