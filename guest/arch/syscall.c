// SPDX-License-Identifier: MIT
/* Ring-0 side of int 0x80 (see guest/syscall.h). */
#include <stdint.h>

#include "guest/syscall.h"

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

/* The pio workload's loop run in ring 0: on hosts that trap ring-3 port
 * I/O through extra layers this shows the bare exit cost. */
static uint64_t pio_read_loop(uint16_t port, uint64_t count)
{
	uint64_t i;
	uint8_t v;

	for (i = 0; i < count; i++)
		asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return 0;
}

/* With no usable IDT the #UD cannot be delivered, nor can the #DF that
 * follows: the CPU shuts down, which a VMM sees as a triple fault. */
static void triple_fault(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	asm volatile("lidt %0; ud2" : : "m"(empty_idt));
	for (;;)
		asm volatile("cli; hlt");
}

/* For the emulfail workload: with @gpa in the MMIO hole the load exits to
 * KVM, which cannot emulate it.  xmm0 is no one's: ring 0 never uses SSE
 * and the VM is not expected to go on.  CR4.OSFXSR is on from boot. */
static uint64_t paddd_from(uint64_t gpa)
{
	asm volatile("paddd (%0), %%xmm0" : : "r"(gpa) : "memory");
	return 0;
}

uint64_t syscall_dispatch(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	(void)a2;

	switch (nr) {
	case SYS_PING:
		return a0 + 1;
	case SYS_HALT:
		for (;;)
			asm volatile("cli; hlt");
	case SYS_RDMSR:
		return rdmsr(a0);
	case SYS_PIO_READ_LOOP:
		return pio_read_loop(a0, a1);
	case SYS_TRIPLE_FAULT:
		triple_fault();
		return 0;
	case SYS_PADDD_MMIO:
		return paddd_from(a0);
	case SYS_SLEEP_UNTIL:
		return sleep_until_syscall(a0, a1);
	case SYS_GET_CPL: {
		uint16_t cs;

		asm volatile("mov %%cs, %0" : "=r"(cs));
		return cs & 3;
	}
	default:
		return SYSCALL_ENOSYS;
	}
}
