// SPDX-License-Identifier: MIT
/*
 * selftest: checks of the runtime itself (formatting, strings, command
 * line parsing, the syscall path), one UCALL_PASS per group.
 */
#include <stdint.h>

#include "guest/cmdline.h"
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/syscall.h"
#include "guest/ucall.h"
#include "guest/virtio_mmio.h"
#include "guest/workload.h"

#define EXPECT_FORMAT(expected, ...)					\
	do {								\
		char buf[64];						\
		int n = snprintf(buf, sizeof(buf), __VA_ARGS__);	\
		GUEST_ASSERT_MSG(!strcmp(buf, expected),		\
				 "snprintf gave '%s', expected '%s'",	\
				 buf, expected);			\
		GUEST_ASSERT_EQ(n, strlen(expected));			\
	} while (0)

static void test_snprintf(void)
{
	char small[6];

	EXPECT_FORMAT("-42 17", "%d %u", -42, 17u);
	EXPECT_FORMAT("ff FF 0x1f", "%x %X 0x%lx", 255u, 255u, 31ul);
	EXPECT_FORMAT("18446744073709551615", "%llu", ~0ull);
	EXPECT_FORMAT("-9223372036854775808", "%lld", (long long)INT64_MIN);
	EXPECT_FORMAT("[   7][0007][7   ]", "[%4d][%04d][%-4d]", 7, 7, 7);
	EXPECT_FORMAT("[  ab][00ab]", "[%4x][%04x]", 0xab, 0xab);
	EXPECT_FORMAT("[-007]", "[%04d]", -7);
	EXPECT_FORMAT("hi x  |", "%s %-3c|", "hi", 'x');
	EXPECT_FORMAT("0x1000 100%", "%p %d%%", (void *)0x1000, 100);
	/* Truncation keeps the terminator and reports the full length. */
	GUEST_ASSERT_EQ(snprintf(small, sizeof(small), "%s", "truncated"), 9);
	GUEST_ASSERT(!strcmp(small, "trunc"));
	guest_pass("snprintf");
}

static void test_strings(void)
{
	char buf[8];

	GUEST_ASSERT_EQ(strlen(""), 0);
	GUEST_ASSERT_EQ(strlen("rackvm"), 6);
	GUEST_ASSERT(strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0);
	GUEST_ASSERT(!strncmp("memtouch", "memory", 3));
	GUEST_ASSERT(strchr("key=value", '=') != NULL);
	GUEST_ASSERT(strchr("key", '=') == NULL);
	memset(buf, 'x', sizeof(buf));
	GUEST_ASSERT(!memcmp(buf, "xxxxxxxx", 8));
	memcpy(buf, "1234567", 8);
	memmove(buf + 1, buf, 6);
	GUEST_ASSERT(!strcmp(buf, "1123456"));
	GUEST_ASSERT_EQ(strlcpy(buf, "much too long", sizeof(buf)), 13);
	GUEST_ASSERT(!strcmp(buf, "much to"));
	guest_pass("strings");
}

static void test_cmdline(void)
{
	static struct cmdline c;
	uint64_t v;

	cmdline_parse(&c, "memtouch pages=10 pattern=0x5A "
			  "virtio_mmio.device=512@0xfeb00e00:12 mode=verify");
	GUEST_ASSERT(!strcmp(c.workload, "memtouch"));
	GUEST_ASSERT_EQ(c.nr_params, 3);
	GUEST_ASSERT_EQ(cmdline_u64(&c, "pages", 0), 10);
	GUEST_ASSERT_EQ(cmdline_u64(&c, "pattern", 0), 0x5a);
	GUEST_ASSERT(!strcmp(cmdline_get(&c, "mode"), "verify"));
	GUEST_ASSERT(cmdline_get(&c, "virtio_mmio") == NULL);
	GUEST_ASSERT_EQ(c.nr_foreign, 1);
	GUEST_ASSERT(!strcmp(c.foreign[0],
			     "virtio_mmio.device=512@0xfeb00e00:12"));
	GUEST_ASSERT_EQ(cmdline_u64(&c, "absent", 77), 77);

	cmdline_parse(&c, "  ");
	GUEST_ASSERT(!strcmp(c.workload, "hello"));
	cmdline_parse(&c, "console=ttyS0");
	GUEST_ASSERT(!strcmp(c.workload, "hello"));
	GUEST_ASSERT_EQ(c.nr_params, 1);

	GUEST_ASSERT(parse_u64("18446744073709551615", &v) && v == ~0ull);
	GUEST_ASSERT(!parse_u64("18446744073709551616", &v));
	GUEST_ASSERT(!parse_u64("0x", &v) && !parse_u64("12a", &v));
	GUEST_ASSERT(parse_u64("0xfF", &v) && v == 255);
	guest_pass("cmdline");
}

/* The forms VMMs write: QEMU "512@0x...:12", rackvm "4K@0x...:5",
 * Linux's optional ":<id>". */
static void test_virtio_spec(void)
{
	uint64_t size, base;
	unsigned int irq;

	GUEST_ASSERT(virtio_mmio_parse_spec("512@0xfeb00e00:12", &size,
					    &base, &irq));
	GUEST_ASSERT(size == 512 && base == 0xfeb00e00 && irq == 12);
	GUEST_ASSERT(virtio_mmio_parse_spec("4K@0xd0000000:5:3", &size,
					    &base, &irq));
	GUEST_ASSERT(size == 4096 && base == 0xd0000000 && irq == 5);
	GUEST_ASSERT(virtio_mmio_parse_spec("1M@d0001000:33", &size, &base,
					    &irq));
	GUEST_ASSERT(size == 1 << 20 && base == 0xd0001000 && irq == 33);
	GUEST_ASSERT(!virtio_mmio_parse_spec("4K@0xd0000000", &size, &base,
					     &irq));
	GUEST_ASSERT(!virtio_mmio_parse_spec("4X@0xd0000000:5", &size, &base,
					     &irq));
	GUEST_ASSERT(!virtio_mmio_parse_spec("16@0xd0000000:5", &size, &base,
					     &irq));
	GUEST_ASSERT(!virtio_mmio_parse_spec("4K@0xd0000000:5:", &size,
					     &base, &irq));
	guest_pass("virtio_spec");
}

static void test_syscall(void)
{
	GUEST_ASSERT_EQ(current_cpl(), 3);
	GUEST_ASSERT_EQ(syscall3(SYS_PING, 41, 0, 0), 42);
	GUEST_ASSERT_EQ(syscall3(SYS_GET_CPL, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(syscall3(SYS_NR + 5, 0, 0, 0), SYSCALL_ENOSYS);
	guest_pass("syscall");
}

static void selftest_run(const struct cmdline *c)
{
	(void)c;
	test_snprintf();
	test_strings();
	test_cmdline();
	test_virtio_spec();
	test_syscall();
	guest_done(0);
}

const struct workload workload_selftest = {
	.name = "selftest",
	.usage = "(no parameters) checks of the runtime itself",
	.run = selftest_run,
};
