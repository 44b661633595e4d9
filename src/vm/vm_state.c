// SPDX-License-Identifier: MIT
/*
 * The devices' state registry (vm_state.h).
 */
#include "vm/vm_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

int vm_state_register(struct vm *vm, const char *name,
		      const struct vm_state_ops *ops, void *opaque)
{
	struct vm_state_entry *list;
	size_t len = name ? strlen(name) : 0;

	if (!len || len >= VM_STATE_NAME_MAX || !ops || !ops->save ||
	    !ops->load)
		return -EINVAL;
	if (vm_state_find(vm, name))
		return -EEXIST;
	list = realloc(vm->states, (vm->nstates + 1) * sizeof(*list));
	if (!list)
		return -ENOMEM;
	vm->states = list;
	list = &vm->states[vm->nstates++];
	memset(list, 0, sizeof(*list));
	memcpy(list->name, name, len);
	list->ops = ops;
	list->opaque = opaque;
	return 0;
}

unsigned vm_state_count(const struct vm *vm)
{
	return vm->nstates;
}

const struct vm_state_entry *vm_state_at(const struct vm *vm, unsigned i)
{
	return i < vm->nstates ? &vm->states[i] : NULL;
}

const struct vm_state_entry *vm_state_find(const struct vm *vm,
					   const char *name)
{
	for (unsigned i = 0; i < vm->nstates; i++)
		if (!strcmp(vm->states[i].name, name))
			return &vm->states[i];
	return NULL;
}

void vm_state_release(struct vm *vm)
{
	free(vm->states);
	vm->states = NULL;
	vm->nstates = 0;
}

int vm_state_quiesce_all(struct vm *vm, struct errmsg *err)
{
	for (unsigned i = 0; i < vm->nstates; i++) {
		const struct vm_state_entry *e = &vm->states[i];
		int ret = e->ops->quiesce ? e->ops->quiesce(e->opaque) : 0;

		if (ret) {
			errmsg_set(err, ret, "%s cannot stop its requests: %s",
				   e->name, strerror(-ret));
			while (i--) {
				e = &vm->states[i];
				if (e->ops->unquiesce)
					e->ops->unquiesce(e->opaque);
			}
			return ret;
		}
	}
	return 0;
}

void vm_state_unquiesce_all(struct vm *vm)
{
	for (unsigned i = vm->nstates; i--; ) {
		const struct vm_state_entry *e = &vm->states[i];

		if (e->ops->unquiesce)
			e->ops->unquiesce(e->opaque);
	}
}
