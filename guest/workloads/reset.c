// SPDX-License-Identifier: MIT
/* reset: asks the keyboard controller to reset the machine (command 0xfe
 * on port 0x64), the way PC kernels reboot. */
#include "guest/io.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static void reset_run(const struct cmdline *c)
{
	(void)c;
	GUEST_PRINTF("reset: pulsing the reset line through the i8042");
	outb(0x64, 0xfe);
	tsc_delay_ns(NSEC_PER_SEC);
	GUEST_ASSERT_MSG(0, "the machine did not reset");
}

const struct workload workload_reset = {
	.name = "reset",
	.usage = "(no parameters) resets through the keyboard controller",
	.run = reset_run,
};
