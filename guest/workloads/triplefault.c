// SPDX-License-Identifier: MIT
/* triplefault: an exception with no usable IDT, so the VMM's triple-fault
 * handling can be tested. */
#include "guest/syscall.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static void triplefault_run(const struct cmdline *c)
{
	(void)c;
	GUEST_PRINTF("triplefault: loading an empty IDT and faulting");
	syscall3(SYS_TRIPLE_FAULT, 0, 0, 0);
	GUEST_ASSERT_MSG(0, "still running after a triple fault");
}

const struct workload workload_triplefault = {
	.name = "triplefault",
	.usage = "(no parameters) shuts the CPU down with a triple fault",
	.run = triplefault_run,
};
