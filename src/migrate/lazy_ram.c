// SPDX-License-Identifier: MIT
/*
 * Guest RAM filled on demand from a snapshot file (lazy_ram.h).
 */
#include "migrate/lazy_ram.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/uffd_ram.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"

#define LAZY_RAM_THREADS 2

enum section_state {
	SECTION_UNCHECKED,
	SECTION_CHECKING,	/* a fault thread reads it: wait */
	SECTION_GOOD,
	SECTION_BAD,		/* the VM was told to end */
};

struct lazy_section {
	struct stream_deferred d;
	enum section_state state;	/* under lazy_ram.lock */
};

struct lazy_ram {
	struct vm *vm;
	struct uffd_ram *uffd;
	int fd;
	char path[256];
	uint64_t npages;
	uint64_t *offsets;	/* per page: its bytes in the file, 0: zero */
	uint32_t *section;	/* per page: 1 + its index in sections[], or
				 * LAZY_RAM_CHECKED */
	struct lazy_section *sections;
	uint32_t nsections, cap;
	pthread_mutex_t lock;	/* the sections' states */
	pthread_cond_t check_ended;
	uint64_t read;		/* atomics: counts for reports */
	uint64_t zero;
	uint32_t checked;
};

static void lost_page(struct lazy_ram *l, uint64_t page, int ret)
{
	uffd_ram_refuse(l->uffd, page, 1);
	vm_request_exit(l->vm, VM_EXIT_HOST_ERROR, 0, 0, "guest page %llu "
			"cannot be read from the snapshot %s: %s",
			(unsigned long long)page, l->path, strerror(-ret));
}

/* Reads and checks section @s (not yet checked); the VM ends if it
 * fails, before anyone can see it failed. */
static enum section_state check_section(struct lazy_ram *l,
					struct lazy_section *s, uint64_t page)
{
	struct errmsg why = { "" };

	__atomic_add_fetch(&l->checked, 1, __ATOMIC_RELAXED);
	if (!stream_verify_deferred(l->fd, &s->d, &why))
		return SECTION_GOOD;
	vm_request_exit(l->vm, VM_EXIT_HOST_ERROR, 0, 0, "guest page %llu: "
			"%s: %s", (unsigned long long)page, l->path, why.text);
	return SECTION_BAD;
}

/* Whether page @page's section passed its check: checked here by the
 * first fault on it, waited for by the others. */
static bool section_good(struct lazy_ram *l, uint64_t page)
{
	struct lazy_section *s = &l->sections[l->section[page] - 1];
	enum section_state state;

	pthread_mutex_lock(&l->lock);
	while (s->state == SECTION_CHECKING)
		pthread_cond_wait(&l->check_ended, &l->lock);
	if (s->state == SECTION_UNCHECKED) {
		s->state = SECTION_CHECKING;
		pthread_mutex_unlock(&l->lock);
		/* ~1 MiB read and hashed: other sections' faults go on */
		state = check_section(l, s, page);
		pthread_mutex_lock(&l->lock);
		s->state = state;
		pthread_cond_broadcast(&l->check_ended);
	}
	state = s->state;
	pthread_mutex_unlock(&l->lock);
	return state == SECTION_GOOD;
}

/* On a fault thread: the page's first touch. */
static void on_missing(void *opaque, uint64_t page)
{
	struct lazy_ram *l = opaque;
	uint8_t data[PAGE_SIZE];
	int ret;

	if (page >= l->npages)		/* cannot be: the uffd covers RAM */
		return;
	/* a page of a corrupt section is never served, not even zeros */
	if (l->section[page] != LAZY_RAM_CHECKED && !section_good(l, page)) {
		uffd_ram_refuse(l->uffd, page, 1);
		return;
	}
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
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->check_ended, NULL);
	l->offsets = calloc(l->npages ? l->npages : 1, sizeof(*l->offsets));
	l->section = calloc(l->npages ? l->npages : 1, sizeof(*l->section));
	if (!l->offsets || !l->section) {
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

int lazy_ram_add_section(struct lazy_ram *l, const struct stream_deferred *d,
			 uint32_t *section, struct errmsg *err)
{
	/* each section brings a page: more than the guest has means one
	 * came again, which a snapshot never does (only a migration) */
	uint64_t limit = l->npages < UINT32_MAX - 1 ? l->npages : UINT32_MAX - 1;
	struct lazy_section *p;
	uint32_t cap;

	if (l->nsections >= limit)
		return errmsg_set(err, -EBADMSG, "section %u: more RAM sections "
				  "than the guest's %llu pages: a snapshot holds "
				  "each page once", d->index,
				  (unsigned long long)l->npages);
	if (l->nsections == l->cap) {
		cap = l->cap ? (l->cap > limit / 2 ? (uint32_t)limit :
				l->cap * 2) : 64;
		p = realloc(l->sections, (size_t)cap * sizeof(*p));
		if (!p)
			return errmsg_set(err, -ENOMEM, "out of memory for "
					  "%u RAM sections", cap);
		l->sections = p;
		l->cap = cap;
	}
	l->sections[l->nsections] = (struct lazy_section){ .d = *d };
	*section = ++l->nsections;
	return 0;
}

void lazy_ram_set(struct lazy_ram *l, uint64_t page, uint64_t offset,
		  uint32_t section)
{
	if (page < l->npages && section <= l->nsections) {
		l->offsets[page] = offset;
		l->section[page] = section;
	}
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

uint32_t lazy_ram_sections_checked(const struct lazy_ram *l)
{
	return __atomic_load_n(&l->checked, __ATOMIC_RELAXED);
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
	free(l->section);
	free(l->sections);
	pthread_cond_destroy(&l->check_ended);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
