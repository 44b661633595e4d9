// SPDX-License-Identifier: MIT
#include "vm/ring0_probe.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vm/cpuid.h"
#include "util/clock.h"

#define PROBE_MEM_SIZE 0x10000ull
#define PROBE_CODE 0x1000ull
#define PROBE_PML4 0x2000ull
#define PROBE_PDPT 0x3000ull
#define PROBE_PD 0x4000ull
#define PROBE_STACK_TOP 0x8000ull
#define PROBE_PORT 0x80
/* Only Intel without unrestricted guest needs it; harmless elsewhere. */
#define PROBE_TSS_ADDR 0xfffbd000ull

#define PTE_PRESENT_WRITE_USER 0x7ull
#define PTE_2M_PAGE 0x80ull
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_FIXED 0x2ull
#define RFLAGS_IOPL3 0x3000ull	/* the CPL-3 run may write its port */

/* A run slower than this is measured once: noise no longer matters. */
#define PROBE_SLOW_NS 100000000ull
#define PROBE_REPEATS 3

/* The loop: the same two instructions the host runs, then a port write
 * that ends the run (the guest is never resumed after it). */
static const uint8_t probe_code[] = {
	0xff, 0xc9,		/* 1: dec %ecx */
	0x75, 0xfc,		/*    jnz 1b */
	0xe6, PROBE_PORT,	/*    out %al, $PROBE_PORT */
	0xeb, 0xfe,		/*    jmp . */
};

struct probe_vm {
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	struct kvm_sregs sregs;	/* the reset state, segments set per run */
};

double ring0_speed_ratio(uint64_t guest_ns, uint64_t host_ns)
{
	return (double)guest_ns / (double)(host_ns ? host_ns : 1);
}

static void host_loop(uint32_t count)
{
	asm volatile("1: dec %0; jnz 1b" : "+c"(count));
}

/* One 2 MiB identity-mapped page, user-accessible for the CPL-3 run. */
static void write_page_tables(uint8_t *mem)
{
	uint64_t pml4e = PROBE_PDPT | PTE_PRESENT_WRITE_USER;
	uint64_t pdpte = PROBE_PD | PTE_PRESENT_WRITE_USER;
	uint64_t pde = 0 | PTE_PRESENT_WRITE_USER | PTE_2M_PAGE;

	memcpy(mem + PROBE_PML4, &pml4e, sizeof(pml4e));
	memcpy(mem + PROBE_PDPT, &pdpte, sizeof(pdpte));
	memcpy(mem + PROBE_PD, &pde, sizeof(pde));
	memcpy(mem + PROBE_CODE, probe_code, sizeof(probe_code));
}

static int set_cpuid(const struct kvm *kvm, struct probe_vm *p,
		     struct errmsg *err)
{
	struct kvm_cpuid2 *c = cpuid_alloc();
	int ret;

