// SPDX-License-Identifier: MIT
/* hostd's pure parts (host/hostd_request.h): routes, VM requests,
 * settings, the config hostd adds to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "host/hostd_request.h"

static int match(const char *method, const char *path, char *name,
		 enum hostd_route_id *id, char *allow)
{
	const struct hostd_route *r = NULL;
	struct errmsg err = { "" };
	char allow_buf[64];
	int ret = hostd_route_match(method, path, &r, name, MACHINE_NAME_MAX + 1,
				    allow ? allow : allow_buf, 64, &err);

	if (!ret)
		*id = r->id;
	return ret;
}

TEST(hostd_routes_match_exact_paths_and_names)
{
	char name[MACHINE_NAME_MAX + 1];
	enum hostd_route_id id = 0;

	CHECK_EQ(match("GET", "/vms", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_GET_VMS);
	CHECK_EQ(name[0], 0);
	CHECK_EQ(match("POST", "/vms", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_POST_VMS);
	CHECK_EQ(match("PATCH", "/vms/web-1.a_b", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_PATCH_VM);
	CHECK(!strcmp(name, "web-1.a_b"));
	CHECK_EQ(match("DELETE", "/vms/x", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_DELETE_VM);
	CHECK_EQ(match("GET", "/balancer/log", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_GET_BALANCER_LOG);
	CHECK_EQ(match("GET", "/metrics", name, &id, NULL), 0);
	CHECK_EQ(id, HOSTD_GET_METRICS);
}

TEST(hostd_routes_refuse_what_is_not_there)
{
	char name[MACHINE_NAME_MAX + 1], allow[64], longname[200];
	enum hostd_route_id id;

	CHECK_EQ(match("PUT", "/vms", name, &id, allow), -EOPNOTSUPP);
	CHECK(!strcmp(allow, "GET, POST"));
	CHECK_EQ(match("POST", "/vms/a", name, &id, allow), -EOPNOTSUPP);
	CHECK(!strcmp(allow, "GET, PATCH, DELETE"));
	CHECK_EQ(match("GET", "/vms/", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/vms/a/b", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/vms/.hidden", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/vms/a%20b", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/vms/hostd", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/vmsx", name, &id, NULL), -ENOENT);
	CHECK_EQ(match("GET", "/", name, &id, NULL), -ENOENT);
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "/vms/", 5);
	longname[sizeof(longname) - 1] = 0;
	CHECK_EQ(match("GET", longname, name, &id, NULL), -ENOENT);
}

static int request(const char *body, struct machine_config *c,
		   struct hostd_settings *s, struct errmsg *err)
{
	int ret = hostd_parse_vm_request(body, strlen(body), BALANCER_BOTH, c, s,
					 err);

	return ret;
}

TEST(hostd_vm_request_splits_config_and_settings)
{
	struct machine_config c;
	struct hostd_settings s;
	struct errmsg err = { "" };

	CHECK_EQ(request("{\"name\": \"a\", \"mem\": \"128M\", \"cmdline\": "
			 "\"compute\", \"shares\": 2000, \"min\": \"64M\", "
			 "\"max\": 100000000, \"policy\": \"paging\"}", &c, &s,
			 &err), 0);
	CHECK(!strcmp(c.name, "a"));
	CHECK_EQ(c.mem_size, 128ull << 20);
	CHECK(s.shares == 2000);
	CHECK_EQ(s.min, 64ull << 20);
	CHECK_EQ(s.max, 100000000ull);
	CHECK_EQ(s.policy, BALANCER_PAGING);
	machine_config_release(&c);

	CHECK_EQ(request("{\"name\": \"b\"}", &c, &s, &err), 0);
	CHECK(s.shares == HOSTD_DEFAULT_SHARES);
	CHECK_EQ(s.min, 0);
	CHECK_EQ(s.policy, BALANCER_BOTH);
	machine_config_release(&c);
}

/* @body is refused, its message containing @why. */
static bool refused(const char *body, const char *why)
{
	struct machine_config c;
	struct hostd_settings s;
	struct errmsg err = { "" };
	int ret = request(body, &c, &s, &err);

	machine_config_release(&c);
	if (ret != -EINVAL || !strstr(err.text, why)) {
		fprintf(stderr, "  %s -> %d %s\n", body, ret, err.text);
		return false;
	}
	return true;
}

TEST(hostd_vm_request_refuses_bad_configs)
{
	CHECK(refused("", "JSON"));
	CHECK(refused("[1]", "object"));
	CHECK(refused("{\"mem\": \"128M\"}", "\"name\" is missing"));
	CHECK(refused("{\"name\": \"hostd\"}", "hostd's own"));
	CHECK(refused("{\"name\": \"../x\"}", "name"));
	CHECK(refused("{\"name\": \"a\", \"kernel\": \"/nonexistent/bzImage\"}",
		      "cannot read /nonexistent/bzImage"));
	CHECK(refused("{\"name\": \"a\", \"disks\": [{\"path\": \"/nonexistent\"}]}",
		      "cannot read"));
	CHECK(refused("{\"name\": \"a\", \"memory\": \"1G\"}", "memory"));
	CHECK(refused("{\"name\": \"a\", \"mem\": \"-1\"}", "mem"));
	CHECK(refused("{\"name\": \"a\", \"mem\": 1000}", "mem"));
	CHECK(refused("{\"name\": \"a\", \"mem\": \"128M\", \"min\": \"256M\"}",
		      "\"min\""));
	CHECK(refused("{\"name\": \"a\", \"mem\": \"128M\", \"max\": \"1G\"}",
		      "\"max\""));
	CHECK(refused("{\"name\": \"a\", \"max\": 4096}", "\"max\""));
	CHECK(refused("{\"name\": \"a\", \"shares\": 0}", "\"shares\""));
	CHECK(refused("{\"name\": \"a\", \"shares\": \"x\"}", "\"shares\""));
	CHECK(refused("{\"name\": \"a\", \"policy\": \"fast\"}", "\"policy\""));
}

