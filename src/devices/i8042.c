// SPDX-License-Identifier: MIT
/*
 * Just enough of an i8042 keyboard controller for a guest to reset the
 * machine through it (command 0xfe pulses the CPU reset line), which is
 * one of the ways Linux and firmware reboot.  No keyboard or mouse: the
 * output buffer is always empty, so drivers probing it time out and give
 * up, and every other command is accepted and ignored.
 *
 * What a guest can observe of it is the status register's "last write
 * was a command" bit; that is its saved state ("i8042", vm/vm_state.h),
 * version 1: u32 version, u8 last write was a command (0/1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "devices/dev_state.h"
#include "devices/devices.h"
#include "vm/vm_state.h"

#define I8042_DATA_PORT 0x60
#define I8042_STATE_VERSION 1

#define I8042_STR_SYSFLAG 0x04	/* self test passed */
#define I8042_STR_CMDDAT 0x08	/* last write went to the command port */
#define I8042_STR_KEYLOCK 0x10	/* keyboard not inhibited */

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	bool last_was_cmd;
};

static void i8042_data_io(void *opaque, unsigned vcpu_id, uint64_t offset,
			  uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *k = opaque;

	(void)vcpu_id;
	(void)offset;
	(void)len;
	if (!is_write) {
		data[0] = 0x00;	/* nothing was ever received */
		return;
	}
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_io(void *opaque, unsigned vcpu_id, uint64_t offset,
			 uint8_t *data, unsigned len, bool is_write)
{
	struct i8042 *k = opaque;

	(void)offset;
	(void)len;
	pthread_mutex_lock(&k->lock);
	if (!is_write) {
		/* output and input buffers empty, always ready */
		data[0] = I8042_STR_SYSFLAG | I8042_STR_KEYLOCK |
			  (k->last_was_cmd ? I8042_STR_CMDDAT : 0);
		pthread_mutex_unlock(&k->lock);
		return;
	}
	k->last_was_cmd = true;
	pthread_mutex_unlock(&k->lock);
	if (data[0] == I8042_CMD_PULSE_RESET)
		vm_request_exit(k->vm, VM_EXIT_RESET, 0, vcpu_id,
				"guest reset through the keyboard controller");
}

static int i8042_save(void *opaque, struct state_buf *out)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	state_put_u32(out, I8042_STATE_VERSION);
	state_put_bool(out, k->last_was_cmd);
	pthread_mutex_unlock(&k->lock);
	return state_buf_error(out);
}

static int i8042_load(void *opaque, struct state_reader *in,
		      struct errmsg *err)
{
	struct i8042 *k = opaque;
	bool last_was_cmd = false;
	int ret;

	ret = dev_state_version(in, "i8042", I8042_STATE_VERSION, err);
	if (!ret)
		ret = dev_state_flag(in, "i8042", "command flag",
				     &last_was_cmd, err);
	if (!ret)
		ret = dev_state_end(in, "i8042", err);
	if (ret)
		return ret;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = last_was_cmd;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static const struct vm_state_ops i8042_state_ops = {
	.save = i8042_save,
	.load = i8042_load,
};

static void i8042_destroy(void *obj)
{
	struct i8042 *k = obj;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_create(struct vm *vm)
{
	struct i8042 *k;
	int ret;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	ret = pthread_mutex_init(&k->lock, NULL);
	if (ret) {
		free(k);
		return -ret;
	}
	/* owned first: a failed registration then leaks nothing */
	ret = vm_own(vm, i8042_destroy, k);
	if (ret) {
		i8042_destroy(k);
		return ret;
	}
	ret = bus_register(&vm->pio_bus, I8042_DATA_PORT, 1, i8042_data_io, k,
			   "i8042-data");
	if (ret)
		return ret;
	ret = bus_register(&vm->pio_bus, I8042_COMMAND_PORT, 1, i8042_cmd_io, k,
			   "i8042-cmd");
	if (ret)
		return ret;
	return vm_state_register(vm, "i8042", &i8042_state_ops, k);
}
