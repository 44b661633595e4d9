// SPDX-License-Identifier: MIT
/*
 * GET /vm/devices: each virtio-mmio device in config order (disks, NICs,
 * rng, balloon, console) with its queues' counters.  A device is
 * "broken" when it gave up (DEVICE_NEEDS_RESET) or the driver broke one
 * of its rings; the guest's next reset clears both.
 */
#include "api/api_handlers.h"
#include "api/api_json.h"
#include "machine/machine.h"

static json_t *device_object(unsigned index, const struct virtio_mmio_stats *st)
{
	json_t *queues = json_array();
	uint64_t requests = 0, bytes = 0;
	bool broken = st->needs_reset;

	for (unsigned q = 0; queues && q < st->nqueues; q++) {
		const struct virtio_mmio_queue_stats *qs = &st->queues[q];

		requests += qs->requests;
		bytes += qs->bytes;
		broken |= qs->broken;
		json_array_append_new(queues, json_pack("{s:i, s:i, s:b, s:b, s:I, s:I}",
			"index", (json_int_t)q, "size", (json_int_t)qs->size,
			"ready", qs->ready, "broken", qs->broken,
			"requests", (json_int_t)qs->requests,
			"bytes", (json_int_t)qs->bytes));
	}
	return json_pack("{s:i, s:s, s:I, s:b, s:b, s:I, s:I, s:I, s:I, s:o*}",
		"index", (json_int_t)index, "name", st->name,
		"status", (json_int_t)st->status, "needs_reset", st->needs_reset,
		"broken", broken, "kicks", (json_int_t)st->kicks,
		"interrupts", (json_int_t)st->interrupts,
		"requests", (json_int_t)requests, "bytes", (json_int_t)bytes,
		"queues", queues);
}

API_HANDLER(api_get_vm_devices)
{
	struct virtio_mmio_stats st;
	json_t *list = json_array();

	(void)req;
	for (unsigned i = 0; list && !machine_device_stats(ctx->machine, i, &st); i++)
		json_array_append_new(list, device_object(i, &st));
	api_reply_json(resp, 200, list ? json_pack("{s:o}", "devices", list) : NULL);
}
