// SPDX-License-Identifier: MIT
/*
 * Guest RAM's shared userfaultfd, on a plain guest_mem (no VM): the test
 * thread touches RAM the way a device thread would and the fault threads
 * serve it.  Default resolutions, observers, the one-resolver rule,
 * detaching while faults arrive, refusing a page (poison, or the fence of
 * kernels without it) to a load and to a syscall waiting for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "memory/uffd_ram.h"
#include "vm/ram_sigbus.h"

#define MEM_SIZE (4ull << 20)
#define NPAGES (MEM_SIZE / 4096)

struct counts {
	uint64_t kind[UFFD_FAULT_KINDS];	/* atomic */
	uint64_t last_page;
	uint64_t resolved;			/* by the resolver */
};

static void count_note(void *opaque, uint64_t page, enum uffd_fault_kind kind)
{
	struct counts *c = opaque;

	__atomic_fetch_add(&c->kind[kind], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&c->last_page, page, __ATOMIC_RELAXED);
}

static uint64_t seen(struct counts *c, enum uffd_fault_kind kind)
{
	return __atomic_load_n(&c->kind[kind], __ATOMIC_RELAXED);
}

static const char *setup(struct guest_mem *mem, unsigned modes)
{
	static struct errmsg err;

	if (uffd_ram_probe(modes, &err))
		return err.text;
	if (guest_mem_init(mem, MEM_SIZE, false, &err))
		return err.text;
	return NULL;
}

/* One page through a syscall: EFAULT instead of SIGBUS on poison. */
static ssize_t read_via_pipe(const void *addr, void *out, size_t len)
{
	int fds[2];
	ssize_t n;

	if (pipe(fds))
		return -1;
	n = write(fds[1], addr, len);
	if (n > 0 && read(fds[0], out, (size_t)n) != n)
		n = -1;
	close(fds[0]);
	close(fds[1]);
	return n;
}

TEST(uffd_ram_default_missing_is_a_zero_page_and_observers_see_it)
{
	struct counts c = { 0 };
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING,
		.observe = UFFD_OBSERVE(UFFD_FAULT_MISSING),
		.note = count_note, .opaque = &c,
	};
	struct guest_mem mem;
	struct uffd_ram *u;
	struct errmsg err;
	const char *skip = setup(&mem, UFFD_RAM_MISSING);
	volatile uint8_t *p;

	if (skip)
		SKIP(skip);
	CHECK_EQ(uffd_ram_create(&mem, 2, &u, &err), 0);
	CHECK_EQ(uffd_ram_attach(u, &user, &err), 0);
	CHECK_EQ(uffd_ram_start(u, &err), 0);
	CHECK_EQ(uffd_ram_nthreads(u), 2);
	p = mem.base + 7 * 4096;
	CHECK_EQ(p[10], 0);
	p[10] = 0x5a;
	CHECK_EQ(p[10], 0x5a);
	CHECK_EQ(seen(&c, UFFD_FAULT_MISSING), 1);
	CHECK_EQ(__atomic_load_n(&c.last_page, __ATOMIC_RELAXED), 7);
	CHECK_EQ(uffd_ram_faults(u, UFFD_FAULT_MISSING), 1);
	/* a page operation outside guest RAM is refused */
	CHECK_EQ(uffd_ram_wake(u, NPAGES, 1), -EINVAL);
	CHECK_EQ(uffd_ram_zeropage(u, NPAGES - 1, 2), -EINVAL);
	uffd_ram_destroy(u);
	/* the uffd is gone: RAM is ordinary shmem again, contents kept */
	CHECK_EQ(p[10], 0x5a);
	guest_mem_destroy(&mem);
}

/* @two_step: map back as kernels before 6.5 must (mapped, then
 * protected), whatever this kernel can do. */
