// SPDX-License-Identifier: MIT
/*
 * The flags of `rackvm run --restore FILE` (run_restore.h).
 */
#include "cli/run_restore.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

const char run_restore_usage[] =
	"  --restore FILE    resume the VM saved in FILE (PUT /vm/snapshot);\n"
	"                    the machine comes from FILE: only --name,\n"
	"                    --api-socket, --console and --lazy may be given\n"
	"  --lazy            with --restore: read guest pages from FILE when\n"
	"                    first touched (FILE must stay until the VM ends)\n"
	"  --incoming tcp:ADDR:PORT  wait there for a VM migrating here\n"
	"                    (PUT /vm/migrate on the source); the same flags\n"
	"                    as --restore may be given\n";

enum { OPT_RESTORE = 1000, OPT_LAZY, OPT_NAME, OPT_API_SOCKET, OPT_CONSOLE,
       OPT_INCOMING };

bool run_restore_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--restore") ||
		    !strncmp(argv[i], "--restore=", 10) ||
		    !strcmp(argv[i], "--incoming") ||
		    !strncmp(argv[i], "--incoming=", 11))
			return true;
	}
	return false;
}

int run_restore_parse(struct run_restore *r, int argc, char **argv,
		      struct errmsg *err)
{
	static const struct option opts[] = {
		{ "restore", required_argument, NULL, OPT_RESTORE },
		{ "lazy", no_argument, NULL, OPT_LAZY },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "incoming", required_argument, NULL, OPT_INCOMING },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(r, 0, sizeof(*r));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_RESTORE: r->path = optarg; break;
		case OPT_LAZY: r->opts.lazy = true; break;
		case OPT_NAME: r->opts.name = optarg; break;
		case OPT_API_SOCKET: r->opts.api_socket = optarg; break;
		case OPT_CONSOLE: r->opts.console = optarg; break;
		case OPT_INCOMING: r->incoming = optarg; break;
		case 'h': return 1;
		case ':':
			return errmsg_set(err, -EINVAL, "%s needs a value",
					  argv[optind - 1]);
		default:
			return errmsg_set(err, -EINVAL, "%s cannot be given with "
					  "--restore: the machine comes from the "
					  "snapshot (only --name, --api-socket, "
					  "--console and --lazy can)",
					  argv[optind - 1]);
		}
	}
	if (optind < argc)
		return errmsg_set(err, -EINVAL, "unexpected argument: %s",
				  argv[optind]);
	if (r->path && r->incoming)
		return errmsg_set(err, -EINVAL, "--restore and --incoming "
				  "exclude each other");
	if (r->incoming && r->opts.lazy)
		return errmsg_set(err, -EINVAL, "--lazy is for --restore");
	if (!r->incoming && (!r->path || !r->path[0]))
		return errmsg_set(err, -EINVAL, "--restore needs a file");
	return 0;
}
