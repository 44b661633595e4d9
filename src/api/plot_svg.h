/* SPDX-License-Identifier: MIT */
/*
 * `rackvm plot`'s data and chart: a VM's memory over time as points
 * (plot_series), loaded from the CSV that `rackvm run --wss-csv FILE`
 * writes or from the control API's replies, and drawn as an SVG chart:
 * the WSS estimate with its error band, resident, remote and the
 * balloon, with axes, labels and a legend.  No I/O on files or sockets
 * here: the CLI reads and writes, these functions take and return text.
 *
 * Inputs are untrusted: a CSV or reply that is not what is expected is
 * -EINVAL with the line or field that was wrong; numbers must be finite
 * and >= 0.
 */
#ifndef RACKVM_API_PLOT_SVG_H
#define RACKVM_API_PLOT_SVG_H

#include <stddef.h>

#include "util/errmsg.h"

/* The most points one series holds (an hour at one a second, twice). */
#define PLOT_POINTS_MAX 8192u

/* The lines of the chart; a point has NAN where it has no value. */
enum plot_line {
	PLOT_WSS,		/* the estimate, bytes */
	PLOT_WSS_ERROR,		/* its 95% CI half-width, bytes */
	PLOT_RESIDENT,
	PLOT_REMOTE,
	PLOT_BALLOON,
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

/* Appends a point with every value NAN; -ENOMEM or -E2BIG (more than
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

#endif
