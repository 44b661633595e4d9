// SPDX-License-Identifier: MIT
/*
 * The flags of `rackvm run`, both ways: argv into a machine config, and a
 * config back into flags (what hostd runs, what a user can paste).
 *
 * Parsing uses getopt_long, whose state (optind, opterr) is global in
 * libc: one parse at a time per process, which only `rackvm run` does.
 */
#include "machine/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/config_text.h"
#include "memory/wss_monitor.h"
#include "util/parse.h"

const char machine_config_flags_usage[] =
	"  --config FILE     the config as JSON (the keys of docs/hostd-api.yaml's\n"
	"                    VmConfig; what hostd writes); flags after it override\n"
	"                    its values, flags before it are overridden\n"
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
	"                    (its size is set through the API: PATCH /vm/memory)\n"
	"  --vconsole FILE[,in=PATH]  a virtio-console port writing to FILE,\n"
	"                    reading from PATH (a FIFO, socket or terminal)\n"
	"  --name NAME       the VM's name (letters, digits, . _ -); with it the\n"
	"                    control API is served on its default socket\n"
	"                    $XDG_RUNTIME_DIR/rackvm/NAME.sock (as root\n"
	"                    /run/rackvm/NAME.sock)\n"
	"  --api-socket PATH  serve the control API (HTTP/JSON, docs/api.yaml)\n"
	"                    on a Unix socket at PATH (mode 0600)\n"
	"                    (virtio devices: at most 16 in all; rackvm adds\n"
	"                    virtio_mmio.device=... to the kernel command line)\n"
	"  --wss[=INTERVAL]  estimate the working set every INTERVAL (default 1s;\n"
	"                    e.g. 500ms, 2s); one line per interval on stderr\n"
	"  --wss-csv FILE    also write the series as CSV to FILE at the end\n"
	"  --wss-sample N|full  reference sample size to start from (default 100,\n"
	"                    grown until --wss-error is met); full: every page\n"
	"  --wss-error PCT   target 95% CI half-width, % of the estimate (default 5)\n"
	"  --wss-mode dirty|sample|both  write logging, reference sampling or\n"
	"                    both (default both)\n"
	"  --wss-log ring|bitmap|auto  how writes are logged: KVM's dirty ring or\n"
	"                    dirty bitmap (default auto: the bitmap if KVM has\n"
	"                    manual protect, else the ring)\n"
	"  --mem-local SIZE  keep at most SIZE of guest RAM resident; the rest\n"
	"                    goes to --mem-backend (at least 4M)\n"
	"  --mem-backend SPEC  where evicted pages go: file:PATH,\n"
	"                    memd:HOST:PORT[,HOST:PORT...][,replicas=N]\n"
	"                    [,min_replicas=K][,down_after=DURATION|never]\n"
	"                    (a server unreachable that long has its copies\n"
	"                    placed elsewhere; default 30s) or\n"
	"                    memcached:HOST:PORT[,...] (default: an unlinked\n"
	"                    file in $TMPDIR or /var/tmp); each takes\n"
	"                    ,seal=on|off: pages encrypted and authenticated\n"
	"                    with a key of this run (XChaCha20-Poly1305;\n"
	"                    default on), or off for a trusted rack: in clear,\n"
	"                    checked against damage only\n"
	"  --mem-namespace NAME  the pages' namespace on the servers\n"
	"                    (default vm-<pid>-<random hex>)\n"
	"  --mem-secret-file FILE  the namespace's secret, 1-64 bytes (default:\n"
	"                    32 random bytes for this run)\n"
	"  --pager-threads N  threads serving page faults, 1-16 (default 2)\n";

