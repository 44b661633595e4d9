// SPDX-License-Identifier: MIT
/*
 * GET /metrics: everything the other routes show, in the Prometheus
 * text exposition format (version 0.0.4): a HELP and a TYPE line per
 * family, base units (bytes, seconds), counters ending in _total, and a
 * "vm" label on every sample so that one scrape config can take many
 * VMs.  Label values are rackvm's own words (the name is checked to be
 * letters, digits, '.', '_' and '-' by machine_config_validate()).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_handlers.h"
#include "api/api_json.h"
#include "machine/machine.h"
#include "util/page.h"

struct out {
	FILE *f;
	const char *vm;
};

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	fprintf(o->f, "# HELP rackvm_%s %s\n# TYPE rackvm_%s %s\n", name, help,
		name, type);
}

/* One sample; @labels is "" or ",key=\"value\"..." */
static void sample(struct out *o, const char *name, const char *labels,
		   double value)
{
	fprintf(o->f, "rackvm_%s{vm=\"%s\"%s} %.17g\n", name, o->vm, labels,
		value);
}

static void one(struct out *o, const char *name, const char *type,
		const char *help, double value)
{
	family(o, name, type, help);
	sample(o, name, "", value);
}

static void vm_metrics(struct out *o, const struct api_ctx *ctx)
{
	static const enum machine_state states[] = {
		MACHINE_CREATED, MACHINE_RUNNING, MACHINE_PAUSED,
		MACHINE_SHUTTING_DOWN, MACHINE_STOPPED, MACHINE_FAILED,
	};
	enum machine_state now = machine_state(ctx->machine);
	char labels[96];

	family(o, "info", "gauge", "Always 1; the version label is rackvm's.");
	snprintf(labels, sizeof(labels), ",version=\"%s\"",
		 ctx->version ? ctx->version : "");
	sample(o, "info", labels, 1);
	family(o, "vm_state", "gauge", "1 for the state the VM is in, 0 for the others.");
	for (unsigned i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		snprintf(labels, sizeof(labels), ",state=\"%s\"",
			 machine_state_name(states[i]));
		sample(o, "vm_state", labels, states[i] == now);
	}
	one(o, "uptime_seconds", "gauge", "Time since the VM started.",
	    (double)machine_uptime_ns(ctx->machine) / 1e9);
	one(o, "vcpus", "gauge", "Number of vCPUs.", machine_ncpus(ctx->machine));
}

static void vcpu_metrics(struct out *o, struct machine *m)
{
	char labels[96];

	family(o, "vcpu_exits_total", "counter", "VM exits by vCPU and KVM exit reason.");
	for (unsigned i = 0; i < machine_ncpus(m); i++) {
		struct vcpu_stats st;
		uint64_t other = 0;

		if (machine_vcpu_stats(m, i, &st))
			continue;
		for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++) {
			const char *name = kvm_exit_reason_name(r);

			/* reasons without a name of their own add up once */
			if (!strcmp(name, "other")) {
				other += st.exits[r];
				continue;
			}
			if (!st.exits[r])
				continue;
			snprintf(labels, sizeof(labels), ",vcpu=\"%u\",reason=\"%s\"",
				 i, name);
			sample(o, "vcpu_exits_total", labels, (double)st.exits[r]);
		}
		snprintf(labels, sizeof(labels), ",vcpu=\"%u\",reason=\"other\"", i);
		sample(o, "vcpu_exits_total", labels, (double)other);
	}
}

static void vcpu_cpu_metrics(struct out *o, struct machine *m)
{
	char labels[64];

	family(o, "vcpu_cpu_seconds_total", "counter",
	       "CPU time of each vCPU thread, guest mode included.");
	for (unsigned i = 0; i < machine_ncpus(m); i++) {
		struct vcpu_stats st;
		uint64_t ns;

		if (machine_vcpu_stats(m, i, &st) || api_thread_cpu_ns(st.tid, &ns))
			continue;
		snprintf(labels, sizeof(labels), ",vcpu=\"%u\"", i);
		sample(o, "vcpu_cpu_seconds_total", labels, (double)ns / 1e9);
	}
}

