/* SPDX-License-Identifier: MIT */
/*
 * Exception and syscall entry stubs, and the drop to ring 3.
 * All of them push a vector and an error code (0 when the CPU has none)
 * so that one struct trap_frame describes every entry.
 *
 * Handlers save general registers only: the emulator that runs ring 0 on
 * the target machines cannot do XSAVE/XRSTOR, and the C code is built
 * with -mgeneral-regs-only so it never touches the FPU/SSE state.
 */
#include "guest/arch.h"
#include "guest/lapic.h"

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR_CODE(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || \
			   (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

	.text
	.macro exception_stub vector
	.balign 16
exception_stub_\vector:
	.if !HAS_ERROR_CODE(\vector)
	pushq $0
	.endif
	pushq $\vector
	jmp exception_common
	.endm

#define EXCEPTION_VECTORS 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.irp vector, EXCEPTION_VECTORS
	exception_stub \vector
	.endr

/* Table of the stubs' addresses, for setup.c to build the IDT. */
	.section .rodata
	.balign 8
	.globl exception_stubs
exception_stubs:
	.irp vector, EXCEPTION_VECTORS
	.quad exception_stub_\vector
	.endr

	.text
/* Saves the registers as struct trap_frame (trap.c) and calls
 * trap_handler(frame).  A fatal exception never returns; a syscall
 * returns and resumes the caller with the registers in the frame. */
exception_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_handler
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector, error code */
	iretq

/* int 0x80: the syscall gate (DPL 3).  Same frame as an exception. */
	.globl syscall_entry
syscall_entry:
	pushq $0
	pushq $SYSCALL_VECTOR
	jmp exception_common

/* The LAPIC timer, taken only at the hlt of SYS_SLEEP_UNTIL (ring 0 on
 * the kernel stack, the only place interrupts are enabled): waking the
 * CPU was its whole job, so it just ends the interrupt. */
	.globl lapic_timer_entry
lapic_timer_entry:
	pushq %rax
	movl $(LAPIC_BASE + LAPIC_EOI), %eax
	movl $0, (%rax)
	popq %rax
	iretq

/* A spurious LAPIC interrupt needs no EOI. */
	.globl lapic_spurious_entry
lapic_spurious_entry:
	iretq

/* enter_user(entry, stack_top): iretq to ring 3 with IOPL 3. */
	.globl enter_user
enter_user:
	xorl %eax, %eax
	movw %ax, %ds
	movw %ax, %es
	pushq $(USER_DS | 3)
	pushq %rsi
	pushq $RFLAGS_USER
	pushq $(USER_CS | 3)
	pushq %rdi
	iretq

	.section .note.GNU-stack, "", @progbits