TEST(hostd_settings_patch_and_round_trip)
{
	struct hostd_settings s, back;
	struct errmsg err = { "" };
	const char *body = "{\"shares\": 500, \"min\": \"32M\"}";
	char *text;

	hostd_settings_init(&s, BALANCER_BOTH);
	CHECK_EQ(hostd_parse_settings(body, strlen(body), 128ull << 20, &s, &err), 0);
	CHECK(s.shares == 500);
	CHECK_EQ(s.min, 32ull << 20);
	/* refused: unchanged */
	body = "{\"min\": \"256M\"}";
	CHECK_EQ(hostd_parse_settings(body, strlen(body), 128ull << 20, &s, &err),
		 -EINVAL);
	CHECK_EQ(s.min, 32ull << 20);
	body = "{\"name\": \"x\"}";
	CHECK_EQ(hostd_parse_settings(body, strlen(body), 0, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "unknown field"));
	s.policy = BALANCER_STATIC;
	text = hostd_settings_to_json(&s);
	CHECK(text);
	hostd_settings_init(&back, BALANCER_BOTH);
	CHECK_EQ(hostd_parse_settings(text, strlen(text), 0, &back, &err), 0);
	CHECK(back.shares == s.shares && back.min == s.min && back.max == s.max &&
	      back.policy == s.policy);
	free(text);
	CHECK_EQ(hostd_effective_min(&back, 128ull << 20, 64ull << 20), 32ull << 20);
	back.min = 0;
	CHECK_EQ(hostd_effective_min(&back, 128ull << 20, 64ull << 20), 64ull << 20);
	CHECK_EQ(hostd_effective_min(&back, 32ull << 20, 64ull << 20), 32ull << 20);
}

TEST(hostd_prepare_config_adds_the_levers)
{
	struct machine_config c;
	struct hostd_settings s;
	struct errmsg err = { "" };

	CHECK_EQ(request("{\"name\": \"a\", \"mem\": \"128M\"}", &c, &s, &err), 0);
	CHECK_EQ(hostd_prepare_config(&c, "/run/x", "file:/var/tmp", &err), 0);
	CHECK(!strcmp(c.api_socket, "/run/x/a.sock"));
	CHECK(!strcmp(c.console, "/run/x/a.console"));
	CHECK(c.balloon && c.balloon_opts.deflate_on_oom &&
	      c.balloon_opts.free_page_reporting);
	CHECK(c.wss.enabled);
	CHECK(c.pager.enabled);
	CHECK_EQ(c.pager.local_bytes, 128ull << 20);
	CHECK(!strcmp(c.pager.backend, "file:/var/tmp/a.pages"));
	machine_config_release(&c);

	/* what the config has stays; no --swap, no pager */
	CHECK_EQ(request("{\"name\": \"b\", \"console\": \"/tmp/b.out\", "
			 "\"balloon\": {\"deflate_on_oom\": false}}", &c, &s,
			 &err), 0);
	CHECK_EQ(hostd_prepare_config(&c, "/run/x", NULL, &err), 0);
	CHECK(!strcmp(c.console, "/tmp/b.out"));
	CHECK(c.balloon && !c.balloon_opts.deflate_on_oom);
	CHECK(!c.pager.enabled);
	machine_config_release(&c);

	CHECK_EQ(request("{\"name\": \"c\"}", &c, &s, &err), 0);
	CHECK_EQ(hostd_prepare_config(&c, "/run/x", "memd:h:1", &err), 0);
	CHECK(!strcmp(c.pager.backend, "memd:h:1"));
	machine_config_release(&c);
	CHECK_EQ(hostd_swap_check("nfs:/x", &err), -EINVAL);
	CHECK_EQ(hostd_swap_check("file:", &err), -EINVAL);
}

/* `rackvm run --config FILE`, which hostd runs: the file's config, the
 * flags after it overriding it, a bad file refused naming it. */
TEST(hostd_run_config_file_and_flags_after_it)
{
	char path[] = "/tmp/rackvm-test-config-XXXXXX";
	const char *json = "{\"name\": \"web\", \"mem\": \"64M\", \"cpus\": 2, "
			   "\"cmdline\": \"compute\"}";
	char *argv[] = { "run", "--config", path, "--mem", "32M", NULL };
	char *bad[] = { "run", "--config", "/nonexistent.json", NULL };
	struct machine_config c;
	struct errmsg err = { "" };
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	machine_config_init(&c);
	CHECK_EQ(machine_config_parse_flags(&c, 5, argv, &err), 0);
	CHECK(!strcmp(c.name, "web") && !strcmp(c.cmdline, "compute"));
	CHECK_EQ(c.cpus, 2);
	CHECK_EQ(c.mem_size, 32ull << 20);
	machine_config_release(&c);
	unlink(path);
	machine_config_init(&c);
	CHECK_EQ(machine_config_parse_flags(&c, 3, bad, &err), -ENOENT);
	CHECK(strstr(err.text, "--config /nonexistent.json"));
	machine_config_release(&c);
}
