/* SPDX-License-Identifier: MIT */
/*
 * A tiny unit-test harness.  Each test file defines tests with
 *
 *	TEST(bus_rejects_overlap) { ... CHECK(x == 1); CHECK_EQ(a, b); ... }
 *
 * and they all link into one binary (build/asan/unit-tests) whose main()
 * lives in harness.c.  A test may call SKIP("reason") to skip with a
 * printed reason.
 *
 * The model:
 *   - Each test runs in a forked child of its own (its own process group),
 *     so a crash, a sanitizer report, an abort or a leak fails that test
 *     only and the others still run.  The child's stdout and stderr go to
 *     build/test-results/unit/NAME.log ($UNIT_TEST_LOGS to change).
 *   - The harness prints one line per test, the lines tests/run counts:
 *	ok NAME
 *	FAIL NAME: file:line: expr	(a CHECK)
 *	FAIL NAME: killed by signal 11 (Segmentation fault)
 *	FAIL NAME: exited with status 1; AddressSanitizer: heap-buffer-overflow ...
 *	FAIL NAME: timed out after 120 s (UNIT_TEST_TIMEOUT)
 *	skip NAME: reason
 *     and after a FAIL the sanitizer report of its log, or the log's last
 *     lines, each line indented "  | ".  (Inside the emulated test host
 *     the logs vanish with it; those lines are what remains.)
 *   - A test that takes longer than $UNIT_TEST_TIMEOUT seconds (default
 *     120) is killed, and what its threads wait on goes to its log.
 *     Whatever a test leaves running in its process group is killed
 *     when it ends.
 *   - Temporary files go under harness_tmpdir(), a directory of the test's
 *     own (also $TMPDIR in the child; short: rackvm-unit-XXXXXX/N) inside
 *     one directory per run in $TMPDIR or /tmp, removed at the end.
 *   - Arguments select tests: only those whose name contains one of them
 *     run.  "unit-tests --list [PATTERN...]" prints the names it would run.
 *   - A test file whose tests need a usable /dev/kvm (they create VMs or
 *     probe KVM) says so with "#define UNIT_TESTS_NEED_KVM 1" before it
 *     includes this header.  $UNIT_KVM=only runs just those tests,
 *     UNIT_KVM=none just the others: where this machine has no usable
 *     KVM, tests/run runs the first half in the emulated test host and
 *     the second here, at native speed.
 *   - $UNIT_SHARD=K/N runs every Nth selected test from the Kth (from
 *     0): N processes with K = 0..N-1 run the selection between them.
 */
#ifndef RACKVM_TESTS_HARNESS_H
#define RACKVM_TESTS_HARNESS_H

#include <stdint.h>
#include <stdio.h>

#ifndef UNIT_TESTS_NEED_KVM
#define UNIT_TESTS_NEED_KVM 0
#endif

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
	int needs_kvm;
	int in_shard;	/* selected for this run (harness.c) */
};

void harness_register(struct unit_test *t);
void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void harness_skip(const char *reason);
int harness_failed(void);
/* The running test's scratch directory, removed after the run. */
const char *harness_tmpdir(void);

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	static struct unit_test unit_test_##name = {                     \
		#name, test_##name, 0, UNIT_TESTS_NEED_KVM, 0 };          \
	__attribute__((constructor)) static void register_##name(void)    \
	{                                                                 \
		harness_register(&unit_test_##name);                      \
	}                                                                 \
	static void test_##name(void)

/* On failure: record it and return from the test function. */
#define CHECK(expr)                                                       \
	do {                                                              \
		if (!(expr)) {                                            \
			harness_fail(__FILE__, __LINE__, "%s", #expr);    \
			return;                                           \
		}                                                         \
	} while (0)

#define CHECK_EQ(a, b)                                                    \
	do {                                                              \
		long long check_a_ = (long long)(a);                      \
		long long check_b_ = (long long)(b);                      \
		if (check_a_ != check_b_) {                               \
			harness_fail(__FILE__, __LINE__,                  \
				     "%s == %s (%lld != %lld)", #a, #b,   \
				     check_a_, check_b_);                 \
			return;                                           \
		}                                                         \
	} while (0)

#define SKIP(reason)                                                      \
	do {                                                              \
		harness_skip(reason);                                     \
		return;                                                   \
	} while (0)

#endif
