/* SPDX-License-Identifier: MIT */
/*
 * `rackvm run --wss...`: the working-set monitor's options, its line per
 * interval on stderr and the CSV export.  Kept apart from run.c, which
 * only calls these.
 */
#ifndef RACKVM_CLI_WSS_OPTS_H
#define RACKVM_CLI_WSS_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "memory/wss_monitor.h"
#include "vm/vm.h"

struct wss_options {
	bool enabled;
	const char *csv;		/* --wss-csv FILE, or NULL */
	enum vm_dirty_log log;		/* --wss-log: AUTO, RING or BITMAP */
	struct wss_config cfg;
};

#define WSS_OPTIONS_USAGE \
	"  --wss[=INTERVAL]  estimate the working set every INTERVAL (default 1s;\n" \
	"                    e.g. 500ms, 2s); one line per interval on stderr\n" \
	"  --wss-csv FILE    also write the series as CSV to FILE at the end\n" \
	"  --wss-sample N|full  reference sample size to start from (default 100,\n" \
	"                    grown until --wss-error is met); full: every page\n" \
	"  --wss-error PCT   target 95%% CI half-width, %% of the estimate (default 5)\n" \
	"  --wss-mode dirty|sample|both  write logging, reference sampling or\n" \
	"                    both (default both)\n" \
	"  --wss-log ring|bitmap|auto  how writes are logged: KVM's dirty ring or\n" \
	"                    dirty bitmap (default auto: the bitmap if KVM has\n" \
	"                    manual protect, else the ring)\n"

void wss_options_init(struct wss_options *w);
/* @name is the long option without "--"; @arg may be NULL.  Returns 0,
 * or -1 after printing a usage error. */
int wss_options_parse(struct wss_options *w, const char *name, const char *arg);
/* What vm_config.dirty_log must be. */
enum vm_dirty_log wss_options_dirty_log(const struct wss_options *w);

/* Before vm_start(): creates the monitor, owned by @vm (NULL if
 * disabled).  After vm_start(): starts it.  At the end, before
 * vm_destroy(): writes the CSV.  Each prints its own error; -1 on error. */
int wss_cli_create(struct vm *vm, struct wss_options *w,
		   struct wss_monitor **out);
int wss_cli_start(struct wss_monitor *m);
int wss_cli_finish(struct wss_monitor *m, const struct wss_options *w);

#endif
