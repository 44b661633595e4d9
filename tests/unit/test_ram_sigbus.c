// SPDX-License-Identifier: MIT
/*
 * vm/ram_sigbus.h on a stand-in for guest RAM: a shared mapping of an
 * empty memfd, where every access raises SIGBUS as on a refused page.
 *  - a load inside a recovery point comes back as -EFAULT with the
 *    offset, and the thread goes on (SIGBUS is usable again after);
 *  - calls nest: the inner one catches, the outer one stays armed;
 *  - a SIGBUS outside a recovery point, or for an address outside the
 *    range, or one sent with kill(), still ends the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vm/ram_sigbus.h"

#define SIZE (4 * 4096ull)

/* A guest_mem whose pages all raise SIGBUS; false if it cannot be had. */
static bool fake_ram(struct guest_mem *m)
{
	int fd = memfd_create("ram-sigbus-test", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return false;
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return false;
	*m = (struct guest_mem){ .memfd = -1, .base = p, .size = SIZE };
	return true;
}

static void load(void *arg)
{
	(void)*(volatile uint8_t *)arg;
}

struct nest {
	const struct guest_mem *mem;
	uint8_t *addr;
	int inner;
	uint64_t offset;
};

/* Catches in the inner call, then faults again in the outer one. */
static void nested(void *arg)
{
	struct nest *n = arg;

	n->inner = ram_sigbus_call(n->mem, load, n->addr, &n->offset);
	load(n->addr + 4096);
}

TEST(ram_sigbus_catches_a_load_from_unbacked_ram)
{
	struct guest_mem m;
	struct errmsg err;
	struct nest n;
	uint64_t off = 0;

	if (!fake_ram(&m))
		SKIP("no memfd");
	CHECK_EQ(ram_sigbus_install(&err), 0);
	CHECK_EQ(ram_sigbus_install(&err), 0);	/* once is enough */
	CHECK_EQ(ram_sigbus_call(&m, load, m.base + 4096 + 12, &off), -EFAULT);
	CHECK_EQ(off, 4096 + 12);
	/* again: SIGBUS is not left blocked */
	CHECK_EQ(ram_sigbus_call(&m, load, m.base + 3 * 4096, &off), -EFAULT);
	CHECK_EQ(off, 3 * 4096);
	n = (struct nest){ .mem = &m, .addr = m.base };
	CHECK_EQ(ram_sigbus_call(&m, nested, &n, &off), -EFAULT);
	CHECK_EQ(n.inner, -EFAULT);
	CHECK_EQ(n.offset, 0);
	CHECK_EQ(off, 4096);
	munmap(m.base, SIZE);
}

/* @fn in a child: its wait status (0: it exited 0; -1: no child). */
static int child_status(void (*fn)(struct guest_mem *m), struct guest_mem *m)
{
	int st = 0;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		/* the sanitizers' report of the expected crash is noise */
		if (null >= 0)
			dup2(null, 2);
		fn(m);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

static void touch_unguarded(struct guest_mem *m)
{
	load(m->base);
}

static void touch_other_range(struct guest_mem *m)
{
	struct guest_mem other = *m;

	other.base += 4096;
	other.size = 4096;
	ram_sigbus_call(&other, load, m->base, NULL);
}

static void send_sigbus(void *arg)
{
	(void)arg;
	kill(getpid(), SIGBUS);
}

static void sent_not_caught(struct guest_mem *m)
{
	ram_sigbus_call(m, send_sigbus, NULL, NULL);
}

TEST(ram_sigbus_leaves_other_sigbus_fatal)
{
	struct guest_mem m;
	struct errmsg err;

	if (!fake_ram(&m))
		SKIP("no memfd");
	CHECK_EQ(ram_sigbus_install(&err), 0);
	/* under the sanitizers their handler reports and exits; else the
	 * default action kills */
	CHECK(child_status(touch_unguarded, &m) > 0);
	CHECK(child_status(touch_other_range, &m) > 0);
	CHECK(child_status(sent_not_caught, &m) > 0);
	munmap(m.base, SIZE);
}
