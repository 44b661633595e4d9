// SPDX-License-Identifier: MIT
/* `rackvm run`: options, VM assembly, the wait for the end, exit status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "boot/boot.h"
#include "cli/cli.h"
#include "cli/pager_opts.h"
#include "cli/shutdown_guard.h"
#include "cli/wss_opts.h"
#include "devices/devices.h"
#include "api/balloon_commands.h"
#include "api/control.h"
#include "util/parse.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define DEFAULT_MEM_SIZE (256ull << 20)
#define MAX_KERNEL_FILE_SIZE (1ull << 30)

extern const uint8_t bundled_guest_start[], bundled_guest_end[];

struct run_options {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *console;
	uint64_t mem_size;
	unsigned cpus;
	bool hugetlb;
	bool exit_stats;
	/* virtio-mmio devices: the disks first, then the rng */
	struct virtio_blk_options disks[VIRTIO_MMIO_MAX_DEVICES];
	unsigned ndisks;
	struct virtio_net_options nets[VIRTIO_MMIO_MAX_DEVICES];	/* after the disks */
	unsigned nnets;
	bool rng;
	bool balloon;
	struct virtio_balloon_options balloon_opts;
	struct virtio_console_options vconsole;	/* out_path NULL: none */
	const char *control;		/* control socket path, or NULL */
	struct wss_options wss;
	struct pager_options pager;
};

static unsigned virtio_device_count(const struct run_options *o)
{
	return o->ndisks + o->nnets + (o->rng ? 1 : 0) +
	       (o->balloon ? 1 : 0) + (o->vconsole.out_path ? 1 : 0);
}

void print_run_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm run [options]\n"
		"  --kernel FILE     PVH ELF, Multiboot ELF32 or Linux bzImage\n"
		"                    (default: the bundled guest runtime)\n"
		"  --initrd FILE     initial ramdisk / boot module\n"
		"  --cmdline STR     kernel command line (bundled guest: the workload,\n"
		"                    e.g. \"memtouch pages=1000 mode=verify\")\n"
		"  --mem SIZE        guest RAM, bytes with optional K/M/G/T suffix\n"
		"                    (default 256M, at least 2M, a multiple of 4K)\n"
		"  --cpus N          vCPUs, 1 to 255 (default 1)\n"
		"  --hugetlb         back guest RAM with 2 MiB huge pages\n"
		"  --console stdio|FILE  where the serial console goes (default stdio;\n"
		"                    with stdio, standard input feeds the UART)\n"
		"  --exit-stats      print per-vCPU exit counters when the VM ends\n"
		"  --disk PATH[,ro][,direct]  a virtio-blk disk on a raw image file\n"
		"                    (repeatable; ro: read-only, direct: O_DIRECT)\n"
		"  --net tap=NAME[,mac=MAC][,offload=on|off]  a virtio-net NIC on host TAP\n"
		"                    NAME (repeatable; default MAC 52:54:00:72:6b:<device\n"
		"                    index>; offload=off: no checksum/TSO offloads)\n"
		"  --rng             a virtio-rng entropy device\n"
		"  --balloon[,deflate-on-oom][,free-page-reporting]  a virtio-balloon\n"
		"                    (its size is set with --control's balloon command)\n"
		"  --vconsole FILE[,in=PATH]  a virtio-console port writing to FILE,\n"
		"                    reading from PATH (a FIFO, socket or terminal)\n"
		"  --control PATH    take commands (rackvm control PATH help) on a Unix\n"
		"                    socket at PATH while the VM runs\n"
		"                    (virtio devices: at most 16 in all; rackvm adds\n"
		"                    virtio_mmio.device=... to the kernel command line)\n"
		WSS_OPTIONS_USAGE
		PAGER_OPTIONS_USAGE
		"  -h, --help        this text\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rackvm run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see rackvm run --help)\n");
	return -1;
}

/* "PATH[,ro][,direct]": splits @arg in place. */
static int parse_disk(char *arg, struct virtio_blk_options *d)
{
	char *flag, *rest = strchr(arg, ',');

	*d = (struct virtio_blk_options){ .path = arg };
	if (rest)
		*rest++ = 0;
	while (rest) {
		flag = rest;
		rest = strchr(rest, ',');
		if (rest)
			*rest++ = 0;
		if (!strcmp(flag, "ro"))
			d->read_only = true;
		else if (!strcmp(flag, "direct"))
			d->direct = true;
		else
			return usage_error("invalid --disk flag '%s': give ro or direct", flag);
	}
	if (!*arg)
		return usage_error("--disk needs a file name%s", "");
	return 0;
}

