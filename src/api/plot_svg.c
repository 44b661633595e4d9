// SPDX-License-Identifier: MIT
/* plot_svg.h's chart: the series drawn as SVG. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/plot_svg.h"

/* The canvas and the plot area inside it, in SVG user units. */
#define W 900
#define H 460
#define LEFT 80
#define RIGHT 170	/* room for the legend */
#define TOP 40
#define BOTTOM 55
#define TICKS 6

static const struct {
	const char *label;
	const char *colour;
	enum plot_line line;
} lines[] = {
	{ "WSS estimate", "#1f77b4", PLOT_WSS },
	{ "resident", "#2ca02c", PLOT_RESIDENT },
	{ "remote", "#d62728", PLOT_REMOTE },
	{ "balloon", "#9467bd", PLOT_BALLOON },
};
#define NLINES (sizeof(lines) / sizeof(lines[0]))

struct frame {
	double t0, t1, ymax;	/* data ranges: seconds, MiB */
};

static double x_of(const struct frame *f, double t)
{
	return LEFT + (t - f->t0) / (f->t1 - f->t0) * (W - LEFT - RIGHT);
}

static double y_of(const struct frame *f, double mib)
{
	return H - BOTTOM - mib / f->ymax * (H - TOP - BOTTOM);
}

/* A step of 1, 2 or 5 times a power of ten giving at most TICKS steps. */
static double nice_step(double range)
{
	double p = pow(10, floor(log10(range / TICKS)));

	for (double m = 1;; m = m == 1 ? 2 : m == 2 ? 5 : (p *= 10, 1))
		if (range / (m * p) <= TICKS)
			return m * p;
}

/* Escapes @in into @f as XML text. */
static void put_text(FILE *f, const char *in)
{
	for (; *in; in++) {
		if (*in == '&')
			fputs("&amp;", f);
		else if (*in == '<')
			fputs("&lt;", f);
		else if (*in == '>')
			fputs("&gt;", f);
		else if (*in == '"')
			fputs("&quot;", f);
		else if ((unsigned char)*in >= 0x20)
			fputc(*in, f);
	}
}

static bool frame_of(const struct plot_series *s, struct frame *fr)
{
	bool any = false;

	fr->t0 = INFINITY;
	fr->t1 = -INFINITY;
	fr->ymax = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct plot_point *p = &s->p[i];

		for (unsigned l = 0; l < PLOT_LINES; l++) {
			double v = p->v[l];

			if (isnan(v))
				continue;
			any = true;
			if (l == PLOT_WSS_ERROR)
				v += isnan(p->v[PLOT_WSS]) ? 0 : p->v[PLOT_WSS];
			fr->ymax = fmax(fr->ymax, v / 1048576);
		}
		fr->t0 = fmin(fr->t0, p->t);
		fr->t1 = fmax(fr->t1, p->t);
	}
	if (!(fr->t1 > fr->t0))
		fr->t1 = fr->t0 + 1;
	fr->ymax = fr->ymax > 0 ? fr->ymax * 1.08 : 1;
	return any;
}

static void axes(FILE *f, const struct frame *fr)
{
	double step = nice_step(fr->t1 - fr->t0);

	fprintf(f, "<g stroke=\"#999\" stroke-width=\"1\">\n"
		"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n"
		"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n</g>\n",
		LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM, LEFT, TOP, LEFT, H - BOTTOM);
	fputs("<g font-size=\"12\" fill=\"#333\">\n", f);
	for (double t = ceil(fr->t0 / step) * step; t <= fr->t1 + 1e-9; t += step)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#999\"/><text x=\"%.1f\" y=\"%d\" "
			"text-anchor=\"middle\">%g</text>\n", x_of(fr, t),
			H - BOTTOM, x_of(fr, t), H - BOTTOM + 5, x_of(fr, t),
			H - BOTTOM + 20, t);
	step = nice_step(fr->ymax);
	for (double y = 0; y <= fr->ymax + 1e-9; y += step)
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
			"stroke=\"#eee\"/><text x=\"%d\" y=\"%.1f\" "
			"text-anchor=\"end\">%g</text>\n", LEFT, y_of(fr, y),
			W - RIGHT, y_of(fr, y), LEFT - 6, y_of(fr, y) + 4, y);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (s)"
		"</text>\n<text x=\"18\" y=\"%d\" text-anchor=\"middle\" "
		"transform=\"rotate(-90 18 %d)\">memory (MiB)</text>\n</g>\n",
		(LEFT + W - RIGHT) / 2, H - 12, (TOP + H - BOTTOM) / 2,
		(TOP + H - BOTTOM) / 2);
}

