// SPDX-License-Identifier: MIT
#include "cli/run_report.h"

#include <stdio.h>

static void print_point(void *opaque, const struct wss_point *p)
{
	double pct = p->wss_pages ? 100.0 * (double)p->error_pages /
				    (double)p->wss_pages : 0;

	(void)opaque;
	fprintf(stderr, "wss: t=%.2fs wss=%llu pages (%.1f MiB) \u00b1%.1f%% "
		"written=%llu sampled=%llu touched=%llu cpu=%.2fms smoothed=%llu "
		"population=%llu stall=%.2fms\n",
		p->t, (unsigned long long)p->wss_pages,
		(double)p->wss_pages / 256.0, pct,
		(unsigned long long)p->written_pages,
		(unsigned long long)p->sampled,
		(unsigned long long)p->touched_sampled,
		(double)p->estimator_cpu_ns / 1e6,
		(unsigned long long)p->smoothed_pages,
		(unsigned long long)p->population,
		(double)p->arm_stall_ns / 1e6);
}

static void print_event(void *opaque, const struct pager_event *ev)
{
	unsigned long long page = ev->page;

	(void)opaque;
	switch (ev->kind) {
	case PAGER_EVENT_UNREACHABLE:
		fprintf(stderr, "pager: page %llu unreachable on every server (%s): "
			"VM paused until one comes back\n", page, ev->store);
		break;
	case PAGER_EVENT_REACHABLE:
		fprintf(stderr, "pager: page %llu reachable again (%s): VM resumed\n",
			page, ev->store);
		break;
	case PAGER_EVENT_PAGE_LOST:
		fprintf(stderr, "pager: page %llu cannot be brought back from %s: %s: "
			"stopping the VM\n", page, ev->store, ev->detail);
		break;
	case PAGER_EVENT_EVICT_FAILED:
		fprintf(stderr, "pager: cannot evict to %s (%s): keeping the pages "
			"resident, retrying\n", ev->store, ev->detail);
		break;
	case PAGER_EVENT_EVICT_RESUMED:
		fprintf(stderr, "pager: evicting to %s again\n", ev->store);
		break;
	case PAGER_EVENT_COPIES_SHORT:
		fprintf(stderr, "pager: %llu pages in %s have fewer copies than "
			"asked for (a server lost or missed them): putting them "
			"back as the servers allow\n",
			(unsigned long long)ev->count, ev->store);
		break;
	case PAGER_EVENT_COPIES_BACK:
		fprintf(stderr, "pager: every page in %s has its copies again\n",
			ev->store);
		break;
	}
}

void run_report_hooks(struct machine_hooks *h)
{
	h->wss_point = print_point;
	h->pager_event = print_event;
}

void run_report_setup(struct machine *m)
{
	struct wss_monitor *mon = machine_wss_monitor(m);
	const struct machine_wss *w = &machine_config(m)->wss;
	struct pager_stats st;
	char desc[256];

	if (mon) {
		fprintf(stderr, "wss: tracking %s%s%s (write log: %s)\n",
			w->mode & WSS_MODE_DIRTY ? "writes" : "",
			w->mode == WSS_MODE_BOTH ? " and " : "",
			w->mode & WSS_MODE_SAMPLE ?
			(w->full ? "all references" : "sampled references") : "",
			wss_monitor_dirty_mode(mon));
		if (wss_monitor_reads_look_written(mon))
			fprintf(stderr, "wss: warning: this kernel has no userfaultfd "
				"write-protect on shmem; sampled reads also appear as "
				"writes, so --wss-mode both under-estimates read-mostly "
				"phases (use --wss-mode sample)\n");
	}
	if (machine_pager_stats(m, &st) == 0) {
		machine_store_describe(m, desc, sizeof(desc));
		fprintf(stderr, "pager: keeping at most %llu of %llu pages resident, "
			"the others in %s\n", (unsigned long long)st.limit_pages,
			(unsigned long long)st.ram_pages, desc);
	}
}

static void print_pager_stats(const struct pager_stats *st)
{
	double hit = st->prefetched ? (double)st->prefetch_hits /
				      (double)st->prefetched : 0;

	fprintf(stderr, "pager: resident=%llu remote=%llu zero=%llu faults=%llu "
		"fetches=%llu fetched_pages=%llu prefetch_hit=%.2f evictions=%llu "
		"bytes_in=%llu bytes_out=%llu fault_p50_us=%llu fault_p90_us=%llu "
		"fault_p99_us=%llu discarded=%llu under_replicated=%llu "
		"fault_us=%llu room_wait_us=%llu get_us=%llu put_us=%llu "
		"evict_us=%llu stall_us=%llu paused_batches=%llu evicted_clean=%llu\n",
		(unsigned long long)st->resident, (unsigned long long)st->remote,
		(unsigned long long)st->zero, (unsigned long long)st->faults,
		(unsigned long long)st->fetches,
		(unsigned long long)st->fetched_pages, hit,
		(unsigned long long)st->evictions,
		(unsigned long long)st->bytes_in, (unsigned long long)st->bytes_out,
		(unsigned long long)st->fault_p50_us,
		(unsigned long long)st->fault_p90_us,
		(unsigned long long)st->fault_p99_us,
		(unsigned long long)st->discarded,
		(unsigned long long)st->under_replicated,
		(unsigned long long)st->fault_us_sum,
		(unsigned long long)st->room_wait_us,
		(unsigned long long)st->get_us, (unsigned long long)st->put_us,
		(unsigned long long)st->evict_us,
		(unsigned long long)st->stall_us,
		(unsigned long long)st->paused_batches,
		(unsigned long long)st->clean_evictions);
}

static void print_exit_stats(struct machine *m)
{
	struct vcpu_stats s;

	for (unsigned i = 0; machine_vcpu_stats(m, i, &s) == 0; i++) {
		fprintf(stderr, "rackvm: vcpu%u exits:", i);
		for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++)
			if (s.exits[r])
				fprintf(stderr, " %s=%llu", kvm_exit_reason_name(r),
					(unsigned long long)s.exits[r]);
		fprintf(stderr, " eintr=%llu unclaimed=%llu\n",
			(unsigned long long)s.eintr,
			(unsigned long long)s.io_unclaimed);
	}
}

static void print_device_stats(struct machine *m)
{
	struct virtio_mmio_stats s;

	for (unsigned i = 0; machine_device_stats(m, i, &s) == 0; i++) {
		fprintf(stderr, "rackvm: %s: kicks=%llu interrupts=%llu%s", s.name,
			(unsigned long long)s.kicks,
			(unsigned long long)s.interrupts,
			s.needs_reset ? " needs-reset" : "");
		for (unsigned q = 0; q < s.nqueues; q++)
			fprintf(stderr, " q%u=%llu/%lluB%s", q,
				(unsigned long long)s.queues[q].requests,
				(unsigned long long)s.queues[q].bytes,
				s.queues[q].broken ? "(broken)" : "");
		fprintf(stderr, "\n");
	}
}

void run_report_end(struct machine *m)
{
	struct pager_stats st;

	if (machine_pager_stats(m, &st) == 0)
		print_pager_stats(&st);
	if (machine_config(m)->exit_stats) {
		print_exit_stats(m);
		print_device_stats(m);
	}
}
