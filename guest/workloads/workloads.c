// SPDX-License-Identifier: MIT
/* The list of workloads; each is defined in its own file. */
#include "guest/string.h"
#include "guest/workload.h"

extern const struct workload workload_hello, workload_memtouch,
	workload_compute, workload_pio, workload_smp, workload_assertfail,
	workload_pagefault, workload_selftest, workload_uartecho,
	workload_reset, workload_triplefault, workload_emulfail,
	workload_blkbench, workload_blkid, workload_blkro, workload_rng,
	workload_vconsole, workload_netecho, workload_balloon,
	workload_hostile, workload_wsswork, workload_kmeans,
	workload_pagestress, workload_pagelost, workload_ticker;

const struct workload *const workloads[] = {
	&workload_hello,
	&workload_memtouch,
	&workload_compute,
	&workload_pio,
	&workload_smp,
	&workload_assertfail,
	&workload_pagefault,
	&workload_selftest,
	&workload_uartecho,
	&workload_reset,
	&workload_triplefault,
	&workload_emulfail,
	&workload_blkbench,
	&workload_blkid,
	&workload_blkro,
	&workload_rng,
	&workload_vconsole,
	&workload_netecho,
	&workload_balloon,
	&workload_hostile,
	&workload_wsswork,
	&workload_kmeans,
	&workload_pagestress,
	&workload_pagelost,
	&workload_ticker,
	NULL,
};

const struct workload *workload_find(const char *name)
{
	unsigned int i;

	for (i = 0; workloads[i]; i++) {
		if (!strcmp(workloads[i]->name, name))
			return workloads[i];
	}
	return NULL;
}