static void minor_and_wp_defaults(bool two_step)
{
	struct counts c = { 0 };
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MINOR | UFFD_RAM_WP,
		.observe = UFFD_OBSERVE(UFFD_FAULT_MINOR) |
			   UFFD_OBSERVE(UFFD_FAULT_WP),
		.note = count_note, .opaque = &c,
	};
	struct guest_mem mem;
	struct uffd_ram *u;
	struct errmsg err;
	const char *skip = setup(&mem, UFFD_RAM_MINOR | UFFD_RAM_WP);
	volatile uint8_t *p;

	if (skip)
		SKIP(skip);
	p = mem.base + 3 * 4096;
	p[0] = 0x11;
	CHECK_EQ(uffd_ram_create(&mem, 1, &u, &err), 0);
	CHECK(uffd_ram_has_wp(u));
	if (two_step)
		uffd_ram_use_two_step_continue(u);
	CHECK_EQ(uffd_ram_attach(u, &user, &err), 0);
	CHECK_EQ(uffd_ram_start(u, &err), 0);
	/* revoked: a read is a minor fault, mapped back write-protected */
	CHECK_EQ(madvise((void *)p, 4096, MADV_DONTNEED), 0);
	CHECK_EQ(p[0], 0x11);
	CHECK_EQ(seen(&c, UFFD_FAULT_MINOR), 1);
	CHECK_EQ(seen(&c, UFFD_FAULT_WP), 0);
	/* so the write that follows takes a write-protect fault */
	p[1] = 0x22;
	CHECK_EQ(seen(&c, UFFD_FAULT_WP), 1);
	CHECK_EQ(p[0], 0x11);
	CHECK_EQ(p[1], 0x22);
	/* an explicit protection, lifted by the default on a write */
	CHECK_EQ(uffd_ram_protect(u, 3, 1, true), 0);
	p[2] = 0x33;
	CHECK_EQ(seen(&c, UFFD_FAULT_WP), 2);
	CHECK_EQ(p[2], 0x33);
	/* mapping back a range skips what is mapped or not in the memfd */
	CHECK_EQ(madvise(mem.base, 8 * 4096, MADV_DONTNEED), 0);
	CHECK_EQ(uffd_ram_continue(u, 0, 8), 0);
	CHECK_EQ(p[2], 0x33);
	CHECK_EQ(seen(&c, UFFD_FAULT_MINOR), 1);
	/* mapped back write-protected too: the next write faults */
	p[3] = 0x44;
	CHECK_EQ(seen(&c, UFFD_FAULT_WP), 3);
	/* and so does a page mapped back for nobody's fault */
	CHECK_EQ(madvise((void *)p, 4096, MADV_DONTNEED), 0);
	CHECK_EQ(uffd_ram_map_back(u, 3, 1), 0);
	CHECK_EQ(p[3], 0x44);
	CHECK_EQ(seen(&c, UFFD_FAULT_MINOR), 1);
	p[4] = 0x55;
	CHECK_EQ(seen(&c, UFFD_FAULT_WP), 4);
	CHECK_EQ(uffd_ram_error(u), 0);
	uffd_ram_destroy(u);
	guest_mem_destroy(&mem);
}

TEST(uffd_ram_minor_and_wp_defaults_keep_contents)
{
	minor_and_wp_defaults(false);
}

/* The two steps' order matters: the faulting thread is woken only once
 * the page is protected, so its write still faults. */
TEST(uffd_ram_two_step_continue_maps_back_write_protected)
{
	minor_and_wp_defaults(true);
}

struct resolver {
	struct uffd_ram *u;
	uint64_t calls;		/* atomic */
};

static void fill_0x77(void *opaque, uint64_t page)
{
	struct resolver *r = opaque;
	static const uint8_t fill[4096] = { [0 ... 4095] = 0x77 };

	__atomic_fetch_add(&r->calls, 1, __ATOMIC_RELAXED);
	if (uffd_ram_copy(r->u, page, 1, fill))
		uffd_ram_wake(r->u, page, 1);
}

TEST(uffd_ram_one_resolver_per_kind_and_detach_restores_the_default)
{
	struct resolver r = { 0 }, other = { 0 };
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING, .missing = fill_0x77, .opaque = &r,
	};
	struct uffd_ram_user second = {
		.modes = UFFD_RAM_MISSING, .missing = fill_0x77, .opaque = &other,
	};
	struct uffd_ram_user late_minor = {
		.modes = UFFD_RAM_MINOR, .opaque = &other,
	};
	struct guest_mem mem;
	struct errmsg err;
	const char *skip = setup(&mem, UFFD_RAM_MISSING | UFFD_RAM_MINOR);
	volatile uint8_t *p = NULL;

	if (skip)
		SKIP(skip);
	p = mem.base;
	CHECK_EQ(uffd_ram_create(&mem, 3, &r.u, &err), 0);
	CHECK_EQ(uffd_ram_attach(r.u, &user, &err), 0);
	CHECK_EQ(uffd_ram_attach(r.u, &second, &err), -EBUSY);
	CHECK_EQ(uffd_ram_start(r.u, &err), 0);
	/* registered without minor mode: a late user needing it is refused */
	CHECK_EQ(uffd_ram_attach(r.u, &late_minor, &err), -EBUSY);
	CHECK_EQ(p[5 * 4096], 0x77);
	CHECK_EQ(__atomic_load_n(&r.calls, __ATOMIC_RELAXED), 1);
	uffd_ram_detach(r.u, &r);
	CHECK_EQ(p[6 * 4096], 0);
	CHECK_EQ(__atomic_load_n(&r.calls, __ATOMIC_RELAXED), 1);
	uffd_ram_destroy(r.u);
	guest_mem_destroy(&mem);
}

/* A missing resolver that serves nothing: the toucher waits until the
 * test refuses its page (the once-a-second sweep only makes it fault
 * again). */
