// SPDX-License-Identifier: MIT
/*
 * The machine layer without the CLI: configs to flags and JSON and back,
 * the checks every config passes, and real VMs (the bundled guest from
 * $GUEST_ELF) built from a machine_config and driven through each state.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_machine.h"
#include "harness.h"
#include "machine/machine.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Splits a line of machine_config_format_flags() the way a POSIX shell
 * would (words, single quotes, '\'' for a quote), in place. */
static int split_words(char *line, char **argv, int max)
{
	int argc = 0;
	char *in = line, *out;

	argv[argc++] = "run";
	while (*in) {
		while (*in == ' ')
			in++;
		if (!*in)
			break;
		if (argc == max)
			return -1;
		argv[argc++] = out = in;
		while (*in && *in != ' ') {
			if (*in == '\'') {
				for (in++; *in && *in != '\''; )
					*out++ = *in++;
				if (*in)
					in++;
			} else if (*in == '\\' && in[1]) {
				*out++ = in[1];
				in += 2;
			} else {
				*out++ = *in++;
			}
		}
		if (*in)
			in++;
		*out = 0;
	}
	return argc;
}

static int parse_line(struct machine_config *c, const char *line,
		      struct errmsg *err)
{
	char *copy = strdup(line), *argv[128];
	int argc = copy ? split_words(copy, argv, 128) : -1, ret;

	machine_config_init(c);
	ret = argc < 0 ? -E2BIG : machine_config_parse_flags(c, argc, argv, err);
	free(copy);
	return ret;
}

static const char rich_flags[] =
	"--kernel '/boot/my kernel' --initrd /boot/initrd.img "
	"--cmdline 'console=ttyS0 quiet it'\\''s' --mem 1G --cpus 4 "
	"--console /tmp/console.log --exit-stats "
	"--disk a.img --disk b.img,ro --disk c.img,ro "
	"--net tap=tap0 --net tap=tap1,mac=52:54:00:12:34:56,offload=off "
	"--rng --balloon,deflate-on-oom,free-page-reporting "
	"--vconsole out.txt,in=/tmp/fifo "
	"--name web-1.a --api-socket /run/api.sock "
	"--wss=500ms --wss-csv wss.csv --wss-sample 300 --wss-error 2.5 "
	"--wss-mode sample --wss-log ring "
	"--mem-local 64M --mem-backend memd:10.0.0.1:7000,replicas=2 "
	"--mem-namespace ns1 --mem-secret-file /etc/secret --pager-threads 4";

TEST(machine_config_round_trips_through_flags_and_json)
{
	struct machine_config a, b, c;
	struct errmsg err = { "" };
	char *flags, *json;

	CHECK_EQ(parse_line(&a, rich_flags, &err), 0);
	CHECK(!strcmp(a.kernel, "/boot/my kernel"));
	CHECK(!strcmp(a.cmdline, "console=ttyS0 quiet it's"));
	CHECK_EQ(a.ndisks, 3);
	CHECK(a.disks[1].read_only && a.disks[2].read_only);
	CHECK(a.nets[1].has_mac && a.nets[1].no_offloads);
	CHECK(a.balloon && a.balloon_opts.free_page_reporting);
	CHECK_EQ(a.wss.interval_ns, 500000000ull);
	CHECK_EQ(a.pager.local_bytes, 64ull << 20);
	CHECK_EQ(a.pager.threads, 4);
	CHECK(!strcmp(a.name, "web-1.a") && !strcmp(a.api_socket, "/run/api.sock"));

	flags = machine_config_format_flags(&a);
	CHECK(flags != NULL);
	CHECK_EQ(parse_line(&b, flags, &err), 0);
	CHECK(machine_config_equal(&a, &b));

	json = machine_config_to_json(&a);
	CHECK(json != NULL);
	machine_config_init(&c);
	CHECK_EQ(machine_config_from_json(&c, json, strlen(json), &err), 0);
	CHECK(machine_config_equal(&a, &c));
	free(flags);
	free(json);
	machine_config_release(&c);

	/* a copy owns its strings: the original can go first */
	CHECK_EQ(machine_config_copy(&c, &a), 0);
	machine_config_release(&a);
	CHECK(machine_config_equal(&b, &c));
	CHECK(!strcmp(c.disks[1].path, "b.img"));
	machine_config_release(&b);
	machine_config_release(&c);
}

/* What the pager excludes: O_DIRECT disks, huge pages. */
TEST(machine_config_round_trips_without_pager)
{
	struct machine_config a, b;
	struct errmsg err = { "" };
	char *flags;

	CHECK_EQ(parse_line(&a, "--mem 2G --hugetlb --disk 'x y.img',direct "
			    "--wss --wss-sample full --wss-mode dirty", &err), 0);
	CHECK(a.disks[0].direct && a.hugetlb && a.wss.full);
	flags = machine_config_format_flags(&a);
	CHECK(flags != NULL);
	CHECK_EQ(parse_line(&b, flags, &err), 0);
	CHECK(machine_config_equal(&a, &b));
	free(flags);
	machine_config_release(&a);
	machine_config_release(&b);
}

