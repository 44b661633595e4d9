/* SPDX-License-Identifier: MIT */
/*
 * x86-64 constants shared by the guest's assembly and C: segment
 * selectors of the runtime's own GDT, control-register bits, and the
 * fixed addresses the runtime relies on.  Plain #defines only, so that
 * entry.S and trampoline.S can include it too.
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

/* GDT selectors (guest/arch/entry.S lays the table out in this order). */
#define KERNEL_CS	0x08	/* 64-bit ring-0 code */
#define KERNEL_DS	0x10
#define USER_DS		0x18	/* DPL 3; selectors used with RPL 3 */
#define USER_CS		0x20	/* 64-bit ring-3 code */
#define KERNEL_CS32	0x28	/* 32-bit ring-0 code, for the AP trampoline */
#define TSS_SEL		0x30	/* 16-byte 64-bit TSS descriptor */
#define GDT_SIZE	0x40	/* bytes: six descriptors and the TSS */

#define CR0_PE		(1u << 0)
#define CR0_MP		(1u << 1)
#define CR0_ET		(1u << 4)
#define CR0_NE		(1u << 5)
#define CR0_WP		(1u << 16)
#define CR0_PG		(1u << 31)
/* Everything the runtime runs with; EM and TS stay clear for SSE. */
#define CR0_RUNTIME	(CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG)

#define CR4_PAE		(1u << 5)
#define CR4_OSFXSR	(1u << 9)
#define CR4_OSXMMEXCPT	(1u << 10)
#define CR4_RUNTIME	(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT)

#define MSR_EFER	0xc0000080
#define EFER_LME	(1u << 8)
#define MSR_APIC_BASE	0x1b

/* Ring 3 runs with IOPL 3 and IF clear.  Some nested hypervisors force
 * IOPL 0 in ring 3, so port access is also granted by the TSS I/O
 * permission bitmap (setup.c). */
#define RFLAGS_USER	0x3002

/* Page-table entry bits; every mapping is user-accessible on purpose. */
#define PTE_P		0x001
#define PTE_W		0x002
#define PTE_U		0x004
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_PS		0x080	/* 2 MiB page in a page directory */
#define PTE_TABLE	(PTE_P | PTE_W | PTE_U)
#define PTE_LARGE	(PTE_P | PTE_W | PTE_U | PTE_PS)
#define PTE_LARGE_UC	(PTE_LARGE | PTE_PCD | PTE_PWT)

/* The boot page tables map 4 GiB; the top 32 MiB (LAPIC, IOAPIC, HPET,
 * firmware) is uncached. */
#define UNCACHED_FROM	0xfe000000

#define LAPIC_BASE	0xfee00000

/* Real-mode AP entry: SIPI vector 0x08.  Below 0x9fc00 and clear of the
 * 0x500-0x3fff boot data area, which is copied out before it is reused. */
#define AP_TRAMPOLINE_BASE	0x8000
#define AP_SIPI_VECTOR		(AP_TRAMPOLINE_BASE >> 12)

#define MAX_CPUS		64
#define AP_STACK_SIZE		4096
#define KERNEL_STACK_SIZE	16384
#define USER_STACK_SIZE		65536

/* int 0x80: rax = number, rdi/rsi/rdx = arguments, result in rax. */
#define SYSCALL_VECTOR	0x80

#endif