/* "tap=NAME[,mac=MAC][,offload=on|off]": splits @arg in place. */
static int parse_net(char *arg, struct virtio_net_options *n)
{
	char *item, *rest = arg;

	*n = (struct virtio_net_options){ 0 };
	while (rest) {
		item = rest;
		rest = strchr(rest, ',');
		if (rest)
			*rest++ = 0;
		if (!strncmp(item, "tap=", 4)) {
			n->tap = item + 4;
		} else if (!strncmp(item, "mac=", 4)) {
			if (virtio_net_parse_mac(item + 4, n->mac))
				return usage_error("invalid --net mac '%s': give six hex pairs like "
						   "52:54:00:12:34:56, not a multicast address", item + 4);
			n->has_mac = true;
		} else if (!strcmp(item, "offload=off") || !strcmp(item, "offload=on")) {
			n->no_offloads = !strcmp(item, "offload=off");
		} else {
			return usage_error("invalid --net item '%s': give tap=NAME, mac=MAC "
					   "or offload=on|off", item);
		}
	}
	if (!n->tap || !*n->tap || strlen(n->tap) >= 16)
		return usage_error("--net needs tap=NAME, an interface name of 1 to 15 characters%s", "");
	return 0;
}

static int add_virtio_device(struct run_options *o, const char *opt)
{
	if (virtio_device_count(o) < VIRTIO_MMIO_MAX_DEVICES)
		return 0;
	return usage_error("too many virtio devices at %s (at most 16)", opt);
}

/* "[deflate-on-oom][,free-page-reporting]" (may be NULL). */
static int parse_balloon(char *arg, struct virtio_balloon_options *b)
{
	char *flag, *rest = arg;

	/* the guest's statistics are asked for every second */
	*b = (struct virtio_balloon_options){ .stats_interval_ms = 1000 };
	while (rest && *rest) {
		flag = rest;
		rest = strchr(rest, ',');
		if (rest)
			*rest++ = 0;
		if (!strcmp(flag, "deflate-on-oom"))
			b->deflate_on_oom = true;
		else if (!strcmp(flag, "free-page-reporting"))
			b->free_page_reporting = true;
		else
			return usage_error("invalid --balloon flag '%s': give deflate-on-oom "
					   "or free-page-reporting", flag);
	}
	return 0;
}

/* "FILE[,in=PATH]": splits @arg in place. */
static int parse_vconsole(char *arg, struct virtio_console_options *c)
{
	char *in = strstr(arg, ",in=");

	*c = (struct virtio_console_options){ .out_path = arg };
	if (in) {
		*in = 0;
		c->in_path = in + 4;
		if (!*c->in_path)
			return usage_error("--vconsole in= needs a path%s", "");
	}
	if (!*arg)
		return usage_error("--vconsole needs a file name%s", "");
	return 0;
}

static bool has_direct_disk(const struct run_options *o)
{
	for (unsigned i = 0; i < o->ndisks; i++)
		if (o->disks[i].direct)
			return true;
	return false;
}

