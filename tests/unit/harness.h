/* SPDX-License-Identifier: MIT */
/*
 * A tiny unit-test harness.  Each test file defines tests with
 *
 *	TEST(bus_rejects_overlap) { ... CHECK(x == 1); CHECK_EQ(a, b); ... }
 *
 * and they all link into one binary (build/asan/unit-tests) whose main()
 * lives in harness.c.  It prints "ok NAME" or "FAIL NAME: file:line: expr"
 * per test, the line format tests/run counts.  A test may call
 * SKIP("reason") to skip with a printed reason.
 */
#ifndef RACKVM_TESTS_HARNESS_H
#define RACKVM_TESTS_HARNESS_H

#include <stdint.h>
#include <stdio.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
};

void harness_register(struct unit_test *t);
void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void harness_skip(const char *reason);
int harness_failed(void);

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	static struct unit_test unit_test_##name = { #name, test_##name, 0 }; \
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
