// SPDX-License-Identifier: MIT
/*
 * Lazy RAM (migrate/lazy_ram.h) with deferred section checksums, on a
 * bare VM (no KVM, userfaultfd only): a snapshot file restored the way
 * restore.c does it serves every page as saved, each section checked
 * once by the first fault on it however many threads fault on it at
 * once; a section with a flipped data byte serves none of its pages,
 * zero pages included, and ends the VM naming the section; the table of
 * sections is bounded by the guest's pages.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memory/uffd_ram.h"
#include "migrate/lazy_ram.h"
#include "migrate/stream.h"
#include "util/full_io.h"
#include "util/page.h"
#include "vm/vm.h"

#define SAVED 700u		/* pages in the snapshot: 3 sections */
#define PAGES 704u		/* the guest's: 700..703 never saved */

struct rig {
	struct vm vm;
	struct lazy_ram *l;
	uint8_t *ram;		/* what was saved */
	uint64_t off[PAGES];	/* each page's data in the file, 0: zero */
	struct stream_deferred check[4];
	unsigned nchecks;
	uint32_t section;
	int fd;
};

/* Page kinds in turn: random, zero, text; sections of 256 pages. */
static void make_ram(uint8_t *ram)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	memset(ram, 0, (size_t)PAGES * PAGE_SIZE);
	for (unsigned pg = 0; pg < SAVED; pg++) {
		uint8_t *p = ram + (size_t)pg * PAGE_SIZE;

		for (size_t i = 0; pg % 3 == 0 && i < PAGE_SIZE; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(p + i, &x, 8);
		}
		for (size_t i = 0; pg % 3 == 2 && i + 16 < PAGE_SIZE; i += 16)
			snprintf((char *)p + i, 17, "page %09u ", pg);
	}
}

static int write_snapshot(struct rig *r, struct errmsg *err)
{
	char path[256];
	struct stream_writer *w;
	int ret;

	snprintf(path, sizeof(path), "%s/lazy-XXXXXX", harness_tmpdir());
	r->fd = mkstemp(path);
	if (r->fd < 0)
		return -errno;
	unlink(path);
	ret = stream_writer_create(r->fd, "rackvm test", NULL, &w, err);
	if (ret)
		return ret;
	ret = stream_put(w, STREAM_CONFIG, "{}", 2, err);
	for (unsigned pg = 0; !ret && pg < SAVED; pg += 256)
		ret = stream_put_pages(w, pg, r->ram + (size_t)pg * PAGE_SIZE,
				       SAVED - pg < 256 ? SAVED - pg : 256, err);
	if (!ret)
		ret = stream_finish(w, err);
	stream_writer_destroy(w);
	return ret;
}

static int set_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t off)
{
	struct rig *r = opaque;

	if (data)		/* a deferred section has none */
		return -EINVAL;
	r->off[page] = off;
	lazy_ram_set(r->l, page, off, r->section);
	return 0;
}

/* The restore's part of it: every RAM section deferred and its pages
 * set, as restore.c does. */
static int load(struct rig *r, struct errmsg *err)
{
	struct stream_reader *sr;
	struct stream_section s;
	int ret;

	if (lseek(r->fd, 0, SEEK_SET))
		return -errno;
	ret = stream_reader_create(r->fd, &sr, err);
	if (!ret)
		ret = stream_reader_defer_ram(sr);
	while (!ret) {
		ret = stream_next(sr, &s, err);
		if (ret || s.type == STREAM_END)
			break;
		if (s.type != STREAM_RAM)
			continue;
		ret = s.deferred ? lazy_ram_add_section(r->l, &s.check,
							&r->section, err)
				 : -EINVAL;
		if (!ret && r->nchecks < 4)
			r->check[r->nchecks++] = s.check;
		if (!ret)
			ret = stream_section_pages(&s, PAGES, set_page, r,
						   err);
	}
	stream_reader_destroy(sr);
	return ret;
}

/* setup(), or the test ends there: skipped with setup()'s reason, or
 * silently when setup() failed it already (an empty reason). */
#define SETUP_OR_END(r, flip)						\
	do {								\
		const char *skip_ = setup(r, flip);			\
									\
		if (skip_ && !*skip_)					\
			return;						\
		if (skip_)						\
			SKIP(skip_);					\
	} while (0)

/* A rig restored from its snapshot, faults served, or a reason to skip
 * (NULL: ready).  @flip: a byte of page @flip's data is flipped in the
 * file after the load (0: none). */
static const char *setup(struct rig *r, unsigned flip)
{
	static struct errmsg err;
	uint8_t b;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (uffd_ram_probe(UFFD_RAM_MISSING, &err))
		return err.text;
	vm_init_bare(&r->vm);
	r->ram = malloc((size_t)PAGES * PAGE_SIZE);
	if (!r->ram || guest_mem_init(&r->vm.mem, (uint64_t)PAGES * PAGE_SIZE,
				      false, &err))
		return "no memory";
	make_ram(r->ram);
	if (write_snapshot(r, &err) ||
	    lazy_ram_create(&r->vm, r->fd, "test.snap", &r->l, &err) ||
	    load(r, &err))
		goto fail;
	if (flip && (pread_full(r->fd, &b, 1, r->off[flip] + 77) ||
		     (b ^= 0x5a, pwrite_full(r->fd, &b, 1, r->off[flip] + 77))))
		goto fail;
	if (!lazy_ram_start(r->l, &err))
		return NULL;
fail:
	harness_fail(__FILE__, __LINE__, "setup: %s", err.text);
	return "";
}

