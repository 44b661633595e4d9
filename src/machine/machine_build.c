// SPDX-License-Identifier: MIT
/*
 * Assembling a machine from its config: the kernel and initrd, the
 * console, the VM and guest RAM, the memory services, the platform
 * devices (UART, fw_cfg, i8042, ACPI, the bundled guest's ports), the
 * virtio-mmio devices and finally the kernel in
 * guest RAM.  Every step hands what it made to the VM or the machine
 * at once, so a failure anywhere leaves nothing that machine_destroy()
 * would not free.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/devices.h"
#include "machine/machine_internal.h"
#include "util/full_io.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/rng.h"

#define MAX_IMAGE_FILE_SIZE (1ull << 30)

static int read_image(const char *path, uint8_t **data, size_t *size,
		      struct errmsg *err)
{
	struct stat st;
	uint8_t *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot open %s: %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MAX_IMAGE_FILE_SIZE) {
		close(fd);
		return errmsg_set(err, -EINVAL, "%s is not a regular file of at "
				  "most 1 GiB", path);
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return errmsg_set(err, -ENOMEM, "reading %s: out of memory", path);
	}
	ret = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (ret) {
		free(buf);
		return errmsg_set(err, ret, "reading %s: %s", path,
				  ret == -EIO ? "file shrank" : strerror(-ret));
	}
	*data = buf;
	*size = (size_t)st.st_size;
	return 0;
}

static int load_images(struct machine *m, struct errmsg *err)
{
	int ret;

	if (m->restoring)	/* guest RAM comes from the snapshot */
		return 0;
	if (m->cfg.kernel) {
		ret = read_image(m->cfg.kernel, &m->kernel, &m->kernel_size, err);
		if (ret)
			return ret;
	} else if (!m->hooks.default_kernel) {
		return errmsg_set(err, -EINVAL, "no --kernel given and no default");
	}
	if (m->cfg.initrd)
		return read_image(m->cfg.initrd, &m->initrd, &m->initrd_size, err);
	return 0;
}

