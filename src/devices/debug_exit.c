// SPDX-License-Identifier: MIT
/*
 * isa-debug-exit as QEMU has it: a guest write of v ends the VM, and the
 * process exit status becomes (v << 1) | 1 (never 0, so a test harness
 * can tell "guest reported" from "VMM exited normally").
 *
 * QEMU's device is one port wide but takes 1-, 2- and 4-byte writes at it.
 * The bus rejects accesses that run past a range, so the range covers four
 * ports; only accesses starting at the first one count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"

#define DEBUG_EXIT_SPAN 4

struct debug_exit {
	struct vm *vm;
};

static void debug_exit_io(void *opaque, unsigned vcpu_id, uint64_t offset,
			  uint8_t *data, unsigned len, bool is_write)
{
	struct debug_exit *d = opaque;
	uint32_t v = 0;
	unsigned i;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	if (offset != 0 || len > 4)
		return;
	for (i = 0; i < len; i++)	/* port I/O is little-endian */
		v |= (uint32_t)data[i] << (8 * i);
	/* unsigned arithmetic: only the low byte survives exit() anyway */
	vm_request_exit(d->vm, VM_EXIT_DEBUG_EXIT, (int)((v << 1) | 1),
			vcpu_id, "guest wrote %u to isa-debug-exit", v);
}

static void debug_exit_destroy(void *obj)
{
	free(obj);
}

int debug_exit_create(struct vm *vm, uint16_t port)
{
	struct debug_exit *d;
	int ret;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->vm = vm;
	/* owned first: a failed registration then leaks nothing */
	ret = vm_own(vm, debug_exit_destroy, d);
	if (ret) {
		free(d);
		return ret;
	}
	return bus_register(&vm->pio_bus, port, DEBUG_EXIT_SPAN, debug_exit_io,
			    d, "isa-debug-exit");
}
