// SPDX-License-Identifier: MIT
#include "vm/vcpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/page.h"
#include "vm/cpuid.h"
#include "vm/msr.h"
#include "vm/ram_sigbus.h"
#include "vm/vcpu_entry.h"
#include "vm/vcpu_ram.h"
#include "vm/vm.h"

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_RFLAGS_RESERVED (1ull << 1)

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_HYPERV] = "hyperv",
	[KVM_EXIT_X86_RDMSR] = "rdmsr",
	[KVM_EXIT_X86_WRMSR] = "wrmsr",
	[KVM_EXIT_DIRTY_RING_FULL] = "dirty_ring_full",
};

const char *kvm_exit_reason_name(unsigned reason)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) &&
	    exit_names[reason])
		return exit_names[reason];
	return "other";
}

const char *vcpu_state_name(enum vcpu_state s)
{
	switch (s) {
	case VCPU_CREATED: return "created";
	case VCPU_RUNNING: return "running";
	case VCPU_PAUSED: return "paused";
	case VCPU_STOPPED: return "stopped";
	}
	return "?";
}

static int setup_cpuid(struct vcpu *vcpu, struct errmsg *err)
{
	struct kvm_cpuid2 *cpuid = cpuid_alloc();
	int ret;

	if (!cpuid)
		return -ENOMEM;
	ret = cpuid_build(vcpu->vm->kvm.supported_cpuid, vcpu->id,
			  vcpu->vm->ncpus, cpuid);
	if (ret) {
		errmsg_set(err, ret, "building CPUID for vCPU %u", vcpu->id);
	} else if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		ret = errmsg_set(err, -errno, "KVM_SET_CPUID2: %s",
				 strerror(errno));
	}
	free(cpuid);
	return ret;
}

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned id,
	      struct errmsg *err)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->state = VCPU_CREATED;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return errmsg_set(err, -errno, "KVM_CREATE_VCPU %u: %s", id,
				  strerror(errno));
	run = mmap(NULL, vm->kvm.vcpu_mmap_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		ret = errmsg_set(err, -errno, "mapping kvm_run of vCPU %u: %s",
				 id, strerror(errno));
		goto fail;
	}
	vcpu->run = run;
	if (vm->dirty_log == VM_DIRTY_LOG_RING) {
		size_t bytes = (size_t)vm->dirty_ring_entries *
			       sizeof(struct kvm_dirty_gfn);
		void *ring = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				  MAP_SHARED, vcpu->fd,
				  KVM_DIRTY_LOG_PAGE_OFFSET * getpagesize());

		if (ring == MAP_FAILED) {
			ret = errmsg_set(err, -errno,
					 "mapping the dirty ring of vCPU %u: %s",
					 id, strerror(errno));
			goto fail;
		}
		vcpu->dirty_ring = ring;
	}
	ret = setup_cpuid(vcpu, err);
	if (!ret)
		ret = msr_set_boot_values(vcpu->fd, err);
	if (!ret)
		ret = ram_sigbus_install(err);
	if (ret)
		goto fail;
	return 0;
