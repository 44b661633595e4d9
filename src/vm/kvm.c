// SPDX-License-Identifier: MIT
#include "vm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vm/cpuid.h"

/* Everything rackvm cannot run without; checked up front so the user gets
 * one clear message instead of a failing ioctl deep inside VM setup. */
static const struct kvm_required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel interrupt controllers" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "IOAPIC routing" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "real-mode TSS on Intel" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "race-free vCPU kicks" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "virtqueue notifications" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "device interrupts" },
	{ KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS", "vCPU limits" },
};

const struct kvm_required_cap *kvm_required_caps(size_t *count)
{
	*count = sizeof(required_caps) / sizeof(required_caps[0]);
	return required_caps;
}

static int get_supported_cpuid(struct kvm *kvm, struct errmsg *err)
{
	struct kvm_cpuid2 *c = cpuid_alloc();

	if (!c)
		return -ENOMEM;
	if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int ret = -errno;

		free(c);
		return errmsg_set(err, ret, "KVM_GET_SUPPORTED_CPUID: %s",
				  strerror(-ret));
	}
	kvm->supported_cpuid = c;
	return 0;
}

int kvm_open(struct kvm *kvm, const char *path, struct errmsg *err)
{
	int version, ret;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		ret = -errno;
		return errmsg_set(err, ret, "cannot open %s: %s%s", path,
				  strerror(-ret),
				  ret == -EACCES ? " (are you in the kvm group?)" :
				  ret == -ENOENT ? " (is the kvm module loaded and virtualisation enabled?)" : "");
	}
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		ret = errmsg_set(err, -ENOTSUP,
				 "%s speaks KVM API version %d, rackvm needs %d",
				 path, version, KVM_API_VERSION);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		const struct kvm_required_cap *c = &required_caps[i];

		if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
			ret = errmsg_set(err, -ENOTSUP,
					 "KVM lacks %s (needed for %s)", c->name,
					 c->why);
			goto fail;
		}
	}
	kvm->has_immediate_exit = 1;
	kvm->max_vcpus = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	ret = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		ret = errmsg_set(err, -ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE failed");
		goto fail;
	}
	kvm->vcpu_mmap_size = (size_t)ret;
	ret = get_supported_cpuid(kvm, err);
	if (ret)
		goto fail;
	return 0;
fail:
	close(kvm->fd);
	kvm->fd = -1;
	return ret;
}

void kvm_close(struct kvm *kvm)
{
	free(kvm->supported_cpuid);
	kvm->supported_cpuid = NULL;
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
}
