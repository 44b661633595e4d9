/* SPDX-License-Identifier: MIT */
/*
 * Kernel loaders: PVH ELF, Multiboot v1 ELF32, Linux bzImage.
 *
 * A loader takes the kernel (and initrd) as in-memory buffers, writes the
 * image and the boot information its protocol defines into guest RAM, and
 * fills struct boot_entry with the CPU state the boot CPU must start in.
 * The images are untrusted user input: every length and address read from
 * them is checked; a malformed image gives -EINVAL (or -ENOSPC/-E2BIG when
 * it does not fit) and a one-line reason in @err.  Loaders never touch
 * memory outside guest RAM and never exit.
 *
 * Guest physical layout used by all loaders (below 1 MiB, see layout.h):
 * boot GDT, boot info (hvm_start_info / multiboot info / boot_params),
 * command line, e820/memory map, identity page tables for 64-bit entry,
 * and an MP table and ACPI tables in the BIOS area so SMP guests find
 * their CPUs.
 */
#ifndef RACKVM_BOOT_BOOT_H
#define RACKVM_BOOT_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "vm/guest_mem.h"
#include "vm/vcpu_entry.h"

/* A virtio-mmio device for the firmware tables: the ACPI DSDT describes
 * each one, so a kernel finds them without virtio_mmio.device= (which
 * Linux accepts only when built with VIRTIO_MMIO_CMDLINE_DEVICES). */
struct boot_virtio_mmio {
	uint64_t base;			/* below 4 GiB: Memory32Fixed */
	uint64_t size;
	unsigned gsi;			/* an IOAPIC input, edge, active high */
};

/* At most this many in boot_config (the DSDT's room is fixed). */
#define BOOT_MAX_VIRTIO_MMIO 16

struct boot_config {
	const uint8_t *kernel;
	size_t kernel_size;
	const uint8_t *initrd;		/* may be NULL */
	size_t initrd_size;
	const char *cmdline;		/* may be NULL: empty command line */
	/* The kernel's path as the user gave it: Multiboot passes it as
	 * argv[0] of the command line, as GRUB and QEMU do.  May be NULL
	 * (then the command line is passed alone). */
	const char *kernel_name;
	unsigned ncpus;			/* for the MP and ACPI tables */
	const struct boot_virtio_mmio *virtio_mmio;	/* for the DSDT */
	unsigned nvirtio_mmio;
};

enum boot_protocol {
	BOOT_PROTOCOL_PVH,
	BOOT_PROTOCOL_MULTIBOOT,
	BOOT_PROTOCOL_LINUX,
};

struct boot_entry {
	enum boot_protocol protocol;
	struct vcpu_entry cpu;	/* for vm_start() */
};

const char *boot_protocol_name(enum boot_protocol p);

/* Detects the format (bzImage "HdrS", ELF with a PVH note, Multiboot
 * header in the first 8 KiB) and calls the matching loader. */
int boot_load_kernel(struct guest_mem *m, const struct boot_config *cfg,
		     struct boot_entry *entry, struct errmsg *err);

int boot_load_pvh(struct guest_mem *m, const struct boot_config *cfg,
		  struct boot_entry *entry, struct errmsg *err);
int boot_load_multiboot(struct guest_mem *m, const struct boot_config *cfg,
			struct boot_entry *entry, struct errmsg *err);
int boot_load_linux(struct guest_mem *m, const struct boot_config *cfg,
		    struct boot_entry *entry, struct errmsg *err);

/* Largest command line any loader accepts (bytes, without the NUL); the
 * Linux loader further limits it to the kernel's cmdline_size. */
#define BOOT_CMDLINE_MAX 4095

#endif
