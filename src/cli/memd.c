// SPDX-License-Identifier: MIT
/*
 * `rackvm memd`: a memory server for other hosts' evicted guest pages.
 *
 * The server loop runs on its own thread; the main thread waits for
 * signals (SIGINT/SIGTERM: stop and free everything, SIGUSR1: print the
 * counters) or for the loop to end on an error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "remote/memd_server.h"
#include "util/parse.h"

struct memd_options {
	struct memd_server_config cfg;	/* the flags, straight in */
	bool quiet;
};

struct loop_thread {
	struct memd_server *server;
	int done_fd;			/* written when the loop returns */
	int ret;
	struct errmsg err;
};

static void print_memd_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm memd --listen ADDR:PORT --capacity SIZE [--quiet]\n"
		"                   [--namespace-quota SIZE] [--namespace-ttl DURATION]\n"
		"                   [--max-clients N] [--max-conns-per-peer N]\n"
		"                   [--hello-timeout DURATION] [--idle-timeout DURATION]\n"
		"  serves evicted guest pages to rackvm instances (their\n"
		"  --mem-backend memd:ADDR:PORT); pages are kept in memory\n"
		"  --listen ADDR:PORT   where to listen (IPv6: [ADDR]:PORT; port 0\n"
		"                       picks a free one, printed when listening)\n"
		"  --capacity SIZE      memory for pages and their index (4M-16T);\n"
		"                       puts beyond it are refused as full\n"
		"  --namespace-quota SIZE  pages one namespace (one VM) may keep here;\n"
		"                       puts beyond are refused as full, and the VM\n"
		"                       keeps or places its pages elsewhere (default\n"
		"                       0: no quota; set one when tenants share memd)\n"
		"  --namespace-ttl DURATION  a namespace with no client connected for\n"
		"                       this long is dropped with its pages (default\n"
		"                       %.0fs); VMs drop theirs when they end\n"
		"  --max-clients N      connections at once (default %d); when all are\n"
		"                       taken, a new one replaces the oldest that has\n"
		"                       not said HELLO\n"
		"  --max-conns-per-peer N  connections from one address (IPv6: one\n"
		"                       /64) at once (default %d)\n"
		"  --hello-timeout DURATION  a connection that has not said HELLO (both\n"
		"                       steps of the handshake) by then is closed\n"
		"                       (default %.0fs)\n"
		"  --idle-timeout DURATION  a connection that moved no byte for this\n"
		"                       long is closed (default %.0fs; rackvm keeps its\n"
		"                       one open connection alive well within that)\n"
		"  --quiet              log only warnings (wrong secrets, bad requests,\n"
		"                       connections refused)\n"
		"  durations: a number and s, ms or us (no unit: seconds)\n"
		"  prints \"memd: listening on ADDR:PORT, capacity SIZE\" when ready;\n"
		"  SIGUSR1 prints the counters, SIGINT/SIGTERM stop it (exit 0)\n",
		(double)MEMD_DEFAULT_NAMESPACE_TTL_NS / 1e9, MEMD_DEFAULT_MAX_CLIENTS,
		MEMD_DEFAULT_MAX_CONNS_PER_PEER,
		(double)MEMD_DEFAULT_HELLO_TIMEOUT_NS / 1e9,
		(double)MEMD_DEFAULT_IDLE_TIMEOUT_NS / 1e9);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "rackvm memd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see rackvm memd --help)\n");
	return -1;
}

/* --namespace-ttl (T), --hello-timeout (H) or --idle-timeout (I). */
static int parse_timeout(int flag, const char *arg, struct memd_options *o)
{
	struct memd_server_config *cfg = &o->cfg;
	uint64_t *out = flag == 'T' ? &cfg->namespace_ttl_ns :
			flag == 'H' ? &cfg->hello_timeout_ns : &cfg->idle_timeout_ns;
	const char *name = flag == 'T' ? "--namespace-ttl" :
			   flag == 'H' ? "--hello-timeout" : "--idle-timeout";

	if (parse_duration_ns(arg, out) || *out < 1000000) {
		fprintf(stderr, "rackvm memd: invalid %s '%s': give a duration of "
			"at least 1ms, like 10s or 600\n(see rackvm memd --help)\n",
			name, arg);
		return -1;
	}
	return 0;
}

/* 1: --help was printed; 0: go on; -1: a usage error was printed. */
static int parse_memd_options(int argc, char **argv, struct memd_options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "max-conns-per-peer", required_argument, NULL, 'p' },
		{ "namespace-quota", required_argument, NULL, 'Q' },
		{ "namespace-ttl", required_argument, NULL, 'T' },
		{ "hello-timeout", required_argument, NULL, 'H' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_capacity = false;
	int c;

	*o = (struct memd_options){ 0 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->cfg.listen = optarg;
			break;
		case 'c':
			if (parse_size(optarg, &o->cfg.capacity) ||
			    o->cfg.capacity < MEMD_MIN_CAPACITY ||
			    o->cfg.capacity > MEMD_MAX_CAPACITY)
				return usage_error("invalid --capacity '%s': give a size "
						   "from 4M to 16T, like 1G", optarg);
			have_capacity = true;
			break;
		case 'm':
			if (parse_uint(optarg, 1, 65536, &o->cfg.max_clients))
				return usage_error("invalid --max-clients '%s': give "
						   "1 to 65536", optarg);
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65536, &o->cfg.max_conns_per_peer))
				return usage_error("invalid --max-conns-per-peer '%s': "
						   "give 1 to 65536", optarg);
			break;
		case 'Q':
			if (parse_size(optarg, &o->cfg.namespace_quota) ||
			    (o->cfg.namespace_quota && o->cfg.namespace_quota < 4096))
				return usage_error("invalid --namespace-quota '%s': give "
						   "a size of at least 4K, like 1G, or 0 "
						   "for none", optarg);
			break;
		case 'T':
		case 'H':
		case 'I':
			if (parse_timeout(c, optarg, o))
				return -1;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			print_memd_usage(stdout);
			return 1;
		default:
			return usage_error("unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->cfg.listen)
		return usage_error("--listen ADDR:PORT is required%s", "");
	if (!have_capacity)
		return usage_error("--capacity SIZE is required%s", "");
	return 0;
}

