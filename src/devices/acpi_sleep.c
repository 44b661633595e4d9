// SPDX-License-Identifier: MIT
/*
 * The sleep control register of a hardware-reduced ACPI machine (ACPI
 * 6.x, 4.8.3.7): how an ACPI guest powers off.  Linux writes
 * SLP_TYP (from the DSDT's \_S5 package) | SLP_EN to it; the VMM ends
 * the VM as a power-off.  The matching sleep status register reads as
 * "not waking".  The FADT points at both (src/boot/acpi.c).
 *
 * The power button goes the other way, host to guest: an edge on the
 * Generic Event Device's GSI (devices.h).
 */
#include <string.h>

#include "devices/devices.h"

#define SLEEP_TYPE_SHIFT 2
#define SLEEP_TYPE_MASK 0x7
#define SLEEP_ENABLE (1u << 5)

static void acpi_sleep_io(void *opaque, unsigned vcpu_id, uint64_t offset,
			  uint8_t *data, unsigned len, bool is_write)
{
	struct vm *vm = opaque;
	unsigned type;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset != 0 || !(data[0] & SLEEP_ENABLE))
		return;
	type = (data[0] >> SLEEP_TYPE_SHIFT) & SLEEP_TYPE_MASK;
	/* only S5 (soft off) is offered in the DSDT; other states would
	 * need the guest to be resumed, which a VMM-less machine cannot */
	if (type == ACPI_S5_SLEEP_TYPE)
		vm_request_exit(vm, VM_EXIT_SHUTDOWN, 0, vcpu_id,
				"guest powered off through ACPI");
}

int acpi_sleep_create(struct vm *vm)
{
	/* stateless, so nothing to save (vm_state.h): the VM itself is the
	 * handler's context */
	return bus_register(&vm->pio_bus, ACPI_SLEEP_CONTROL_PORT, 2,
			    acpi_sleep_io, vm, "acpi-sleep");
}

int acpi_power_button_press(struct vm *vm)
{
	int ret = vm_set_irq_line(vm, ACPI_GED_GSI, 1);

	/* edge-triggered: the rising edge is the event; lower the line so
	 * the next press is an edge again */
	if (!ret)
		ret = vm_set_irq_line(vm, ACPI_GED_GSI, 0);
	return ret;
}