static void memory_metrics(struct out *o, struct machine *m)
{
	struct virtio_balloon *b = machine_balloon(m);
	struct wss_monitor *mon = machine_wss_monitor(m);
	struct virtio_balloon_info bi;
	struct wss_point p;

	one(o, "memory_size_bytes", "gauge", "Guest RAM.",
	    (double)machine_config(m)->mem_size);
	if (b) {
		virtio_balloon_get_info(b, &bi);
		one(o, "balloon_target_bytes", "gauge", "The balloon's target size.",
		    (double)bi.target_pages * VIRTIO_BALLOON_PAGE_SIZE);
		one(o, "balloon_actual_bytes", "gauge", "What the guest's balloon holds.",
		    (double)bi.actual_pages * VIRTIO_BALLOON_PAGE_SIZE);
	}
	if (mon && wss_monitor_points(mon, -1, &p, 1)) {
		one(o, "wss_bytes", "gauge", "Latest working-set size estimate.",
		    (double)(p.wss_pages * PAGE_SIZE));
		one(o, "wss_error_bytes", "gauge",
		    "Half-width of the estimate's 95% confidence interval.",
		    (double)(p.error_pages * PAGE_SIZE));
	}
}

static void pager_histogram(struct out *o, const struct pager_stats *st)
{
	uint64_t cum = 0;
	char labels[64];

	family(o, "pager_fault_latency_seconds", "histogram",
	       "Time to serve a missing-page fault.");
	for (unsigned b = 0; b < PAGER_HIST_BUCKETS; b++) {
		cum += st->fault_hist[b];
		snprintf(labels, sizeof(labels), ",le=\"%g\"",
			 (double)(2ull << b) / 1e6);
		sample(o, "pager_fault_latency_seconds_bucket", labels, (double)cum);
	}
	sample(o, "pager_fault_latency_seconds_bucket", ",le=\"+Inf\"", (double)cum);
	sample(o, "pager_fault_latency_seconds_sum", "",
	       (double)st->fault_us_sum / 1e6);
	sample(o, "pager_fault_latency_seconds_count", "", (double)cum);
}

/* The pager's counters and gauges, from struct pager_stats. */
static const struct {
	const char *name, *type, *help;
	size_t offset;
	bool pages_as_bytes;
} pager_fields[] = {
#define F(field, name, type, help, bytes) \
	{ name, type, help, offsetof(struct pager_stats, field), bytes }
	F(resident, "memory_resident_bytes", "gauge", "Guest RAM resident on this host.", true),
	F(remote, "memory_remote_bytes", "gauge", "Guest RAM only in the page store.", true),
	F(zero, "memory_zero_bytes", "gauge", "Guest RAM evicted as all-zero pages.", true),
	F(limit_pages, "memory_local_limit_bytes", "gauge",
	  "The pager's resident limit (mem_local).", true),
	F(failed, "pager_failed_pages", "gauge", "Pages lost or corrupt in the store.", false),
	F(under_replicated, "pager_under_replicated_pages", "gauge",
	  "Stored pages short of their copies.", false),
	F(store_pages, "pager_stored_pages", "gauge",
	  "Pages the page store holds for this VM.", false),
	F(store_lost, "pager_lost_pages", "gauge",
	  "Stored pages with no copy left anywhere.", false),
	F(faults, "pager_faults_total", "counter", "Missing-page faults served.", false),
	F(fetches, "pager_fetches_total", "counter", "Page store get requests.", false),
	F(fetched_pages, "pager_fetched_pages_total", "counter", "Pages the gets brought.", false),
	F(prefetched, "pager_prefetched_pages_total", "counter",
	  "Pages fetched ahead of a fault.", false),
	F(prefetch_hits, "pager_prefetch_hits_total", "counter",
	  "Prefetched pages the guest touched.", false),
	F(evictions, "pager_evictions_total", "counter", "Pages evicted.", false),
	F(clean_evictions, "pager_clean_evictions_total", "counter",
	  "Pages evicted without a put: unchanged since fetched.", false),
	F(cancelled, "pager_cancelled_evictions_total", "counter",
	  "Evictions undone by a write.", false),
	F(puts, "pager_puts_total", "counter", "Page store put requests.", false),
	F(bytes_in, "pager_read_bytes_total", "counter", "Page bytes read from the store.", false),
	F(bytes_out, "pager_written_bytes_total", "counter",
	  "Page bytes written to the store.", false),
	F(unreachable, "pager_unreachable_total", "counter",
	  "Fetches that found no copy reachable.", false),
	F(discarded, "pager_discarded_pages_total", "counter",
	  "Pages the guest gave back.", false),
#undef F
};

