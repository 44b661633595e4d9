// SPDX-License-Identifier: MIT
/*
 * The saved state of fw_cfg, the i8042 and the ACPI registers on bare
 * VMs, no KVM (the UART's is in test_devices_state.c): a copy answers
 * as the original would, a hostile blob is refused with the device
 * named and nothing applied.
 */
#include <errno.h>
#include <string.h>

#include "devices/devices.h"
#include "devices_state_util.h"
#include "harness.h"

#define FW_CFG_SEL 0x510
#define FW_CFG_DATA 0x511
#define I8042_DATA 0x60

static void pio_write(struct vm *vm, uint16_t port, uint16_t v, unsigned len)
{
	uint8_t d[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	bus_access(&vm->pio_bus, 0, port, d, len, true);
}

static uint8_t pio_read(struct vm *vm, uint16_t port)
{
	uint8_t d = 0;

	bus_access(&vm->pio_bus, 0, port, &d, 1, false);
	return d;
}

static bool copy_state(struct vm *from, struct vm *to, const char *name)
{
	struct errmsg err = { { 0 } };
	struct state_buf b;
	int ret;

	if (dev_save(from, name, &b))
		return false;
	ret = dev_load(to, name, b.data, b.len, &err);
	state_buf_release(&b);
	return ret == 0;
}

/* A guest halfway through RAM_SIZE reads on from the value it started
 * with, though the new VM would compute another. */
TEST(devices_state_fw_cfg_mid_read)
{
	struct vm orig, copy;
	uint8_t a, b, next[8];

	vm_init_bare(&orig);
	vm_init_bare(&copy);
	CHECK_EQ(fw_cfg_create(&orig), 0);
	CHECK_EQ(fw_cfg_create(&copy), 0);
	CHECK(copy_state(&orig, &copy, "fw_cfg"));	/* nothing selected */
	CHECK_EQ(pio_read(&copy, FW_CFG_DATA), 0);
	orig.mem.size = 0x123456000ull;
	copy.mem.size = 0x1000;
	pio_write(&orig, FW_CFG_SEL, 0x0003, 2);
	CHECK_EQ(pio_read(&orig, FW_CFG_DATA), 0x00);
	CHECK_EQ(pio_read(&orig, FW_CFG_DATA), 0x60);
	CHECK_EQ(pio_read(&orig, FW_CFG_DATA), 0x45);

	CHECK(copy_state(&orig, &copy, "fw_cfg"));
	for (unsigned i = 0; i < sizeof(next); i++) {
		a = pio_read(&orig, FW_CFG_DATA);
		b = pio_read(&copy, FW_CFG_DATA);
		CHECK_EQ(a, b);
		next[i] = b;
	}
	/* the rest of 0x123456000, then zeroes past the end */
	CHECK(memcmp(next, "\x23\x01\0\0\0\0\0\0", 8) == 0);
	CHECK(same_state(&orig, &copy, "fw_cfg"));
	/* selecting again reads the new VM's own figure */
	pio_write(&copy, FW_CFG_SEL, 0x0003, 2);
	CHECK_EQ(pio_read(&copy, FW_CFG_DATA), 0x00);
	CHECK_EQ(pio_read(&copy, FW_CFG_DATA), 0x10);
	vm_destroy(&orig);
	vm_destroy(&copy);
}

static bool fw_cfg_refuses(struct vm *vm, uint8_t len, uint8_t offset,
			   const char *want)
{
	struct state_buf b;
	uint8_t item[255] = { 0 };
	bool refused;

	state_buf_init(&b);
	state_put_u32(&b, 1);
	state_put_u8(&b, len);
	state_put_u8(&b, offset);
	state_put_bytes(&b, item, len);
	refused = load_refused(vm, "fw_cfg", b.data, b.len, -EBADMSG, want);
	state_buf_release(&b);
	return refused;
}

TEST(devices_state_fw_cfg_hostile_blobs)
{
	struct vm src, vm;
	struct state_buf b;

	vm_init_bare(&src);
	vm_init_bare(&vm);
	CHECK_EQ(fw_cfg_create(&src), 0);
	CHECK_EQ(fw_cfg_create(&vm), 0);
	pio_write(&src, FW_CFG_SEL, 0x0000, 2);
	pio_read(&src, FW_CFG_DATA);
	pio_write(&vm, FW_CFG_SEL, 0x0001, 2);	/* a state of its own */
	pio_read(&vm, FW_CFG_DATA);
	CHECK_EQ(dev_save(&src, "fw_cfg", &b), 0);
	CHECK_EQ(b.len, 4 + 2 + 4);
	CHECK(truncations_refused(&vm, "fw_cfg", &b));
	CHECK(version_refused(&vm, "fw_cfg", &b));
	CHECK(fw_cfg_refuses(&vm, 9, 0, "item length 9 over 8"));
	CHECK(fw_cfg_refuses(&vm, 255, 0, "item length 255 over 8"));
	CHECK(fw_cfg_refuses(&vm, 4, 5, "offset 5 past the item's 4 bytes"));
	CHECK(fw_cfg_refuses(&vm, 0, 1, "offset 1 past"));
	CHECK_EQ(dev_load(&vm, "fw_cfg", b.data, b.len, NULL), 0);
	CHECK(same_state(&src, &vm, "fw_cfg"));
	CHECK_EQ(pio_read(&vm, FW_CFG_DATA), 'E');	/* "QEMU", from 1 */
	state_buf_release(&b);
	vm_destroy(&src);
	vm_destroy(&vm);
}

TEST(devices_state_i8042_status)
{
	struct vm orig, copy;

	vm_init_bare(&orig);
	vm_init_bare(&copy);
	CHECK_EQ(i8042_create(&orig), 0);
	CHECK_EQ(i8042_create(&copy), 0);
	/* "write output port": a command that changes nothing else */
	pio_write(&orig, I8042_COMMAND_PORT, 0xd1, 1);
	CHECK_EQ(pio_read(&orig, I8042_COMMAND_PORT), 0x1c);
	CHECK_EQ(pio_read(&copy, I8042_COMMAND_PORT), 0x14);
	CHECK(copy_state(&orig, &copy, "i8042"));
	CHECK_EQ(pio_read(&copy, I8042_COMMAND_PORT), 0x1c);
	pio_write(&orig, I8042_DATA, 0xdf, 1);
	pio_write(&copy, I8042_DATA, 0xdf, 1);
	CHECK_EQ(pio_read(&orig, I8042_COMMAND_PORT), 0x14);
	CHECK_EQ(pio_read(&copy, I8042_COMMAND_PORT), 0x14);
	CHECK(same_state(&orig, &copy, "i8042"));
	CHECK_EQ(copy.exit.reason, VM_EXIT_NONE);
	vm_destroy(&orig);
	vm_destroy(&copy);
}

TEST(devices_state_i8042_hostile_blobs)
{
	static const uint8_t flag_2[] = { 1, 0, 0, 0, 2 };
	struct vm src, vm;
	struct state_buf b;

	vm_init_bare(&src);
	vm_init_bare(&vm);
	CHECK_EQ(i8042_create(&src), 0);
	CHECK_EQ(i8042_create(&vm), 0);
	pio_write(&vm, I8042_COMMAND_PORT, 0xaa, 1);	/* its own state */
	CHECK_EQ(dev_save(&src, "i8042", &b), 0);
	CHECK_EQ(b.len, 5);
	CHECK(truncations_refused(&vm, "i8042", &b));
	CHECK(version_refused(&vm, "i8042", &b));
	CHECK(load_refused(&vm, "i8042", flag_2, sizeof(flag_2), -EBADMSG,
			   "command flag is 2, not 0 or 1"));
	CHECK_EQ(dev_load(&vm, "i8042", b.data, b.len, NULL), 0);
	CHECK(same_state(&src, &vm, "i8042"));
	state_buf_release(&b);
	vm_destroy(&src);
	vm_destroy(&vm);
}

/* The ACPI sleep registers read as constants and the power button is an
 * irqchip edge: nothing to save, nothing registered. */
TEST(devices_state_acpi_registers_nothing)
{
	struct vm vm;
	uint8_t v = 0xff;

	vm_init_bare(&vm);
	CHECK_EQ(acpi_sleep_create(&vm), 0);
	CHECK_EQ(vm_state_count(&vm), 0);
	CHECK_EQ(acpi_power_button_press(&vm), -EBADF);	/* no irqchip */
	CHECK_EQ(bus_access(&vm.pio_bus, 0, ACPI_SLEEP_STATUS_PORT, &v, 1,
			    false), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(vm_state_count(&vm), 0);
	vm_destroy(&vm);
}
