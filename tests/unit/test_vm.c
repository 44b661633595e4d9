// SPDX-License-Identifier: MIT
/*
 * VM core on a real /dev/kvm, with hand-assembled 32-bit guest code:
 * pause/resume really stops the guest, kicks reach halted and
 * never-started vCPUs, the first exit request wins.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot/layout.h"
#include "harness.h"
#include "vm/vcpu.h"
#include "vm/vcpu_entry.h"
#include "vm/vm.h"

#define CODE_ADDR 0x100000ull
#define COUNTER_PORT 0x80

static void count_writes(void *opaque, unsigned vcpu_id, uint64_t offset,
			 uint8_t *data, unsigned len, bool is_write)
{
	(void)vcpu_id; (void)offset; (void)data; (void)len;
	if (is_write)
		__atomic_fetch_add((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
}

static uint64_t load(uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Creates a VM running @code in flat 32-bit protected mode; returns 0 or a
 * reason to skip. */
static const char *start_vm(struct vm *vm, unsigned ncpus, const uint8_t *code,
			    size_t len, uint64_t *counter)
{
	struct vm_config cfg = { .mem_size = 16 << 20, .ncpus = ncpus };
	struct vcpu_entry entry = {
		.mode = VCPU_MODE_PROTECTED32,
		.rip = CODE_ADDR, .code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};
	static struct errmsg err;

	if (access("/dev/kvm", R_OK | W_OK))
		return "no usable /dev/kvm";
	if (vm_create(vm, &cfg, &err))
		return err.text;
	if (bus_register(&vm->pio_bus, COUNTER_PORT, 1, count_writes, counter,
			 "counter") ||
	    guest_mem_write(&vm->mem, CODE_ADDR, code, len) ||
	    vm_start(vm, &entry, &err)) {
		vm_destroy(vm);
		return "VM setup failed";
	}
	return NULL;
}

/* out 0x80, al; inc eax; jmp back */
static const uint8_t out_loop[] = { 0xe6, COUNTER_PORT, 0x40, 0xeb, 0xfb };
/* cli; hlt; jmp back to hlt: only a kick can get this vCPU out */
static const uint8_t halt_forever[] = { 0xfa, 0xf4, 0xeb, 0xfd };

TEST(vm_pause_stops_guest_and_resume_restarts_it)
{
	uint64_t counter = 0, paused_at;
	struct vm_exit exit;
	const char *skip;
	struct vm vm;

	skip = start_vm(&vm, 1, out_loop, sizeof(out_loop), &counter);
	if (skip)
		SKIP(skip);
	for (int i = 0; i < 200 && load(&counter) < 3; i++)
		sleep_ms(10);
	CHECK(load(&counter) >= 3);
	CHECK_EQ(vm_pause(&vm), 0);
	CHECK_EQ(vm.vcpus[0].state, VCPU_PAUSED);
	paused_at = load(&counter);
	sleep_ms(100);
	CHECK_EQ(load(&counter), paused_at);
	/* pauses nest: the inner resume must not restart the guest */
	CHECK_EQ(vm_pause(&vm), 0);
	CHECK_EQ(vm_resume(&vm), 0);
	sleep_ms(50);
	CHECK_EQ(load(&counter), paused_at);
	CHECK_EQ(vm_resume(&vm), 0);
	CHECK_EQ(vm_resume(&vm), -EINVAL);
	for (int i = 0; i < 200 && load(&counter) <= paused_at; i++)
		sleep_ms(10);
	CHECK(load(&counter) > paused_at);
	CHECK(vm.vcpus[0].stats.exits[KVM_EXIT_IO] > 0);

	vm_request_exit(&vm, VM_EXIT_SIGNAL, 15, 0, "first");
	vm_request_exit(&vm, VM_EXIT_HOST_ERROR, 0, 0, "second");
	vm_wait(&vm, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_SIGNAL);
	CHECK_EQ(exit.code, 15);
	CHECK(!strcmp(exit.detail, "first"));
	CHECK_EQ(vm.vcpus[0].state, VCPU_STOPPED);
	vm_destroy(&vm);
}

TEST(vm_kick_reaches_halted_and_unstarted_vcpus)
{
	uint64_t counter = 0;
	struct vm_exit exit;
	const char *skip;
	struct vm vm;

	/* vCPU 1 is an AP that never gets a SIPI: it sits in KVM_RUN */
	skip = start_vm(&vm, 2, halt_forever, sizeof(halt_forever), &counter);
	if (skip)
		SKIP(skip);
	sleep_ms(50);
	CHECK_EQ(vm_pause(&vm), 0);
	CHECK_EQ(vm.vcpus[1].state, VCPU_PAUSED);
	CHECK_EQ(vm_resume(&vm), 0);
	vm_request_exit(&vm, VM_EXIT_SIGNAL, 2, 0, "stop");
	vm_wait(&vm, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_SIGNAL);
	CHECK_EQ(vm.vcpus[0].state, VCPU_STOPPED);
	CHECK_EQ(vm.vcpus[1].state, VCPU_STOPPED);
	vm_destroy(&vm);
}

TEST(vm_rejects_too_many_vcpus)
{
	struct vm_config cfg = { .mem_size = 16 << 20, .ncpus = 1000 };
	struct errmsg err;
	struct vm vm;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP("no usable /dev/kvm");
	CHECK_EQ(vm_create(&vm, &cfg, &err), -EINVAL);
	CHECK(strstr(err.text, "1000 vCPUs") != NULL);
}
