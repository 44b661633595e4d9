// SPDX-License-Identifier: MIT
/* host_caps.h: /dev/kvm, its capabilities and the ring-0 speed probe; the
 * kernel and hardware features are in host_caps_sys.c. */
#include "vm/host_caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "vm/host_caps_sys.h"
#include "vm/kvm.h"
#include "vm/ring0_probe.h"

#define DEFAULT_SPEED_ITERATIONS (1ull << 20)

struct host_cap *host_caps_add(struct host_caps *caps, const char *name,
			       enum host_cap_status status, bool required,
			       const char *meaning, const char *fmt, ...)
{
	struct host_cap *c;
	va_list ap;

	if (caps->count >= HOST_CAPS_MAX)
		return NULL;
	c = &caps->items[caps->count++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->status = status;
	c->required = required;
	c->meaning = meaning;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return c;
}

const char *host_cap_status_name(enum host_cap_status s)
{
	switch (s) {
	case HOST_CAP_OK:
		return "ok";
	case HOST_CAP_MISSING:
		return "missing";
	case HOST_CAP_WARN:
		return "warn";
	}
	return "?";
}

bool host_caps_run_possible(const struct host_caps *caps)
{
	for (unsigned i = 0; i < caps->count; i++)
		if (caps->items[i].required &&
		    caps->items[i].status == HOST_CAP_MISSING)
			return false;
	return true;
}

const struct host_cap *host_caps_find(const struct host_caps *caps,
				      const char *name)
{
	for (unsigned i = 0; i < caps->count; i++)
		if (!strcmp(caps->items[i].name, name))
			return &caps->items[i];
	return NULL;
}

static const char *open_hint(int error)
{
	switch (error) {
	case ENOENT:
		return " (is the kvm module loaded and virtualisation enabled?)";
	case EACCES:
	case EPERM:
		return " (run as root or join the kvm group)";
	default:
		return "";
	}
}

static int check_extension(int fd, int cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static void probe_required_caps(struct host_caps *caps, int fd)
{
	size_t n;
	const struct kvm_required_cap *req = kvm_required_caps(&n);

	for (size_t i = 0; i < n; i++) {
		int r = check_extension(fd, req[i].cap);
		int max = check_extension(fd, KVM_CAP_MAX_VCPUS);
		struct host_cap *c;

		c = host_caps_add(caps, req[i].name,
				  r > 0 ? HOST_CAP_OK : HOST_CAP_MISSING, true,
				  req[i].why, "%s",
				  r > 0 ? "" : "not offered by this KVM");
		if (c && r > 0 && req[i].cap == KVM_CAP_NR_VCPUS)
			snprintf(c->detail, sizeof(c->detail),
				 "up to %d vCPUs per VM", max > 0 ? max : r);
	}
}

static void probe_dirty_log(struct host_caps *caps, int fd)
{
	int ring = check_extension(fd, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	int manual = check_extension(fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	if (ring <= 0)
		ring = check_extension(fd, KVM_CAP_DIRTY_LOG_RING);
	if (ring > 0)
		host_caps_add(caps, "dirty ring", HOST_CAP_OK, false,
			      "--wss-log ring: per-vCPU rings of the pages written",
			      "up to %d entries per vCPU",
			      ring / (int)sizeof(struct kvm_dirty_gfn));
	else
		host_caps_add(caps, "dirty ring", HOST_CAP_MISSING, false,
			      "no --wss-log ring: write logging takes KVM's dirty bitmap",
			      "not offered by this KVM");
	if (manual & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
		host_caps_add(caps, "manual dirty-log protect", HOST_CAP_OK,
			      false,
			      "write logging on the dirty bitmap (--wss-log auto), pages re-protected only when cleared",
			      "%s", "");
	else
		host_caps_add(caps, "manual dirty-log protect",
			      HOST_CAP_MISSING, false,
			      "no bitmap write logging: --wss-log auto takes the dirty ring",
			      "not offered by this KVM");
}

static void probe_speed(struct host_caps *caps, const struct kvm *kvm,
			const struct host_caps_config *cfg)
{
	uint64_t iterations = cfg->speed_iterations ? cfg->speed_iterations
						    : DEFAULT_SPEED_ITERATIONS;
	struct errmsg err = { "" };
	struct ring0_speed s;
	double ring0, ring3;
	int ret = ring0_probe_run(kvm, iterations, &s, &err);

	if (!s.vm_created) {
		host_caps_add(caps, "VM creation", HOST_CAP_MISSING, true,
			      "rackvm run creates a VM and its vCPUs the same way",
			      "%s", err.text);
		return;
	}
	host_caps_add(caps, "VM creation", HOST_CAP_OK, true,
		      "a VM with a 64-bit vCPU runs", "%s", "");
	if (ret) {
		host_caps_add(caps, "guest ring 0 speed", HOST_CAP_WARN, false,
			      "unknown: the timing probe failed", "%s", err.text);
		return;
	}
	ring0 = ring0_speed_ratio(s.ring0_ns, s.host_ns);
	ring3 = ring0_speed_ratio(s.ring3_ns, s.host_ns);
	if (ring0 >= HOST_CAPS_SLOW_RING0_RATIO)
		host_caps_add(caps, "guest ring 0 speed", HOST_CAP_WARN, false,
			      "software-assisted nested KVM: guest ring 0 is emulated (and fails some instructions, e.g. cmpxchg16b), so Linux guests cannot boot; the bundled guest (ring 3) works",
			      "a loop takes %.0fx the host's time in ring 0, %.1fx in ring 3",
			      ring0, ring3);
	else
		host_caps_add(caps, "guest ring 0 speed", HOST_CAP_OK, false,
			      "guest kernels run at hardware speed",
			      "a loop takes %.1fx the host's time in ring 0, %.1fx in ring 3",
			      ring0, ring3);
}

/* kvm_open() is what rackvm run calls: if it fails where every item
 * above passed, its reason is the one that matters. */
static void probe_with_kvm(struct host_caps *caps, const char *path,
			   const struct host_caps_config *cfg)
{
	struct errmsg err = { "" };
	struct kvm kvm;

	if (kvm_open(&kvm, path, &err)) {
		if (host_caps_run_possible(caps))
			host_caps_add(caps, "KVM setup", HOST_CAP_MISSING, true,
				      "rackvm run opens KVM the same way", "%s",
				      err.text);
		return;
	}
	if (!cfg->skip_speed_probe)
		probe_speed(caps, &kvm, cfg);
	kvm_close(&kvm);
}

static void probe_kvm(struct host_caps *caps, const struct host_caps_config *cfg)
{
	const char *path = cfg->kvm_path ? cfg->kvm_path : "/dev/kvm";
	static const char kvm_meaning[] = "rackvm runs every VM on KVM";
	int fd = open(path, O_RDWR | O_CLOEXEC), version;

	if (fd < 0) {
		int e = errno;

		host_caps_add(caps, "/dev/kvm", HOST_CAP_MISSING, true,
			      kvm_meaning, "cannot open %s: %s%s", path,
			      strerror(e), open_hint(e));
		return;
	}
	host_caps_add(caps, "/dev/kvm", HOST_CAP_OK, true, kvm_meaning,
		      "%s opened read-write", path);
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	host_caps_add(caps, "KVM API version",
		      version == KVM_API_VERSION ? HOST_CAP_OK : HOST_CAP_MISSING,
		      true, "the KVM interface rackvm is written for (12)",
		      "version %d", version);
	if (version == KVM_API_VERSION) {
		probe_required_caps(caps, fd);
		probe_dirty_log(caps, fd);
	}
	close(fd);
	if (version == KVM_API_VERSION)
		probe_with_kvm(caps, path, cfg);
}

void host_caps_probe(struct host_caps *caps, const struct host_caps_config *cfg)
{
	static const struct host_caps_config defaults = { 0 };

	if (!cfg)
		cfg = &defaults;
	memset(caps, 0, sizeof(*caps));
	probe_kvm(caps, cfg);
	host_caps_probe_sys(caps, cfg->root ? cfg->root : "");
}