fail:
	vcpu_destroy(vcpu);
	return ret;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->dirty_ring)
		munmap(vcpu->dirty_ring, (size_t)vcpu->vm->dirty_ring_entries *
			 sizeof(struct kvm_dirty_gfn));
	vcpu->dirty_ring = NULL;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->kvm.vcpu_mmap_size);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static struct kvm_segment flat_segment(uint16_t selector, bool code, bool long64)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = code ? 0xb : 0x3, /* execute/read or read/write, accessed */
		.present = 1,
		.dpl = 0,
		.db = code && long64 ? 0 : 1,
		.s = 1,
		.l = code && long64,
		.g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *vcpu, const struct vcpu_entry *entry,
			struct errmsg *err)
{
	bool long64 = entry->mode == VCPU_MODE_LONG64;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	struct kvm_segment data;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return errmsg_set(err, -errno, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.cs = flat_segment(entry->code_selector, true, long64);
	data = flat_segment(entry->data_selector, false, long64);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	/* VMX refuses entry without a usable TR: a 32-bit busy TSS */
	sregs.tr = (struct kvm_segment){
		.selector = 0, .limit = 0x67, .type = 11, .present = 1,
	};
	sregs.gdt.base = entry->gdt_base;
	sregs.gdt.limit = entry->gdt_limit;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (long64) {
		sregs.cr0 |= X86_CR0_PG;
		sregs.cr3 = entry->cr3;
		sregs.cr4 = X86_CR4_PAE;
		sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return errmsg_set(err, -errno, "KVM_SET_SREGS: %s", strerror(errno));

	memset(&regs, 0, sizeof(regs));
	regs.rip = entry->rip;
	regs.rsp = entry->rsp;
	regs.rax = entry->rax;
	regs.rbx = entry->rbx;
	regs.rsi = entry->rsi;
	regs.rflags = X86_RFLAGS_RESERVED;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return errmsg_set(err, -errno, "KVM_SET_REGS: %s", strerror(errno));

	/* the x87/SSE state a PC's firmware leaves: default control words */
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return errmsg_set(err, -errno, "KVM_SET_FPU: %s", strerror(errno));
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers the window just before KVM_RUN; the signal
	 * covers a vCPU already inside it. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, SIGNAL_VCPU_KICK);
}

/* --- exit dispatch ------------------------------------------------------ */

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint64_t span = (uint64_t)run->io.size * run->io.count;

	/* the kernel fills these, but a bad value must not walk us off the
	 * shared page */
	if (run->io.data_offset > vcpu->vm->kvm.vcpu_mmap_size ||
	    span > vcpu->vm->kvm.vcpu_mmap_size - run->io.data_offset)
		return;
	for (uint32_t i = 0; i < run->io.count; i++) {
		if (bus_access(&vcpu->vm->pio_bus, vcpu->id, run->io.port,
			       data + (size_t)i * run->io.size, run->io.size,
			       is_write))
			vcpu->stats.io_unclaimed++;
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->mmio.len;
	uint8_t *ram;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	ram = guest_mem_ptr(&vcpu->vm->mem, run->mmio.phys_addr, len);
	if (ram) {
		vcpu_ram_mmio(vcpu, ram, len);
		return;
	}
	if (bus_access(&vcpu->vm->mmio_bus, vcpu->id, run->mmio.phys_addr,
		       run->mmio.data, len, run->mmio.is_write))
		vcpu->stats.io_unclaimed++;
}

/* Formats up to 15 instruction bytes at the guest's RIP: from KVM when it
 * provides them, else by translating RIP through the guest page tables. */
/* Copies through process_vm_readv rather than a plain load: with the
 * pager on, the page may be evicted, unreachable or poisoned, and a
 * load would then block or raise SIGBUS; the syscall fails with EFAULT
 * instead. */
static const uint8_t *copy_guest_bytes(const struct guest_mem *mem,
				       uint64_t gpa, uint8_t *buf, unsigned n)
{
	void *src = guest_mem_ptr(mem, gpa, n);
	struct iovec local = { .iov_base = buf, .iov_len = n };
	struct iovec remote = { .iov_base = src, .iov_len = n };

	if (!src || process_vm_readv(getpid(), &local, 1, &remote, 1, 0) !=
	    (ssize_t)n)
		return NULL;
	return buf;
}

static void format_insn_bytes(struct vcpu *vcpu, uint64_t linear, char *buf,
			      size_t size)
{
	struct kvm_run *run = vcpu->run;
	const uint8_t *bytes = NULL;
	uint8_t copy[16];
	unsigned n = 0, pos = 0;
	struct kvm_translation tr = { .linear_address = linear };

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (run->emulation_failure.flags &
	     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		bytes = run->emulation_failure.insn_bytes;
		n = run->emulation_failure.insn_size;
		if (n > sizeof(run->emulation_failure.insn_bytes))
			n = sizeof(run->emulation_failure.insn_bytes);
	} else if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
		n = 15;
		/* do not run past the page: the next one may not be mapped */
		if ((tr.physical_address & (PAGE_SIZE - 1)) + n > PAGE_SIZE)
			n = PAGE_SIZE - (tr.physical_address & (PAGE_SIZE - 1));
		bytes = copy_guest_bytes(&vcpu->vm->mem, tr.physical_address,
					 copy, n);
	}
	buf[0] = 0;
	if (!bytes) {
		snprintf(buf, size, "unavailable");
		return;
	}
	for (unsigned i = 0; i < n && pos + 4 < size; i++)
		pos += snprintf(buf + pos, size - pos, "%s%02x", i ? " " : "",
				bytes[i]);
}