/* The estimate's error band: a polygon along wss+error, back along
 * wss-error (each run of points with both values). */
static void band(FILE *f, const struct plot_series *s, const struct frame *fr)
{
	size_t n = 0;

	fputs("<polygon fill=\"#1f77b4\" fill-opacity=\"0.2\" stroke=\"none\" "
	      "points=\"", f);
	for (size_t i = 0; i < s->n; i++) {
		const double *v = s->p[i].v;

		if (isnan(v[PLOT_WSS]) || isnan(v[PLOT_WSS_ERROR]))
			continue;
		fprintf(f, "%.1f,%.1f ", x_of(fr, s->p[i].t),
			y_of(fr, (v[PLOT_WSS] + v[PLOT_WSS_ERROR]) / 1048576));
		n++;
	}
	for (size_t i = s->n; i-- > 0;) {
		const double *v = s->p[i].v;

		if (isnan(v[PLOT_WSS]) || isnan(v[PLOT_WSS_ERROR]))
			continue;
		fprintf(f, "%.1f,%.1f ", x_of(fr, s->p[i].t),
			y_of(fr, fmax(0, v[PLOT_WSS] - v[PLOT_WSS_ERROR]) / 1048576));
	}
	fprintf(f, "\"/>\n<!-- error band: %zu points -->\n", n);
}

/* One line's polyline; false if it has no point. */
static bool polyline(FILE *f, const struct plot_series *s,
		     const struct frame *fr, unsigned which)
{
	bool any = false;

	for (size_t i = 0; i < s->n; i++) {
		double v = s->p[i].v[lines[which].line];

		if (isnan(v))
			continue;
		if (!any)
			fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
				"stroke-width=\"1.8\" points=\"", lines[which].colour);
		any = true;
		fprintf(f, "%.1f,%.1f ", x_of(fr, s->p[i].t), y_of(fr, v / 1048576));
	}
	if (any)
		fputs("\"/>\n", f);
	return any;
}

static void legend(FILE *f, const bool *shown)
{
	int y = TOP + 10;

	fputs("<g font-size=\"12\" fill=\"#333\">\n", f);
	for (unsigned i = 0; i < NLINES; i++) {
		if (!shown[i])
			continue;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
			"stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
			W - RIGHT + 15, y, W - RIGHT + 40, y, lines[i].colour,
			W - RIGHT + 46, y + 4, lines[i].label);
		y += 20;
		if (lines[i].line == PLOT_WSS) {
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"25\" height=\"10\" "
				"fill=\"#1f77b4\" fill-opacity=\"0.2\"/><text x=\"%d\" "
				"y=\"%d\">95%% error band</text>\n", W - RIGHT + 15,
				y - 5, W - RIGHT + 46, y + 4);
			y += 20;
		}
	}
	fputs("</g>\n", f);
}

char *plot_svg(const struct plot_series *s, const char *title,
	       struct errmsg *err)
{
	bool shown[NLINES];
	struct frame fr;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!frame_of(s, &fr)) {
		errmsg_set(err, -EINVAL, "no points to plot");
		return NULL;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		errmsg_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%d\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">",
		W, H, W, H, (LEFT + W - RIGHT) / 2);
	put_text(f, title);
	fputs("</text>\n", f);
	axes(f, &fr);
	band(f, s, &fr);
	for (unsigned i = 0; i < NLINES; i++)
		shown[i] = polyline(f, s, &fr, i);
	legend(f, shown);
	fputs("</svg>\n", f);
	if (fclose(f) || !text) {
		free(text);
		errmsg_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	return text;
}
