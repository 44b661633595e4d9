// SPDX-License-Identifier: MIT
/* rackvm: the command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm <command> [options]\n"
		"\n"
		"commands:\n"
		"  run       boot a VM (the bundled guest runtime by default)\n"
		"  ctl       drive a running VM through its control API\n"
		"  top       every running VM's state, CPU and memory, live\n"
		"  plot      a VM's WSS and memory, or hostd's balancer log, as SVG\n"
		"  hostd     run this host's VMs within a memory budget (hostd --help)\n"
		"  memd      serve other hosts' evicted guest pages (memd --help)\n"
		"  doctor    what this host offers rackvm; exit 2 if run cannot work\n"
		"  version   print the version\n"
		"  help      this text; `rackvm run --help` for run's options\n"
		"\n");
	print_run_usage(out);
	fprintf(out, "\n");
	print_hostd_usage(out);
	fprintf(out, "\n");
	print_ctl_usage(out);
	fprintf(out, "\n");
	print_top_usage(out);
	fprintf(out, "\n");
	print_plot_usage(out);
	fprintf(out, "\n");
	print_doctor_usage(out);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		print_usage(stderr);
		return EXIT_HOST_ERROR;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "ctl"))
		return cmd_ctl(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "plot"))
		return cmd_plot(argc - 1, argv + 1);
	if (!strcmp(cmd, "hostd"))
		return cmd_hostd(argc - 1, argv + 1);
	if (!strcmp(cmd, "memd"))
		return cmd_memd(argc - 1, argv + 1);
	if (!strcmp(cmd, "doctor"))
		return cmd_doctor(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("rackvm %s\n", RACKVM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		print_usage(stdout);
		return 0;
	}
	fprintf(stderr, "rackvm: unknown command '%s' (try rackvm --help)\n", cmd);
	return EXIT_HOST_ERROR;
}
