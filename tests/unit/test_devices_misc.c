// SPDX-License-Identifier: MIT
/* isa-debug-exit, fw_cfg, i8042 and the ucall port on a bare VM. */
#include <errno.h>
#include <string.h>

#include "devices/devices.h"
#include "harness.h"

static int pio_write(struct vm *vm, uint16_t port, uint32_t v, unsigned len)
{
	uint8_t d[4] = { v, v >> 8, v >> 16, v >> 24 };

	return bus_access(&vm->pio_bus, 0, port, d, len, true);
}

static uint32_t pio_read(struct vm *vm, uint16_t port, unsigned len)
{
	uint8_t d[4] = { 0 };

	bus_access(&vm->pio_bus, 0, port, d, len, false);
	return d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24;
}

TEST(debug_exit_byte_write)
{
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(debug_exit_create(&vm, DEBUG_EXIT_PORT), 0);
	CHECK_EQ(pio_read(&vm, DEBUG_EXIT_PORT, 1), 0xff);
	CHECK_EQ(vm.exit.reason, VM_EXIT_NONE);
	CHECK_EQ(pio_write(&vm, DEBUG_EXIT_PORT, GUEST_DEBUG_EXIT_FAIL, 1), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_DEBUG_EXIT);
	CHECK_EQ(vm.exit.code, 3);
	CHECK(strstr(vm.exit.detail, "isa-debug-exit") != NULL);
	vm_destroy(&vm);
}

TEST(debug_exit_wide_write)
{
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(debug_exit_create(&vm, DEBUG_EXIT_PORT), 0);
	CHECK_EQ(pio_write(&vm, DEBUG_EXIT_PORT, 0x21, 4), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_DEBUG_EXIT);
	CHECK_EQ(vm.exit.code, (0x21 << 1) | 1);
	vm_destroy(&vm);

	vm_init_bare(&vm);
	CHECK_EQ(debug_exit_create(&vm, DEBUG_EXIT_PORT), 0);
	CHECK_EQ(pio_write(&vm, DEBUG_EXIT_PORT, 0x0100, 2), 0);
	CHECK_EQ(vm.exit.code, (0x100 << 1) | 1);
	vm_destroy(&vm);
}

TEST(i8042_status_and_reset)
{
	struct vm vm;
	uint32_t st;

	vm_init_bare(&vm);
	CHECK_EQ(i8042_create(&vm), 0);
	st = pio_read(&vm, 0x64, 1);
	CHECK_EQ(st & 0x03, 0);	/* output and input buffers empty */
	CHECK(st & 0x04);		/* system flag */
	CHECK_EQ(pio_read(&vm, 0x60, 1), 0);
	/* what Linux writes around A20 and LEDs is ignored */
	CHECK_EQ(pio_write(&vm, 0x64, 0xd1, 1), 0);
	CHECK_EQ(pio_write(&vm, 0x60, 0xdf, 1), 0);
	CHECK_EQ(pio_write(&vm, 0x64, 0xaa, 1), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_NONE);
	CHECK_EQ(pio_read(&vm, 0x64, 1) & 0x03, 0);
	CHECK_EQ(pio_write(&vm, 0x64, 0xfe, 1), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_RESET);
	CHECK_EQ(vm.exit.code, 0);
	vm_destroy(&vm);
}

static void fw_cfg_read_item(struct vm *vm, uint16_t key, uint8_t *buf,
			     unsigned n)
{
	pio_write(vm, 0x510, key, 2);
	for (unsigned i = 0; i < n; i++)
		buf[i] = (uint8_t)pio_read(vm, 0x511, 1);
}

TEST(fw_cfg_items)
{
	struct vm vm;
	uint8_t b[12];
	uint64_t ram = 0;

	vm_init_bare(&vm);
	CHECK_EQ(fw_cfg_create(&vm), 0);
	vm.ncpus = 3;
	vm.mem.size = 0x123456000ull;

	fw_cfg_read_item(&vm, 0x0000, b, 6);
	CHECK(memcmp(b, "QEMU\0\0", 6) == 0);	/* zeroes past the end */
	fw_cfg_read_item(&vm, 0x0001, b, 4);
	CHECK_EQ(b[0], 1);			/* traditional, no DMA */
	CHECK_EQ(b[1] | b[2] | b[3], 0);
	fw_cfg_read_item(&vm, 0x0005, b, 3);
	CHECK_EQ(b[0], 3);
	CHECK_EQ(b[1], 0);
	CHECK_EQ(b[2], 0);
	fw_cfg_read_item(&vm, 0x000f, b, 2);
	CHECK_EQ(b[0] | b[1] << 8, 3);
	fw_cfg_read_item(&vm, 0x0003, b, 8);
	for (int i = 7; i >= 0; i--)
		ram = ram << 8 | b[i];
	CHECK_EQ(ram, 0x123456000ull);
	fw_cfg_read_item(&vm, 0x0019, b, 4);
	CHECK_EQ(b[0] | b[1] | b[2] | b[3], 0);
	memset(b, 0xaa, sizeof(b));
	fw_cfg_read_item(&vm, 0x1234, b, 4);	/* unknown: zero length */
	CHECK_EQ(b[0] | b[1] | b[2] | b[3], 0);
	fw_cfg_read_item(&vm, 0x8000, b, 4);	/* arch table: empty */
	CHECK_EQ(b[0] | b[1] | b[2] | b[3], 0);
	/* reselecting restarts at offset 0 */
	fw_cfg_read_item(&vm, 0x0000, b, 2);
	fw_cfg_read_item(&vm, 0x0000, b, 4);
	CHECK(memcmp(b, "QEMU", 4) == 0);
	/* the selector is write-only */
	CHECK_EQ(pio_read(&vm, 0x510, 2), 0xffff);
	vm_destroy(&vm);
}

