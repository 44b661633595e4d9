/* SPDX-License-Identifier: MIT */
/*
 * PVH entry: the loader starts us in 32-bit protected mode, paging off,
 * with %ebx = physical address of struct hvm_start_info.  We switch to
 * long mode on page tables and a GDT that are already complete in the
 * image (ring 0 is emulated and slow on the target machines, so nothing
 * is computed here that the assembler can compute instead) and call
 * kernel_main() on the ring-0 stack.
 */
#include "guest/arch.h"

/* The PVH ELF note.  The descriptor is 8 bytes because QEMU reads a
 * pointer-sized entry from 64-bit ELF files; readers that take 4 bytes
 * get the same (sub-4 GiB) value. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* name size: "Xen\0" */
	.long 8				/* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.quad pvh_entry
	.balign 4

	.section .text.boot, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, pvh_start_info_paddr
	movl $(kernel_stack + KERNEL_STACK_SIZE), %esp

	lgdt gdt_descriptor
	movl $KERNEL_DS, %eax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss

	movl $CR4_RUNTIME, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl $CR0_RUNTIME, %eax
	movl %eax, %cr0
	ljmp $KERNEL_CS, $long_mode_entry

	.code64
long_mode_entry:
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	movl $(kernel_stack + KERNEL_STACK_SIZE), %esp
	call kernel_main
1:	cli
	hlt
	jmp 1b

/*
 * GDT: flat segments; the TSS descriptor is filled in by setup.c because
 * its base address is split across fields no relocation can express.
 */
	.data
	.balign 16
	.globl gdt, gdt_end, gdt_descriptor
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* KERNEL_CS: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* KERNEL_DS */
	.quad 0x00cff2000000ffff	/* USER_DS: DPL 3 */
	.quad 0x00affa000000ffff	/* USER_CS: 64-bit code, DPL 3 */
	.quad 0x00cf9a000000ffff	/* KERNEL_CS32: for the AP trampoline */
	.globl gdt_tss
gdt_tss:
	.quad 0, 0			/* TSS_SEL */
gdt_end:
	.if gdt_end - gdt != GDT_SIZE
	.error "GDT_SIZE does not match the GDT"
	.endif

	.balign 8
	.word 0				/* so that the base is 8-byte aligned */
gdt_descriptor:
	.word GDT_SIZE - 1
	.quad gdt

	.balign 4
	.globl pvh_start_info_paddr
pvh_start_info_paddr:
	.long 0

/*
 * Identity map of the first 4 GiB in 2 MiB pages, all user-accessible
 * (workloads run in ring 3 and touch everything), the top 32 MiB
 * uncached for the LAPIC and other MMIO.  RAM above 4 GiB is added by
 * setup.c from the memory map.
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
	.quad boot_pdpt + PTE_TABLE
	.fill 511, 8, 0
boot_pdpt:
	.quad boot_pd + 0x0000 + PTE_TABLE
	.quad boot_pd + 0x1000 + PTE_TABLE
	.quad boot_pd + 0x2000 + PTE_TABLE
	.quad boot_pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
boot_pd:
	.set page, 0
	.rept 2048
	.if page >= UNCACHED_FROM
	.quad page + PTE_LARGE_UC
	.else
	.quad page + PTE_LARGE
	.endif
	.set page, page + 0x200000
	.endr

	.bss
	.balign 4096
	.globl kernel_stack
kernel_stack:
	.skip KERNEL_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