enum {
	OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS,
	OPT_CONSOLE, OPT_HUGETLB, OPT_EXIT_STATS, OPT_DISK, OPT_RNG, OPT_NET,
	OPT_BALLOON, OPT_VCONSOLE, OPT_WSS, OPT_WSS_CSV,
	OPT_WSS_SAMPLE, OPT_WSS_ERROR, OPT_WSS_MODE, OPT_WSS_LOG,
	OPT_MEM_LOCAL, OPT_MEM_BACKEND, OPT_MEM_NAMESPACE, OPT_MEM_SECRET_FILE,
	OPT_PAGER_THREADS, OPT_NAME, OPT_API_SOCKET, OPT_CONFIG,
};

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
	{ "name", required_argument, NULL, OPT_NAME },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "net", required_argument, NULL, OPT_NET },
	{ "wss", optional_argument, NULL, OPT_WSS },
	{ "wss-csv", required_argument, NULL, OPT_WSS_CSV },
	{ "wss-sample", required_argument, NULL, OPT_WSS_SAMPLE },
	{ "wss-error", required_argument, NULL, OPT_WSS_ERROR },
	{ "wss-mode", required_argument, NULL, OPT_WSS_MODE },
	{ "wss-log", required_argument, NULL, OPT_WSS_LOG },
	{ "mem-local", required_argument, NULL, OPT_MEM_LOCAL },
	{ "mem-backend", required_argument, NULL, OPT_MEM_BACKEND },
	{ "mem-namespace", required_argument, NULL, OPT_MEM_NAMESPACE },
	{ "mem-secret-file", required_argument, NULL, OPT_MEM_SECRET_FILE },
	{ "pager-threads", required_argument, NULL, OPT_PAGER_THREADS },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* "--wss-mode sample" and the like: a word from a fixed list. */
static int pick(const char *arg, const char *const *words, unsigned n,
		unsigned *out)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(arg, words[i])) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static int parse_wss_flag(struct machine_config *c, int opt, const char *arg,
			  struct errmsg *err)
{
	static const char *const modes[] = { "", "dirty", "sample", "both" };
	static const char *const logs[] = { "", "auto", "ring", "bitmap" };
	struct machine_wss *w = &c->wss;
	unsigned n;
	char *end;
	double pct;

	/* any --wss-* flag turns the monitor on */
	w->enabled = true;
	switch (opt) {
	case OPT_WSS:
		if (arg && (parse_duration_ns(arg, &w->interval_ns) ||
			    w->interval_ns < MACHINE_MIN_WSS_INTERVAL_NS))
			return errmsg_set(err, -EINVAL, "invalid --wss interval '%s': "
					  "give e.g. 1s, 500ms (at least 10ms)", arg);
		return 0;
	case OPT_WSS_CSV:
		if (!*arg)
			return errmsg_set(err, -EINVAL, "--wss-csv needs a file name");
		return machine_config_set_string(c, &w->csv, arg);
	case OPT_WSS_SAMPLE:
		if (!strcmp(arg, "full")) {
			w->full = true;
			return 0;
		}
		if (parse_uint(arg, 1, 1u << 30, &n))
			return errmsg_set(err, -EINVAL, "invalid --wss-sample '%s': give a "
					  "page count or full", arg);
		w->full = false;
		w->sample_min = n;
		if (w->sample_max < n)
			w->sample_max = n;
		return 0;
	case OPT_WSS_ERROR:
		pct = strtod(arg, &end);
		if (end == arg || *end || !(pct > 0 && pct <= 100))
			return errmsg_set(err, -EINVAL, "invalid --wss-error '%s': give a "
					  "percentage above 0", arg);
		w->rel_error = pct / 100;
		return 0;
	case OPT_WSS_MODE:
		if (pick(arg, modes + 1, 3, &n))
			return errmsg_set(err, -EINVAL, "invalid --wss-mode '%s': give "
					  "dirty, sample or both", arg);
		w->mode = n + 1;	/* WSS_MODE_DIRTY, _SAMPLE, _BOTH */
		return 0;
	default:	/* OPT_WSS_LOG */
		if (pick(arg, logs + 1, 3, &n))
			return errmsg_set(err, -EINVAL, "invalid --wss-log '%s': give "
					  "ring, bitmap or auto", arg);
		w->log = (enum vm_dirty_log)(n + 1);
		return 0;
	}
}

