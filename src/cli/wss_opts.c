// SPDX-License-Identifier: MIT
#include "cli/wss_opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

static int wss_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "rackvm run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see rackvm run --help)\n");
	return -1;
}

void wss_options_init(struct wss_options *w)
{
	*w = (struct wss_options){ .log = VM_DIRTY_LOG_AUTO };
	wss_config_defaults(&w->cfg);
}

int wss_options_parse(struct wss_options *w, const char *name, const char *arg)
{
	unsigned n;
	char *end;
	double pct;

	/* any --wss-* option turns the monitor on */
	w->enabled = true;
	if (!strcmp(name, "wss")) {
		if (arg && (parse_duration_ns(arg, &w->cfg.interval_ns) ||
			    w->cfg.interval_ns < 10000000ull))
			return wss_usage("invalid --wss interval '%s': give e.g. 1s, 500ms "
					 "(at least 10ms)", arg);
	} else if (!strcmp(name, "wss-csv")) {
		if (!*arg)
			return wss_usage("--wss-csv needs a file name%s", "");
		w->csv = arg;
	} else if (!strcmp(name, "wss-sample")) {
		if (!strcmp(arg, "full")) {
			w->cfg.full = true;
		} else if (parse_uint(arg, 1, 1u << 30, &n)) {
			return wss_usage("invalid --wss-sample '%s': give a page count or full",
					 arg);
		} else {
			w->cfg.full = false;
			w->cfg.sample_min = n;
			if (w->cfg.sample_max < n)
				w->cfg.sample_max = n;
		}
	} else if (!strcmp(name, "wss-error")) {
		pct = strtod(arg, &end);
		if (end == arg || *end || !(pct > 0 && pct <= 100))
			return wss_usage("invalid --wss-error '%s': give a percentage above 0",
					 arg);
		w->cfg.rel_error = pct / 100;
	} else if (!strcmp(name, "wss-log")) {
		if (!strcmp(arg, "ring"))
			w->log = VM_DIRTY_LOG_RING;
		else if (!strcmp(arg, "bitmap"))
			w->log = VM_DIRTY_LOG_BITMAP;
		else if (!strcmp(arg, "auto"))
			w->log = VM_DIRTY_LOG_AUTO;
		else
			return wss_usage("invalid --wss-log '%s': give ring, bitmap or auto",
					 arg);
	} else if (!strcmp(name, "wss-mode")) {
		if (!strcmp(arg, "dirty"))
			w->cfg.mode = WSS_MODE_DIRTY;
		else if (!strcmp(arg, "sample"))
			w->cfg.mode = WSS_MODE_SAMPLE;
		else if (!strcmp(arg, "both"))
			w->cfg.mode = WSS_MODE_BOTH;
		else
			return wss_usage("invalid --wss-mode '%s': give dirty, sample or both",
					 arg);
	}
	return 0;
}

enum vm_dirty_log wss_options_dirty_log(const struct wss_options *w)
{
	return w->enabled && (w->cfg.mode & WSS_MODE_DIRTY) ?
	       w->log : VM_DIRTY_LOG_OFF;
}

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

int wss_cli_create(struct vm *vm, struct wss_options *w,
		   struct wss_monitor **out)
{
	struct errmsg err = { "" };
	int ret;

	*out = NULL;
	if (!w->enabled)
		return 0;
	w->cfg.on_interval = print_point;
	ret = wss_monitor_create(vm, &w->cfg, out, &err);
	if (ret) {
		fprintf(stderr, "rackvm: --wss: %s\n", err.text);
		return -1;
	}
	ret = vm_own(vm, wss_monitor_destroy, *out);
	if (ret) {
		wss_monitor_destroy(*out);
		*out = NULL;
		fprintf(stderr, "rackvm: --wss: %s\n", strerror(-ret));
		return -1;
	}
	fprintf(stderr, "wss: tracking %s%s%s (write log: %s)\n",
		w->cfg.mode & WSS_MODE_DIRTY ? "writes" : "",
		w->cfg.mode == WSS_MODE_BOTH ? " and " : "",
		w->cfg.mode & WSS_MODE_SAMPLE ?
		(w->cfg.full ? "all references" : "sampled references") : "",
		wss_monitor_dirty_mode(*out));
	if (wss_monitor_reads_look_written(*out))
		fprintf(stderr, "wss: warning: this kernel has no userfaultfd write-protect "
			"on shmem; sampled reads also appear as writes, so --wss-mode both "
			"under-estimates read-mostly phases (use --wss-mode sample)\n");
	return 0;
}

int wss_cli_start(struct wss_monitor *m)
{
	struct errmsg err = { "" };

	if (!m)
		return 0;
	if (wss_monitor_start(m, &err)) {
		fprintf(stderr, "rackvm: --wss: %s\n", err.text);
		return -1;
	}
	return 0;
}

int wss_cli_finish(struct wss_monitor *m, const struct wss_options *w)
{
	FILE *f;
	int ret;

	if (!m || !w->csv)
		return 0;
	f = fopen(w->csv, "w");
	if (!f) {
		fprintf(stderr, "rackvm: --wss-csv %s: %s\n", w->csv, strerror(errno));
		return -1;
	}
	ret = wss_monitor_write_csv(m, f);
	if (fclose(f) || ret) {
		fprintf(stderr, "rackvm: --wss-csv %s: write error\n", w->csv);
		return -1;
	}
	return 0;
}
