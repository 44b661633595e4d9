// SPDX-License-Identifier: MIT
/*
 * emulfail: an instruction KVM must emulate but cannot, so the VMM's
 * report of an emulation failure (vCPU, RIP, instruction bytes, exit 10)
 * is tested on any KVM.  An SSE2 paddd whose memory operand is in the MMIO
 * hole, where no RAM and no device is: the access exits to KVM, whose
 * instruction emulator has no packed-integer arithmetic (only moves), and
 * runs in ring 0 because KVM hands the failure to the VMM only at CPL 0
 * (at CPL 3 it injects #UD instead).
 */
#include "guest/syscall.h"
#include "guest/ucall.h"
#include "guest/workload.h"

/* The first page of the MMIO hole: no device lives there (the devices
 * are at 0xd0000000 and up); identity-mapped like all of the low 4 GiB. */
#define UNBACKED_MMIO_ADDR 0xc0000000ull

static void emulfail_run(const struct cmdline *c)
{
	(void)c;
	GUEST_PRINTF("emulfail: paddd from MMIO at 0x%llx in ring 0",
		     UNBACKED_MMIO_ADDR);
	syscall3(SYS_PADDD_MMIO, UNBACKED_MMIO_ADDR, 0, 0);
	GUEST_ASSERT_MSG(0, "KVM emulated paddd on MMIO: emulfail needs another instruction");
}

const struct workload workload_emulfail = {
	.name = "emulfail",
	.usage = "(no parameters) an MMIO access KVM cannot emulate (paddd in ring 0)",
	.run = emulfail_run,
};
