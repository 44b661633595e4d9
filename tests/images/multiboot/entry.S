/* SPDX-License-Identifier: MIT */
/*
 * Multiboot v1 entry for the test kernel: the header (page-aligned
 * modules + memory information, so the ELF program headers are used),
 * then a stack and a call to mb_main(magic, info).
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	pushl %ebx		/* multiboot information */
	pushl %eax		/* boot loader magic */
	call mb_main
1:	hlt
	jmp 1b

	.bss
	.balign 16
	.space 4096
stack_top:

	.section .note.GNU-stack, "", @progbits
