// SPDX-License-Identifier: MIT
/* xrstor: runs one xrstor in ring 0.  Real hardware completes it; nested
 * ring-0 emulators may not, and the VMM must then report the failure
 * (vCPU, RIP, instruction bytes) and stop instead of hanging. */
#include "guest/syscall.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static void xrstor_run(const struct cmdline *c)
{
	uint64_t ret;

	(void)c;
	GUEST_PRINTF("xrstor: restoring an empty XSAVE area in ring 0");
	ret = syscall3(SYS_XRSTOR, 0, 0, 0);
	if (ret == SYSCALL_ENOSYS)
		GUEST_PRINTF("xrstor: this CPU has no XSAVE");
	guest_done(0);
}

const struct workload workload_xrstor = {
	.name = "xrstor",
	.usage = "(no parameters) runs xrstor in ring 0",
	.run = xrstor_run,
};
