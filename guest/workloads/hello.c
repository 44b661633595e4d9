// SPDX-License-Identifier: MIT
/* hello: one line naming what the guest sees, the quickest boot check. */
#include "guest/platform.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static void hello_run(const struct cmdline *c)
{
	(void)c;
	GUEST_PRINTF("Hello from the rackvm guest runtime: %u CPUs, %llu MiB RAM",
		     platform.nb_cpus,
		     (unsigned long long)(platform.ram_bytes >> 20));
	guest_done(0);
}

const struct workload workload_hello = {
	.name = "hello",
	.usage = "(no parameters)",
	.run = hello_run,
};
