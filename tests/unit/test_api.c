// SPDX-License-Identifier: MIT
/*
 * The control API without curl: the route table's 404 and 405, the body
 * parsers on good and bad input (what a client sees in the "error"),
 * and the HTTP server on its socket: mode 0600, a private directory, 413
 * for a body over the limit before it is read.  The routes against a
 * running machine are in test_api_machine.c (they need KVM).
 */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "migrate/migrate.h"
#include "api/api_json.h"
#include "api/api_server.h"
#include "harness.h"
#include "machine/machine.h"
#include "memory/wss_monitor.h"
#include "util/unix_socket.h"

static void run(const struct api_ctx *ctx, const char *method,
		const char *path, const char *body, struct api_response *r)
{
	struct api_request req = {
		.method = method, .path = path, .body = body,
		.body_len = body ? strlen(body) : 0,
	};

	api_dispatch(ctx, &req, r);
}

TEST(api_unknown_paths_are_404_and_wrong_methods_405)
{
	struct api_ctx ctx = { 0 };	/* no handler runs: no machine needed */
	struct api_response r;

	run(&ctx, "GET", "/nope", NULL, &r);
	CHECK_EQ(r.status, 404);
	CHECK(strstr(r.body, "\"error\"") && strstr(r.body, "/nope"));
	api_response_free(&r);
	run(&ctx, "GET", "/vm/", NULL, &r);
	CHECK_EQ(r.status, 404);
	api_response_free(&r);
	run(&ctx, "DELETE", "/vm", NULL, &r);
	CHECK_EQ(r.status, 405);
	CHECK(!strcmp(r.allow, "GET"));
	api_response_free(&r);
	run(&ctx, "POST", "/vm/memory", NULL, &r);
	CHECK_EQ(r.status, 405);
	CHECK(!strcmp(r.allow, "GET, PATCH"));
	CHECK(strstr(r.body, "POST is not allowed on /vm/memory") != NULL);
	api_response_free(&r);
}

TEST(api_state_body_takes_running_or_paused_only)
{
	static const struct {
		const char *body, *error;	/* NULL error: valid */
		bool running;
	} cases[] = {
		{ "{\"state\":\"running\"}", NULL, true },
		{ " {\"state\" : \"paused\"} ", NULL, false },
		{ "", "needs a JSON body", false },
		{ "{", "invalid JSON at line 1", false },
		{ "[\"paused\"]", "must be a JSON object", false },
		{ "{\"state\":1}", "must be \"running\" or \"paused\"", false },
		{ "{\"state\":\"stopped\"}", "must be \"running\" or \"paused\"", false },
		{ "{}", "must be \"running\" or \"paused\"", false },
		{ "{\"state\":\"paused\",\"x\":1}", "unknown field \"x\"", false },
		{ "{\"state\":\"paused\",\"state\":\"running\"}", "duplicate", false },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errmsg err = { "" };
		bool running = !cases[i].running;
		int ret = api_parse_state(cases[i].body, strlen(cases[i].body),
					  &running, &err);

		if (!cases[i].error) {
			CHECK_EQ(ret, 0);
			CHECK_EQ(running, cases[i].running);
		} else {
			CHECK_EQ(ret, -EINVAL);
			if (!strstr(err.text, cases[i].error))
				harness_fail(__FILE__, __LINE__, "case %u: '%s' lacks '%s'",
					     i, err.text, cases[i].error);
		}
	}
}

