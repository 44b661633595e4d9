/* SPDX-License-Identifier: MIT */
/*
 * Application processor start.  ap_trampoline_start..ap_trampoline_end is
 * copied to AP_TRAMPOLINE_BASE by the BSP and entered by the SIPI in real
 * mode at CS:IP = (AP_SIPI_VECTOR << 8):0.  It is written to run at that
 * fixed address (AT() below), goes through 32-bit protected mode into
 * long mode on the BSP's GDT and page tables, and jumps into the image.
 */
#include "guest/arch.h"

/* Where a trampoline label ends up once copied. */
#define AT(label) (AP_TRAMPOLINE_BASE + ((label) - ap_trampoline_start))

	.text
	.code16
	.globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl AT(ap_gdt_descriptor)
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $KERNEL_CS32, $AT(ap_protected_mode)

	.code32
ap_protected_mode:
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
	ljmp $KERNEL_CS, $ap_long_mode

ap_gdt_descriptor:
	.word GDT_SIZE - 1
	.long gdt
ap_trampoline_end:

/*
 * In the image, 64-bit ring 0.  A ticket from ap_ticket picks the AP's
 * stack and slot; the APIC ID comes from the LAPIC ID register; the AP
 * is counted in ap_online only after its slot is written, so the BSP
 * sees complete slots.  Then it halts for good (IF stays clear).
 */
	.code64
ap_long_mode:
	lidt idt_descriptor(%rip)
	movl $1, %eax
	lock xaddl %eax, ap_ticket(%rip)
	cmpl $MAX_CPUS, %eax
	jae ap_halt
	movl %eax, %ecx
	incl %ecx
	shll $12, %ecx			/* AP_STACK_SIZE == 4096 */
	leaq ap_stacks(%rip), %rsp
	addq %rcx, %rsp

	movl $(LAPIC_BASE + 0x20), %edx	/* LAPIC ID register */
	movl (%rdx), %edx
	shrl $24, %edx
	leaq ap_apic_ids(%rip), %rcx
	movl %edx, (%rcx, %rax, 4)
	lock incl ap_online(%rip)
ap_halt:
	cli
	hlt
	jmp ap_halt

	.data
	.balign 4
	.globl ap_online, ap_ticket
ap_ticket:
	.long 0
ap_online:
	.long 0

	.bss
	.balign 64
	.globl ap_apic_ids
ap_apic_ids:
	.skip 4 * MAX_CPUS
	.balign 4096
ap_stacks:
	.skip AP_STACK_SIZE * MAX_CPUS

	.section .note.GNU-stack, "", @progbits
