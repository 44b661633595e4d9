/* SPDX-License-Identifier: MIT */
/*
 * What `rackvm top` shows: one row a VM whose API socket is in a runtime
 * directory (and, when rackvm hostd serves DIR/hostd.sock, its budget and
 * each VM's target and lever), gathered over the control API (api_client.h), rates taken
 * against the previous sample, sorted and formatted as a text table.
 * No printing here: top_format() returns the text, the CLI writes it.
 *
 * Every socket and every reply is untrusted: a socket nobody serves
 * (a VM that was killed leaves one behind), one that answers late, or a
 * reply that is not the JSON expected gives a row saying so, never an
 * error of the whole gathering.
 */
#ifndef RACKVM_API_API_TOP_H
#define RACKVM_API_API_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

/* How long one request may take before the VM counts as unreachable. */
#define TOP_REQUEST_TIMEOUT_MS 500
/* At most this many sockets are looked at (the rest are left out). */
#define TOP_MAX_VMS 256
/* hostd's socket in the runtime directory: not a VM's */
#define TOP_HOSTD_SOCKET "hostd.sock"

enum top_key { TOP_SORT_NAME, TOP_SORT_MEMORY, TOP_SORT_CPU };

/* A byte count or rate is < 0 where the VM has none (no pager, no WSS
 * monitor, no balloon) or it is not known yet (a rate's first sample). */
struct top_row {
	char name[64];
	char problem[40];	/* "" or why the row has no figures */
	char state[16];
	unsigned vcpus;
	double when;		/* CLOCK_MONOTONIC seconds of the sample */
	double cpu_seconds;	/* summed over the vCPUs */
	double exits;		/* summed over the vCPUs */
	double faults;		/* pager faults, < 0 without a pager */
	double cpu_pct, exits_rate, fault_rate;
	int64_t size, resident, remote, wss, wss_error, balloon;
	/* hostd's view (when it runs): the balancer's target, its lever */
	int64_t target;
	char lever[16];
};

struct top_table {
	struct top_row *rows;
	size_t n;
	/* hostd answered on DIR/hostd.sock: its budget and the sums */
	bool host;
	int64_t budget, committed, host_resident;
};

/* The default runtime directory: /run/rackvm as root, else
 * $XDG_RUNTIME_DIR/rackvm (-ENOENT if that is unset). */
int top_default_dir(char *buf, size_t len, struct errmsg *err);

/* Reads every NAME.sock in @dir (a missing directory is an empty table)
 * into @out; rates from the row of the same name in @prev (may be
 * NULL).  -ENOMEM, or -errno if @dir cannot be read, with @err. */
int top_gather(const char *dir, const struct top_table *prev,
	       struct top_table *out, struct errmsg *err);
/* Adds hostd's view to a gathered table if DIR/hostd.sock answers
 * (api_top_host.c); the table is left as it was otherwise. */
void top_gather_host(const char *dir, struct top_table *t);
/* @v bytes as "512M", "1.5G"; "-" if < 0. */
const char *top_size_text(int64_t v, char *buf, size_t len);
void top_sort(struct top_table *t, enum top_key key);
/* The table as text, a header line first; malloc'ed, NULL on ENOMEM. */
char *top_format(const struct top_table *t, enum top_key key);
void top_table_free(struct top_table *t);

#endif