TEST(api_snapshot_body_takes_an_absolute_path)
{
	static const struct {
		const char *body, *error, *path;	/* NULL error: valid */
		bool compress;
	} cases[] = {
		{ "{\"path\":\"/var/tmp/a.snap\"}", NULL, "/var/tmp/a.snap", false },
		{ "{\"path\":\"/a\",\"compress\":true}", NULL, "/a", true },
		{ "{\"path\":\"a.snap\"}", "absolute", NULL, false },
		{ "{\"path\":\"\"}", "absolute", NULL, false },
		{ "{\"path\":\"/a\\u0000b\"}", "u0000 is not allowed", NULL, false },
		{ "{\"path\":7}", "absolute", NULL, false },
		{ "{}", "absolute", NULL, false },
		{ "{\"path\":\"/a\",\"compress\":1}", "true or false", NULL, false },
		{ "{\"path\":\"/a\",\"mode\":1}", "unknown field \"mode\"", NULL, false },
		{ "", "needs a JSON body", NULL, false },
	};
	static struct api_snapshot_request sr;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errmsg err = { "" };
		int ret = api_parse_snapshot(cases[i].body, strlen(cases[i].body),
					     &sr, &err);

		if (!cases[i].error) {
			CHECK_EQ(ret, 0);
			CHECK(!strcmp(sr.path, cases[i].path));
			CHECK_EQ(sr.compress, cases[i].compress);
		} else {
			CHECK_EQ(ret, -EINVAL);
			if (!strstr(err.text, cases[i].error))
				harness_fail(__FILE__, __LINE__, "case %u: '%s' lacks '%s'",
					     i, err.text, cases[i].error);
		}
	}
}

TEST(api_migrate_body_takes_a_tcp_uri_and_a_mode)
{
	static const struct {
		const char *body, *error;	/* NULL error: valid */
		int ret;
	} cases[] = {
		{ "{\"uri\":\"tcp:10.0.0.2:7000\"}", NULL, 0 },
		{ "{\"uri\":\"tcp:[::1]:7000\",\"mode\":\"precopy\","
		  "\"max_downtime_ms\":10,\"max_bandwidth\":\"1G\","
		  "\"compress\":\"zstd\",\"max_rounds\":5}", NULL, 0 },
		{ "{\"uri\":\"tcp:h:7000\",\"mode\":\"postcopy\"}", NULL, 0 },
		{ "{\"uri\":\"tcp:h:7000\",\"mode\":\"hybrid\","
		  "\"precopy_rounds\":2}", NULL, 0 },
		{ "{\"uri\":\"tcp:h:7000\",\"precopy_rounds\":2}",
		  "for \"mode\": \"hybrid\"", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"mode\":\"hybrid\","
		  "\"precopy_rounds\":0}", "1..1000", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"mode\":\"fast\"}", "\"mode\" must be", -EINVAL },
		{ "{\"uri\":\"udp:h:7000\"}", "tcp:HOST:PORT", -EINVAL },
		{ "{\"uri\":\"tcp:h\"}", "tcp:HOST:PORT", -EINVAL },
		{ "{\"uri\":\"tcp::7000\"}", "tcp:HOST:PORT", -EINVAL },
		{ "{\"uri\":\"tcp:h:70000\"}", "1..65535", -EINVAL },
		{ "{\"uri\":\"tcp:h:0\"}", "1..65535", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"max_downtime_ms\":0}", "1..60000", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"max_rounds\":-1}", "1..1000", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"compress\":\"lz5\"}", "zstd", -EINVAL },
		{ "{\"uri\":\"tcp:h:7000\",\"x\":1}", "unknown field \"x\"", -EINVAL },
		{ "{}", "tcp:HOST:PORT", -EINVAL },
	};
	static struct migrate_options mo;

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errmsg err = { "" };
		int ret = api_parse_migrate(cases[i].body, strlen(cases[i].body),
					    &mo, &err);

		CHECK_EQ(ret, cases[i].ret);
		if (!cases[i].error)
			CHECK(!strncmp(mo.uri, "tcp:", 4));
		else if (!strstr(err.text, cases[i].error))
			harness_fail(__FILE__, __LINE__, "case %u: '%s' lacks '%s'",
				     i, err.text, cases[i].error);
	}
	CHECK_EQ(api_parse_migrate(cases[1].body, strlen(cases[1].body), &mo,
				   NULL), 0);
	CHECK(mo.max_downtime_ns == 10000000ull && mo.max_rounds == 5 &&
	      mo.compress && mo.max_bandwidth == (1ull << 30) &&
	      mo.mode == MIGRATE_MODE_PRECOPY);
	CHECK_EQ(api_parse_migrate(cases[3].body, strlen(cases[3].body), &mo,
				   NULL), 0);
	CHECK(mo.mode == MIGRATE_MODE_HYBRID && mo.precopy_rounds == 2);
}

