/* The bundled guest runtime image, embedded so that `rackvm run` with no
 * --kernel has something to boot.  GUEST_ELF is set by the Makefile. */
	.section .rodata
	.balign 16
	.globl bundled_guest_start, bundled_guest_end
bundled_guest_start:
	.incbin GUEST_ELF
bundled_guest_end:
	.section .note.GNU-stack, "", @progbits