/* Returns 0 to run, 1 if help was printed, -1 on a usage error. */
static int parse_run_options(int argc, char **argv, struct run_options *o)
{
	enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS,
	       OPT_CONSOLE, OPT_HUGETLB, OPT_EXIT_STATS, OPT_DISK, OPT_RNG,
	       OPT_NET };
	enum { OPT_BALLOON = 512, OPT_VCONSOLE, OPT_CONTROL };
	enum { OPT_WSS = 768 };
	enum { OPT_PAGER = 1024 };
	static const struct option options[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "hugetlb", no_argument, NULL, OPT_HUGETLB },
		{ "exit-stats", no_argument, NULL, OPT_EXIT_STATS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "balloon", optional_argument, NULL, OPT_BALLOON },
		{ "vconsole", required_argument, NULL, OPT_VCONSOLE },
		{ "control", required_argument, NULL, OPT_CONTROL },
		{ "net", required_argument, NULL, OPT_NET },
		{ "wss", optional_argument, NULL, OPT_WSS },
		{ "wss-csv", required_argument, NULL, OPT_WSS },
		{ "wss-sample", required_argument, NULL, OPT_WSS },
		{ "wss-error", required_argument, NULL, OPT_WSS },
		{ "wss-mode", required_argument, NULL, OPT_WSS },
		{ "wss-log", required_argument, NULL, OPT_WSS },
		{ "mem-local", required_argument, NULL, OPT_PAGER },
		{ "mem-backend", required_argument, NULL, OPT_PAGER },
		{ "mem-namespace", required_argument, NULL, OPT_PAGER },
		{ "mem-secret-file", required_argument, NULL, OPT_PAGER },
		{ "pager-threads", required_argument, NULL, OPT_PAGER },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, index;

	*o = (struct run_options){ .mem_size = DEFAULT_MEM_SIZE, .cpus = 1,
				   .console = "stdio" };
	wss_options_init(&o->wss);
	pager_options_init(&o->pager);
	opterr = 0;
	optind = 1;
	/* "--balloon,FLAGS" (the documented form) is getopt's
	 * "--balloon=FLAGS" */
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--balloon,", 10))
			argv[i][9] = '=';
	while ((c = getopt_long(argc, argv, "h", options, &index)) != -1) {
		switch (c) {
		case OPT_WSS:
			if (wss_options_parse(&o->wss, options[index].name, optarg))
				return -1;
			break;
		case OPT_PAGER:
			if (pager_options_parse(&o->pager, options[index].name, optarg))
				return -1;
			break;
		case OPT_KERNEL: o->kernel = optarg; break;
		case OPT_INITRD: o->initrd = optarg; break;
		case OPT_CMDLINE: o->cmdline = optarg; break;
		case OPT_CONSOLE: o->console = optarg; break;
		case OPT_HUGETLB: o->hugetlb = true; break;
		case OPT_EXIT_STATS: o->exit_stats = true; break;
		case OPT_DISK:
			if (add_virtio_device(o, "--disk") ||
			    parse_disk(optarg, &o->disks[o->ndisks]))
				return -1;
			o->ndisks++;
			break;
		case OPT_NET:
			if (add_virtio_device(o, "--net") ||
			    parse_net(optarg, &o->nets[o->nnets]))
				return -1;
			o->nnets++;
			break;
		case OPT_RNG:
			if (o->rng)
				return usage_error("--rng given twice%s", "");
			if (add_virtio_device(o, "--rng"))
				return -1;
			o->rng = true;
			break;
		case OPT_BALLOON:
			if (o->balloon)
				return usage_error("--balloon given twice%s", "");
			if (add_virtio_device(o, "--balloon") ||
			    parse_balloon(optarg, &o->balloon_opts))
				return -1;
			o->balloon = true;
			break;
		case OPT_VCONSOLE:
			if (o->vconsole.out_path)
				return usage_error("--vconsole given twice%s", "");
			if (add_virtio_device(o, "--vconsole") ||
			    parse_vconsole(optarg, &o->vconsole))
				return -1;
			break;
		case OPT_CONTROL:
			if (!*optarg)
				return usage_error("--control needs a socket path%s", "");
			o->control = optarg;
			break;
		case OPT_MEM:
			if (parse_size(optarg, &o->mem_size) ||
			    o->mem_size < GUEST_MEM_MIN_SIZE || o->mem_size % 4096)
				return usage_error("invalid --mem '%s': give a size of at least 2M, "
						   "a multiple of 4K, like 512M or 2G", optarg);
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 255, &o->cpus))
				return usage_error("invalid --cpus '%s': give a whole number from 1 to 255",
						   optarg);
			break;
		case 'h':
			print_run_usage(stdout);
			return 1;
		default:
			return usage_error("unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->cmdline && strlen(o->cmdline) > BOOT_CMDLINE_MAX)
		return usage_error("--cmdline is too long (%s)", "at most 4095 bytes");
	if (o->hugetlb && o->mem_size % (2u << 20))
		return usage_error("--hugetlb needs --mem to be a multiple of 2M%s", "");
	return pager_options_check(&o->pager, o->mem_size, o->hugetlb,
				   has_direct_disk(o));
}

static int read_file(const char *path, uint8_t **data, size_t *size,
		     struct errmsg *err)
{
	struct stat st;
	size_t done = 0;
	uint8_t *buf;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot open %s: %s", path,
				  strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > MAX_KERNEL_FILE_SIZE) {
		close(fd);
		return errmsg_set(err, -EINVAL, "%s is not a regular file of at most 1 GiB",
				  path);
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = errmsg_set(err, n < 0 ? -errno : -EIO,
					 "reading %s: %s", path,
					 n < 0 ? strerror(errno) : "file shrank");
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	*data = buf;
	*size = done;
	return 0;
}

