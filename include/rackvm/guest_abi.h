/* SPDX-License-Identifier: MIT */
/*
 * The contract between rackvm and its bundled guest runtime.
 *
 * Shared, unchanged, by the host (src/) and the freestanding guest (guest/),
 * so it must stay plain C with fixed-size types and no host headers.
 *
 * Result channel ("ucall", in the spirit of the KVM selftests): the guest
 * fills a struct ucall in its own memory and writes the struct's guest
 * physical address with a 32-bit OUT to UCALL_PORT.  The host reads the
 * struct (bounds-checked: the guest is untrusted) before the OUT instruction
 * completes, so the guest may reuse the struct as soon as the OUT returns.
 * Under QEMU the port is unassigned and the write is ignored; the guest then
 * also prints every message on the UART and ends through isa-debug-exit, so
 * the same image runs unchanged on both.
 */
#ifndef RACKVM_GUEST_ABI_H
#define RACKVM_GUEST_ABI_H

#include <stdint.h>

#define UCALL_PORT 0x1000u

/* QEMU-compatible isa-debug-exit: the host exits with (code << 1) | 1. */
#define DEBUG_EXIT_PORT 0xf4u
/* What the bundled guest writes to DEBUG_EXIT_PORT when it ends. */
#define GUEST_DEBUG_EXIT_PASS 0u	/* process exit status 1 */
#define GUEST_DEBUG_EXIT_FAIL 1u	/* process exit status 3 */

enum ucall_type {
	UCALL_NONE = 0,
	UCALL_PRINT = 1,	/* text in .message, already printed on the UART */
	UCALL_PASS = 2,		/* a named check passed (.message names it) */
	UCALL_FAIL = 3,		/* assertion failed: .file, .line, .message */
	UCALL_DONE = 4,		/* workload finished; .args[0] = 0 on success */
	UCALL_EXCEPTION = 5,	/* CPU exception: see UCALL_EXC_* in .args */
	UCALL_RESULT = 6,	/* key=value figures in .message, machine-readable */
	UCALL_TYPE_MAX
};

/* .args layout of UCALL_EXCEPTION */
#define UCALL_EXC_VECTOR 0
#define UCALL_EXC_RIP 1
#define UCALL_EXC_ERROR_CODE 2
#define UCALL_EXC_CR2 3

#define UCALL_MAX_ARGS 6
#define UCALL_FILE_LEN 64
#define UCALL_MESSAGE_LEN 256

struct ucall {
	uint32_t magic;		/* UCALL_MAGIC, so a stray OUT is recognised */
	uint32_t type;		/* enum ucall_type */
	uint32_t vcpu_id;	/* the guest's own CPU index */
	uint32_t line;
	uint64_t args[UCALL_MAX_ARGS];
	char file[UCALL_FILE_LEN];	/* NUL-terminated, host re-terminates */
	char message[UCALL_MESSAGE_LEN];
};

#define UCALL_MAGIC 0x6c6c6163u /* "call" */

#endif