	if (!c)
		return errmsg_set(err, -ENOMEM, "probe VM: out of memory");
	/* 64-bit mode is only accepted once the vCPU's CPUID has LM */
	ret = cpuid_build(kvm->supported_cpuid, 0, 1, c);
	if (!ret && ioctl(p->vcpu_fd, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	free(c);
	return ret ? errmsg_set(err, ret, "probe VM: KVM_SET_CPUID2: %s",
				strerror(-ret)) : 0;
}

static void probe_vm_destroy(struct probe_vm *p)
{
	if (p->run)
		munmap(p->run, p->run_size);
	if (p->vcpu_fd >= 0)
		close(p->vcpu_fd);
	if (p->vm_fd >= 0)
		close(p->vm_fd);
	if (p->mem)
		munmap(p->mem, PROBE_MEM_SIZE);
}

static int probe_vm_create(const struct kvm *kvm, struct probe_vm *p,
			   struct errmsg *err)
{
	struct kvm_userspace_memory_region slot = {
		.memory_size = PROBE_MEM_SIZE,
	};
	void *mem, *run;

	memset(p, 0, sizeof(*p));
	p->vm_fd = p->vcpu_fd = -1;
	p->vm_fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (p->vm_fd < 0)
		return errmsg_set(err, -errno, "KVM_CREATE_VM: %s",
				  strerror(errno));
	ioctl(p->vm_fd, KVM_SET_TSS_ADDR, PROBE_TSS_ADDR);
	mem = mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return errmsg_set(err, -errno, "probe VM RAM: %s",
				  strerror(errno));
	p->mem = mem;
	write_page_tables(p->mem);
	slot.userspace_addr = (uintptr_t)p->mem;
	if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return errmsg_set(err, -errno, "KVM_SET_USER_MEMORY_REGION: %s",
				  strerror(errno));
	p->vcpu_fd = ioctl(p->vm_fd, KVM_CREATE_VCPU, 0);
	if (p->vcpu_fd < 0)
		return errmsg_set(err, -errno, "KVM_CREATE_VCPU: %s",
				  strerror(errno));
	run = mmap(NULL, kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, p->vcpu_fd, 0);
	if (run == MAP_FAILED)
		return errmsg_set(err, -errno, "mmap of the vCPU run area: %s",
				  strerror(errno));
	p->run = run;
	p->run_size = kvm->vcpu_mmap_size;
	if (ioctl(p->vcpu_fd, KVM_GET_SREGS, &p->sregs) < 0)
		return errmsg_set(err, -errno, "KVM_GET_SREGS: %s",
				  strerror(errno));
	return set_cpuid(kvm, p, err);
}

static struct kvm_segment flat_segment(unsigned cpl, bool code)
{
	struct kvm_segment s = {
		.base = 0, .limit = 0xffffffff, .present = 1, .s = 1, .g = 1,
		.dpl = (uint8_t)cpl,
	};

	if (code) {
		s.selector = (uint16_t)((cpl ? 0x18 : 0x08) | cpl);
		s.type = 0xb;	/* execute/read, accessed */
		s.l = 1;
	} else {
		s.selector = (uint16_t)((cpl ? 0x20 : 0x10) | cpl);
		s.type = 0x3;	/* read/write, accessed */
		s.db = 1;
	}
	return s;
}

/* Enters 64-bit mode at @cpl directly: no GDT is needed, since nothing
 * reloads a segment before the run ends. */
static int set_state(struct probe_vm *p, unsigned cpl, uint64_t count)
{
	struct kvm_sregs sregs = p->sregs;
	struct kvm_regs regs = {
		.rip = PROBE_CODE, .rcx = count, .rsp = PROBE_STACK_TOP,
		.rflags = RFLAGS_FIXED | RFLAGS_IOPL3,
	};

	sregs.cs = flat_segment(cpl, true);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
		flat_segment(cpl, false);
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
	sregs.cr3 = PROBE_PML4;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	if (ioctl(p->vcpu_fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(p->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* One run of @count iterations at @cpl, timed from KVM_RUN to the exit
 * on the loop's port write. */
static int timed_run(struct probe_vm *p, unsigned cpl, uint64_t count,
		     uint64_t *ns, struct errmsg *err)
{
	uint64_t start;
	int ret = set_state(p, cpl, count);

	if (ret)
		return errmsg_set(err, ret, "probe vCPU state: %s",
				  strerror(-ret));
	start = monotonic_ns();
	for (;;) {
		if (ioctl(p->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errmsg_set(err, -errno, "probe KVM_RUN: %s",
					  strerror(errno));
		}
		if (p->run->exit_reason == KVM_EXIT_IO &&
		    p->run->io.port == PROBE_PORT)
			break;
		if (p->run->exit_reason != KVM_EXIT_INTR)
			return errmsg_set(err, -EIO,
					  "probe VM at CPL %u stopped with KVM exit reason %u",
					  cpl, p->run->exit_reason);
	}
	*ns = monotonic_ns() - start;
	return 0;
}

/* Loop time at @cpl: a run of @count minus a run of one iteration, each
 * the fastest of a few (once only when it is slow anyway). */
static int guest_loop_ns(struct probe_vm *p, unsigned cpl, uint64_t count,
			 uint64_t *out, struct errmsg *err)
{
	uint64_t best_long = UINT64_MAX, best_short = UINT64_MAX, ns;
	int ret;

	for (unsigned i = 0; i < PROBE_REPEATS; i++) {
		ret = timed_run(p, cpl, 1, &ns, err);
		if (ret)
			return ret;
		if (ns < best_short)
			best_short = ns;
		ret = timed_run(p, cpl, count, &ns, err);
		if (ret)
			return ret;
		if (ns < best_long)
			best_long = ns;
		if (ns > PROBE_SLOW_NS)
			break;
	}
	*out = best_long > best_short ? best_long - best_short : 0;
	return 0;
}

static uint64_t host_loop_ns(uint32_t count)
{
	uint64_t best = UINT64_MAX, start, ns;

	for (unsigned i = 0; i < PROBE_REPEATS; i++) {
		start = monotonic_ns();
		host_loop(count);
		ns = monotonic_ns() - start;
		if (ns < best)
			best = ns;
	}
	return best;
}

int ring0_probe_run(const struct kvm *kvm, uint64_t iterations,
		    struct ring0_speed *out, struct errmsg *err)
{
	struct probe_vm p;
	int ret;

	if (iterations < 2 || iterations > UINT32_MAX)
		return errmsg_set(err, -EINVAL,
				  "probe iterations must be 2 to 2^32-1");
	memset(out, 0, sizeof(*out));
	out->iterations = iterations;
	ret = probe_vm_create(kvm, &p, err);
	out->vm_created = !ret;
	if (!ret)
		ret = guest_loop_ns(&p, 0, iterations, &out->ring0_ns, err);
	if (!ret)
		ret = guest_loop_ns(&p, 3, iterations, &out->ring3_ns, err);
	probe_vm_destroy(&p);
	if (!ret)
		out->host_ns = host_loop_ns((uint32_t)iterations);
	return ret;
}
