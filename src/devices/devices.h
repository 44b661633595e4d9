/* SPDX-License-Identifier: MIT */
/*
 * The legacy platform devices of a rackvm VM, one file each.
 *
 * Every constructor registers its ranges on the VM's buses and hands its
 * state to the VM (vm_own()), which destroys it after the vCPUs stopped.
 * Handlers run on vCPU threads; a device with state shared between vCPUs
 * or with its own thread locks it.
 *
 * A device whose state the guest can observe also registers it with the
 * VM's state registry (vm/vm_state.h), under a name fixed by the config:
 * "uart@<port>" (e.g. "uart@0x3f8"), "fw_cfg", "i8042".  Their blob
 * layouts are described in their files.  debug_exit, ucall_port and the
 * ACPI sleep registers keep nothing between accesses and register
 * nothing; the power button is an edge on the irqchip, whose state is
 * saved with the irqchip's.
 */
#ifndef RACKVM_DEVICES_DEVICES_H
#define RACKVM_DEVICES_DEVICES_H

#include <stdint.h>

#include "vm/vm.h"

#define COM1_PORT 0x3f8
#define COM1_IRQ 4

/* 16550A UART.  Transmitted bytes go to @out_fd; if @in_fd >= 0 a thread
 * reads it and feeds the receive FIFO (interrupts through the irqchip);
 * quiescing the VM's state holds that input back until unquiesce.
 * The process must ignore SIGPIPE (the CLI does) so that a console pipe
 * whose reader went away ends the output, not the VM. */
int uart16550_create(struct vm *vm, uint16_t port, unsigned irq, int out_fd,
		     int in_fd);

/* QEMU-compatible isa-debug-exit: a write of v ends the VM with process
 * status (v << 1) | 1 (VM_EXIT_DEBUG_EXIT, code = that status). */
int debug_exit_create(struct vm *vm, uint16_t port);

/* Minimal QEMU-compatible fw_cfg on ports 0x510 (selector) / 0x511
 * (data): signature, interface ID, NB_CPUS, MAX_CPUS, RAM_SIZE. */
int fw_cfg_create(struct vm *vm);

/* i8042 keyboard controller: command 0xfe on port 0x64 resets the
 * machine (VM_EXIT_RESET); status reads say "no data". */
#define I8042_COMMAND_PORT 0x64
#define I8042_CMD_PULSE_RESET 0xfe
int i8042_create(struct vm *vm);

/* Hardware-reduced ACPI sleep control (ACPI_SLEEP_CONTROL_PORT) and
 * status (the next port) registers: writing SLP_EN with sleep type
 * ACPI_S5_SLEEP_TYPE powers the VM off (VM_EXIT_SHUTDOWN). */
#define ACPI_SLEEP_CONTROL_PORT 0x600
#define ACPI_SLEEP_STATUS_PORT 0x601
#define ACPI_S5_SLEEP_TYPE 5
int acpi_sleep_create(struct vm *vm);

/* The ACPI power button: the DSDT's Generic Event Device (boot/acpi.c)
 * has its interrupt on ACPI_GED_GSI (edge, active high); a press is one
 * edge there, after which an ACPI guest notifies its power button and
 * (with a userspace that listens, like systemd-logind or acpid) powers
 * off.  Any thread; -errno from the irqchip. */
#define ACPI_GED_GSI 21
int acpi_power_button_press(struct vm *vm);

/* The result channel of include/rackvm/guest_abi.h on UCALL_PORT; each
 * valid struct ucall is passed to vm->ucall_handler. */
int ucall_port_create(struct vm *vm);

#endif
