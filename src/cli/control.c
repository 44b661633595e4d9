// SPDX-License-Identifier: MIT
/* `rackvm control PATH COMMAND...`: one command to a running rackvm. */
#include <stdio.h>
#include <string.h>

#include "api/control.h"
#include "cli/cli.h"

#define CONTROL_TIMEOUT_MS 10000

void print_control_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm control PATH COMMAND [ARGS...]\n"
		"  sends COMMAND to the rackvm started with --control PATH and\n"
		"  prints its reply; `rackvm control PATH help` lists the commands.\n"
		"  exit status: 0 ok, 1 the command failed, 2 PATH unreachable\n");
}

int cmd_control(int argc, char **argv)
{
	char line[CONTROL_LINE_MAX];
	char reply[CONTROL_REPLY_MAX];
	struct errmsg err = { "" };
	size_t used = 0;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		print_control_usage(stdout);
		return 0;
	}
	if (argc < 3) {
		print_control_usage(stderr);
		return EXIT_HOST_ERROR;
	}
	for (int i = 2; i < argc; i++) {
		int n = snprintf(line + used, sizeof(line) - used, "%s%s",
				 i > 2 ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= sizeof(line) - used) {
			fprintf(stderr, "rackvm control: the command is longer than %d bytes\n",
				CONTROL_LINE_MAX - 1);
			return EXIT_HOST_ERROR;
		}
		used += (size_t)n;
	}
	if (control_request(argv[1], line, reply, sizeof(reply),
			    CONTROL_TIMEOUT_MS, &err)) {
		fprintf(stderr, "rackvm control: %s\n", err.text);
		return EXIT_HOST_ERROR;
	}
	printf("%s\n", reply);
	return strncmp(reply, "ok", 2) || (reply[2] && reply[2] != ' ') ? 1 : 0;
}