static const char *exception_name(uint64_t vector)
{
	static const char *const names[] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF",
		"coprocessor overrun", "#TS", "#NP", "#SS", "#GP", "#PF", "reserved",
		"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	};

	return vector < sizeof(names) / sizeof(names[0]) ? names[vector] : "exception";
}

/* The bundled guest's result channel: failures and completion end the VM;
 * prints already went to the UART. */
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
				"guest exception %s (vector %llu) on vCPU %u at RIP 0x%llx, "
				"error code 0x%llx, CR2 0x%llx",
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

/* The control socket, if asked for, with the balloon's commands (if
 * any).  The VM owns the server; it was registered after the devices, so
 * vm_destroy() stops it before the devices its commands use. */
static int start_control(struct vm *vm, const char *path,
			 struct virtio_balloon *balloon, struct errmsg *err)
{
	struct control_server *s;
	int ret;

	if (!path)
		return 0;
	ret = control_server_create(path, &s, err);
	if (ret)
		return ret;
	ret = vm_own(vm, control_server_destroy, s);
	if (ret) {
		control_server_destroy(s);
		return errmsg_set(err, ret, "control socket: %s", strerror(-ret));
	}
	if (balloon) {
		ret = balloon_commands_register(s, balloon);
		if (ret)
			return errmsg_set(err, ret, "control commands: %s",
					  strerror(-ret));
	}
	return control_server_start(s, err);
}

/* Device i of virtio_mmio.device=... on the command line is index i. */
static int create_virtio_devices(struct vm *vm, const struct run_options *o,
				 struct errmsg *err)
{
	struct virtio_balloon *balloon = NULL;
	unsigned index = 0;
	int ret;

	for (unsigned i = 0; i < o->ndisks; i++) {
		ret = virtio_blk_create(vm, index++, &o->disks[i], err);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < o->nnets; i++) {
		ret = virtio_net_create(vm, index++, &o->nets[i], NULL, err);
		if (ret)
			return ret;
	}
	if (o->rng) {
		ret = virtio_rng_create(vm, index++, err);
		if (ret)
			return ret;
	}
	if (o->balloon) {
		ret = virtio_balloon_create(vm, index++, &o->balloon_opts,
					    &balloon, err);
		if (ret)
			return ret;
	}
	if (o->vconsole.out_path) {
		ret = virtio_console_create(vm, index++, &o->vconsole, err);
		if (ret)
			return ret;
	}
	return start_control(vm, o->control, balloon, err);
}

static int create_devices(struct vm *vm, const struct run_options *o,
			  int out_fd, int in_fd, struct errmsg *err)
{
	int ret;

	vm->ucall_handler = on_guest_ucall;
	ret = uart16550_create(vm, COM1_PORT, COM1_IRQ, out_fd, in_fd);
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
	return create_virtio_devices(vm, o, err);
}

static int exit_status(const struct vm_exit *e)
{
	switch (e->reason) {
	case VM_EXIT_GUEST_DONE:
	case VM_EXIT_SHUTDOWN:
		return 0;
	case VM_EXIT_RESET:
		return EXIT_GUEST_RESET;
	case VM_EXIT_TRIPLE_FAULT:
		return EXIT_TRIPLE_FAULT;
	case VM_EXIT_GUEST_FAILED:
		return EXIT_GUEST_FAILED;
	case VM_EXIT_DEBUG_EXIT:
		return e->code & 0xff;
	case VM_EXIT_INTERNAL_ERROR:
		return EXIT_KVM_INTERNAL_ERROR;
	case VM_EXIT_SIGNAL:
		return 128 + e->code;
	case VM_EXIT_NONE:
	case VM_EXIT_HOST_ERROR:
		break;
	}
	return EXIT_HOST_ERROR;
}

static void print_exit_stats(const struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vcpu_stats *s = &vm->vcpus[i].stats;

		fprintf(stderr, "rackvm: vcpu%u exits:", i);
		for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++)
			if (s->exits[r])
				fprintf(stderr, " %s=%llu", kvm_exit_reason_name(r),
					(unsigned long long)s->exits[r]);
		fprintf(stderr, " eintr=%llu unclaimed=%llu\n",
			(unsigned long long)s->eintr,
			(unsigned long long)s->io_unclaimed);
	}
}

