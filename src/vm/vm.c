// SPDX-License-Identifier: MIT
#include "vm/vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "util/page.h"
#include "vm/vcpu.h"
#include "vm/vm_state.h"
#include "util/clock.h"

/* Intel VMX needs three pages for the real-mode TSS and one for the
 * identity map, somewhere in the MMIO hole where no device lives. */
#define VM_TSS_ADDR 0xfffbd000ull
#define VM_IDENTITY_MAP_ADDR 0xfffbc000ull

static void kick_signal_handler(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN */
}

/* The kick signal's handler is process-wide state that KVM's design
 * forces on us (a signal is the only way into a running KVM_RUN); it is
 * installed once and never changed. */
static int install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_signal_handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGNAL_VCPU_KICK, &sa, NULL) ? -errno : 0;
}

void vm_init_bare(struct vm *vm)
{
	pthread_condattr_t ca;

	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	vm->kvm.fd = -1;
	vm->mem.memfd = -1;
	vm->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	bus_init(&vm->pio_bus);
	bus_init(&vm->mmio_bus);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->dirty_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->state_changed, &ca);
	pthread_condattr_destroy(&ca);
}

static int vm_ioctl(struct vm *vm, unsigned long req, unsigned long arg,
		    const char *name, struct errmsg *err)
{
	if (ioctl(vm->fd, req, arg) < 0)
		return errmsg_set(err, -errno, "%s: %s", name, strerror(errno));
	return 0;
}

static int create_platform(struct vm *vm, struct errmsg *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t identity = VM_IDENTITY_MAP_ADDR;
	int ret;

	ret = vm_ioctl(vm, KVM_SET_TSS_ADDR, VM_TSS_ADDR, "KVM_SET_TSS_ADDR", err);
	if (!ret)
		ret = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR,
			       (unsigned long)&identity,
			       "KVM_SET_IDENTITY_MAP_ADDR", err);
	if (!ret)
		ret = vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP", err);
	/* the speaker port (0x61) is served in the kernel with the PIT, so
	 * guests can calibrate their TSC against PIT channel 2 */
	if (!ret)
		ret = vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)&pit,
			       "KVM_CREATE_PIT2", err);
	return ret;
}

/* Per-vCPU ring entries we ask for (KVM's limit permitting): 64 Ki
 * entries, 1 MiB, lets a vCPU dirty 256 MiB between harvests.  A full
 * ring is costly beyond the exit: resetting it write-protects the pages
 * again, so a larger write set faults more than once per interval. */
#define VM_DIRTY_RING_ENTRIES 65536u

static int enable_cap(struct vm *vm, unsigned cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg0 } };

	return ioctl(vm->fd, KVM_ENABLE_CAP, &ec) < 0 ? -errno : 0;
}

/* Must run before the first vCPU: KVM only accepts the dirty ring then. */
static int setup_dirty_log(struct vm *vm, enum vm_dirty_log want,
			   struct errmsg *err)
{
	static const unsigned ring_caps[] = { KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
					      KVM_CAP_DIRTY_LOG_RING };
	int ret;

