/* SPDX-License-Identifier: MIT */
/*
 * The CPU state the boot vCPU starts in: what vcpu_set_boot_state() (and
 * so vm_start()) turns into registers.  A kernel loader (boot/) fills it
 * from the protocol it boots, a test fills it by hand; it lives here so
 * that the VM layer needs nothing from the layers above it.
 */
#ifndef RACKVM_VM_VCPU_ENTRY_H
#define RACKVM_VM_VCPU_ENTRY_H

#include <stdint.h>

enum vcpu_mode {
	VCPU_MODE_PROTECTED32,	/* flat 32-bit segments, paging off */
	VCPU_MODE_LONG64,	/* 64-bit, paging on with .cr3 */
};

struct vcpu_entry {
	enum vcpu_mode mode;
	uint64_t rip;
	uint64_t rsp;
	uint64_t rax, rbx, rsi;
	uint64_t cr3;		/* VCPU_MODE_LONG64 only */
	uint64_t gdt_base;	/* a flat GDT already in guest RAM */
	uint16_t gdt_limit;
	/* GDT selectors matching the hidden segment state the vCPU gets */
	uint16_t code_selector;
	uint16_t data_selector;
};

#endif