static int parse_pager_flag(struct machine_config *c, int opt,
			    const char *arg, struct errmsg *err)
{
	struct machine_pager *p = &c->pager;

	switch (opt) {
	case OPT_MEM_LOCAL:
		if (parse_size(arg, &p->local_bytes) ||
		    p->local_bytes < MACHINE_MIN_LOCAL_BYTES)
			return errmsg_set(err, -EINVAL, "invalid --mem-local '%s': give a "
					  "size of at least 4M, like 64M or 1G", arg);
		p->enabled = true;
		return 0;
	case OPT_MEM_BACKEND:
		if (!*arg)
			return errmsg_set(err, -EINVAL, "--mem-backend needs a SPEC");
		return machine_config_set_string(c, &p->backend, arg);
	case OPT_MEM_NAMESPACE:
		return machine_config_set_string(c, &p->ns, arg);
	case OPT_MEM_SECRET_FILE:
		if (!*arg)
			return errmsg_set(err, -EINVAL, "--mem-secret-file needs a file name");
		return machine_config_set_string(c, &p->secret_file, arg);
	default:	/* OPT_PAGER_THREADS */
		if (parse_uint(arg, 1, MACHINE_MAX_PAGER_THREADS, &p->threads))
			return errmsg_set(err, -EINVAL, "invalid --pager-threads '%s': "
					  "give 1 to 16", arg);
		return 0;
	}
}

static int add_virtio_device(const struct machine_config *c, const char *flag,
			     struct errmsg *err)
{
	if (machine_config_virtio_count(c) < VIRTIO_MMIO_MAX_DEVICES)
		return 0;
	return errmsg_set(err, -EINVAL, "too many virtio devices at %s (at most %d)",
			  flag, VIRTIO_MMIO_MAX_DEVICES);
}

static int parse_device_flag(struct machine_config *c, int opt,
			     const char *arg, struct errmsg *err)
{
	static const char *const names[] = {
		[OPT_DISK - OPT_DISK] = "--disk", [OPT_RNG - OPT_DISK] = "--rng",
		[OPT_NET - OPT_DISK] = "--net", [OPT_BALLOON - OPT_DISK] = "--balloon",
		[OPT_VCONSOLE - OPT_DISK] = "--vconsole",
	};
	int ret = add_virtio_device(c, names[opt - OPT_DISK], err);

	if (ret)
		return ret;
	switch (opt) {
	case OPT_DISK:
		ret = config_text_parse_disk(c, arg, &c->disks[c->ndisks], err);
		c->ndisks += !ret;
		return ret;
	case OPT_NET:
		ret = config_text_parse_net(c, arg, &c->nets[c->nnets], err);
		c->nnets += !ret;
		return ret;
	case OPT_RNG:
		if (c->rng)
			return errmsg_set(err, -EINVAL, "--rng given twice");
		c->rng = true;
		return 0;
	case OPT_BALLOON:
		if (c->balloon)
			return errmsg_set(err, -EINVAL, "--balloon given twice");
		ret = config_text_parse_balloon(arg, &c->balloon_opts, err);
		c->balloon = !ret;
		return ret;
	default:	/* OPT_VCONSOLE */
		if (c->vconsole.out_path)
			return errmsg_set(err, -EINVAL, "--vconsole given twice");
		return config_text_parse_vconsole(c, arg, &c->vconsole, err);
	}
}