static void report_internal_error(struct vcpu *vcpu, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	char insn[64];
	uint64_t rip = 0, cs_base = 0;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0)
		rip = regs.rip;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) == 0)
		cs_base = sregs.cs.base;
	format_insn_bytes(vcpu, cs_base + rip, insn, sizeof(insn));
	vm_request_exit(vcpu->vm, VM_EXIT_INTERNAL_ERROR, 0, vcpu->id,
			"vCPU %u: %s at RIP 0x%llx (CS base 0x%llx), instruction bytes: %s",
			vcpu->id, what, (unsigned long long)rip,
			(unsigned long long)cs_base, insn);
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "KVM internal error: instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "KVM internal error: exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "KVM internal error: event delivery failed";
	default:
		return "KVM internal error";
	}
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	return ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : 0;
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(vcpu->vm, VM_EXIT_SHUTDOWN, 0, vcpu->id,
				"guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(vcpu->vm, VM_EXIT_RESET, 0, vcpu->id,
				"guest requested a reset");
		break;
	default:
		vm_request_exit(vcpu->vm, VM_EXIT_GUEST_FAILED, 0, vcpu->id,
				"guest crashed (system event %u)",
				vcpu->run->system_event.type);
		break;
	}
}

static void handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (run->exit_reason < VCPU_EXIT_REASONS)
		vcpu->stats.exits[run->exit_reason]++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_DEBUG:
		break;
	case KVM_EXIT_HLT:
		/* only without an in-kernel LAPIC; we always have one */
		vm_request_exit(vcpu->vm, VM_EXIT_SHUTDOWN, 0, vcpu->id,
				"vCPU %u halted", vcpu->id);
		break;
	case KVM_EXIT_SHUTDOWN:
		vm_request_exit(vcpu->vm, VM_EXIT_TRIPLE_FAULT, 0, vcpu->id,
				"vCPU %u triple fault near RIP 0x%llx", vcpu->id,
				(unsigned long long)vcpu_rip(vcpu));
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		break;
	case KVM_EXIT_DIRTY_RING_FULL:
		/* KVM refuses to run this vCPU until its ring is reset */
		if (vcpu->vm->dirty_ring_full)
			vcpu->vm->dirty_ring_full(vcpu->vm->dirty_ring_opaque,
						  vcpu);
		else
			vm_request_exit(vcpu->vm, VM_EXIT_HOST_ERROR, 0,
					vcpu->id,
					"vCPU %u: dirty ring full and nobody harvests it",
					vcpu->id);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		report_internal_error(vcpu,
				      internal_error_name(run->internal.suberror));
		break;
	case KVM_EXIT_FAIL_ENTRY:
		vm_request_exit(vcpu->vm, VM_EXIT_INTERNAL_ERROR, 0, vcpu->id,
				"vCPU %u: VM entry failed, hardware reason 0x%llx",
				vcpu->id,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		report_internal_error(vcpu, kvm_exit_reason_name(run->exit_reason));
		break;
	}
}

/* --- the vCPU thread and its state machine ------------------------------ */

static void set_state_locked(struct vcpu *vcpu, enum vcpu_state state)
{
	vcpu->state = state;
	pthread_cond_broadcast(&vcpu->vm->state_changed);
}