/* "1.0 GiB", "512.0 MiB", "12.5 KiB", "100 B" */
static void format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int unit = -1;

	while (v >= 1024 && unit < 3) {
		v /= 1024;
		unit++;
	}
	if (unit < 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[unit]);
}

/*
 * Every connection is a file descriptor: raises the soft limit towards
 * the hard one for max clients and a margin, or says how many clients
 * the limit allows (accept() then pauses until a client leaves).
 */
static void fds_for_clients(unsigned max_clients)
{
	rlim_t need = (rlim_t)max_clients + 32;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < need)
		fprintf(stderr, "memd: warning: %llu file descriptors at most: "
			"fewer than %u clients at once (raise ulimit -n)\n",
			(unsigned long long)rl.rlim_cur, max_clients);
}

static void log_line(void *opaque, enum memd_log_level level, const char *line)
{
	const struct memd_options *o = opaque;

	if (level == MEMD_LOG_INFO && o->quiet)
		return;
	fprintf(stderr, "memd: %s%s\n", level == MEMD_LOG_WARN ? "warning: " : "",
		line);
}

static void print_stats(struct memd_server *s)
{
	struct memd_stats st;
	char used[32], cap[32];

	memd_server_stats(s, &st);
	format_size(st.used, used, sizeof(used));
	format_size(st.capacity, cap, sizeof(cap));
	fprintf(stderr, "memd: stats: pages=%llu used=%s of %s namespaces=%llu "
		"connections=%llu put=%llu got=%llu dropped=%llu full=%llu "
		"bad_secret=%llu\n",
		(unsigned long long)st.pages, used, cap,
		(unsigned long long)st.namespaces,
		(unsigned long long)st.connections,
		(unsigned long long)st.pages_put, (unsigned long long)st.pages_got,
		(unsigned long long)st.pages_dropped,
		(unsigned long long)st.full_refusals,
		(unsigned long long)st.bad_secrets);
}

static void *loop_main(void *arg)
{
	struct loop_thread *t = arg;
	uint64_t one = 1;

	t->ret = memd_server_run(t->server, &t->err);
	if (write(t->done_fd, &one, sizeof(one)) < 0)
		t->ret = t->ret ? t->ret : -errno;
	return NULL;
}

/* Until a stop signal or the loop's end; then stops the loop. */
static void wait_for_signals(struct loop_thread *t, int sigfd)
{
	struct pollfd fds[2] = {
		{ .fd = sigfd, .events = POLLIN },
		{ .fd = t->done_fd, .events = POLLIN },
	};

	for (;;) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN)
			return;
		if (!(fds[0].revents & POLLIN) ||
		    read(sigfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGUSR1) {
			print_stats(t->server);
			continue;
		}
		break;
	}
	memd_server_stop(t->server);
}

static int serve(struct memd_server *s, int sigfd)
{
	struct loop_thread t = { .server = s };
	pthread_t thread;
	int err;

	t.done_fd = eventfd(0, EFD_CLOEXEC);
	if (t.done_fd < 0) {
		fprintf(stderr, "rackvm memd: eventfd: %s\n", strerror(errno));
		return EXIT_HOST_ERROR;
	}
	err = pthread_create(&thread, NULL, loop_main, &t);
	if (err) {
		fprintf(stderr, "rackvm memd: cannot start the server thread: %s\n",
			strerror(err));
		close(t.done_fd);
		return EXIT_HOST_ERROR;
	}
	wait_for_signals(&t, sigfd);
	pthread_join(thread, NULL);
	close(t.done_fd);
	if (t.ret) {
		fprintf(stderr, "rackvm memd: %s\n", t.err.text);
		return EXIT_HOST_ERROR;
	}
	return 0;
}

int cmd_memd(int argc, char **argv)
{
	struct memd_options o;
	struct memd_server_config cfg;
	struct memd_server *s;
	struct errmsg err = { "" };
	char addr[128], cap[32];
	sigset_t set;
	int sigfd, status, ret;

	ret = parse_memd_options(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : EXIT_HOST_ERROR;
	/* a client that vanishes is an error on its socket, not our death */
	signal(SIGPIPE, SIG_IGN);
	/* blocked before any thread exists, so every thread inherits it */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) ||
	    (sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "rackvm memd: signalfd: %s\n", strerror(errno));
		return EXIT_HOST_ERROR;
	}
	cfg = o.cfg;
	cfg.log = log_line;
	cfg.log_opaque = &o;
	fds_for_clients(cfg.max_clients ? cfg.max_clients : MEMD_DEFAULT_MAX_CLIENTS);
	if (memd_server_create(&cfg, &s, &err)) {
		fprintf(stderr, "rackvm memd: %s\n", err.text);
		close(sigfd);
		return EXIT_HOST_ERROR;
	}
	memd_server_address(s, addr, sizeof(addr));
	format_size(o.cfg.capacity, cap, sizeof(cap));
	printf("memd: listening on %s, capacity %s\n", addr, cap);
	fflush(stdout);
	status = serve(s, sigfd);
	if (!o.quiet)
		print_stats(s);
	memd_server_destroy(s);
	close(sigfd);
	return status;
}