struct ucall_log {
	int calls;
	unsigned vcpu_id;
	struct ucall last;
};

static void record_ucall(void *opaque, struct vm *vm, unsigned vcpu_id,
			 const struct ucall *uc)
{
	struct ucall_log *log = opaque;

	(void)vm;
	log->calls++;
	log->vcpu_id = vcpu_id;
	log->last = *uc;
}

static int put_ucall(struct vm *vm, uint64_t gpa, const struct ucall *uc)
{
	return guest_mem_write(&vm->mem, gpa, uc, sizeof(*uc));
}

TEST(ucall_port_delivers_and_rejects)
{
	struct ucall_log log = { 0 };
	const uint64_t size = 4ull << 20;
	struct ucall uc;
	struct vm vm;
	uint8_t d[4] = { 0x00, 0x10, 0, 0 };

	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, size, false, NULL), 0);
	CHECK_EQ(ucall_port_create(&vm), 0);
	vm.ucall_handler = record_ucall;
	vm.ucall_opaque = &log;

	memset(&uc, 'A', sizeof(uc));	/* strings without terminators */
	uc.magic = UCALL_MAGIC;
	uc.type = UCALL_FAIL;
	uc.line = 42;
	uc.args[0] = 7;
	CHECK_EQ(put_ucall(&vm, 0x1000, &uc), 0);
	CHECK_EQ(bus_access(&vm.pio_bus, 2, UCALL_PORT, d, 4, true), 0);
	CHECK_EQ(log.calls, 1);
	CHECK_EQ(log.vcpu_id, 2);
	CHECK_EQ(log.last.type, UCALL_FAIL);
	CHECK_EQ(log.last.line, 42);
	CHECK_EQ(log.last.args[0], 7);
	CHECK_EQ(strlen(log.last.file), UCALL_FILE_LEN - 1);
	CHECK_EQ(strlen(log.last.message), UCALL_MESSAGE_LEN - 1);
	/* the guest's own copy is untouched */
	CHECK_EQ(((struct ucall *)guest_mem_ptr(&vm.mem, 0x1000, sizeof(uc)))
			 ->message[UCALL_MESSAGE_LEN - 1], 'A');

	/* struct running past the end of RAM, and far outside it */
	CHECK_EQ(put_ucall(&vm, size - sizeof(uc), &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, (uint32_t)(size - sizeof(uc)), 4),
		 0);
	CHECK_EQ(log.calls, 2);		/* exactly at the end is fine */
	CHECK_EQ(pio_write(&vm, UCALL_PORT, (uint32_t)(size - 8), 4), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0xfffffff0u, 4), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0xc0000000u, 4), 0);
	CHECK_EQ(log.calls, 2);

	/* bad magic, bad types */
	uc.magic = UCALL_MAGIC ^ 1;
	CHECK_EQ(put_ucall(&vm, 0x2000, &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x2000, 4), 0);
	uc.magic = UCALL_MAGIC;
	uc.type = UCALL_TYPE_MAX;
	CHECK_EQ(put_ucall(&vm, 0x3000, &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x3000, 4), 0);
	uc.type = 0xffffffffu;
	CHECK_EQ(put_ucall(&vm, 0x3000, &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x3000, 4), 0);
	uc.type = UCALL_NONE;
	CHECK_EQ(put_ucall(&vm, 0x3000, &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x3000, 4), 0);
	CHECK_EQ(log.calls, 2);

	/* only 32-bit writes count; reads see nothing */
	uc.type = UCALL_PRINT;
	CHECK_EQ(put_ucall(&vm, 0x1000, &uc), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x1000, 2), 0);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x1000, 1), 0);
	CHECK_EQ(pio_read(&vm, UCALL_PORT, 4), 0xffffffffu);
	CHECK_EQ(log.calls, 2);
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x1000, 4), 0);
	CHECK_EQ(log.calls, 3);
	CHECK_EQ(log.last.type, UCALL_PRINT);

	/* no handler: dropped quietly */
	vm.ucall_handler = NULL;
	CHECK_EQ(pio_write(&vm, UCALL_PORT, 0x1000, 4), 0);
	CHECK_EQ(log.calls, 3);
	vm_destroy(&vm);
}

TEST(acpi_sleep_s5_powers_off)
{
	uint8_t v;
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(acpi_sleep_create(&vm), 0);
	/* S3 request and a write without SLP_EN are ignored */
	v = (3 << 2) | (1 << 5);
	CHECK_EQ(bus_access(&vm.pio_bus, 0, ACPI_SLEEP_CONTROL_PORT, &v, 1, true), 0);
	v = ACPI_S5_SLEEP_TYPE << 2;
	CHECK_EQ(bus_access(&vm.pio_bus, 0, ACPI_SLEEP_CONTROL_PORT, &v, 1, true), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_NONE);
	CHECK_EQ(bus_access(&vm.pio_bus, 0, ACPI_SLEEP_STATUS_PORT, &v, 1, false), 0);
	CHECK_EQ(v, 0);
	v = (ACPI_S5_SLEEP_TYPE << 2) | (1 << 5);
	CHECK_EQ(bus_access(&vm.pio_bus, 0, ACPI_SLEEP_CONTROL_PORT, &v, 1, true), 0);
	CHECK_EQ(vm.exit.reason, VM_EXIT_SHUTDOWN);
	vm_destroy(&vm);
}
