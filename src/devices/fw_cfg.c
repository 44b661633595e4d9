// SPDX-License-Identifier: MIT
/*
 * The traditional (port I/O, no DMA) interface of QEMU's fw_cfg, with the
 * handful of items that firmware and guests use to recognise it and size
 * the machine.  Port 0x510 takes a 16-bit item key; each byte read from
 * port 0x511 returns the next byte of that item, then zeroes past its end.
 *
 * As in QEMU there is one selector per device, not per vCPU; a lock keeps
 * the (key, offset) pair consistent when several vCPUs use it.
 *
 * Saved state ("fw_cfg", vm/vm_state.h), version 1: u32 version, u8
 * item length, u8 offset, the item's bytes.  The selector is write-only
 * and the item is latched when selected, so the latched bytes and the
 * offset are all a guest can still observe: a guest in the middle of an
 * item reads on from the same value, whatever the new VM would compute.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/dev_state.h"
#include "devices/devices.h"
#include "util/le.h"
#include "vm/vm_state.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000f
#define FW_CFG_FILE_DIR 0x0019

/* key bit 14 asks for write access (no item here is writable, and the
 * item is still readable); bit 15 selects the architecture's own table,
 * of which this machine has no items */
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ARCH_LOCAL 0x8000

#define FW_CFG_ID_TRADITIONAL 0x1	/* bit 1 (DMA) stays clear */

#define FW_CFG_ITEM_MAX 8
#define FW_CFG_STATE_VERSION 1

struct fw_cfg {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t item[FW_CFG_ITEM_MAX];	/* the selected item's bytes */
	unsigned item_len;
	unsigned offset;
};

/*
 * Fills the item when it is selected, from the VM's current figures, so a
 * read sequence sees one consistent value even if it spans many OUTs.
 */
static void fw_cfg_select(struct fw_cfg *f, uint16_t key)
{
	f->offset = 0;
	f->item_len = 0;
	if (key & FW_CFG_ARCH_LOCAL)
		return;
	switch (key & ~FW_CFG_WRITE_CHANNEL) {
	case FW_CFG_SIGNATURE:
		memcpy(f->item, "QEMU", 4);
		f->item_len = 4;
		break;
	case FW_CFG_ID:
		put_le_bytes(f->item, FW_CFG_ID_TRADITIONAL, 4);
		f->item_len = 4;
		break;
	case FW_CFG_RAM_SIZE:
		put_le_bytes(f->item, f->vm->mem.size, 8);
		f->item_len = 8;
		break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS:
		/* no CPU hotplug: the maximum is what the VM has */
		put_le_bytes(f->item, f->vm->ncpus, 2);
		f->item_len = 2;
		break;
	case FW_CFG_FILE_DIR:
		/* a big-endian u32 count of the files that follow: none */
		memset(f->item, 0, 4);
		f->item_len = 4;
		break;
	}
}

static void fw_cfg_io(void *opaque, unsigned vcpu_id, uint64_t offset,
		      uint8_t *data, unsigned len, bool is_write)
{
	struct fw_cfg *f = opaque;
	unsigned i;

	(void)vcpu_id;
	pthread_mutex_lock(&f->lock);
	if (offset == 0 && len == 2) {
		/* the selector is write-only and 16 bits wide */
		if (is_write)
			fw_cfg_select(f, (uint16_t)(data[0] | data[1] << 8));
	} else if (offset == 1 && len == 1) {
		/* data writes were dropped from fw_cfg long ago: ignore */
		if (!is_write) {
			data[0] = f->offset < f->item_len ?
					  f->item[f->offset] : 0;
			if (f->offset < f->item_len)
				f->offset++;
		}
	} else if (!is_write) {
		for (i = 0; i < len; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&f->lock);
}

static int fw_cfg_save(void *opaque, struct state_buf *out)
{
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	state_put_u32(out, FW_CFG_STATE_VERSION);
	state_put_u8(out, (uint8_t)f->item_len);
	state_put_u8(out, (uint8_t)f->offset);
	state_put_bytes(out, f->item, f->item_len);
	pthread_mutex_unlock(&f->lock);
	return state_buf_error(out);
}

static int fw_cfg_load(void *opaque, struct state_reader *in,
		       struct errmsg *err)
{
	struct fw_cfg *f = opaque;
	uint8_t item[FW_CFG_ITEM_MAX], len = 0, offset = 0;
	int ret;

	ret = dev_state_version(in, "fw_cfg", FW_CFG_STATE_VERSION, err);
	if (ret)
		return ret;
	state_get_u8(in, &len);
	state_get_u8(in, &offset);
	/* the length bounds the bytes that follow: checked first */
	if (len > FW_CFG_ITEM_MAX)
		return errmsg_set(err, -EBADMSG,
				  "fw_cfg: item length %u over %u", len,
				  FW_CFG_ITEM_MAX);
	state_get_bytes(in, item, len);
	ret = dev_state_end(in, "fw_cfg", err);
	if (ret)
		return ret;
	if (offset > len)
		return errmsg_set(err, -EBADMSG,
				  "fw_cfg: offset %u past the item's %u bytes",
				  offset, len);

	pthread_mutex_lock(&f->lock);
	memcpy(f->item, item, len);
	f->item_len = len;
	f->offset = offset;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static const struct vm_state_ops fw_cfg_state_ops = {
	.save = fw_cfg_save,
	.load = fw_cfg_load,
};

static void fw_cfg_destroy(void *obj)
{
	struct fw_cfg *f = obj;

	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fw_cfg_create(struct vm *vm)
{
	struct fw_cfg *f;
	int ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->vm = vm;
	ret = pthread_mutex_init(&f->lock, NULL);
	if (ret) {
		free(f);
		return -ret;
	}
	/* owned first: a failed registration then leaks nothing */
	ret = vm_own(vm, fw_cfg_destroy, f);
	if (ret) {
		fw_cfg_destroy(f);
		return ret;
	}
	ret = bus_register(&vm->pio_bus, FW_CFG_PORT_SEL, 2, fw_cfg_io, f,
			   "fw_cfg");
	if (ret)
		return ret;
	return vm_state_register(vm, "fw_cfg", &fw_cfg_state_ops, f);
}