TEST(api_memory_patch_takes_sizes_as_numbers_or_strings)
{
	static const struct {
		const char *body, *error;
	} bad[] = {
		{ "{}", "give \"balloon_target\", \"mem_local\" or both" },
		{ "{\"mem_local\":-1}", "invalid \"mem_local\"" },
		{ "{\"mem_local\":1.5}", "invalid \"mem_local\"" },
		{ "{\"mem_local\":true}", "invalid \"mem_local\"" },
		{ "{\"balloon_target\":\"-4K\"}", "invalid \"balloon_target\"" },
		{ "{\"balloon_target\":\"99999999999T\"}", "invalid \"balloon_target\"" },
		{ "{\"balloon_target\":\"12Q\"}", "invalid \"balloon_target\"" },
		{ "{\"balloon\":\"1G\"}", "unknown field \"balloon\"" },
		{ "null", "invalid JSON" },
	};
	struct api_memory_patch p;
	struct errmsg err = { "" };
	const char *both = "{\"balloon_target\":\"512M\",\"mem_local\":1073741824}";

	CHECK_EQ(api_parse_memory_patch(both, strlen(both), &p, &err), 0);
	CHECK(p.has_balloon_target && p.has_mem_local);
	CHECK_EQ(p.balloon_target, 512ull << 20);
	CHECK_EQ(p.mem_local, 1ull << 30);
	CHECK_EQ(api_parse_memory_patch("{\"mem_local\":\"1G\"}", 18, &p, &err), 0);
	CHECK(!p.has_balloon_target && p.has_mem_local);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(api_parse_memory_patch(bad[i].body, strlen(bad[i].body),
						&p, &err), -EINVAL);
		if (!strstr(err.text, bad[i].error))
			harness_fail(__FILE__, __LINE__, "case %u: '%s' lacks '%s'",
				     i, err.text, bad[i].error);
	}
}

TEST(api_empty_bodies_and_since_are_checked)
{
	struct errmsg err = { "" };
	double t;

	CHECK_EQ(api_parse_empty(NULL, 0, &err), 0);
	CHECK_EQ(api_parse_empty("{}", 2, &err), 0);
	CHECK_EQ(api_parse_empty("{\"force\":true}", 14, &err), -EINVAL);
	CHECK(strstr(err.text, "takes no fields") != NULL);
	CHECK_EQ(api_parse_empty("x", 1, &err), -EINVAL);
	CHECK_EQ(api_parse_since(NULL, &t, &err), 0);
	CHECK(t < 0);
	CHECK_EQ(api_parse_since("12.5", &t, &err), 0);
	CHECK(t == 12.5);
	CHECK_EQ(api_parse_since("-1", &t, &err), -EINVAL);
	CHECK_EQ(api_parse_since("nan", &t, &err), -EINVAL);
	CHECK_EQ(api_parse_since("1e999", &t, &err), -EINVAL);
	CHECK_EQ(api_parse_since("3s", &t, &err), -EINVAL);
	CHECK(strstr(err.text, "invalid since=3s") != NULL);
}

/* A WSS point's time as the API prints it, given back as since=, names
 * that point: the filter leaves it out.  It used to print to 10 digits
 * and name a time just before the point, which came back as "newer". */
TEST(api_point_time_printed_is_the_since_that_names_it)
{
	const double uptimes[] = { 0.5, 19.001369421, 12345.67890123456,
				   2592000.123456789, 1e-7 };
	struct errmsg err = { "" };

	for (unsigned i = 0; i < sizeof(uptimes) / sizeof(uptimes[0]); i++) {
		double t = wss_point_time(uptimes[i]), since = -1;
		struct api_response r = { 0 };
		char *num;

		api_reply_json(&r, 200, json_pack("{s:f}", "time", t));
		num = r.body ? strchr(r.body, ':') : NULL;
		CHECK(num != NULL);
		if (num)
			num[strcspn(num, "}")] = 0;
		CHECK_EQ(num ? api_parse_since(num + 1, &since, &err) : -1, 0);
		if (since != t)
			harness_fail(__FILE__, __LINE__, "%.17g printed as %s",
				     t, num ? num + 1 : "?");
		CHECK(fabs(t - uptimes[i]) <= 0.5e-6);
		free(r.body);
	}
}

