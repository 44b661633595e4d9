// SPDX-License-Identifier: MIT
/* host_caps: the text parsers, and a probe of a fake /proc and /sys tree
 * with no /dev/kvm (what `rackvm doctor` reports from them). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "vm/host_caps.h"
#include "vm/ring0_probe.h"

TEST(host_caps_parses_hugepages)
{
	static const char meminfo[] =
		"MemTotal:       24570000 kB\n"
		"HugePages_Total:      16\n"
		"HugePages_Free:        8\n"
		"HugePages_Rsvd:        0\n"
		"Hugepagesize:       2048 kB\n";
	uint64_t total = 0, free_pages = 0, kb = 0;

	CHECK_EQ(host_caps_parse_hugepages(meminfo, &total, &free_pages, &kb), 0);
	CHECK_EQ(total, 16);
	CHECK_EQ(free_pages, 8);
	CHECK_EQ(kb, 2048);
	/* a field prefix is not the field */
	CHECK_EQ(host_caps_parse_hugepages("HugePages_TotalX: 3\n", &total,
					   &free_pages, &kb), -ENOENT);
	CHECK_EQ(host_caps_parse_hugepages("", &total, &free_pages, &kb), -ENOENT);
}

TEST(host_caps_finds_cpu_flags)
{
	static const char cpuinfo[] =
		"processor\t: 0\n"
		"flags\t\t: fpu cat_l3x mba cqm_llc\n"
		"processor\t: 1\n"
		"flags\t\t: fpu cat_l3 mba cqm_llc\n";

	CHECK(host_caps_cpu_has_flag(cpuinfo, "fpu"));
	CHECK(host_caps_cpu_has_flag(cpuinfo, "mba"));
	CHECK(host_caps_cpu_has_flag(cpuinfo, "cqm_llc"));	/* at the end */
	CHECK(!host_caps_cpu_has_flag(cpuinfo, "cat_l3"));	/* first line only */
	CHECK(!host_caps_cpu_has_flag(cpuinfo, "cqm"));		/* a prefix */
	CHECK(!host_caps_cpu_has_flag("processor: 0\n", "fpu"));
	CHECK(!host_caps_cpu_has_flag("", "fpu"));
}

TEST(host_caps_run_possible_needs_every_required_item)
{
	struct host_caps caps = { .count = 2 };

	caps.items[0] = (struct host_cap){ .name = "a", .required = true };
	caps.items[1] = (struct host_cap){ .name = "b", .status = HOST_CAP_MISSING };
	CHECK(host_caps_run_possible(&caps));
	caps.items[0].status = HOST_CAP_WARN;
	CHECK(host_caps_run_possible(&caps));
	caps.items[0].status = HOST_CAP_MISSING;
	CHECK(!host_caps_run_possible(&caps));
	CHECK(host_caps_find(&caps, "b") == &caps.items[1]);
	CHECK(host_caps_find(&caps, "c") == NULL);
}

TEST(ring0_speed_ratio_divides_safely)
{
	CHECK_EQ((long long)ring0_speed_ratio(3000, 1000), 3);
	CHECK_EQ((long long)ring0_speed_ratio(5, 0), 5);
}

static int put_file(const char *root, const char *path, const char *text)
{
	char full[512], dir[512], *slash;
	FILE *f;

	snprintf(full, sizeof(full), "%s%s", root, path);
	/* mkdir -p of the parent */
	snprintf(dir, sizeof(dir), "%s", full);
	for (char *p = dir + strlen(root) + 1; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = 0;
		mkdir(dir, 0755);
		*slash = '/';
	}
	if (!text)
		return mkdir(full, 0755);
	f = fopen(full, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static enum host_cap_status status_of(const struct host_caps *caps,
				      const char *name)
{
	const struct host_cap *c = host_caps_find(caps, name);

	return c ? c->status : (enum host_cap_status)-1;
}

TEST(host_caps_reads_a_fake_host)
{
	char root[256], kvm[600], cmd[600];
	struct host_caps_config cfg = { .skip_speed_probe = true };
	struct host_caps caps;
	const struct host_cap *c;

	snprintf(root, sizeof(root), "%s/hostcaps-XXXXXX", harness_tmpdir());
	CHECK(mkdtemp(root) != NULL);
	snprintf(kvm, sizeof(kvm), "%s/dev/kvm", root);
	cfg.kvm_path = kvm;
	cfg.root = root;
	CHECK_EQ(put_file(root, "/proc/meminfo",
			  "HugePages_Total: 16\nHugePages_Free: 8\nHugepagesize: 2048 kB\n"), 0);
	CHECK_EQ(put_file(root, "/proc/cpuinfo", "flags\t: fpu cat_l3 mba\n"), 0);
	CHECK_EQ(put_file(root, "/sys/devices/system/node/node0", NULL), 0);
	CHECK_EQ(put_file(root, "/sys/devices/system/node/node1", NULL), 0);
	CHECK_EQ(put_file(root, "/sys/devices/system/node/online", "0-1\n"), 0);
	CHECK_EQ(put_file(root, "/sys/class/powercap/intel-rapl:0/energy_uj", "12345\n"), 0);

	host_caps_probe(&caps, &cfg);
	c = host_caps_find(&caps, "/dev/kvm");
	CHECK(c && c->required && c->status == HOST_CAP_MISSING);
	CHECK(strstr(c->detail, "No such file or directory (is the kvm module loaded"));
	CHECK(!host_caps_run_possible(&caps));
	/* nothing that needs /dev/kvm is claimed */
	CHECK(host_caps_find(&caps, "KVM_CAP_IRQCHIP") == NULL);
	CHECK(host_caps_find(&caps, "dirty ring") == NULL);
	c = host_caps_find(&caps, "huge pages");
	CHECK(c && c->status == HOST_CAP_OK && strstr(c->detail, "8 of 16 free"));
	c = host_caps_find(&caps, "NUMA nodes");
	CHECK(c && strstr(c->detail, "2 nodes"));
	c = host_caps_find(&caps, "RDT (resctrl)");
	CHECK(c && c->status == HOST_CAP_WARN && strstr(c->detail, "cat_l3 mba"));
	CHECK_EQ(status_of(&caps, "RAPL energy"), HOST_CAP_OK);

	/* resctrl mounted, no huge pages free, no RAPL */
	CHECK_EQ(put_file(root, "/sys/fs/resctrl/info", NULL), 0);
	CHECK_EQ(put_file(root, "/proc/meminfo",
			  "HugePages_Total: 0\nHugePages_Free: 0\nHugepagesize: 2048 kB\n"), 0);
	snprintf(cmd, sizeof(cmd), "%s/sys/class/powercap/intel-rapl:0/energy_uj", root);
	CHECK_EQ(unlink(cmd), 0);
	host_caps_probe(&caps, &cfg);
	CHECK_EQ(status_of(&caps, "RDT (resctrl)"), HOST_CAP_OK);
	CHECK_EQ(status_of(&caps, "huge pages"), HOST_CAP_MISSING);
	CHECK_EQ(status_of(&caps, "RAPL energy"), HOST_CAP_MISSING);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK_EQ(system(cmd), 0);
}