/* Waits for the VM to end, turning SIGINT/SIGTERM/SIGHUP into a clean
 * VM exit.  The signals are blocked in every thread and read here.
 * From the moment the end is requested, the rest is bounded: returns
 * the armed guard (cli/shutdown_guard.h). */
static struct shutdown_guard *wait_for_vm(struct vm *vm, int sigfd,
					  struct vm_exit *out)
{
	struct shutdown_guard *guard;
	struct vm_exit ex;
	struct pollfd fds[2] = {
		{ .fd = sigfd, .events = POLLIN },
		{ .fd = vm->exit_fd, .events = POLLIN },
	};

	while (!vm_exit_requested(vm)) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if ((fds[0].revents & POLLIN) &&
		    read(sigfd, &si, sizeof(si)) == sizeof(si))
			vm_request_exit(vm, VM_EXIT_SIGNAL, (int)si.ssi_signo, 0,
					"stopped by signal %s",
					strsignal((int)si.ssi_signo));
	}
	guard = vm_exit_peek(vm, &ex) ?
		shutdown_guard_arm(exit_status(&ex), ex.detail) : NULL;
	vm_wait(vm, out);
	return guard;
}

struct console {
	int out_fd;
	int in_fd;
	bool restore_tty;
	struct termios saved;
};

static int console_open(struct console *c, const char *spec, struct errmsg *err)
{
	struct termios raw;

	*c = (struct console){ .out_fd = STDOUT_FILENO, .in_fd = -1 };
	if (strcmp(spec, "stdio")) {
		c->out_fd = open(spec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0)
			return errmsg_set(err, -errno, "cannot open console file %s: %s",
					  spec, strerror(errno));
		return 0;
	}
	c->in_fd = STDIN_FILENO;
	/* characters go to the guest as typed; ^C still stops the VM */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->saved) == 0) {
		raw = c->saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_iflag &= ~(ICRNL | IXON);
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			c->restore_tty = true;
	}
	return 0;
}

static void console_close(struct console *c)
{
	if (c->restore_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
	if (c->out_fd != STDOUT_FILENO)
		close(c->out_fd);
}

static int block_exit_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	/* before any thread exists, so every thread inherits the mask */
	if (pthread_sigmask(SIG_BLOCK, set, NULL))
		return -1;
	return signalfd(-1, set, SFD_CLOEXEC);
}

struct images {
	uint8_t *kernel;
	size_t kernel_size;
	uint8_t *initrd;
	size_t initrd_size;
	bool kernel_allocated;
};

static int load_images(const struct run_options *o, struct images *img,
		       struct errmsg *err)
{
	int ret;

	*img = (struct images){ 0 };
	if (o->kernel) {
		ret = read_file(o->kernel, &img->kernel, &img->kernel_size, err);
		if (ret)
			return ret;
		img->kernel_allocated = true;
	} else {
		img->kernel = (uint8_t *)bundled_guest_start;
		img->kernel_size = (size_t)(bundled_guest_end - bundled_guest_start);
	}
	if (o->initrd)
		return read_file(o->initrd, &img->initrd, &img->initrd_size, err);
	return 0;
}

static void free_images(struct images *img)
{
	if (img->kernel_allocated)
		free(img->kernel);
	free(img->initrd);
}

/* Builds, boots and runs the VM; returns the process exit status. */
static int run_vm(const struct run_options *o, const struct images *img,
		  struct console *con, int sigfd)
{
	struct vm_config cfg = { .mem_size = o->mem_size, .ncpus = o->cpus,
				 .hugetlb = o->hugetlb,
				 .dirty_log = wss_options_dirty_log(&o->wss) };
	struct wss_options wss = o->wss;
	struct wss_monitor *monitor = NULL;
	struct shutdown_guard *guard;
	struct pager_cli pager;
	char cmdline[BOOT_CMDLINE_MAX + 1];
	struct boot_virtio_mmio virtio_mmio[VIRTIO_MMIO_MAX_DEVICES];
	struct boot_config boot = {
		.kernel = img->kernel, .kernel_size = img->kernel_size,
		.initrd = img->initrd, .initrd_size = img->initrd_size,
		.cmdline = cmdline, .ncpus = o->cpus, .kernel_name = o->kernel,
		.virtio_mmio = virtio_mmio,
		.nvirtio_mmio = virtio_device_count(o),
	};
	struct boot_entry entry;
	struct vm_exit exit = { 0 };
	struct errmsg err = { "" };
	struct vm vm;
	int ret;