/* Sends @req on a new connection and returns the status of the reply
 * (0 if none came within 5 s). */
static unsigned raw_request(const char *path, const char *req, size_t len)
{
	struct timeval tv = { 5, 0 };
	char buf[512] = "";
	unsigned status = 0;
	ssize_t n;
	int fd;

	if (unix_connect(path, &fd, NULL))
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len &&
	    (n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0)
		sscanf(buf, "HTTP/1.1 %u", &status);
	close(fd);
	return status;
}

TEST(api_server_socket_is_private_and_refuses_big_bodies_unread)
{
	struct api_server_config cfg = { .private_dir = true };
	char dir[256], path[300];
	const char *big = "PATCH /vm/memory HTTP/1.1\r\nHost: x\r\n"
			  "Content-Length: 10485760\r\n\r\n{";
	const char *nope = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *bad = "GET /vm HTTP/1.1\r\nHost: x\r\nBad\r\n\r\n";
	struct errmsg err = { "" };
	struct api_server *s;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/run", harness_tmpdir());
	snprintf(path, sizeof(path), "%s/vm1.sock", dir);
	cfg.path = path;
	CHECK_EQ(api_server_create(&cfg, &s, &err), 0);
	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(raw_request(path, nope, strlen(nope)), 404);
	/* declared 10 MiB, sent 1 byte: answered at once, not after a read */
	CHECK_EQ(raw_request(path, big, strlen(big)), 413);
	CHECK_EQ(raw_request(path, bad, strlen(bad)), 400);
	api_server_destroy(s);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);

	/* a directory others can enter is refused, not used */
	CHECK_EQ(chmod(dir, 0755), 0);
	CHECK_EQ(api_server_create(&cfg, &s, &err), -EPERM);
	CHECK(strstr(err.text, "mode 0700") != NULL);
}

TEST(api_default_socket_follows_xdg_runtime_dir)
{
	struct errmsg err = { "" };
	char buf[64];

	if (geteuid() == 0) {
		CHECK_EQ(api_default_socket("a", buf, sizeof(buf), &err), 0);
		CHECK(!strcmp(buf, "/run/rackvm/a.sock"));
		return;
	}
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	CHECK_EQ(api_default_socket("a", buf, sizeof(buf), &err), 0);
	CHECK(!strcmp(buf, "/run/user/1000/rackvm/a.sock"));
	unsetenv("XDG_RUNTIME_DIR");
	CHECK_EQ(api_default_socket("a", buf, sizeof(buf), &err), -ENOENT);
}

/* The socket's path: a stale socket (its server died) is replaced, a
 * live one or any other file is left alone and said so. */
TEST(api_socket_path_replaces_stale_sockets_only)
{
	char path[300], file[300], longp[200];
	struct errmsg err = { "" };
	struct stat st;
	int a, b, fd;

	snprintf(path, sizeof(path), "%s/s.sock", harness_tmpdir());
	snprintf(file, sizeof(file), "%s/plain", harness_tmpdir());
	CHECK_EQ(unix_listen(path, 4, &a, &err), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(unix_listen(path, 4, &b, &err), -EADDRINUSE);
	CHECK(strstr(err.text, "in use") != NULL);
	close(a);			/* the server died: its file stays */
	CHECK_EQ(unix_listen(path, 4, &b, &err), 0);
	CHECK_EQ(unix_connect(path, &fd, &err), 0);
	close(fd);
	close(b);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(unix_listen(file, 4, &b, &err), -EEXIST);
	CHECK(strstr(err.text, "not a socket") != NULL);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	CHECK_EQ(unix_listen(longp, 4, &b, &err), -ENAMETOOLONG);
	CHECK_EQ(unix_connect(file, &fd, &err), -ECONNREFUSED);
	CHECK(strstr(err.text, "cannot reach") != NULL);
}
