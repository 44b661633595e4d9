// SPDX-License-Identifier: MIT
/*
 * pio_bare: the floor for a PIO exit round trip, a bare KVM_RUN loop with
 * no VMM around it.  One VM, one vCPU in 16-bit real mode running
 *
 *	loop:	in	al, dx		; dx = port (0x511)
 *		dec	ecx
 *		jnz	loop
 *		hlt
 *
 * and each KVM_EXIT_IO is handled with nothing but a check.  To separate
 * the cost of the guest instructions from the exit, the same loop is also
 * run with the "in" replaced by a "nop" and done once before the loop
 * (a one-shot), so that run has a single I/O exit.
 *
 * Usage: pio_bare [ITERATIONS [PORT]]
 * Prints, for benchmark scripts to parse:
 *   result: pio_bare iterations=N ns_per_exit=X loop_ns_per_iter=Y net_ns_per_exit=Z
 * where X is the in-loop time per iteration, Y the loop without exits per
 * iteration and Z = X - Y.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE_ADDR 0x1000

struct vm {
	int kvm, fd, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

static void die(const char *what)
{
	fprintf(stderr, "pio_bare: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void vm_create(struct vm *vm)
{
	struct kvm_userspace_memory_region region;
	int size;

	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm < 0)
		die("open /dev/kvm");
	vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");
	/* needed on Intel hosts without unrestricted guest for real mode */
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		die("KVM_SET_TSS_ADDR");

	vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->mem == MAP_FAILED)
		die("mmap guest memory");
	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uintptr_t)vm->mem;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
}

static void vm_destroy(struct vm *vm)
{
	munmap(vm->run, vm->run_size);
	munmap(vm->mem, MEM_SIZE);
	close(vm->vcpu);
	close(vm->fd);
	close(vm->kvm);
}

/* Puts the vCPU at CODE_ADDR in real mode with ecx = iterations. */
static void vcpu_reset(struct vm *vm, uint32_t iterations, uint16_t port)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = sregs.es.base = sregs.ss.base = 0;
	sregs.ds.selector = sregs.es.selector = sregs.ss.selector = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_ADDR;
	regs.rflags = 0x2;
	regs.rcx = iterations;
	regs.rdx = port;
	regs.rsp = 0x8000;
	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

/*
 * Runs the vCPU to its hlt; returns the elapsed ns and the number of I/O
 * exits in *exits.
 */
static uint64_t vcpu_run(struct vm *vm, uint16_t port, uint64_t *exits)
{
	struct timespec t0, t1;
	uint64_t n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (vm->run->exit_reason == KVM_EXIT_IO) {
			if (vm->run->io.direction != KVM_EXIT_IO_IN ||
			    vm->run->io.port != port || vm->run->io.size != 1 ||
			    vm->run->io.count != 1) {
				fprintf(stderr, "pio_bare: unexpected I/O exit port 0x%x\n",
					vm->run->io.port);
				exit(2);
			}
			n++;
			continue;
		}
		if (vm->run->exit_reason == KVM_EXIT_HLT)
			break;
		fprintf(stderr, "pio_bare: unexpected exit reason %u\n",
			vm->run->exit_reason);
		exit(2);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*exits = n;
	return (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
	       (uint64_t)(t1.tv_nsec - t0.tv_nsec);
}

int main(int argc, char **argv)
{
	/* in al,dx; dec ecx; jnz -5; hlt */
	static const uint8_t loop_in[] = { 0xec, 0x66, 0x49, 0x75, 0xfb, 0xf4 };
	/* in al,dx (once); then nop; dec ecx; jnz -5; hlt */
	static const uint8_t loop_nop[] = { 0xec, 0x90, 0x66, 0x49, 0x75, 0xfb,
					    0xf4 };
	unsigned long iterations = 100000, port = 0x511;
	uint64_t ns_in, ns_nop, exits_in, exits_nop;
	double per_exit, per_iter;
	struct vm vm;

	if (argc > 1)
		iterations = strtoul(argv[1], NULL, 0);
	if (argc > 2)
		port = strtoul(argv[2], NULL, 0);
	if (argc > 3 || iterations == 0 || iterations > 0xffffffffu ||
	    port > 0xffff) {
		fprintf(stderr, "usage: pio_bare [ITERATIONS [PORT]]\n");
		return 2;
	}

	vm_create(&vm);

	memcpy(vm.mem + CODE_ADDR, loop_in, sizeof(loop_in));
	vcpu_reset(&vm, iterations, port);
	ns_in = vcpu_run(&vm, port, &exits_in);
	if (exits_in != iterations) {
		fprintf(stderr, "pio_bare: %llu exits for %lu iterations\n",
			(unsigned long long)exits_in, iterations);
		return 1;
	}

	memcpy(vm.mem + CODE_ADDR, loop_nop, sizeof(loop_nop));
	vcpu_reset(&vm, iterations, port);
	ns_nop = vcpu_run(&vm, port, &exits_nop);
	if (exits_nop != 1) {
		fprintf(stderr, "pio_bare: one-shot loop made %llu exits\n",
			(unsigned long long)exits_nop);
		return 1;
	}

	vm_destroy(&vm);

	per_exit = (double)ns_in / iterations;
	per_iter = (double)ns_nop / iterations;
	printf("result: pio_bare iterations=%lu ns_per_exit=%.0f loop_ns_per_iter=%.0f net_ns_per_exit=%.0f\n",
	       iterations, per_exit, per_iter, per_exit - per_iter);
	return 0;
}