TEST(machine_config_defaults_round_trip)
{
	struct machine_config a, b;
	struct errmsg err = { "" };
	char *flags, *json;

	machine_config_init(&a);
	flags = machine_config_format_flags(&a);
	CHECK(flags != NULL);
	CHECK(!strcmp(flags, "--mem 256M --cpus 1"));
	CHECK_EQ(parse_line(&b, flags, &err), 0);
	CHECK(machine_config_equal(&a, &b));
	free(flags);
	machine_config_release(&b);

	machine_config_init(&b);
	CHECK_EQ(machine_config_from_json(&b, "{}", 2, &err), 0);
	CHECK(machine_config_equal(&a, &b));
	json = machine_config_to_json(&a);
	CHECK(json != NULL && strstr(json, "\"pager\": null"));
	free(json);
	machine_config_release(&b);
}

/* True if @ret is -EINVAL with a message holding @expect; else fails
 * the test naming case @i and its @input. */
static bool refused(int ret, const struct errmsg *err, const char *expect,
		    unsigned i, const char *input)
{
	if (ret == -EINVAL && strstr(err->text, expect))
		return true;
	harness_fail(__FILE__, __LINE__, "case %u (%s): ret %d, \"%s\"", i,
		     input, ret, err->text);
	return false;
}

/* The JSON comes from API clients: every mistake is refused, naming it. */
TEST(machine_config_json_rejects_bad_input_naming_the_key)
{
	static const struct {
		const char *json, *expect;
	} cases[] = {
		{ "{\"mem\": \"12x\"}", "\"mem\"" },
		{ "{\"cpus\": 0}", "--cpus" },
		{ "{\"cpus\": \"2\"}", "\"cpus\"" },
		{ "{\"memory\": 1}", "\"memory\" is not a config field" },
		{ "{\"disks\": [{\"path\": \"a\", \"readonly\": true}]}",
		  "\"disks[0].readonly\"" },
		{ "{\"disks\": [{\"ro\": true}]}", "--disk needs a file name" },
		{ "{\"nets\": [{\"tap\": \"t\", \"mac\": \"01:00:5e:00:00:01\"}]}",
		  "\"nets[0].mac\"" },
		{ "{\"pager\": {\"mem_local\": \"1M\"}}", "--mem-local" },
		{ "{\"wss\": {\"mode\": \"all\"}}", "\"wss.mode\"" },
		{ "{\"kernel\": \"a\\u0000b\"}", "not JSON" },
		{ "{\"mem\": 1, \"mem\": 2}", "not JSON" },
		{ "[1, 2]", "must be an object" },
		{ "{\"hugetlb\": 1}", "\"hugetlb\"" },
		{ "", "not JSON" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct machine_config c;
		struct errmsg err = { "" };
		int ret;

		machine_config_init(&c);
		ret = machine_config_from_json(&c, cases[i].json,
					       strlen(cases[i].json), &err);
		machine_config_release(&c);
		if (!refused(ret, &err, cases[i].expect, i, cases[i].json))
			return;
	}
}

TEST(machine_config_flags_reject_what_run_rejected)
{
	static const struct {
		const char *line, *expect;
	} cases[] = {
		{ "--mem 3x", "invalid --mem '3x'" },
		{ "--mem-backend file:/tmp", "need --mem-local" },
		{ "--mem-local 64M --hugetlb --mem 64M", "--hugetlb" },
		{ "--disk ''", "--disk needs a file name" },
		{ "--rng --rng", "--rng given twice" },
		{ "--net mac=52:54:00:00:00:01", "needs tap=NAME" },
		{ "--bogus", "unknown or incomplete option '--bogus'" },
		{ "--wss=1ms", "at least 10ms" },
		{ "--mem-local 64M --disk a,direct", "O_DIRECT" },
		{ "--name a/b", "invalid --name 'a/b'" },
		{ "--name .hidden", "invalid --name '.hidden'" },
		{ "--api-socket ''", "--api-socket needs a socket path" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct machine_config c;
		struct errmsg err = { "" };
		int ret = parse_line(&c, cases[i].line, &err);

		machine_config_release(&c);
		if (!refused(ret, &err, cases[i].expect, i, cases[i].line))
			return;
	}
}

/* A machine running the bundled guest's @workload; NULL and a reason to
 * skip if this machine has no usable KVM. */
static const char *make_machine(struct machine **m, const char *workload,
				int *ret)
{
	struct machine_config cfg;
	const char *skip;

	*m = NULL;
	skip = guest_machine_config(&cfg, workload, 16ull << 20);
	return skip ? skip : guest_machine_create(&cfg, m, ret);
}

TEST(machine_from_config_walks_every_state_and_is_destroyed_from_each)
{
	static const enum machine_state targets[] = {
		MACHINE_CREATED, MACHINE_RUNNING, MACHINE_PAUSED,
		MACHINE_SHUTTING_DOWN, MACHINE_STOPPED,
	};
	struct errmsg err = { "" };
	struct vm_exit exit;
	struct machine *m;
	const char *skip;
	int ret = 0;

	for (unsigned t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		skip = make_machine(&m, "compute seconds=600", &ret);
		if (skip)
			SKIP(skip);
		CHECK_EQ(ret, 0);
		CHECK_EQ(machine_state(m), MACHINE_CREATED);
		/* illegal before start: nothing changes */
		CHECK_EQ(machine_pause(m), -EBUSY);
		CHECK_EQ(machine_resume(m), -EBUSY);
		CHECK_EQ(machine_request_shutdown(m), -EBUSY);
		CHECK_EQ(machine_state(m), MACHINE_CREATED);
		if (targets[t] != MACHINE_CREATED) {
			CHECK_EQ(machine_start(m, &err), 0);
			CHECK_EQ(machine_state(m), MACHINE_RUNNING);
			CHECK_EQ(machine_start(m, &err), -EBUSY);
			CHECK_EQ(machine_resume(m), -EBUSY);
		}
		if (targets[t] == MACHINE_PAUSED) {
			CHECK_EQ(machine_pause(m), 0);
			CHECK_EQ(machine_pause(m), -EBUSY);
			CHECK_EQ(machine_request_shutdown(m), -EBUSY);
		}
		if (targets[t] == MACHINE_SHUTTING_DOWN)
			/* the bundled guest ignores the button: it runs on */
			CHECK_EQ(machine_request_shutdown(m), 0);
		if (targets[t] == MACHINE_STOPPED) {
			CHECK_EQ(machine_stop(m), 0);
			machine_wait(m, &exit);
			CHECK_EQ(exit.reason, VM_EXIT_STOPPED);
			CHECK_EQ(machine_stop(m), -EBUSY);
			CHECK_EQ(machine_pause(m), -EBUSY);
		}
		CHECK_EQ(machine_state(m), targets[t]);
		machine_destroy(m);
	}
}

TEST(machine_pause_holds_the_guest_until_resume)
{
	struct errmsg err = { "" };
	struct vm_exit exit;
	struct machine *m;
	const char *skip;
	int ret = 0;

	skip = make_machine(&m, "compute ms=200", &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	CHECK_EQ(machine_start(m, &err), 0);
	CHECK_EQ(machine_pause(m), 0);
	/* 200 ms of guest work cannot finish while no vCPU runs */
	sleep_ms(1000);
	CHECK_EQ(machine_state(m), MACHINE_PAUSED);
	CHECK(!machine_exit_peek(m, &exit));
	CHECK_EQ(machine_resume(m), 0);
	machine_wait(m, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_GUEST_DONE);
	CHECK_EQ(machine_state(m), MACHINE_STOPPED);
	CHECK(machine_uptime_ns(m) > 0);
	machine_destroy(m);
}

/* An instruction KVM cannot emulate (the emulfail workload) is KVM's
 * failure, not the guest's end: FAILED, and nothing is legal but
 * destroy. */
TEST(machine_fails_when_kvm_cannot_go_on)
{
	struct errmsg err = { "" };
	struct vm_exit exit;
	struct machine *m;
	const char *skip;
	int ret = 0;

	skip = make_machine(&m, "emulfail", &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	CHECK_EQ(machine_start(m, &err), 0);
	machine_wait(m, &exit);
	CHECK_EQ(exit.reason, VM_EXIT_INTERNAL_ERROR);
	CHECK_EQ(machine_state(m), MACHINE_FAILED);
	CHECK_EQ(machine_pause(m), -EBUSY);
	CHECK_EQ(machine_resume(m), -EBUSY);
	CHECK_EQ(machine_stop(m), -EBUSY);
	CHECK_EQ(machine_start(m, &err), -EBUSY);
	machine_destroy(m);
}

TEST(machine_create_failure_leaves_nothing_and_says_why)
{
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct machine *m = (struct machine *)&cfg;

	machine_config_init(&cfg);
	cfg.kernel = "/nonexistent/kernel.elf";
	CHECK_EQ(machine_create(&cfg, NULL, &m, &err), -ENOENT);
	CHECK(m == NULL);
	CHECK(strstr(err.text, "cannot open /nonexistent/kernel.elf"));
	cfg.kernel = NULL;	/* no default kernel without the CLI */
	cfg.cpus = 0;
	CHECK_EQ(machine_create(&cfg, NULL, &m, &err), -EINVAL);
	CHECK(strstr(err.text, "--cpus"));
}
