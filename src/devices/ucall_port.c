// SPDX-License-Identifier: MIT
/*
 * The host end of the guest's result channel (include/rackvm/guest_abi.h):
 * a 32-bit OUT of a struct ucall's guest physical address.
 *
 * The guest is untrusted and may rewrite the struct from another vCPU
 * while we look at it, so it is copied out of guest RAM once and only the
 * copy is checked and used.  Anything malformed is dropped silently: a
 * stray or hostile OUT must neither crash the VMM nor flood its output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"

struct ucall_port {
	struct vm *vm;
};

static void ucall_port_io(void *opaque, unsigned vcpu_id, uint64_t offset,
			  uint8_t *data, unsigned len, bool is_write)
{
	struct ucall_port *p = opaque;
	const void *src;
	struct ucall uc;
	uint32_t gpa;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	if (offset != 0 || len != 4)
		return;
	gpa = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
	      (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;

	src = guest_mem_ptr(&p->vm->mem, gpa, sizeof(uc));
	if (!src)
		return;
	memcpy(&uc, src, sizeof(uc));

	if (uc.magic != UCALL_MAGIC)
		return;
	/* UCALL_NONE carries nothing a handler could act on */
	if (uc.type == UCALL_NONE || uc.type >= UCALL_TYPE_MAX)
		return;
	uc.file[sizeof(uc.file) - 1] = '\0';
	uc.message[sizeof(uc.message) - 1] = '\0';

	if (p->vm->ucall_handler)
		p->vm->ucall_handler(p->vm->ucall_opaque, p->vm, vcpu_id, &uc);
}

static void ucall_port_destroy(void *obj)
{
	free(obj);
}

int ucall_port_create(struct vm *vm)
{
	struct ucall_port *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->vm = vm;
	/* owned first: a failed registration then leaks nothing */
	ret = vm_own(vm, ucall_port_destroy, p);
	if (ret) {
		free(p);
		return ret;
	}
	return bus_register(&vm->pio_bus, UCALL_PORT, 4, ucall_port_io, p,
			    "ucall");
}