static void pager_metrics(struct out *o, struct machine *m)
{
	struct pager_stats st;

	if (machine_pager_stats(m, &st))
		return;
	for (unsigned i = 0; i < sizeof(pager_fields) / sizeof(pager_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&st + pager_fields[i].offset, sizeof(v));
		one(o, pager_fields[i].name, pager_fields[i].type, pager_fields[i].help,
		    (double)v * (pager_fields[i].pages_as_bytes ? PAGE_SIZE : 1));
	}
	pager_histogram(o, &st);
}

/* One family per counter, a sample per device (and queue). */
static void device_metrics(struct out *o, struct machine *m)
{
	static const char *const names[] = {
		"device_kicks_total", "device_interrupts_total",
		"device_broken", "queue_requests_total", "queue_bytes_total",
	};
	static const char *const helps[] = {
		"Notifications from the guest's driver.",
		"Interrupts raised to the guest's driver.",
		"1 if the device gave up or a ring is broken (until the guest resets it).",
		"Requests (descriptor chains) completed.",
		"Bytes the device wrote into the guest's buffers.",
	};
	struct virtio_mmio_stats st;
	char labels[96];

	for (unsigned k = 0; k < 5; k++) {
		family(o, names[k], k == 2 ? "gauge" : "counter", helps[k]);
		for (unsigned i = 0; !machine_device_stats(m, i, &st); i++) {
			bool broken = st.needs_reset;

			for (unsigned q = 0; q < st.nqueues; q++)
				broken |= st.queues[q].broken;
			snprintf(labels, sizeof(labels), ",device=\"%s\"", st.name);
			if (k < 3) {
				sample(o, names[k], labels, k == 0 ? (double)st.kicks :
				       k == 1 ? (double)st.interrupts : broken);
				continue;
			}
			for (unsigned q = 0; q < st.nqueues; q++) {
				snprintf(labels, sizeof(labels),
					 ",device=\"%s\",queue=\"%u\"", st.name, q);
				sample(o, names[k], labels, k == 3 ?
				       (double)st.queues[q].requests :
				       (double)st.queues[q].bytes);
			}
		}
	}
}

API_HANDLER(api_get_metrics)
{
	struct out o = { .vm = ctx->name ? ctx->name : "" };
	size_t len = 0;

	(void)req;
	o.f = open_memstream(&resp->body, &len);
	if (!o.f) {
		api_reply_error(resp, 503, "out of memory");
		return;
	}
	vm_metrics(&o, ctx);
	vcpu_metrics(&o, ctx->machine);
	vcpu_cpu_metrics(&o, ctx->machine);
	memory_metrics(&o, ctx->machine);
	pager_metrics(&o, ctx->machine);
	device_metrics(&o, ctx->machine);
	if (fclose(o.f)) {
		free(resp->body);
		resp->body = NULL;
		api_reply_error(resp, 503, "out of memory");
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