static int open_console(struct machine *m, struct errmsg *err)
{
	if (!strcmp(m->cfg.console, "stdio")) {
		m->console_out = STDOUT_FILENO;
		m->console_in = STDIN_FILENO;
		return 0;
	}
	m->console_out = open(m->cfg.console,
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (m->console_out < 0)
		return errmsg_set(err, -errno, "cannot open console file %s: %s",
				  m->cfg.console, strerror(errno));
	m->console_out_owned = true;
	return 0;
}

static const char *exception_name(uint64_t vector)
{
	static const char *const names[] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF",
		"coprocessor overrun", "#TS", "#NP", "#SS", "#GP", "#PF", "reserved",
		"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};

	return vector < sizeof(names) / sizeof(names[0]) ? names[vector] :
							  "exception";
}

/* The bundled guest's result channel: failures and completion end the
 * VM; prints already went to the UART. */
static void on_guest_ucall(void *opaque, struct vm *vm, unsigned vcpu_id,
			   const struct ucall *uc)
{
	(void)opaque;
	switch (uc->type) {
	case UCALL_FAIL:
		vm_request_exit(vm, VM_EXIT_GUEST_FAILED, 0, vcpu_id,
				"guest assertion failed at %s:%u: %s", uc->file,
				uc->line, uc->message);
		break;
	case UCALL_EXCEPTION:
		vm_request_exit(vm, VM_EXIT_GUEST_FAILED, 0, vcpu_id,
				"guest exception %s (vector %llu) on vCPU %u at RIP "
				"0x%llx, error code 0x%llx, CR2 0x%llx",
				exception_name(uc->args[UCALL_EXC_VECTOR]),
				(unsigned long long)uc->args[UCALL_EXC_VECTOR],
				vcpu_id,
				(unsigned long long)uc->args[UCALL_EXC_RIP],
				(unsigned long long)uc->args[UCALL_EXC_ERROR_CODE],
				(unsigned long long)uc->args[UCALL_EXC_CR2]);
		break;
	case UCALL_DONE:
		if (uc->args[0] == 0)
			vm_request_exit(vm, VM_EXIT_GUEST_DONE, 0, vcpu_id,
					"guest finished");
		else
			vm_request_exit(vm, VM_EXIT_GUEST_FAILED, 0, vcpu_id,
					"guest finished with failure status %llu",
					(unsigned long long)uc->args[0]);
		break;
	default:
		break;
	}
}

static int create_platform_devices(struct machine *m, struct errmsg *err)
{
	struct vm *vm = &m->vm;
	int ret;

	vm->ucall_handler = on_guest_ucall;
	ret = uart16550_create(vm, COM1_PORT, COM1_IRQ, m->console_out,
			       m->console_in);
	if (!ret)
		ret = debug_exit_create(vm, DEBUG_EXIT_PORT);
	if (!ret)
		ret = fw_cfg_create(vm);
	if (!ret)
		ret = i8042_create(vm);
	if (!ret)
		ret = acpi_sleep_create(vm);
	if (!ret)
		ret = ucall_port_create(vm);
	if (ret)
		return errmsg_set(err, ret, "creating devices: %s", strerror(-ret));
	return 0;
}

/* Device i of virtio_mmio.device=... and of the DSDT is index i. */
static int create_virtio_devices(struct machine *m, struct errmsg *err)
{
	const struct machine_config *c = &m->cfg;
	unsigned index = 0;
	int ret = 0;

	for (unsigned i = 0; !ret && i < c->ndisks; i++)
		ret = virtio_blk_create(&m->vm, index++, &c->disks[i], err);
	for (unsigned i = 0; !ret && i < c->nnets; i++)
		ret = virtio_net_create(&m->vm, index++, &c->nets[i], NULL, err);
	if (!ret && c->rng)
		ret = virtio_rng_create(&m->vm, index++, err);
	if (!ret && c->balloon)
		ret = virtio_balloon_create(&m->vm, index++, &c->balloon_opts,
					    &m->balloon, err);
	if (!ret && c->vconsole.out_path)
		ret = virtio_console_create(&m->vm, index++, &c->vconsole, err);
	return ret;
}

static int load_kernel(struct machine *m, struct errmsg *err)
{
	struct boot_virtio_mmio virtio_mmio[VIRTIO_MMIO_MAX_DEVICES];
	char cmdline[BOOT_CMDLINE_MAX + 1];
	struct boot_config boot = {
		.kernel = m->kernel ? m->kernel : m->hooks.default_kernel,
		.kernel_size = m->kernel ? m->kernel_size :
					   m->hooks.default_kernel_size,
		.initrd = m->initrd, .initrd_size = m->initrd_size,
		.cmdline = cmdline, .ncpus = m->cfg.cpus,
		.kernel_name = m->cfg.kernel,
		.virtio_mmio = virtio_mmio,
		.nvirtio_mmio = machine_config_virtio_count(&m->cfg),
	};

	/* cannot fail: the config allows VIRTIO_MMIO_MAX_DEVICES */
	(void)virtio_mmio_describe(virtio_mmio, boot.nvirtio_mmio);
	if (virtio_mmio_cmdline(cmdline, sizeof(cmdline), m->cfg.cmdline,
				boot.nvirtio_mmio))
		return errmsg_set(err, -E2BIG, "the command line with the virtio "
				  "devices' virtio_mmio.device= entries is longer "
				  "than %d bytes", BOOT_CMDLINE_MAX);
	return boot_load_kernel(&m->vm.mem, &boot, &m->entry, err);
}

int machine_build(struct machine *m, struct errmsg *err)
{
	struct vm_config cfg = {
		.mem_size = m->cfg.mem_size, .ncpus = m->cfg.cpus,
		.hugetlb = m->cfg.hugetlb,
		.dirty_log = m->cfg.wss.enabled &&
			     (m->cfg.wss.mode & WSS_MODE_DIRTY) ?
			     m->cfg.wss.log : VM_DIRTY_LOG_OFF,
	};
	int ret;

	ret = load_images(m, err);
	if (!ret)
		ret = open_console(m, err);
	if (!ret)
		ret = vm_create(&m->vm, &cfg, err);
	if (ret)
		return ret;
	m->vm_created = true;
	/* before the devices: the VM destroys what it owns in reverse, and
	 * the pager must serve the devices' threads until they stopped */
	ret = machine_memory_create(m, err);
	if (!ret)
		ret = create_platform_devices(m, err);
	if (!ret)
		ret = create_virtio_devices(m, err);
	if (!ret)
		machine_memory_balloon(m);
	if (!ret && !m->restoring)
		ret = load_kernel(m, err);
	/* with the pager, once the stream's page map built it */
	if (!ret && !m->awaits_pagemap)
		ret = machine_memory_monitor(m, err);
	return ret;
}
