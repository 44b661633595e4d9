/* SPDX-License-Identifier: MIT */
/*
 * The route handlers (internal to src/api/), one file per resource
 * group: api_vm.c (the VM and its lifecycle, vCPUs), api_memory.c,
 * api_devices.c, api_metrics.c.  Each fills the response completely
 * (api.h says how they reach the machine).
 */
#ifndef RACKVM_API_API_HANDLERS_H
#define RACKVM_API_API_HANDLERS_H

#include "api/api.h"

#define API_HANDLER(name)                                               \
	void name(const struct api_ctx *ctx, const struct api_request *req, \
		  struct api_response *resp)

/* The CPU time of this process's thread @tid (a vCPU's), from
 * /proc/self/task/TID/schedstat: -ENOENT once it ended. */
int api_thread_cpu_ns(int tid, uint64_t *out);

API_HANDLER(api_get_vm);
API_HANDLER(api_put_vm_state);
API_HANDLER(api_put_vm_shutdown);
API_HANDLER(api_put_vm_stop);
API_HANDLER(api_put_vm_snapshot);
API_HANDLER(api_put_vm_migrate);
API_HANDLER(api_get_vm_migrate);
API_HANDLER(api_get_vm_vcpus);
API_HANDLER(api_get_vm_memory);
API_HANDLER(api_patch_vm_memory);
API_HANDLER(api_get_vm_memory_wss);
API_HANDLER(api_get_vm_memory_pager);
API_HANDLER(api_get_vm_devices);
API_HANDLER(api_get_metrics);

#endif
