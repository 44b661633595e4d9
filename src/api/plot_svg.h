/* SPDX-License-Identifier: MIT */
/*
 * `rackvm plot`'s data and charts: a VM's memory over time as points
 * (plot_series), loaded from the CSV that `rackvm run --wss-csv FILE`
 * writes or from the control API's replies, and drawn as an SVG chart:
 * the WSS estimate with its error band, resident, remote and the
 * balloon, with axes, labels and a legend.  hostd's balancer decision
 * log becomes several series, one panel per VM under one for the host
 * (plot_balancer), drawn as small multiples on a shared time axis.
 * No I/O on files or sockets here: the CLI reads and writes, these
 * functions take and return text.
 *
 * Inputs are untrusted: a CSV or reply that is not what is expected is
 * -EINVAL with the line or field that was wrong; numbers must be finite
 * and >= 0.
 */
#ifndef RACKVM_API_PLOT_SVG_H
#define RACKVM_API_PLOT_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/errmsg.h"

/* The most points one series holds (an hour at one a second, twice). */
#define PLOT_POINTS_MAX 8192u

/* The lines of the chart; a point has NAN where it has no value, and a
 * point with every value NAN is a gap: the lines break there (a VM
 * absent from the balancer's log for a while). */
enum plot_line {
	PLOT_WSS,		/* the estimate, bytes */
	PLOT_WSS_ERROR,		/* its 95% CI half-width, bytes */
	PLOT_RESIDENT,
	PLOT_REMOTE,
	PLOT_BALLOON,
	PLOT_TARGET,		/* the balancer's decision, held till the next */
	PLOT_RAM,		/* the VM's RAM: a reference */
	PLOT_BUDGET,		/* the host's budget for all VMs */
	PLOT_LINES
};

struct plot_point {
	double t;		/* seconds */
	double v[PLOT_LINES];	/* bytes, or NAN */
};

struct plot_series {
	struct plot_point *p;
	size_t n;
};

/* Appends a point with every value NAN (a gap until one is set); -ENOMEM or -E2BIG (more than
 * PLOT_POINTS_MAX) with @err. */
int plot_series_add(struct plot_series *s, double t, struct plot_point **out,
		    struct errmsg *err);
/* Orders the points by time (the API's sources interleave). */
void plot_series_sort(struct plot_series *s);
void plot_series_free(struct plot_series *s);

/* The CSV of --wss-csv: a header naming the columns (time, wss_pages,
 * error_pages needed; resident_pages, remote_pages, balloon_pages taken
 * if present), then one line a point; pages of @page_size bytes. */
int plot_series_from_csv(const char *text, unsigned page_size,
			 struct plot_series *s, struct errmsg *err);
/* GET /vm/memory/wss's reply: its points appended. */
int plot_series_from_wss_json(const char *body, struct plot_series *s,
			      struct errmsg *err);
/* GET /vm/memory's reply at @t seconds: resident, remote and the
 * balloon's size as one point (WSS NAN: the series has it). */
int plot_series_from_memory_json(const char *body, double t,
				 struct plot_series *s, struct errmsg *err);

/* From a running VM's API socket (api_client.h): one sample of
 * GET /vm/memory at the VM's uptime, or the whole WSS series (a VM
 * without a WSS monitor adds none).  -ECONNREFUSED etc. as
 * api_client_request(), -EINVAL for a reply not as documented. */
int plot_series_sample_api(const char *socket, struct plot_series *s,
			   struct errmsg *err);
int plot_series_wss_api(const char *socket, struct plot_series *s,
			struct errmsg *err);

/* The chart as an SVG document titled @title (escaped here); malloc'ed,
 * or NULL with @err (-ENOMEM, or -EINVAL for a series without points). */
char *plot_svg(const struct plot_series *s, const char *title,
	       struct errmsg *err);

/* One chart of several stacked: a VM's series, or the host's. */
struct plot_panel {
	char name[64];		/* shown escaped above the panel */
	char note[64];		/* shown after the name, greyer */
	bool own_scale;		/* its own y axis; the others share one */
	struct plot_series s;
};

/* The panels as one SVG document titled @title: stacked vertically in
 * order on one time axis, the VM panels on one y scale so they compare,
 * one legend.  malloc'ed, or NULL with @err (-ENOMEM, or -EINVAL when no
 * panel has a point). */
char *plot_svg_panels(const struct plot_panel *panels, size_t n,
		      const char *title, struct errmsg *err);

/* The most VMs a balancer chart shows (more: choose with @only). */
#define PLOT_VMS_MAX 16u

/*
 * hostd's balancer decision log (balancer_log_line(), one JSON object a
 * line) as panels: [0] the host's (its budget, the sum of targets and
 * the sum of resident), then one a VM in the order they first appear,
 * with its WSS estimate and error, target, resident and RAM; a gap
 * where a VM is missing from lines.  Times are seconds since the first
 * line.  A last line without its newline that does not parse is being
 * written: skipped (@truncated set).  Blank lines are passed over.
 */
struct plot_balancer {
	struct plot_panel panel[1 + PLOT_VMS_MAX];
	size_t n;		/* panels filled, the host's included */
	unsigned lines;		/* log lines taken */
	bool truncated;		/* the last line was skipped */
};

/* Reads @text into @b (zeroed by the caller); @only, if @n_only > 0,
 * names the VMs to show, in that order (the host's sums still count
 * every VM).  -EINVAL with the line and field for a line not as
 * balancer_log_line() writes it, a time going back, or a VM of @only
 * never seen; -E2BIG for more than PLOT_VMS_MAX VMs or PLOT_POINTS_MAX
 * lines; -ENOMEM.  plot_balancer_free() either way. */
int plot_balancer_from_log(const char *text, const char *const *only,
			   size_t n_only, struct plot_balancer *b,
			   struct errmsg *err);
void plot_balancer_free(struct plot_balancer *b);

#endif