	if (want == VM_DIRTY_LOG_OFF)
		return 0;
	/* AUTO takes the bitmap when KVM has manual protect: measured on
	 * this nested host it costs the same as the ring, and the ring can
	 * overflow when one exit dirties more pages than it holds (KVM
	 * emulating a long rep stos in ring 0, as Linux does at boot), after
	 * which it reports full forever.  The ring is there on request. */
	if (want == VM_DIRTY_LOG_AUTO) {
		ret = ioctl(vm->fd, KVM_CHECK_EXTENSION,
			    KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
		if (ret <= 0 || !(ret & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
			want = VM_DIRTY_LOG_RING;
	}
	if (want == VM_DIRTY_LOG_RING) {
		for (unsigned i = 0; i < 2; i++) {
			/* CHECK_EXTENSION answers the largest ring in bytes */
			int max = ioctl(vm->fd, KVM_CHECK_EXTENSION, ring_caps[i]);
			uint32_t bytes = VM_DIRTY_RING_ENTRIES *
					 sizeof(struct kvm_dirty_gfn);

			if (max <= 0)
				continue;
			while (bytes > (uint32_t)max && bytes > PAGE_SIZE)
				bytes /= 2;
			if (enable_cap(vm, ring_caps[i], bytes))
				continue;
			vm->dirty_log = VM_DIRTY_LOG_RING;
			vm->dirty_ring_entries = bytes / sizeof(struct kvm_dirty_gfn);
			return 0;
		}
		return errmsg_set(err, -ENOTSUP,
				  "KVM has no usable dirty ring (KVM_CAP_DIRTY_LOG_RING)");
	}
	/* manual protect: GET_DIRTY_LOG no longer clears, so a page is only
	 * write-protected again when we clear it (KVM_CLEAR_DIRTY_LOG) */
	ret = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (ret <= 0 || !(ret & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		return errmsg_set(err, -ENOTSUP,
				  "KVM lacks KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2");
	ret = enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	if (ret)
		return errmsg_set(err, ret, "enabling KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: %s",
				  strerror(-ret));
	vm->dirty_log = VM_DIRTY_LOG_BITMAP;
	return 0;
}

static int add_memslots(struct vm *vm, struct errmsg *err)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = vm->dirty_log != VM_DIRTY_LOG_OFF ?
				 KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return errmsg_set(err, -errno,
					  "KVM_SET_USER_MEMORY_REGION slot %u: %s",
					  i, strerror(errno));
	}
	return 0;
}

static int create_vcpus(struct vm *vm, struct errmsg *err)
{
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int ret = vcpu_init(&vm->vcpus[i], vm, i, err);

		if (ret) {
			while (i--)
				vcpu_destroy(&vm->vcpus[i]);
			free(vm->vcpus);
			vm->vcpus = NULL;
			return ret;
		}
	}
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct errmsg *err)
{
	unsigned ncpus = cfg->ncpus;
	int ret;

	vm_init_bare(vm);
	if (vm->exit_fd < 0)
		return errmsg_set(err, -errno, "eventfd: %s", strerror(errno));
	ret = kvm_open(&vm->kvm, "/dev/kvm", err);
	if (ret)
		goto fail;
	if (ncpus == 0 || (int)ncpus > vm->kvm.max_vcpus || ncpus > 255) {
		ret = errmsg_set(err, -EINVAL,
				 "%u vCPUs requested; this host allows 1 to %d",
				 ncpus, vm->kvm.max_vcpus < 255 ? vm->kvm.max_vcpus : 255);
		goto fail;
	}
	vm->ncpus = ncpus;
	ret = install_kick_handler();
	if (ret) {
		errmsg_set(err, ret, "installing the vCPU kick handler");
		goto fail;
	}
	vm->fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		ret = errmsg_set(err, -errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	ret = create_platform(vm, err);
	if (!ret)
		ret = setup_dirty_log(vm, cfg->dirty_log, err);
	if (!ret)
		ret = guest_mem_init(&vm->mem, cfg->mem_size, cfg->hugetlb, err);
	if (!ret)
		ret = add_memslots(vm, err);
	if (!ret)
		ret = create_vcpus(vm, err);
	if (ret)
		goto fail;
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

int vm_start(struct vm *vm, const struct vcpu_entry *entry,
	     struct errmsg *err)
{
	int ret;

	if (vm->started || !vm->vcpus)
		return errmsg_set(err, -EINVAL, "VM already started or not created");
	/* no entry: the vCPUs' registers were loaded (a restore) */
	ret = entry ? vcpu_set_boot_state(&vm->vcpus[0], entry, err) : 0;
	if (ret)
		return ret;
	vm->started = true;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			vm_request_exit(vm, VM_EXIT_HOST_ERROR, ret, i,
					"starting vCPU %u: %s", i, strerror(-ret));
			return errmsg_set(err, ret, "starting vCPU thread %u: %s",
					  i, strerror(-ret));
		}
	}
	return 0;
}

static bool all_stopped_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].thread_started &&
		    vm->vcpus[i].state != VCPU_STOPPED)
			return false;
	return true;
}

void vm_wait(struct vm *vm, struct vm_exit *out)
{
	pthread_mutex_lock(&vm->lock);
	while (vm->started && !(vm->exit.reason != VM_EXIT_NONE &&
				all_stopped_locked(vm)))
		pthread_cond_wait(&vm->state_changed, &vm->lock);
	if (out)
		*out = vm->exit;
	pthread_mutex_unlock(&vm->lock);
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, int code,
		     unsigned vcpu_id, const char *fmt, ...)
{
	uint64_t one = 1;
	bool first;
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	first = vm->exit.reason == VM_EXIT_NONE;
	if (first) {
		vm->exit.reason = reason;
		vm->exit.code = code;
		vm->exit.vcpu_id = vcpu_id;
		va_start(ap, fmt);
		vsnprintf(vm->exit.detail, sizeof(vm->exit.detail), fmt, ap);
		va_end(ap);
		for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++)
			vm->vcpus[i].request |= VCPU_REQ_STOP;
		pthread_cond_broadcast(&vm->state_changed);
	}
	pthread_mutex_unlock(&vm->lock);
	if (!first)
		return;
	for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	if (vm->exit_fd >= 0 && write(vm->exit_fd, &one, sizeof(one)) < 0) {
		/* a full eventfd counter is still readable: nothing lost */
	}
}

bool vm_exit_requested(struct vm *vm)
{
	bool requested;

	pthread_mutex_lock(&vm->lock);
	requested = vm->exit.reason != VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->lock);
	return requested;
}

bool vm_exit_peek(struct vm *vm, struct vm_exit *out)
{
	bool requested;

	pthread_mutex_lock(&vm->lock);
	requested = vm->exit.reason != VM_EXIT_NONE;
	if (requested)
		*out = vm->exit;
	pthread_mutex_unlock(&vm->lock);
	return requested;
}

