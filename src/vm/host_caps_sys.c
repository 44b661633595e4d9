// SPDX-License-Identifier: MIT
/* host_caps.h: the kernel and hardware items, which need no /dev/kvm. */
#include "vm/host_caps_sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/perf_event.h>
#include <linux/userfaultfd.h>

/* Linux 6.6+; Debian 12's headers predate it */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif

#define MSR_RAPL_POWER_UNIT 0x606
#define TEXT_MAX 65536		/* /proc/cpuinfo of a few hundred CPUs */

/* Reads @root@path into @buf (NUL-terminated, truncated to @size - 1). */
static int read_text(const char *root, const char *path, char *buf,
		     size_t size)
{
	char full[512];
	size_t len = 0;
	ssize_t n = 0;
	int fd;

	snprintf(full, sizeof(full), "%s%s", root, path);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size &&
	       (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	n = n < 0 ? -errno : 0;
	close(fd);
	return n < 0 ? (int)n : (int)len;
}

static bool path_exists(const char *root, const char *path)
{
	char full[512];
	struct stat st;

	snprintf(full, sizeof(full), "%s%s", root, path);
	return stat(full, &st) == 0;
}

/* --- pure helpers --------------------------------------------------------- */

static bool meminfo_field(const char *text, const char *key, uint64_t *v)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			*v = strtoull(p + klen + 1, NULL, 10);
			return true;
		}
	}
	return false;
}

int host_caps_parse_hugepages(const char *meminfo, uint64_t *total,
			      uint64_t *free_pages, uint64_t *page_kb)
{
	if (!meminfo_field(meminfo, "HugePages_Total", total) ||
	    !meminfo_field(meminfo, "HugePages_Free", free_pages) ||
	    !meminfo_field(meminfo, "Hugepagesize", page_kb))
		return -ENOENT;
	return 0;
}

bool host_caps_cpu_has_flag(const char *cpuinfo, const char *flag)
{
	size_t flen = strlen(flag);
	const char *line = cpuinfo, *end, *p;

	while (line && strncmp(line, "flags", 5)) {
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (!line || !(p = strchr(line, ':')))
		return false;
	end = strchr(line, '\n');
	if (!end)
		end = line + strlen(line);
	for (p++; p < end; p++) {
		if (*p == ' ')
			continue;
		if ((size_t)(end - p) >= flen && !strncmp(p, flag, flen) &&
		    (p + flen == end || p[flen] == ' '))
			return true;
		while (p < end && *p != ' ')
			p++;
	}
	return false;
}

/* --- userfaultfd ---------------------------------------------------------- */

struct uffd_feature {
	uint64_t bit;
	const char *name;
	const char *with;	/* what it enables */
	const char *without;	/* what is lost */
};

/* Guest RAM is a memfd, so the shmem variants are the ones that count. */
static const struct uffd_feature uffd_features[] = {
	{ UFFD_FEATURE_MISSING_SHMEM, "uffd missing faults (shmem)",
	  "the pager (--mem-local) brings an evicted page back on first touch",
	  "no pager: --mem-local cannot run" },
	{ UFFD_FEATURE_MINOR_SHMEM, "uffd minor faults (shmem)",
	  "reference sampling for --wss (--wss-mode sample, both)",
	  "no reference sampling for --wss: writes only (--wss-mode dirty)" },
	{ UFFD_FEATURE_PAGEFAULT_FLAG_WP, "uffd write-protect",
	  "write-protect faults on anonymous memory (guest RAM is shmem: see below)",
	  "no write-protect faults, on shmem neither (see below)" },
	{ UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "uffd write-protect (shmem)",
	  "the pager write-protects pages it evicts, so a racing write cancels the eviction",
	  "no pager: --mem-local needs write-protect on guest RAM" },
	/* memory/uffd_ram.h, enum uffd_refusal: both paths stop the VM
	 * naming the page and never hand the guest data; they differ in how
	 * the waiting thread is released */
	{ UFFD_FEATURE_POISON, "UFFDIO_POISON",
	  "lost-page path: poison.  A page the pager cannot bring back is "
	  "poisoned: the access that needs it fails (SIGBUS, EFAULT), and the "
	  "VM stops, naming the page",
	  "lost-page path: wake-and-stop.  A page the pager cannot bring back "
	  "is fenced off (its mapping replaced by an empty one) and its "
	  "waiters woken: the access fails as with poison (SIGBUS, EFAULT), and "
	  "the VM stops, naming the page" },
};

static void probe_userfaultfd(struct host_caps *caps)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd, e;

	/* not UFFD_USER_MODE_ONLY: rackvm needs the faults KVM takes in the
	 * kernel on the guest's behalf, which is what needs privilege */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) < 0) {
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	if (fd < 0) {
		e = errno;
		host_caps_add(caps, "userfaultfd", HOST_CAP_MISSING, false,
			      "no pager (--mem-local) and no reference sampling for --wss",
			      "%s%s", strerror(e),
			      e == EPERM ? " (run as root or set vm.unprivileged_userfaultfd=1)" :
			      e == ENOSYS ? " (kernel built without CONFIG_USERFAULTFD)" : "");
		return;
	}
	close(fd);
	host_caps_add(caps, "userfaultfd", HOST_CAP_OK, false,
		      "guest RAM faults can be served by rackvm",
		      "features %#llx", (unsigned long long)api.features);
	for (size_t i = 0; i < sizeof(uffd_features) / sizeof(uffd_features[0]); i++) {
		const struct uffd_feature *f = &uffd_features[i];
		bool have = api.features & f->bit;

		host_caps_add(caps, f->name, have ? HOST_CAP_OK : HOST_CAP_MISSING,
			      false, have ? f->with : f->without, "%s",
			      have ? "" : "not offered by this kernel");
	}
}

