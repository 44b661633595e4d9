// SPDX-License-Identifier: MIT
/* pagefault: a ring-3 read of an unmapped canonical address, so that
 * tests can check the #PF report (vector 14, RIP, CR2) reaches the host. */
#include <stdint.h>

#include "guest/ucall.h"
#include "guest/workload.h"

/* 512 GiB: PML4 entry 1, which the runtime never fills. */
#define UNMAPPED_ADDRESS 0x8000000000ull

static void pagefault_run(const struct cmdline *c)
{
	volatile uint64_t *p = (volatile uint64_t *)UNMAPPED_ADDRESS;

	(void)c;
	GUEST_PRINTF("pagefault: reading 0x%llx",
		     (unsigned long long)UNMAPPED_ADDRESS);
	(void)*p;
	GUEST_ASSERT_MSG(0, "read of unmapped 0x%llx did not fault",
			 (unsigned long long)UNMAPPED_ADDRESS);
}

const struct workload workload_pagefault = {
	.name = "pagefault",
	.usage = "(no parameters) reads unmapped 0x8000000000 from ring 3",
	.run = pagefault_run,
};