	/* cannot fail: the option parser allows VIRTIO_MMIO_MAX_DEVICES */
	(void)virtio_mmio_describe(virtio_mmio, boot.nvirtio_mmio);
	if (virtio_mmio_cmdline(cmdline, sizeof(cmdline), o->cmdline,
				boot.nvirtio_mmio)) {
		fprintf(stderr, "rackvm: the command line with the virtio devices' "
			"virtio_mmio.device= entries is longer than %d bytes\n",
			BOOT_CMDLINE_MAX);
		return EXIT_HOST_ERROR;
	}
	ret = vm_create(&vm, &cfg, &err);
	if (ret) {
		fprintf(stderr, "rackvm: %s\n", err.text);
		return EXIT_HOST_ERROR;
	}
	/* before the devices: the VM destroys what it owns in reverse, and
	 * the pager must serve the devices' threads until they stopped */
	if (pager_cli_create(&vm, &o->pager, wss.enabled &&
			     (wss.cfg.mode & WSS_MODE_SAMPLE), &pager)) {
		vm_destroy(&vm);
		return EXIT_HOST_ERROR;
	}
	ret = create_devices(&vm, o, con->out_fd, con->in_fd, &err);
	if (!ret)
		ret = boot_load_kernel(&vm.mem, &boot, &entry, &err);
	if (ret) {
		fprintf(stderr, "rackvm: %s\n", err.text[0] ? err.text : "VM setup failed");
		vm_destroy(&vm);
		return EXIT_HOST_ERROR;
	}
	pager_cli_wss(&pager, &wss);
	if (wss_cli_create(&vm, &wss, &monitor) ||
	    pager_cli_monitor(&pager, monitor) || pager_cli_start(&pager)) {
		vm_destroy(&vm);
		return EXIT_HOST_ERROR;
	}
	ret = vm_start(&vm, &entry.cpu, &err);
	if (ret) {
		fprintf(stderr, "rackvm: %s\n", err.text[0] ? err.text : "VM setup failed");
		vm_destroy(&vm);
		return EXIT_HOST_ERROR;
	}
	if (wss_cli_start(monitor))
		vm_request_exit(&vm, VM_EXIT_HOST_ERROR, 0, 0, "--wss could not start");
	guard = wait_for_vm(&vm, sigfd, &exit);
	shutdown_guard_stage(guard, "the pager's and the monitor's reports");
	pager_cli_finish(&pager);
	if (wss_cli_finish(monitor, &wss) && exit.reason == VM_EXIT_GUEST_DONE)
		exit.reason = VM_EXIT_HOST_ERROR;
	if (o->exit_stats)
		print_exit_stats(&vm);
	shutdown_guard_stage(guard, "device and memory threads to stop");
	vm_destroy(&vm);
	shutdown_guard_disarm(guard);

	if (exit.reason != VM_EXIT_GUEST_DONE && exit.reason != VM_EXIT_DEBUG_EXIT &&
	    exit.reason != VM_EXIT_SHUTDOWN)
		fprintf(stderr, "rackvm: %s: %s\n", vm_exit_reason_name(exit.reason),
			exit.detail);
	return exit_status(&exit);
}

int cmd_run(int argc, char **argv)
{
	struct run_options o;
	struct errmsg err = { "" };
	struct console con;
	struct images img;
	sigset_t set;
	int sigfd, status, ret;

	/* a closed console pipe is an error for the UART, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	ret = parse_run_options(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : EXIT_HOST_ERROR;
	ret = load_images(&o, &img, &err);
	if (ret) {
		fprintf(stderr, "rackvm: %s\n", err.text);
		free_images(&img);
		return EXIT_HOST_ERROR;
	}
	sigfd = block_exit_signals(&set);
	if (sigfd < 0) {
		fprintf(stderr, "rackvm: signalfd: %s\n", strerror(errno));
		free_images(&img);
		return EXIT_HOST_ERROR;
	}
	if (console_open(&con, o.console, &err)) {
		fprintf(stderr, "rackvm: %s\n", err.text);
		close(sigfd);
		free_images(&img);
		return EXIT_HOST_ERROR;
	}
	status = run_vm(&o, &img, &con, sigfd);
	console_close(&con);
	close(sigfd);
	free_images(&img);
	return status;
}
