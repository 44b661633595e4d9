/* SPDX-License-Identifier: MIT */
/*
 * The guest side of the result channel (include/rackvm/guest_abi.h) and
 * the test helpers built on it.
 *
 * Every message is printed on the UART first and then sent as a ucall,
 * so the same image reports the same text under QEMU (where UCALL_PORT is
 * unassigned) and under rackvm.  Every failure ends the VM: UCALL_DONE
 * with a non-zero status, then isa-debug-exit, then halt.
 */
#ifndef GUEST_UCALL_H
#define GUEST_UCALL_H

#include <stdint.h>

#include "rackvm/guest_abi.h"

/* Fills this CPU's struct ucall and hands it to the host.  Callable from
 * ring 0 and ring 3. */
void ucall_send(uint32_t type, const char *file, uint32_t line,
		const uint64_t *args, unsigned int nargs, const char *message);

__attribute__((format(printf, 1, 2)))
void guest_printf(const char *fmt, ...);
#define GUEST_PRINTF(...) guest_printf(__VA_ARGS__)

/* "key=value ..." figures: printed as "result: ..." and sent as
 * UCALL_RESULT for the host to parse. */
__attribute__((format(printf, 1, 2)))
void guest_result(const char *fmt, ...);

/* A named check passed (UCALL_PASS). */
void guest_pass(const char *name);

/* Ends the VM: UCALL_DONE(status), then isa-debug-exit, then halt.
 * status 0 is success. */
__attribute__((noreturn)) void guest_done(uint64_t status);

__attribute__((noreturn, format(printf, 3, 4)))
void guest_assert_fail(const char *file, unsigned int line,
		       const char *fmt, ...);

#define GUEST_ASSERT(cond)						\
	do {								\
		if (!(cond))						\
			guest_assert_fail(__FILE__, __LINE__,		\
					  "%s", #cond);			\
	} while (0)

#define GUEST_ASSERT_MSG(cond, ...)					\
	do {								\
		if (!(cond))						\
			guest_assert_fail(__FILE__, __LINE__,		\
					  __VA_ARGS__);			\
	} while (0)

/* Both sides are evaluated once and compared as 64-bit values. */
#define GUEST_ASSERT_EQ(a, b)						\
	do {								\
		uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);	\
		if (__a != __b)						\
			guest_assert_fail(__FILE__, __LINE__,		\
				"%s == %s (0x%llx != 0x%llx)", #a, #b,	\
				(unsigned long long)__a,		\
				(unsigned long long)__b);		\
	} while (0)

/* Guest failure without the host channel, for when reporting itself
 * failed (nested exception): debug-exit FAIL and halt. */
__attribute__((noreturn)) void guest_exit_now(uint8_t debug_exit_code);

#endif