static void teardown(struct rig *r)
{
	lazy_ram_destroy(r->l);
	vm_destroy(&r->vm);
	if (r->fd >= 0)
		close(r->fd);
	free(r->ram);
}

static const uint8_t *guest(struct rig *r, unsigned page)
{
	return r->vm.mem.base + (size_t)page * PAGE_SIZE;
}

/* A page through a syscall: a refused page is EFAULT, not SIGBUS. */
static bool readable(const void *addr)
{
	uint8_t back[PAGE_SIZE];
	bool ok;
	int fds[2];

	if (pipe(fds))
		return false;
	ok = write(fds[1], addr, PAGE_SIZE) == PAGE_SIZE &&
	     read(fds[0], back, PAGE_SIZE) == PAGE_SIZE;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

struct toucher {
	struct rig *r;
	unsigned page;
	pthread_barrier_t *go;
	bool same;
};

static void *touch_main(void *arg)
{
	struct toucher *t = arg;

	pthread_barrier_wait(t->go);
	t->same = !memcmp(guest(t->r, t->page),
			  t->r->ram + (size_t)t->page * PAGE_SIZE, PAGE_SIZE);
	return NULL;
}

TEST(lazy_ram_checks_each_deferred_section_once_on_its_first_fault)
{
	struct toucher t[6];
	pthread_t th[6];
	pthread_barrier_t go;
	struct rig r;

	SETUP_OR_END(&r, 0);
	CHECK_EQ(r.nchecks, 3);
	CHECK_EQ(lazy_ram_sections_checked(r.l), 0);
	/* six threads at once on section 2 (pages 256..511): one check */
	pthread_barrier_init(&go, NULL, 6);
	for (unsigned i = 0; i < 6; i++) {
		t[i] = (struct toucher){ &r, 256 + 40 * i, &go, false };
		CHECK_EQ(pthread_create(&th[i], NULL, touch_main, &t[i]), 0);
	}
	for (unsigned i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		CHECK(t[i].same);
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ(lazy_ram_sections_checked(r.l), 1);
	/* pages never saved are zero, with no check */
	CHECK(!memcmp(guest(&r, 701), r.ram + 701ull * PAGE_SIZE, PAGE_SIZE));
	CHECK_EQ(lazy_ram_sections_checked(r.l), 1);
	/* a zero page of section 3 checks it; the rest of RAM as saved */
	CHECK_EQ(r.off[514], 0);
	CHECK(!memcmp(guest(&r, 514), r.ram + 514ull * PAGE_SIZE, PAGE_SIZE));
	CHECK_EQ(lazy_ram_sections_checked(r.l), 2);
	CHECK(!memcmp(guest(&r, 0), r.ram, (size_t)PAGES * PAGE_SIZE));
	CHECK_EQ(lazy_ram_sections_checked(r.l), 3);
	CHECK(!vm_exit_requested(&r.vm));
	teardown(&r);
}

TEST(lazy_ram_serves_nothing_of_a_corrupt_section_and_ends_the_vm)
{
	struct vm_exit ex;
	struct rig r;
	char want[96];

	/* page 300's data (section 2) is flipped in the file */
	SETUP_OR_END(&r, 300);
	CHECK(r.off[300] != 0);
	/* section 1 is fine */
	CHECK(!memcmp(guest(&r, 3), r.ram + 3ull * PAGE_SIZE, PAGE_SIZE));
	CHECK(!vm_exit_requested(&r.vm));
	/* a zero page and an intact data page of section 2: refused */
	CHECK_EQ(r.off[256], 0);
	CHECK(!readable(guest(&r, 256)));
	CHECK(!readable(guest(&r, 258)));
	CHECK(!readable(guest(&r, 300)));
	CHECK_EQ(lazy_ram_sections_checked(r.l), 2);
	CHECK(vm_exit_peek(&r.vm, &ex));
	CHECK_EQ(ex.reason, VM_EXIT_HOST_ERROR);
	snprintf(want, sizeof(want), "test.snap: section 2 (ram) at byte %llu:"
		 " checksum mismatch", (unsigned long long)r.check[1].start);
	if (!strstr(ex.detail, want))
		harness_fail(__FILE__, __LINE__, "exit: %s", ex.detail);
	/* section 3 still serves (the VM is ending anyway) */
	CHECK(readable(guest(&r, 600)));
	teardown(&r);
}

TEST(lazy_ram_bounds_its_table_of_sections_by_the_guest_pages)
{
	struct stream_deferred d = { .index = 1, .start = 64, .len = 4096 };
	struct errmsg err = { "" };
	uint32_t id = 0;
	struct rig r;

	SETUP_OR_END(&r, 0);
	/* 3 sections loaded: 701 more fit a guest of 704 pages */
	for (unsigned i = 3; i < PAGES; i++) {
		d.index = i;
		if (lazy_ram_add_section(r.l, &d, &id, &err))
			break;
	}
	CHECK_EQ(id, PAGES);
	d.index = 9999;
	CHECK_EQ(lazy_ram_add_section(r.l, &d, &id, &err), -EBADMSG);
	CHECK(strstr(err.text, "section 9999: more RAM sections than the "
			       "guest's 704 pages"));
	teardown(&r);
}
