/* SPDX-License-Identifier: MIT */
/*
 * The int 0x80 path from ring 3 to ring 0, for the few things ring 3
 * cannot do.  Everything else stays in ring 3 (ring 0 is slow on the
 * target machines).
 *
 * Some nested hypervisors raise #UD for software interrupts from ring 3
 * (and run SYSCALL without changing CPL), so the #UD handler recognises
 * an "int $0x80" at the faulting RIP and treats it as the syscall it
 * was meant to be.  Either way the call arrives in syscall_dispatch().
 */
#ifndef GUEST_SYSCALL_H
#define GUEST_SYSCALL_H

#include <stdint.h>

#include "guest/arch.h"

#define SYSCALL_INSN_LEN 2	/* cd 80 */

enum syscall_nr {
	SYS_PING = 0,	/* returns arg0 + 1: proves the round trip */
	SYS_HALT = 1,	/* cli; hlt forever (the last resort ending) */
	SYS_RDMSR = 2,	/* returns MSR arg0 */
	SYS_GET_CPL = 3,	/* CPL the handler runs at (0) */
	SYS_PIO_READ_LOOP = 4,	/* arg1 times inb from port arg0 */
	SYS_TRIPLE_FAULT = 5,	/* empty IDT, then an exception: never returns */
	SYS_PADDD_MMIO = 6,	/* paddd xmm0 from guest-physical arg0 */
	SYS_SLEEP_UNTIL = 7,	/* halt until TSC arg0 at most (guest/sleep.h) */
	SYS_NR
};

#define SYSCALL_ENOSYS ((uint64_t)-38)

static inline uint64_t syscall3(uint64_t nr, uint64_t a0, uint64_t a1,
				uint64_t a2)
{
	uint64_t ret;

	asm volatile("int $0x80"
		     : "=a"(ret)
		     : "a"(nr), "D"(a0), "S"(a1), "d"(a2)
		     : "memory");
	return ret;
}

/* Ring 0 side (guest/arch/syscall.c). */
uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2);
uint64_t sleep_until_syscall(uint64_t deadline, uint64_t ticks_per_2_32);

#endif
