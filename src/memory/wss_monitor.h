/* SPDX-License-Identifier: MIT */
/*
 * The WSS monitor of one VM: a thread that, every interval, collects the
 * pages written (dirty_log.h), rotates the reference sample
 * (ref_sample.h), computes the estimate (wss.h), updates the time series
 * and the hot/cold map, and hands the interval's point to a callback.
 *
 * Lifetime: wss_monitor_create() after vm_create() and before
 * vm_start() (the dirty ring's full handler must exist before vCPUs run),
 * wss_monitor_start() once the guest runs, wss_monitor_destroy() after
 * the vCPU threads stopped (give it to the VM with vm_own()).  Reading the
 * series or the map is safe from any thread while it runs.
 *
 * CPU cost per interval is the monitor thread's CPU time plus what the
 * fault threads spent on the sampler's faults (ref_sample_fault_cpu_ns).
 */
#ifndef RACKVM_MEMORY_WSS_MONITOR_H
#define RACKVM_MEMORY_WSS_MONITOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memory/wss.h"
#include "util/errmsg.h"

struct uffd_ram;
struct vm;
struct wss_monitor;

#define WSS_MODE_DIRTY 1u
#define WSS_MODE_SAMPLE 2u
#define WSS_MODE_BOTH (WSS_MODE_DIRTY | WSS_MODE_SAMPLE)

struct wss_config {
	uint64_t interval_ns;		/* default 1 s */
	unsigned mode;			/* WSS_MODE_* bits */
	bool full;			/* sample every resident page */
	uint64_t sample_min;		/* starting / smallest sample (100) */
	uint64_t sample_max;		/* adaptive growth stops here (4096) */
	double rel_error;		/* target CI half-width / estimate (0.05) */
	uint64_t history;		/* points kept (3600) */
	uint64_t seed;			/* 0: from the clock */
	/* called on the monitor thread after each interval (may be NULL) */
	void (*on_interval)(void *opaque, const struct wss_point *p);
	void *opaque;
	/* Guest RAM's shared userfaultfd for the sampler (attached at
	 * create, before uffd_ram_start()); NULL: a uffd of its own. */
	struct uffd_ram *uffd;
	/* Also called on the monitor thread each interval with the pages
	 * seen written and the sampled pages seen touched (bitmaps, see
	 * dirty_log.h; either may be NULL): the pager's reference bits. */
	void (*on_pages)(void *opaque, const uint64_t *written,
			 const uint64_t *touched);
	/* Also called each interval, before the estimate (may be NULL):
	 * ORs into @known the pages known referenced by other means (the
	 * pager's faults: pages that were not resident, which the sample
	 * of resident pages cannot see) and returns how many it added.
	 * They count as exactly as the written pages. */
	uint64_t (*take_referenced)(void *opaque, uint64_t *known);
	void *pages_opaque;		/* for both */
};

void wss_config_defaults(struct wss_config *c);

/* With WSS_MODE_DIRTY the VM must have been created with dirty logging;
 * with WSS_MODE_SAMPLE minor-fault userfaultfd must work (-ENOTSUP and a
 * reason otherwise). */
int wss_monitor_create(struct vm *vm, const struct wss_config *cfg,
		       struct wss_monitor **out, struct errmsg *err);
int wss_monitor_start(struct wss_monitor *m, struct errmsg *err);
/* Stops the thread (if started) and frees everything; void * for vm_own. */
void wss_monitor_destroy(void *m);

int wss_monitor_write_csv(struct wss_monitor *m, FILE *out);
/*
 * The history (wss.h: struct wss_history) for a snapshot or migration:
 * save from any thread, load only before wss_monitor_start() (-EBUSY
 * after); the monitor then goes on from the last point's time, so the
 * series reads as one across the move.  Load checks everything (an
 * untrusted stream) and applies nothing on error.
 */
int wss_monitor_save(struct wss_monitor *m, struct state_buf *out);
int wss_monitor_load(struct wss_monitor *m, struct state_reader *in,
		     struct errmsg *err);
/* @seconds rounded to the microsecond: a point's time.  A client reads
 * it back from the API (reals printed to 15 significant digits) and
 * gives it as since=; rounded so, the text names the point exactly,
 * where a longer fraction cut at print time would name a time just
 * before it and the point would come back as "newer". */
double wss_point_time(double seconds);
/* Copies the held points with t > @since (seconds since tracking
 * started), oldest first, into @out: the newest @max of them when there
 * are more.  Returns how many. */
uint64_t wss_monitor_points(struct wss_monitor *m, double since,
			    struct wss_point *out, uint64_t max);
uint64_t wss_monitor_coldest(struct wss_monitor *m,
			     struct wss_cold_region *out, uint64_t n);
/* True if the sampler cannot keep KVM from logging sampled reads as
 * writes (no uffd-wp on shmem): `both' then under-estimates reads. */
bool wss_monitor_reads_look_written(const struct wss_monitor *m);
/* "ring", "bitmap" or "off": the write tracking in use. */
const char *wss_monitor_dirty_mode(const struct wss_monitor *m);

#endif