static bool all_paused_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].state != VCPU_PAUSED &&
		    vm->vcpus[i].state != VCPU_STOPPED)
			return false;
	return true;
}

static bool none_paused_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].state == VCPU_PAUSED)
			return false;
	return true;
}

/* A settled pause also waits for every vCPU's last exit to be finished. */
static bool all_settled_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpus[i].state == VCPU_PAUSED &&
		    __atomic_load_n(&vm->vcpus[i].exit_unfinished,
				    __ATOMIC_ACQUIRE))
			return false;
	return all_paused_locked(vm);
}

static int request_pause(struct vm *vm, int bits)
{
	if (!vm->started)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	vm->pause_depth++;
	for (unsigned i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].request |= bits;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	return 0;
}

int vm_request_pause(struct vm *vm)
{
	return request_pause(vm, VCPU_REQ_PAUSE);
}

static int pause_within(struct vm *vm, uint64_t timeout_ns, bool settled)
{
	struct timespec until = monotonic_deadline(timeout_ns);
	int ret = request_pause(vm, VCPU_REQ_PAUSE |
				    (settled ? VCPU_REQ_SETTLE : 0));
	bool (*done)(struct vm *) = settled ? all_settled_locked :
					      all_paused_locked;

	if (ret)
		return ret;
	pthread_mutex_lock(&vm->lock);
	while (!done(vm) && !ret) {
		if (vm->exit.reason != VM_EXIT_NONE)
			ret = -ECANCELED;
		else if (timeout_ns == UINT64_MAX)
			pthread_cond_wait(&vm->state_changed, &vm->lock);
		else if (pthread_cond_timedwait(&vm->state_changed, &vm->lock,
						&until) == ETIMEDOUT &&
			 !done(vm))
			ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&vm->lock);
	if (ret)
		vm_resume(vm);	/* withdraws this pause request */
	return ret;
}

int vm_pause_within(struct vm *vm, uint64_t timeout_ns)
{
	return pause_within(vm, timeout_ns, false);
}

int vm_pause(struct vm *vm)
{
	return pause_within(vm, UINT64_MAX, false);
}

int vm_pause_settled(struct vm *vm)
{
	return pause_within(vm, UINT64_MAX, true);
}

int vm_resume(struct vm *vm)
{
	if (!vm->started)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (!vm->pause_depth) {
		pthread_mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	if (--vm->pause_depth) {
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].request &= ~(VCPU_REQ_PAUSE | VCPU_REQ_SETTLE);
	pthread_cond_broadcast(&vm->state_changed);
	while (!none_paused_locked(vm))
		pthread_cond_wait(&vm->state_changed, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int vm_set_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (vm->fd < 0)
		return -EBADF;
	return ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int vm_own(struct vm *vm, void (*destroy)(void *obj), void *obj)
{
	struct vm_owned *owned;

	owned = realloc(vm->owned, (vm->nowned + 1) * sizeof(*owned));
	if (!owned)
		return -ENOMEM;
	vm->owned = owned;
	owned[vm->nowned++] = (struct vm_owned){ destroy, obj };
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (vm->started) {
		vm_request_exit(vm, VM_EXIT_HOST_ERROR, 0, 0, "VM destroyed");
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpus[i].thread_started)
				pthread_join(vm->vcpus[i].thread, NULL);
		vm->started = false;
	}
	/* devices may reference vCPUs or RAM: they go first */
	while (vm->nowned) {
		struct vm_owned *o = &vm->owned[--vm->nowned];

		o->destroy(o->obj);
	}
	free(vm->owned);
	vm->owned = NULL;
	vm_state_release(vm);
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	guest_mem_destroy(&vm->mem);
	bus_destroy(&vm->pio_bus);
	bus_destroy(&vm->mmio_bus);
	kvm_close(&vm->kvm);
	if (vm->exit_fd >= 0)
		close(vm->exit_fd);
	vm->exit_fd = -1;
	pthread_cond_destroy(&vm->state_changed);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->dirty_lock);
}

const char *vm_exit_reason_name(enum vm_exit_reason r)
{
	switch (r) {
	case VM_EXIT_NONE: return "none";
	case VM_EXIT_GUEST_DONE: return "guest-done";
	case VM_EXIT_GUEST_FAILED: return "guest-failed";
	case VM_EXIT_SHUTDOWN: return "shutdown";
	case VM_EXIT_RESET: return "reset";
	case VM_EXIT_TRIPLE_FAULT: return "triple-fault";
	case VM_EXIT_DEBUG_EXIT: return "debug-exit";
	case VM_EXIT_INTERNAL_ERROR: return "internal-error";
	case VM_EXIT_SIGNAL: return "signal";
	case VM_EXIT_STOPPED: return "stopped";
	case VM_EXIT_HOST_ERROR: return "host-error";
	}
	return "?";
}
