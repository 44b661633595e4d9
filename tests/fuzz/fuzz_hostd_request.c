// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: what a client sends to rackvm hostd.  The bytes go
 * to the POST /vms parser (a VM config with hostd's settings), to the
 * PATCH /vms/NAME parser, and as a path to the router with every
 * method.  Each either accepts with values in range or refuses with
 * -EINVAL (the router: -ENOENT or -EOPNOTSUPP) and a message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/hostd_request.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void settings_in_range(const struct hostd_settings *s, uint64_t ram)
{
	check(s->shares > 0 && s->shares <= HOSTD_MAX_SHARES);
	check(!s->max || s->max >= MACHINE_MIN_LOCAL_BYTES);
	check(!ram || s->max <= ram);
	check(!ram || s->min <= (s->max ? s->max : ram));
	check(balancer_policy_name(s->policy) != NULL);
}

static void route(const char *text)
{
	static const char *const methods[] = { "GET", "POST", "PATCH", "DELETE",
					       "PUT" };
	char name[MACHINE_NAME_MAX + 1], allow[64];
	const struct hostd_route *r;
	struct errmsg err = { "" };

	for (unsigned m = 0; m < 5; m++) {
		int ret = hostd_route_match(methods[m], text, &r, name, sizeof(name),
					    allow, sizeof(allow), &err);

		if (!ret)
			check(!name[0] || hostd_name_valid(name));
		else
			check((ret == -ENOENT || ret == -EOPNOTSUPP) && err.text[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine_config c;
	struct hostd_settings s;
	struct errmsg err = { "" };
	char *text = malloc(size + 1);
	int ret;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	ret = hostd_parse_vm_request(text, size, BALANCER_BOTH, &c, &s, &err);
	if (ret)
		check(ret == -EINVAL && err.text[0]);
	else {
		check(c.name && hostd_name_valid(c.name));
		settings_in_range(&s, c.mem_size);
		check(!hostd_prepare_config(&c, "/run/rackvm", "file:/tmp", &err) ||
		      err.text[0]);
	}
	machine_config_release(&c);
	hostd_settings_init(&s, BALANCER_BOTH);
	ret = hostd_parse_settings(text, size, 256ull << 20, &s, &err);
	if (ret)
		check(ret == -EINVAL && err.text[0]);
	settings_in_range(&s, 256ull << 20);
	route(text);
	free(text);
	return 0;
}