static int parse_flag(struct machine_config *c, int opt, const char *arg,
		      struct errmsg *err)
{
	switch (opt) {
	case OPT_KERNEL: return machine_config_set_string(c, &c->kernel, arg);
	case OPT_INITRD: return machine_config_set_string(c, &c->initrd, arg);
	case OPT_CMDLINE: return machine_config_set_string(c, &c->cmdline, arg);
	case OPT_CONSOLE: return machine_config_set_string(c, &c->console, arg);
	case OPT_HUGETLB: c->hugetlb = true; return 0;
	case OPT_EXIT_STATS: c->exit_stats = true; return 0;
	case OPT_NAME: return machine_config_set_string(c, &c->name, arg);
	case OPT_API_SOCKET:
		if (!*arg)
			return errmsg_set(err, -EINVAL, "--api-socket needs a socket path");
		return machine_config_set_string(c, &c->api_socket, arg);
	case OPT_MEM:
		if (parse_size(arg, &c->mem_size) || c->mem_size < GUEST_MEM_MIN_SIZE ||
		    c->mem_size % 4096)
			return errmsg_set(err, -EINVAL, "invalid --mem '%s': give a size of "
					  "at least 2M, a multiple of 4K, like 512M or 2G",
					  arg);
		return 0;
	case OPT_CONFIG:
		return machine_config_from_json_file(c, arg, err);
	case OPT_CPUS:
		if (parse_uint(arg, 1, MACHINE_MAX_CPUS, &c->cpus))
			return errmsg_set(err, -EINVAL, "invalid --cpus '%s': give a whole "
					  "number from 1 to 255", arg);
		return 0;
	}
	if (opt >= OPT_DISK && opt <= OPT_VCONSOLE)
		return parse_device_flag(c, opt, arg, err);
	if (opt >= OPT_WSS && opt <= OPT_WSS_LOG)
		return parse_wss_flag(c, opt, arg, err);
	return parse_pager_flag(c, opt, arg, err);
}

int machine_config_parse_flags(struct machine_config *c, int argc,
			       char **argv, struct errmsg *err)
{
	int opt, ret;

	opterr = 0;
	optind = 1;
	/* "--balloon,FLAGS" (the documented form) is getopt's
	 * "--balloon=FLAGS" */
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--balloon,", 10))
			argv[i][9] = '=';
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?' || opt == ':')
			return errmsg_set(err, -EINVAL, "unknown or incomplete option '%s'",
					  argv[optind - 1]);
		ret = parse_flag(c, opt, optarg, err);
		if (ret)
			return ret == -ENOMEM ?
			       errmsg_set(err, ret, "out of memory") : ret;
	}
	if (optind < argc)
		return errmsg_set(err, -EINVAL, "unexpected argument '%s'",
				  argv[optind]);
	return machine_config_validate(c, err);
}

/* ---- back to flags ------------------------------------------------------- */

/* One argument, quoted for a POSIX shell where it needs to be. */
static void put_arg(struct strbuf *b, const char *arg)
{
	const char *safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789_./:,=@%+-";

	strbuf_printf(b, "%s", b->len ? " " : "");
	if (*arg && strspn(arg, safe) == strlen(arg)) {
		strbuf_printf(b, "%s", arg);
		return;
	}
	strbuf_printf(b, "'");
	for (; *arg; arg++)
		strbuf_printf(b, *arg == '\'' ? "'\\''" : "%c", *arg);
	strbuf_printf(b, "'");
}

static void put_flag(struct strbuf *b, const char *flag, const char *value)
{
	put_arg(b, flag);
	if (value)
		put_arg(b, value);
}

/* A spec built in a strbuf of its own, then quoted as one argument. */
static void put_spec(struct strbuf *b, const char *flag, struct strbuf *spec)
{
	char *text = strbuf_finish(spec);

	if (!text) {
		b->failed = true;
		return;
	}
	put_flag(b, flag, text);
	free(text);
}

