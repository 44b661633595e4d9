// SPDX-License-Identifier: MIT
/* vm/vcpu_ram.h: KVM_RUN under a SIGBUS recovery point, and the guest
 * RAM accesses KVM gave up on. */
#include "vm/vcpu_ram.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/page.h"
#include "vm/ram_sigbus.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

/*
 * The guest touched RAM the host cannot provide: a page the pager lost
 * (memory/uffd_ram.h: poisoned, or fenced where the kernel has no
 * poison) or one with a memory error.  KVM says so in one of three ways,
 * depending on the kernel and on how it met the page: it sends this
 * thread SIGBUS as KVM_RUN returns (poison; vm/ram_sigbus.h catches it,
 * which would otherwise end the process), it fails KVM_RUN with EFAULT,
 * or, when it was emulating the access, it exits for MMIO at the page's
 * address (vcpu_ram_mmio() then meets the page itself).  The VM cannot go
 * on without the page; where the pager stopped it already, its message
 * (naming the page and the store) stays the one reported.  @how says
 * which; @offset is the memfd offset, UINT64_MAX if unknown.
 */
static void guest_ram_unusable(struct vcpu *vcpu, const char *how,
			       uint64_t offset)
{
	if (offset != UINT64_MAX)
		vm_request_exit(vcpu->vm, VM_EXIT_HOST_ERROR, EFAULT, vcpu->id,
				"vCPU %u: guest page %llu (memfd offset %#llx) is unusable "
				"(%s: lost by the pager, or a memory error)",
				vcpu->id, (unsigned long long)(offset / PAGE_SIZE),
				(unsigned long long)(offset & ~(PAGE_SIZE - 1)), how);
	else
		vm_request_exit(vcpu->vm, VM_EXIT_HOST_ERROR, EFAULT, vcpu->id,
				"vCPU %u: KVM_RUN failed: Bad address: guest RAM is "
				"unusable (lost by the pager?)", vcpu->id);
}

/* A copy to or from guest RAM, shaped for ram_sigbus_call(). */
struct ram_copy {
	void *dst;
	const void *src;
	size_t len;
};

static void ram_copy_run(void *arg)
{
	const struct ram_copy *c = arg;

	memcpy(c->dst, c->src, c->len);
}

/*
 * KVM exits for MMIO at a guest RAM address when it could not reach the
 * page while emulating an instruction: the page is refused (lost by the
 * pager), has a memory error, or its fault was interrupted (a kick while
 * the pager was bringing it in).  RAM is never a device, and an
 * unclaimed MMIO read would hand the guest all-ones, so the access is
 * done here, on the mapping: a page being paged in is waited for as any
 * fault, a refused one raises SIGBUS, caught, and stops the VM.
 */
void vcpu_ram_mmio(struct vcpu *vcpu, uint8_t *ram, unsigned len)
{
	struct kvm_run *run = vcpu->run;
	struct ram_copy c = {
		.dst = run->mmio.is_write ? (void *)ram : run->mmio.data,
		.src = run->mmio.is_write ? (void *)run->mmio.data : ram,
		.len = len,
	};
	uint64_t offset = 0;

	if (ram_sigbus_call(&vcpu->vm->mem, ram_copy_run, &c, &offset))
		guest_ram_unusable(vcpu, "SIGBUS", offset);
}

/* One KVM_RUN, shaped for ram_sigbus_call(). */
struct kvm_run_call {
	struct vcpu *vcpu;
	int ret;
	int error;
};

static void kvm_run_once(void *arg)
{
	struct kvm_run_call *c = arg;

	c->ret = ioctl(c->vcpu->fd, KVM_RUN, 0);
	c->error = errno;
}

/* Where KVM_RUN's EFAULT was, as a memfd offset, where KVM says
 * (KVM_EXIT_MEMORY_FAULT, Linux 6.8+); UINT64_MAX if it does not. */
static uint64_t efault_offset(struct vcpu *vcpu)
{
#ifdef KVM_EXIT_MEMORY_FAULT
	const struct guest_mem *mem = &vcpu->vm->mem;
	uint8_t *ram;

	if (vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
		ram = guest_mem_ptr(mem, vcpu->run->memory_fault.gpa, 1);
		if (ram)
			return (uint64_t)(ram - mem->base);
	}
#else
	(void)vcpu;
#endif
	return UINT64_MAX;
}

int vcpu_ram_run(struct vcpu *vcpu)
{
	struct kvm_run_call c = { .vcpu = vcpu };
	uint64_t offset = 0;

	if (ram_sigbus_call(&vcpu->vm->mem, kvm_run_once, &c, &offset)) {
		guest_ram_unusable(vcpu, "SIGBUS", offset);
		return -EFAULT;
	}
	if (c.ret == 0)
		return 0;
	if (c.error == EFAULT)
		guest_ram_unusable(vcpu, "EFAULT", efault_offset(vcpu));
	return -c.error;
}