/* --- memory and topology -------------------------------------------------- */

static void probe_hugepages(struct host_caps *caps, const char *root)
{
	static const char name[] = "huge pages";
	char text[8192];
	uint64_t total, free_pages, kb;

	if (read_text(root, "/proc/meminfo", text, sizeof(text)) < 0 ||
	    host_caps_parse_hugepages(text, &total, &free_pages, &kb)) {
		host_caps_add(caps, name, HOST_CAP_MISSING, false,
			      "--hugetlb cannot run: guest RAM uses 4 KiB pages",
			      "no hugetlb in /proc/meminfo");
		return;
	}
	if (free_pages)
		host_caps_add(caps, name, HOST_CAP_OK, false,
			      "--hugetlb backs guest RAM with huge pages (not with --wss sampling or the pager)",
			      "%" PRIu64 " of %" PRIu64 " free, %" PRIu64 " kB each: up to %" PRIu64 " MiB of guest RAM",
			      free_pages, total, kb, free_pages * kb / 1024);
	else
		host_caps_add(caps, name, HOST_CAP_MISSING, false,
			      "--hugetlb cannot run: guest RAM uses 4 KiB pages",
			      "none free of %" PRIu64 " (reserve some: sysctl vm.nr_hugepages=N)",
			      total);
}

static unsigned count_numa_nodes(const char *root)
{
	char path[512];
	unsigned n = 0, id;
	struct dirent *d;
	DIR *dir;
	char tail;

	snprintf(path, sizeof(path), "%s/sys/devices/system/node", root);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((d = readdir(dir)))
		if (sscanf(d->d_name, "node%u%c", &id, &tail) == 1)
			n++;
	closedir(dir);
	return n;
}

static void probe_numa(struct host_caps *caps, const char *root)
{
	unsigned n = count_numa_nodes(root);

	if (n > 1)
		host_caps_add(caps, "NUMA nodes", HOST_CAP_OK, false,
			      "a VM's RAM and vCPUs belong on one node (rackvm does not place them yet)",
			      "%u nodes", n);
	else
		host_caps_add(caps, "NUMA nodes", HOST_CAP_OK, false,
			      "one node: nothing to place", "%s",
			      n ? "1 node" : "no NUMA in this kernel");
}

/* --- PMU ------------------------------------------------------------------ */

