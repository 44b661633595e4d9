// SPDX-License-Identifier: MIT
/*
 * `rackvm hostd`: flags into a hostd config (host/hostd.h), then the
 * daemon runs until SIGINT or SIGTERM; its VMs keep running after it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_top.h"
#include "cli/cli.h"
#include "host/hostd.h"
#include "util/parse.h"

void print_hostd_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm hostd --memory BUDGET [options]\n"
		"  runs this host's VMs within BUDGET bytes of RAM (like 8G), moving\n"
		"  memory between them by their working sets (docs/hostd-api.yaml)\n"
		"  --runtime-dir DIR   VM sockets, configs, consoles, the decision\n"
		"                      log (default $XDG_RUNTIME_DIR/rackvm, as root\n"
		"                      /run/rackvm); VMs with an API socket there\n"
		"                      are adopted\n"
		"  --listen-socket PATH  hostd's API (default RUNTIME_DIR/hostd.sock)\n"
		"  --swap file:DIR|memd:HOST:PORT[,...]|memcached:HOST:PORT[,...]\n"
		"                      give the VMs it starts a pager evicting there\n"
		"                      (file:DIR: a file DIR/NAME.pages per VM)\n"
		"  --policy both|balloon|paging|static|none  the VMs' default lever\n"
		"                      (default both)\n"
		"  --tau T             idle memory tax, 0 to 0.99 (default 0.75)\n"
		"  --period SECONDS    the balancer's period (default 1)\n"
		"  --stop-timeout SECONDS  DELETE: shutdown, then stop after this,\n"
		"                      then kill after as long (default 10)\n");
}

/* A number of seconds or a fraction in [lo, hi]. */
static int number(const char *arg, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse(int argc, char **argv, struct hostd_config *c,
		 char *dir, size_t dir_len)
{
	struct errmsg err = { "" };
	bool budget = false;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool bad = false;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_hostd_usage(stdout);
			return 1;
		}
		if (!v) {
			fprintf(stderr, "rackvm hostd: unknown or incomplete option "
				"'%s' (see rackvm hostd --help)\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--memory"))
			bad = parse_size(v, &c->params.budget) || !c->params.budget,
			budget = true;
		else if (!strcmp(a, "--runtime-dir"))
			c->runtime_dir = v;
		else if (!strcmp(a, "--listen-socket"))
			c->listen_socket = v;
		else if (!strcmp(a, "--swap"))
			c->swap = v;
		else if (!strcmp(a, "--policy"))
			bad = balancer_policy_parse(v, &c->policy) != 0;
		else if (!strcmp(a, "--tau"))
			bad = number(v, 0, 0.99, &c->params.tau);
		else if (!strcmp(a, "--period"))
			bad = number(v, 0.05, 3600, &c->period_s);
		else if (!strcmp(a, "--stop-timeout"))
			bad = number(v, 0.1, 3600, &c->stop_timeout_s);
		else
			bad = true, i--;
		if (bad) {
			fprintf(stderr, "rackvm hostd: invalid %s '%s' (see rackvm "
				"hostd --help)\n", a, v);
			return -1;
		}
	}
	if (!budget) {
		fprintf(stderr, "rackvm hostd: give --memory BUDGET, like 8G\n");
		return -1;
	}
	if (!c->runtime_dir) {
		if (top_default_dir(dir, dir_len, &err)) {
			fprintf(stderr, "rackvm hostd: %s\n", err.text);
			return -1;
		}
		c->runtime_dir = dir;
	}
	return 0;
}

int cmd_hostd(int argc, char **argv)
{
	struct hostd_config c = {
		.policy = BALANCER_BOTH,
		.period_s = HOSTD_DEFAULT_PERIOD_S,
		.stop_timeout_s = HOSTD_DEFAULT_STOP_TIMEOUT_S,
	};
	struct errmsg err = { "" };
	sigset_t ends;
	char dir[256], self[4096];
	struct hostd *h;
	ssize_t n;
	int ret, sig;

	balancer_params_init(&c.params);
	ret = parse(argc, argv, &c, dir, sizeof(dir));
	if (ret)
		return ret > 0 ? 0 : EXIT_HOST_ERROR;
	/* the VMs run this very binary's `run` */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || (size_t)n >= sizeof(self) - 1) {
		fprintf(stderr, "rackvm hostd: cannot find its own binary: %s\n",
			strerror(errno));
		return EXIT_HOST_ERROR;
	}
	self[n] = 0;
	c.rackvm = self;
	signal(SIGPIPE, SIG_IGN);
	/* blocked before any thread starts, so every thread inherits the
	 * mask and the main thread alone takes them (VMs start unblocked) */
	sigemptyset(&ends);
	sigaddset(&ends, SIGINT);
	sigaddset(&ends, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &ends, NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = hostd_create(&c, &h, &err);
	if (ret) {
		fprintf(stderr, "rackvm hostd: %s\n", err.text);
		curl_global_cleanup();
		return EXIT_HOST_ERROR;
	}
	fprintf(stderr, "rackvm hostd: budget %llu MiB, runtime directory %s\n",
		(unsigned long long)(c.params.budget >> 20), c.runtime_dir);
	sigwait(&ends, &sig);
	hostd_destroy(h);
	curl_global_cleanup();
	return 0;
}