static void hold_missing(void *opaque, uint64_t page)
{
	(void)page;
	__atomic_fetch_add((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
}

struct toucher {
	const struct guest_mem *mem;
	uint64_t page;
	bool direct;		/* a load, else a syscall's copy */
	int ret;		/* 0, or -errno */
	uint64_t offset;	/* where a load's SIGBUS was */
	bool done;		/* atomic */
};

static void load_one(void *arg)
{
	struct toucher *t = arg;

	(void)*(volatile uint8_t *)(t->mem->base + t->page * 4096 + 8);
}

static void *touch(void *arg)
{
	struct toucher *t = arg;
	uint8_t buf[64];

	if (t->direct)
		t->ret = ram_sigbus_call(t->mem, load_one, t, &t->offset);
	else
		t->ret = read_via_pipe(t->mem->base + t->page * 4096, buf,
				       sizeof(buf)) < 0 ? -errno : 0;
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Starts a toucher of @page and waits until its fault arrived. */
static bool start_waiting(struct toucher *t, pthread_t *th, uint64_t *faults)
{
	uint64_t before = __atomic_load_n(faults, __ATOMIC_RELAXED);

	if (pthread_create(th, NULL, touch, t))
		return false;
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n(faults, __ATOMIC_RELAXED) > before)
			return !__atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
		usleep(1000);
	}
	return false;
}

/* @fence: refuse as kernels without UFFDIO_POISON must, whatever this
 * kernel can do. */
static void refuse_answers_with_no_data(bool fence)
{
	uint64_t faults = 0;
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MISSING, .missing = hold_missing,
		.opaque = &faults,
	};
	struct toucher t;
	struct guest_mem mem;
	struct uffd_ram *u;
	struct errmsg err;
	uint8_t buf[64];
	pthread_t th;
	const char *skip = setup(&mem, UFFD_RAM_MISSING);

	if (skip)
		SKIP(skip);
	CHECK_EQ(ram_sigbus_install(&err), 0);
	CHECK_EQ(uffd_ram_create(&mem, 1, &u, &err), 0);
	if (fence)
		uffd_ram_use_fence(u);
	CHECK_EQ(uffd_ram_attach(u, &user, &err), 0);
	CHECK_EQ(uffd_ram_start(u, &err), 0);
	if (!fence && !uffd_ram_has_poison(u)) {
		uffd_ram_destroy(u);
		guest_mem_destroy(&mem);
		return;
	}
	CHECK_EQ(uffd_ram_refusal(u), fence ? UFFD_REFUSE_FENCE : UFFD_REFUSE_POISON);
	/* a load waiting in the fault is released by SIGBUS, caught */
	t = (struct toucher){ .mem = &mem, .page = 9, .direct = true };
	CHECK(start_waiting(&t, &th, &faults));
	CHECK_EQ(uffd_ram_refuse(u, 9, 1), 0);
	pthread_join(th, NULL);
	CHECK_EQ(t.ret, -EFAULT);
	CHECK_EQ(t.offset, 9 * 4096 + 8);
	/* a syscall waiting in the fault fails with EFAULT */
	t = (struct toucher){ .mem = &mem, .page = 12 };
	CHECK(start_waiting(&t, &th, &faults));
	CHECK_EQ(uffd_ram_refuse(u, 12, 1), 0);
	pthread_join(th, NULL);
	CHECK_EQ(t.ret, -EFAULT);
	/* later touches fail at once, refusing again is harmless */
	CHECK_EQ(read_via_pipe(mem.base + 9 * 4096, buf, sizeof(buf)), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(uffd_ram_refuse(u, 9, 1), 0);
	t = (struct toucher){ .mem = &mem, .page = 12, .direct = true };
	touch(&t);
	CHECK_EQ(t.ret, -EFAULT);
	/* its neighbour is unaffected */
	CHECK_EQ(uffd_ram_zeropage(u, 10, 1), 0);
	CHECK_EQ(read_via_pipe(mem.base + 10 * 4096, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	CHECK_EQ(buf[0], 0);
	uffd_ram_destroy(u);
	guest_mem_destroy(&mem);
}

TEST(uffd_ram_refuse_by_poison_answers_a_fault_with_no_data)
{
	refuse_answers_with_no_data(false);
}

TEST(uffd_ram_refuse_by_fence_answers_a_fault_with_no_data)
{
	refuse_answers_with_no_data(true);
}

TEST(uffd_ram_rejects_bad_settings)
{
	struct guest_mem mem;
	struct uffd_ram *u;
	struct errmsg err;
	const char *skip = setup(&mem, UFFD_RAM_MISSING);

	if (skip)
		SKIP(skip);
	CHECK_EQ(uffd_ram_create(&mem, 0, &u, &err), -EINVAL);
	CHECK_EQ(uffd_ram_create(&mem, UFFD_RAM_MAX_THREADS + 1, &u, &err), -EINVAL);
	CHECK_EQ(uffd_ram_create(&mem, 1, &u, &err), 0);
	/* nobody attached: nothing to register */
	CHECK_EQ(uffd_ram_start(u, &err), -EINVAL);
	uffd_ram_destroy(u);
	guest_mem_destroy(&mem);
}
