// SPDX-License-Identifier: MIT
/* assertfail: a deliberate assertion failure, so that tests can check the
 * file and line reach the host and the guest ends as failed. */
#include "guest/ucall.h"
#include "guest/workload.h"

static void assertfail_run(const struct cmdline *c)
{
	(void)c;
	GUEST_ASSERT_EQ(1 + 1, 3);
	guest_done(0);
}

const struct workload workload_assertfail = {
	.name = "assertfail",
	.usage = "(no parameters) fails GUEST_ASSERT_EQ(1 + 1, 3)",
	.run = assertfail_run,
};
