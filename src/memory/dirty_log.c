// SPDX-License-Identifier: MIT
/*
 * The working-set monitor's reader of the VM's dirty log (dirty_log.h);
 * vm/vm_dirty.c owns and harvests the log.
 */
#include "memory/dirty_log.h"

#include <errno.h>
#include <stdlib.h>

#include "vm/vm_dirty.h"

struct dirty_log {
	struct vm_dirty_reader *reader;
};

const char *dirty_log_mode_name(enum vm_dirty_log mode)
{
	switch (mode) {
	case VM_DIRTY_LOG_RING: return "ring";
	case VM_DIRTY_LOG_BITMAP: return "bitmap";
	case VM_DIRTY_LOG_AUTO: return "auto";
	case VM_DIRTY_LOG_OFF: break;
	}
	return "off";
}

int64_t dirty_log_collect(struct dirty_log *dl, uint64_t *bitmap,
			  struct errmsg *err)
{
	return vm_dirty_collect(dl->reader, bitmap, err);
}

int dirty_log_create(struct vm *vm, struct dirty_log **out, struct errmsg *err)
{
	struct dirty_log *dl;
	int ret;

	if (vm->dirty_log != VM_DIRTY_LOG_RING &&
	    vm->dirty_log != VM_DIRTY_LOG_BITMAP)
		return errmsg_set(err, -EINVAL,
				  "the VM was created without dirty logging");
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return errmsg_set(err, -ENOMEM, "dirty log: out of memory");
	ret = vm_dirty_open(vm, &dl->reader, err);
	if (ret) {
		free(dl);
		return ret;
	}
	*out = dl;
	return 0;
}

void dirty_log_destroy(struct dirty_log *dl)
{
	if (!dl)
		return;
	vm_dirty_close(dl->reader);
	free(dl);
}
