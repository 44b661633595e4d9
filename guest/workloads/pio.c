// SPDX-License-Identifier: MIT
/*
 * pio: N port reads from ring 3, each one a VM exit to the VMM, reporting
 * the cost of one exit.  The default port is fw_cfg data, which every
 * VMM handles in userspace, so this measures the full exit round trip.
 * ring=0 runs the same loop in ring 0 (through a syscall), for hosts
 * where ring-3 port I/O costs more than the exit itself.
 */
#include <stdint.h>

#include "guest/fw_cfg.h"
#include "guest/io.h"
#include "guest/syscall.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static void pio_run(const struct cmdline *c)
{
	uint64_t iterations = cmdline_u64(c, "iterations", 10000);
	uint64_t port = cmdline_u64(c, "port", FW_CFG_PORT_DATA);
	uint64_t ring = cmdline_u64(c, "ring", 3);
	uint64_t i, t0, ns;

	GUEST_ASSERT_MSG(iterations > 0, "pio: iterations must be > 0");
	GUEST_ASSERT_MSG(ring == 0 || ring == 3, "pio: ring must be 0 or 3");
	GUEST_ASSERT_MSG(port <= 0xffff, "pio: port 0x%llx out of range",
			 (unsigned long long)port);
	tsc_hz();		/* calibrate outside the timed loop */
	t0 = rdtsc();
	if (ring == 0) {
		syscall3(SYS_PIO_READ_LOOP, port, iterations, 0);
	} else {
		for (i = 0; i < iterations; i++)
			(void)inb(port);
	}
	ns = tsc_to_ns(rdtsc() - t0);
	guest_result("pio iterations=%llu ns_per_exit=%llu%s",
		     (unsigned long long)iterations,
		     (unsigned long long)(ns / iterations),
		     ring == 0 ? " ring=0" : "");
	guest_done(0);
}

static const char *const pio_params[] = { "iterations", "port", "ring", NULL };

const struct workload workload_pio = {
	.name = "pio",
	.usage = "iterations=N (default 10000) port=0xNNN (default 0x511) ring=3|0",
	.params = pio_params,
	.run = pio_run,
};