static void format_devices(struct strbuf *b, const struct machine_config *c)
{
	struct strbuf spec = { 0 };

	for (unsigned i = 0; i < c->ndisks; i++) {
		config_text_disk(&spec, &c->disks[i]);
		put_spec(b, "--disk", &spec);
	}
	for (unsigned i = 0; i < c->nnets; i++) {
		config_text_net(&spec, &c->nets[i]);
		put_spec(b, "--net", &spec);
	}
	if (c->rng)
		put_flag(b, "--rng", NULL);
	if (c->balloon)
		put_arg(b, c->balloon_opts.deflate_on_oom ?
			   (c->balloon_opts.free_page_reporting ?
			    "--balloon,deflate-on-oom,free-page-reporting" :
			    "--balloon,deflate-on-oom") :
			   (c->balloon_opts.free_page_reporting ?
			    "--balloon,free-page-reporting" : "--balloon"));
	if (c->vconsole.out_path) {
		strbuf_printf(&spec, "%s", c->vconsole.out_path);
		if (c->vconsole.in_path)
			strbuf_printf(&spec, ",in=%s", c->vconsole.in_path);
		put_spec(b, "--vconsole", &spec);
	}
	if (c->name)
		put_flag(b, "--name", c->name);
	if (c->api_socket)
		put_flag(b, "--api-socket", c->api_socket);
}

static void format_wss(struct strbuf *b, const struct machine_wss *w)
{
	static const char *const modes[] = { "", "dirty", "sample", "both" };
	static const char *const logs[] = { "", "auto", "ring", "bitmap" };
	struct machine_config defaults;
	char text[64];

	if (!w->enabled)
		return;
	machine_config_init(&defaults);
	config_text_duration(text, sizeof(text), w->interval_ns);
	strbuf_printf(b, " --wss=%s", text);
	if (w->csv)
		put_flag(b, "--wss-csv", w->csv);
	if (w->sample_min != defaults.wss.sample_min) {
		snprintf(text, sizeof(text), "%llu", (unsigned long long)w->sample_min);
		put_flag(b, "--wss-sample", text);
	}
	if (w->full)
		put_flag(b, "--wss-sample", "full");
	if (w->rel_error != defaults.wss.rel_error) {
		snprintf(text, sizeof(text), "%.17g", w->rel_error * 100);
		put_flag(b, "--wss-error", text);
	}
	if (w->mode != defaults.wss.mode && w->mode <= WSS_MODE_BOTH)
		put_flag(b, "--wss-mode", modes[w->mode]);
	if (w->log != defaults.wss.log && w->log <= VM_DIRTY_LOG_BITMAP)
		put_flag(b, "--wss-log", logs[w->log]);
}

static void format_pager(struct strbuf *b, const struct machine_pager *p)
{
	char text[32];

	if (!p->enabled)
		return;
	config_text_size(text, sizeof(text), p->local_bytes);
	put_flag(b, "--mem-local", text);
	if (p->backend)
		put_flag(b, "--mem-backend", p->backend);
	if (p->ns)
		put_flag(b, "--mem-namespace", p->ns);
	if (p->secret_file)
		put_flag(b, "--mem-secret-file", p->secret_file);
	if (p->threads) {
		snprintf(text, sizeof(text), "%u", p->threads);
		put_flag(b, "--pager-threads", text);
	}
}

char *machine_config_format_flags(const struct machine_config *c)
{
	struct strbuf b = { 0 };
	char text[32];

	if (c->kernel)
		put_flag(&b, "--kernel", c->kernel);
	if (c->initrd)
		put_flag(&b, "--initrd", c->initrd);
	if (c->cmdline)
		put_flag(&b, "--cmdline", c->cmdline);
	config_text_size(text, sizeof(text), c->mem_size);
	put_flag(&b, "--mem", text);
	snprintf(text, sizeof(text), "%u", c->cpus);
	put_flag(&b, "--cpus", text);
	if (c->hugetlb)
		put_flag(&b, "--hugetlb", NULL);
	if (strcmp(c->console, "stdio"))
		put_flag(&b, "--console", c->console);
	if (c->exit_stats)
		put_flag(&b, "--exit-stats", NULL);
	format_devices(&b, c);
	format_wss(&b, &c->wss);
	format_pager(&b, &c->pager);
	return strbuf_finish(&b);
}
