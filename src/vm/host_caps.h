/* SPDX-License-Identifier: MIT */
/*
 * What this host offers rackvm, as data for `rackvm doctor`: /dev/kvm, its
 * API version and every capability kvm_open() requires (from its own
 * table), whether a VM can be created, the optional KVM and kernel
 * features rackvm uses (dirty ring, manual dirty-log protect, userfaultfd
 * modes, huge pages), the hardware later consolidation features rely on
 * (NUMA nodes, PMU counters, RDT, RAPL), and whether guest ring 0 runs at
 * hardware speed (ring0_probe.h).
 *
 * host_caps_probe() never fails as a whole and never prints: each item
 * says what it found, its status, and what it means for rackvm (what it
 * enables, or what is lost without it).  Items marked required are those
 * `rackvm run` cannot work without.  Probing changes nothing on the host:
 * it opens /dev/kvm, runs one throwaway 64 KiB VM, opens and closes a
 * userfaultfd and two perf counters of the calling thread, and reads
 * /proc and /sys (and MSR 0x606 through /dev/cpu/0/msr if that exists).
 */
#ifndef RACKVM_VM_HOST_CAPS_H
#define RACKVM_VM_HOST_CAPS_H

#include <stdbool.h>
#include <stdint.h>

enum host_cap_status {
	HOST_CAP_OK,
	HOST_CAP_MISSING,
	HOST_CAP_WARN,		/* present but degraded (slow ring 0, RDT unmounted) */
};

#define HOST_CAP_NAME_LEN 40
#define HOST_CAP_DETAIL_LEN 160
#define HOST_CAPS_MAX 40

struct host_cap {
	char name[HOST_CAP_NAME_LEN];	/* "KVM_CAP_IRQCHIP", "dirty ring" */
	enum host_cap_status status;
	bool required;			/* rackvm run cannot work without it */
	char detail[HOST_CAP_DETAIL_LEN]; /* what was found; may be empty */
	const char *meaning;		/* what it enables, or what is lost */
};

struct host_caps {
	unsigned count;
	struct host_cap items[HOST_CAPS_MAX];
};

struct host_caps_config {
	const char *kvm_path;	/* NULL: "/dev/kvm" */
	/* Prefix of every /proc, /sys and /dev/cpu path read (tests point
	 * it at a fake tree); NULL or "": the real ones. */
	const char *root;
	/* Loop iterations of the ring-0 speed probe; 0: the default (2^20,
	 * ~1 ms at hardware speed).  No probe at all with skip_speed_probe. */
	uint64_t speed_iterations;
	bool skip_speed_probe;
};

/* Guest ring 0 this many times slower than the host loop (or more) is
 * reported as a warning: hardware-assisted KVM stays within a few x. */
#define HOST_CAPS_SLOW_RING0_RATIO 20.0

void host_caps_probe(struct host_caps *caps, const struct host_caps_config *cfg);

/* True if no required item is missing: `rackvm run` can work. */
bool host_caps_run_possible(const struct host_caps *caps);

/* The item called @name, or NULL. */
const struct host_cap *host_caps_find(const struct host_caps *caps,
				      const char *name);

const char *host_cap_status_name(enum host_cap_status s);

/* Helpers of the probe, pure functions of their text (unit-tested). */

/* Huge pages from /proc/meminfo text: 0, or -ENOENT without the fields. */
int host_caps_parse_hugepages(const char *meminfo, uint64_t *total,
			      uint64_t *free_pages, uint64_t *page_kb);

/* True if the first "flags" line of /proc/cpuinfo text lists @flag. */
bool host_caps_cpu_has_flag(const char *cpuinfo, const char *flag);

#endif