static int open_counter(uint64_t config)
{
	struct perf_event_attr a = {
		.type = PERF_TYPE_HARDWARE, .size = sizeof(a),
		.config = config, .exclude_kernel = 1, .exclude_hv = 1,
	};
	int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1,
			      PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Counts a short loop of this thread's: a PMU that opens but never
 * counts (some virtual ones) is no better than none. */
static int count_loop(int cycles_fd, int insns_fd, uint64_t *insns)
{
	uint64_t cycles = 0;
	uint32_t n = 100000;

	asm volatile("1: dec %0; jnz 1b" : "+r"(n));
	if (read(cycles_fd, &cycles, sizeof(cycles)) != sizeof(cycles) ||
	    read(insns_fd, insns, sizeof(*insns)) != sizeof(*insns))
		return -EIO;
	return cycles && *insns ? 0 : -ENODATA;
}

static void probe_pmu(struct host_caps *caps, const char *root)
{
	int cycles = open_counter(PERF_COUNT_HW_CPU_CYCLES);
	int insns = open_counter(PERF_COUNT_HW_INSTRUCTIONS);
	int ret = cycles < 0 ? cycles : insns < 0 ? insns : 0;
	char paranoid[16] = "?", hint[64] = "";
	uint64_t count = 0;

	if (!ret)
		ret = count_loop(cycles, insns, &count);
	if (cycles >= 0)
		close(cycles);
	if (insns >= 0)
		close(insns);
	if (!ret) {
		host_caps_add(caps, "PMU counters", HOST_CAP_OK, false,
			      "per-vCPU cycles and instructions, for cache-pollution permits",
			      "cycles and instructions count (%llu instructions in a probe loop)",
			      (unsigned long long)count);
		return;
	}
	if (ret == -ENOENT || ret == -EOPNOTSUPP) {
		snprintf(hint, sizeof(hint), " (no hardware PMU: a VM without a virtual one?)");
	} else if (ret == -EACCES || ret == -EPERM) {
		read_text(root, "/proc/sys/kernel/perf_event_paranoid",
			  paranoid, sizeof(paranoid));
		paranoid[strcspn(paranoid, "\n")] = 0;
		snprintf(hint, sizeof(hint), " (kernel.perf_event_paranoid=%s)",
			 paranoid);
	}
	host_caps_add(caps, "PMU counters", HOST_CAP_MISSING, false,
		      "no per-vCPU cache-pollution permits: a VM's cycles and instructions cannot be counted",
		      "perf_event_open of cycles and instructions: %s%s",
		      strerror(-ret), hint);
}

/* --- RDT and RAPL --------------------------------------------------------- */

static const char *const rdt_flags[] = {
	"cat_l3", "cat_l2", "mba", "cqm_llc", "cqm_occup_llc",
	"cqm_mbm_total", "cqm_mbm_local",
};

static void probe_rdt(struct host_caps *caps, const char *root)
{
	static const char name[] = "RDT (resctrl)";
	char *cpuinfo = malloc(TEXT_MAX), found[128] = "";
	size_t len = 0;

	if (cpuinfo && read_text(root, "/proc/cpuinfo", cpuinfo, TEXT_MAX) < 0)
		cpuinfo[0] = 0;
	for (size_t i = 0; cpuinfo && i < sizeof(rdt_flags) / sizeof(rdt_flags[0]); i++)
		if (host_caps_cpu_has_flag(cpuinfo, rdt_flags[i]) &&
		    len < sizeof(found))
			len += (size_t)snprintf(found + len, sizeof(found) - len,
						"%s%s", len ? " " : "",
						rdt_flags[i]);
	free(cpuinfo);
	if (!found[0])
		host_caps_add(caps, name, HOST_CAP_MISSING, false,
			      "no hardware partitioning of LLC or memory bandwidth between VMs: neighbours are measured, not fenced",
			      "the CPU reports no RDT (cat_l3, mba, cqm_llc)");
	else if (!path_exists(root, "/sys/fs/resctrl/info"))
		host_caps_add(caps, name, HOST_CAP_WARN, false,
			      "LLC and memory bandwidth partitioning unused until resctrl is mounted",
			      "CPU has %s; mount -t resctrl resctrl /sys/fs/resctrl",
			      found);
	else
		host_caps_add(caps, name, HOST_CAP_OK, false,
			      "LLC ways and memory bandwidth can be partitioned between VMs, occupancy monitored",
			      "%s", found);
}

static bool rapl_msr_readable(const char *root)
{
	char path[512];
	uint64_t v;
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "%s/dev/cpu/0/msr", root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = pread(fd, &v, sizeof(v), MSR_RAPL_POWER_UNIT) == sizeof(v);
	close(fd);
	return ok;
}

static void probe_rapl(struct host_caps *caps, const char *root)
{
	static const char name[] = "RAPL energy";
	static const char with[] = "energy per CPU package, for power-aware placement";
	char text[64];
	int ret = read_text(root, "/sys/class/powercap/intel-rapl:0/energy_uj",
			    text, sizeof(text));

	if (ret > 0)
		host_caps_add(caps, name, HOST_CAP_OK, false, with,
			      "powercap intel-rapl:0");
	else if (rapl_msr_readable(root))
		host_caps_add(caps, name, HOST_CAP_OK, false, with,
			      "MSR 0x606 through /dev/cpu/0/msr");
	else
		host_caps_add(caps, name, HOST_CAP_MISSING, false,
			      "no energy readings: power cannot inform placement",
			      "powercap intel-rapl:0: %s; no readable RAPL MSR",
			      ret == -ENOENT ? "absent" : ret == 0 ? "empty" :
			      strerror(-ret));
}

void host_caps_probe_sys(struct host_caps *caps, const char *root)
{
	probe_userfaultfd(caps);
	probe_hugepages(caps, root);
	probe_numa(caps, root);
	probe_pmu(caps, root);
	probe_rdt(caps, root);
	probe_rapl(caps, root);
}