/* Exits that KVM completes only when KVM_RUN is entered again (the
 * data of an IN or an MMIO read goes into a register, RIP past the
 * instruction): the KVM API's note under KVM_EXIT_IO. */
static bool exit_finishes_in_kvm(uint32_t reason)
{
	return reason == KVM_EXIT_IO || reason == KVM_EXIT_MMIO ||
	       reason == KVM_EXIT_X86_RDMSR || reason == KVM_EXIT_X86_WRMSR;
}

/*
 * A vCPU paused for a caller that reads its state (vm_pause_settled())
 * enters KVM_RUN once more with immediate_exit set if its last exit was
 * such an exit: KVM finishes the instruction and returns -EINTR before
 * running any other.  The state read then never holds an instruction
 * half done, which a restored VM would run a second time (a UART byte
 * printed twice).  Finishing may make another exit (a string I/O
 * instruction's next round): it is served, and finished in turn.  The
 * brief pauses of the sampler and the pager read no vCPU state and skip
 * this: an extra KVM_RUN per pause is not free in a nested host.
 */
static void finish_exit(struct vcpu *vcpu)
{
	while (__atomic_load_n(&vcpu->exit_unfinished, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&vcpu->exit_unfinished, false, __ATOMIC_RELEASE);
		if (vcpu_ram_run(vcpu) == 0) {
			handle_exit(vcpu);
			__atomic_store_n(&vcpu->exit_unfinished,
					 exit_finishes_in_kvm(vcpu->run->exit_reason),
					 __ATOMIC_RELEASE);
		}
	}
	/* requests are read again after this, as in serve_requests() */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* Serves pause and stop requests.  Returns true when the thread must end. */
static bool serve_requests(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool stop;

	/* cleared before reading requests: a kick that sets a request
	 * after this point sets immediate_exit again */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vm->lock);
	/* a stop request ends a pause */
	while ((vcpu->request & (VCPU_REQ_PAUSE | VCPU_REQ_STOP)) ==
	       VCPU_REQ_PAUSE) {
		if ((vcpu->request & VCPU_REQ_SETTLE) &&
		    __atomic_load_n(&vcpu->exit_unfinished, __ATOMIC_ACQUIRE)) {
			pthread_mutex_unlock(&vm->lock);
			finish_exit(vcpu);
			pthread_mutex_lock(&vm->lock);
			/* a settled pause may already count this vCPU paused */
			pthread_cond_broadcast(&vm->state_changed);
			continue;
		}
		if (vcpu->state != VCPU_PAUSED)
			set_state_locked(vcpu, VCPU_PAUSED);
		pthread_cond_wait(&vm->state_changed, &vm->lock);
	}
	stop = vcpu->request & VCPU_REQ_STOP;
	if (!stop && vcpu->state != VCPU_RUNNING)
		set_state_locked(vcpu, VCPU_RUNNING);
	pthread_mutex_unlock(&vm->lock);
	return stop;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	char name[16];
	sigset_t kick;

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	vcpu->stats.tid = (int)gettid();
	sigemptyset(&kick);
	sigaddset(&kick, SIGNAL_VCPU_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!serve_requests(vcpu)) {
		int ret = vcpu_ram_run(vcpu);

		if (ret == 0) {
			handle_exit(vcpu);
			__atomic_store_n(&vcpu->exit_unfinished,
					 exit_finishes_in_kvm(vcpu->run->exit_reason),
					 __ATOMIC_RELEASE);
			continue;
		}
		if (ret == -EINTR || ret == -EAGAIN) {
			vcpu->stats.eintr++;
			continue;
		}
		if (ret == -EFAULT)
			continue;	/* vcpu_ram_run() ended the VM */
		vm_request_exit(vcpu->vm, VM_EXIT_HOST_ERROR, -ret, vcpu->id,
				"vCPU %u: KVM_RUN failed: %s", vcpu->id,
				strerror(-ret));
	}

	pthread_mutex_lock(&vcpu->vm->lock);
	set_state_locked(vcpu, VCPU_STOPPED);
	pthread_mutex_unlock(&vcpu->vm->lock);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}
