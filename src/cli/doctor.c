// SPDX-License-Identifier: MIT
/* rackvm doctor: prints what host_caps_probe() found and exits 0 if
 * `rackvm run` can work here, 2 if it cannot. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "vm/host_caps.h"

void print_doctor_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm doctor [--json]\n"
		"  what this host offers rackvm: /dev/kvm and the KVM capabilities\n"
		"  rackvm run requires, the optional KVM, kernel and hardware features\n"
		"  and what each enables, and whether guest ring 0 runs at hardware\n"
		"  speed.  One line per item: ok, missing or warn.  Exit 0 if rackvm\n"
		"  run can work here, 2 if it cannot.\n"
		"  --json   the same as one JSON object\n");
}

static void print_item(const struct host_cap *c)
{
	printf("%-7s %-28s %s%s%s\n", host_cap_status_name(c->status), c->name,
	       c->detail, c->detail[0] ? "; " : "", c->meaning);
}

static void print_section(const struct host_caps *caps, bool required)
{
	for (unsigned i = 0; i < caps->count; i++)
		if (caps->items[i].required == required)
			print_item(&caps->items[i]);
}

static void print_text(const struct host_caps *caps)
{
	unsigned warnings = 0;
	bool first = true;

	printf("Required by rackvm run:\n");
	print_section(caps, true);
	printf("\nOptional:\n");
	print_section(caps, false);
	for (unsigned i = 0; i < caps->count; i++)
		warnings += caps->items[i].status == HOST_CAP_WARN;
	if (host_caps_run_possible(caps)) {
		printf("\nrackvm run works on this host (%u warning%s)\n",
		       warnings, warnings == 1 ? "" : "s");
		return;
	}
	printf("\nrackvm run cannot work on this host: missing");
	for (unsigned i = 0; i < caps->count; i++) {
		const struct host_cap *c = &caps->items[i];

		if (c->required && c->status == HOST_CAP_MISSING) {
			printf("%s %s", first ? "" : ",", c->name);
			first = false;
		}
	}
	printf("\n");
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json(const struct host_caps *caps)
{
	printf("{\"run_possible\": %s, \"items\": [",
	       host_caps_run_possible(caps) ? "true" : "false");
	for (unsigned i = 0; i < caps->count; i++) {
		const struct host_cap *c = &caps->items[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		print_json_string(c->name);
		printf(", \"status\": \"%s\", \"required\": %s, \"detail\": ",
		       host_cap_status_name(c->status),
		       c->required ? "true" : "false");
		print_json_string(c->detail);
		printf(", \"meaning\": ");
		print_json_string(c->meaning);
		printf("}");
	}
	printf("\n]}\n");
}

int cmd_doctor(int argc, char **argv)
{
	struct host_caps caps;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			print_doctor_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "rackvm doctor: unknown option '%s'\n",
				argv[i]);
			print_doctor_usage(stderr);
			return EXIT_HOST_ERROR;
		}
	}
	host_caps_probe(&caps, NULL);
	if (json)
		print_json(&caps);
	else
		print_text(&caps);
	fflush(stdout);
	return host_caps_run_possible(&caps) ? 0 : EXIT_HOST_ERROR;
}
