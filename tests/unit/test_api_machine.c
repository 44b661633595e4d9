// SPDX-License-Identifier: MIT
/*
 * Every route of the control API dispatched against a real machine: the
 * bundled guest from $GUEST_ELF with a balloon and the pager, paused,
 * resumed, resized and stopped through the API as a client would.
 */
#define UNIT_TESTS_NEED_KVM 1

#include <string.h>

#include "api/api.h"
#include "guest_machine.h"
#include "harness.h"

static void dispatch(const struct api_ctx *ctx, const char *method,
		     const char *path, const char *body,
		     struct api_response *r)
{
	struct api_request req = {
		.method = method, .path = path, .body = body,
		.body_len = body ? strlen(body) : 0,
	};

	api_dispatch(ctx, &req, r);
}

static const char *make_machine(struct machine **m, int *ret)
{
	struct machine_config cfg;
	const char *skip;

	*m = NULL;
	skip = guest_machine_config(&cfg, "compute seconds=600", 64ull << 20);
	if (skip)
		return skip;
	cfg.balloon = true;
	cfg.pager.enabled = true;
	cfg.pager.local_bytes = 32ull << 20;
	return guest_machine_create(&cfg, m, ret);
}

/* Runs a request and checks its status and that the body has @needle. */
#define EXPECT(M, P, B, W, N)                                             \
	do {                                                              \
		dispatch(&ctx, M, P, B, &r);                              \
		if (r.status != (W) || !strstr(r.body, N))                \
			harness_fail(__FILE__, __LINE__, "%s %s: %u %s",  \
				     M, P, r.status, r.body);             \
		api_response_free(&r);                                    \
		if (harness_failed())                                     \
			goto out;                                         \
	} while (0)

TEST(api_routes_drive_a_running_machine)
{
	struct errmsg err = { "" };
	struct api_response r;
	struct api_ctx ctx = { .name = "t1", .version = "9.9" };
	const char *skip;
	int ret = 0;

	skip = make_machine(&ctx.machine, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	CHECK_EQ(machine_start(ctx.machine, &err), 0);
	EXPECT("GET", "/vm", NULL, 200, "\"state\":\"running\"");
	EXPECT("GET", "/vm", NULL, 200, "\"version\":\"9.9\"");
	EXPECT("PUT", "/vm/state", "{\"state\":\"paused\"}", 200, "\"paused\"");
	CHECK_EQ(machine_state(ctx.machine), MACHINE_PAUSED);
	EXPECT("PUT", "/vm/state", "{\"state\":\"paused\"}", 200, "\"paused\"");
	EXPECT("GET", "/metrics", NULL, 200,
	       "rackvm_vm_state{vm=\"t1\",state=\"paused\"} 1\n");
	EXPECT("PUT", "/vm/state", "{\"state\":\"running\"}", 200, "\"running\"");
	CHECK_EQ(machine_state(ctx.machine), MACHINE_RUNNING);
	EXPECT("PUT", "/vm/state", "{\"state\":\"gone\"}", 400, "\"error\"");
	EXPECT("GET", "/vm/vcpus", NULL, 200, "\"id\":0,\"state\":\"running\",\"cpu_seconds\":");
	EXPECT("GET", "/metrics", NULL, 200, "rackvm_vcpu_cpu_seconds_total{vm=\"t1\",vcpu=\"0\"} ");
	EXPECT("GET", "/vm/devices", NULL, 200, "\"name\":\"virtio-balloon0\"");
	EXPECT("PATCH", "/vm/memory", "{\"mem_local\":\"16M\"}", 200,
	       "\"mem_local\":16777216");
	EXPECT("GET", "/vm/memory/pager", NULL, 200, "\"limit_pages\":4096");
	EXPECT("PATCH", "/vm/memory", "{\"mem_local\":\"1M\"}", 400, "mem_local must be");
	EXPECT("PATCH", "/vm/memory", "{\"mem_local\":\"128M\"}", 400, "guest's RAM");
	EXPECT("PATCH", "/vm/memory", "{\"balloon_target\":\"8M\"}", 200,
	       "\"balloon_target\":8388608");
	EXPECT("PATCH", "/vm/memory", "{\"balloon_target\":\"65M\"}", 400,
	       "at most the guest's RAM");
	EXPECT("PATCH", "/vm/memory", "{\"balloon_target\":4097}", 400, "multiple of 4K");
	/* no --wss: the series is not there, said as a conflict */
	EXPECT("GET", "/vm/memory/wss", NULL, 409, "--wss");
	EXPECT("GET", "/metrics", NULL, 200, "rackvm_memory_local_limit_bytes{vm=\"t1\"} 16777216\n");
	EXPECT("GET", "/metrics", NULL, 200, "# TYPE rackvm_pager_fault_latency_seconds histogram");
	EXPECT("PUT", "/vm/stop", "{\"now\":1}", 400, "takes no fields");
	EXPECT("PUT", "/vm/stop", NULL, 200, "\"stopped\"");
	EXPECT("PUT", "/vm/stop", NULL, 409, "not possible while the VM is stopped");
	EXPECT("PUT", "/vm/state", "{\"state\":\"running\"}", 409, "stopped");
	EXPECT("GET", "/vm", NULL, 200, "\"state\":\"stopped\"");
out:
	machine_destroy(ctx.machine);
}

