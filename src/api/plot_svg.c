// SPDX-License-Identifier: MIT
/* plot_svg.h's charts: a series, or panels of them, drawn as SVG. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/plot_svg.h"

/* The canvas and the plot area inside it, in SVG user units; a chart of
 * panels stacks PANEL_H-high plot areas PANEL_GAP apart. */
#define W 900
#define H 460
#define LEFT 80
#define RIGHT 170	/* room for the legend */
#define TOP 40
#define BOTTOM 55
#define TICKS 6
#define PANEL_H 120
#define PANEL_GAP 36	/* room for the next panel's name */
#define PANEL_TICKS 4
#define BAND_COLOUR "#1f77b4"

/* The lines in the legend's order; drawn in the order of @layer (the
 * faint references first, the balancer's decision last, on top). */
static const struct line_style {
	const char *label, *class, *colour, *dash;
	enum plot_line line;
	double width, opacity;
	bool step;		/* a value held until the next point */
	bool area;		/* the area under it filled, faintly */
	int layer;
} lines[] = {
	{ "WSS estimate", "wss", "#1f77b4", NULL, PLOT_WSS, 1.6, 1, 0, 0, 1 },
	{ "target", "target", "#ff7f0e", NULL, PLOT_TARGET, 2.4, 1, 1, 1, 2 },
	{ "resident", "resident", "#2ca02c", NULL, PLOT_RESIDENT, 1.6, 1, 0, 0, 1 },
	{ "remote", "remote", "#d62728", NULL, PLOT_REMOTE, 1.6, 1, 0, 0, 1 },
	{ "balloon", "balloon", "#9467bd", NULL, PLOT_BALLOON, 1.6, 1, 0, 0, 1 },
	{ "RAM", "ram", "#7f7f7f", "2,3", PLOT_RAM, 1.2, 0.8, 0, 0, 0 },
	{ "budget", "budget", "#222222", "7,4", PLOT_BUDGET, 1.6, 1, 1, 0, 0 },
};
#define NLINES (sizeof(lines) / sizeof(lines[0]))
#define LAYERS 3

struct frame {
	double t0, t1, ymax;		/* data ranges: seconds, units */
	double unit;			/* bytes a unit */
	const char *unit_name;
	double left, right, top, bottom;	/* the plot area */
	unsigned ticks;
};

static double x_of(const struct frame *f, double t)
{
	return f->left + (t - f->t0) / (f->t1 - f->t0) * (f->right - f->left);
}

/* (a sum of two values may overflow: extend() caps ymax alike) */
static double y_of(const struct frame *f, double bytes)
{
	bytes = fmin(bytes, DBL_MAX);
	return f->bottom - bytes / f->unit / f->ymax * (f->bottom - f->top);
}

/* A step of 1, 2 or 5 times a power of ten giving at most @ticks. */
static double nice_step(double range, unsigned ticks)
{
	double p = pow(10, floor(log10(range / ticks)));

	for (double m = 1;; m = m == 1 ? 2 : m == 2 ? 5 : (p *= 10, 1))
		if (range / (m * p) <= ticks)
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

static bool is_gap(const struct plot_point *p)
{
	for (unsigned l = 0; l < PLOT_LINES; l++)
		if (!isnan(p->v[l]))
			return false;
	return true;
}

/* Widens @fr's ranges (seconds, bytes) to @s's; false if it has no
 * value. */
static bool extend(struct frame *fr, const struct plot_series *s)
{
	bool any = false;

	for (size_t i = 0; i < s->n; i++) {
		const struct plot_point *p = &s->p[i];

		for (unsigned l = 0; l < PLOT_LINES; l++) {
			double v = p->v[l];

			if (isnan(v))
				continue;
			any = true;
			if (l == PLOT_WSS_ERROR)
				v += isnan(p->v[PLOT_WSS]) ? 0 : p->v[PLOT_WSS];
			fr->ymax = fmax(fr->ymax, fmin(v, DBL_MAX));
		}
		fr->t0 = fmin(fr->t0, p->t);
		fr->t1 = fmax(fr->t1, p->t);
	}
	return any;
}

static void frame_start(struct frame *fr)
{
	*fr = (struct frame){ .t0 = INFINITY, .t1 = -INFINITY };
}

/* Settles @fr's ranges: units of MiB, or GiB from 4 GiB up, with room
 * above the highest value. */
static void frame_finish(struct frame *fr)
{
	/* a span even where a second is below a double's precision */
	if (!(fr->t1 > fr->t0))
		fr->t1 = fr->t0 + fmax(1, fr->t0 * 1e-9);
	fr->unit = fr->ymax >= 4.0 * (1 << 30) ? 1 << 30 : 1 << 20;
	fr->unit_name = fr->unit > 1 << 20 ? "GiB" : "MiB";
	fr->ymax = fr->ymax > 0 ? fr->ymax / fr->unit * 1.08 : 1;
}

static void frame_place(struct frame *fr, double left, double right,
			double top, double bottom, unsigned ticks)
{
	fr->left = left;
	fr->right = right;
	fr->top = top;
	fr->bottom = bottom;
	fr->ticks = ticks;
}

/* The time ticks: a mark (and its label when @labels) on the x axis and
 * a faint line across the plot area. */
static void x_axis(FILE *f, const struct frame *fr, bool labels)
{
	double step = nice_step(fr->t1 - fr->t0, TICKS);
	double first = ceil(fr->t0 / step);

	fprintf(f, "<g font-size=\"12\" fill=\"#333\">\n<line x1=\"%.1f\" "
		"y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
		fr->left, fr->bottom, fr->right, fr->bottom);
	/* counted, not summed: t += step stalls where t dwarfs step */
	for (unsigned k = 0; k <= TICKS; k++) {
		double t = (first + k) * step, x = x_of(fr, t);

		if (t > fr->t1 * (1 + 1e-12))
			break;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#eee\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
			"y2=\"%.1f\" stroke=\"#999\"/>\n", x, fr->top, x,
			fr->bottom, x, fr->bottom, x, fr->bottom + 5);
		if (labels)
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
				"%g</text>\n", x, fr->bottom + 20, t);
	}
	fputs("</g>\n", f);
}

static void y_axis(FILE *f, const struct frame *fr)
{
	double step = nice_step(fr->ymax, fr->ticks);

	fprintf(f, "<g font-size=\"12\" fill=\"#333\">\n<line x1=\"%.1f\" "
		"y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n",
		fr->left, fr->top, fr->left, fr->bottom);
	for (double y = 0; y <= fr->ymax * (1 + 1e-12); y += step)
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#eee\"/><text x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"end\">%g</text>\n", fr->left,
			y_of(fr, y * fr->unit), fr->right, y_of(fr, y * fr->unit),
			fr->left - 6, y_of(fr, y * fr->unit) + 4, y);
	fputs("</g>\n", f);
}

/* The axes' names: time under the x axis, memory along the y axis. */
static void time_title(FILE *f, const struct frame *fr)
{
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
		"fill=\"#333\" text-anchor=\"middle\">time (s)</text>\n",
		(fr->left + fr->right) / 2, fr->bottom + 43);
}

static void memory_title(FILE *f, const struct frame *fr)
{
	double y = (fr->top + fr->bottom) / 2;

	fprintf(f, "<text x=\"18\" y=\"%.1f\" font-size=\"12\" fill=\"#333\" "
		"text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">"
		"memory (%s)</text>\n", y, y, fr->unit_name);
}

/* The end of the run of points from @a up to a gap. */
static size_t run_end(const struct plot_series *s, size_t a)
{
	while (a < s->n && !is_gap(&s->p[a]))
		a++;
	return a;
}

/* The estimate's error band: per run, a polygon along wss+error and
 * back along wss-error over the points with both values. */
static void band(FILE *f, const struct plot_series *s, const struct frame *fr)
{
	size_t n = 0;

	for (size_t a = 0, b; a < s->n; a = b + 1) {
		bool open = false;

		b = run_end(s, a);
		for (size_t i = a; i < b; i++) {
			const double *v = s->p[i].v;

			if (isnan(v[PLOT_WSS]) || isnan(v[PLOT_WSS_ERROR]))
				continue;
			if (!open)
				fputs("<polygon class=\"band\" fill=\"" BAND_COLOUR
				      "\" fill-opacity=\"0.2\" stroke=\"none\" "
				      "points=\"", f);
			open = true;
			fprintf(f, "%.1f,%.1f ", x_of(fr, s->p[i].t),
				y_of(fr, v[PLOT_WSS] + v[PLOT_WSS_ERROR]));
			n++;
		}
		for (size_t i = b; open && i-- > a;) {
			const double *v = s->p[i].v;

			if (isnan(v[PLOT_WSS]) || isnan(v[PLOT_WSS_ERROR]))
				continue;
			fprintf(f, "%.1f,%.1f ", x_of(fr, s->p[i].t),
				y_of(fr, fmax(0, v[PLOT_WSS] - v[PLOT_WSS_ERROR])));
		}
		if (open)
			fputs("\"/>\n", f);
	}
	fprintf(f, "<!-- error band: %zu points -->\n", n);
}

/* The points of @l over s->p[@a..@b) as "x,y " pairs, a held value as a
 * step; the x of the first and the last. */
static void put_points(FILE *f, const struct plot_series *s,
		       const struct frame *fr, const struct line_style *l,
		       size_t a, size_t b, double *x_first, double *x_last)
{
	bool any = false;
	double y_last = 0;

	for (size_t i = a; i < b; i++) {
		double v = s->p[i].v[l->line], x, y;

		if (isnan(v))
			continue;
		x = x_of(fr, s->p[i].t);
		y = y_of(fr, v);
		if (!any)
			*x_first = x;
		else if (l->step)
			fprintf(f, "%.1f,%.1f ", x, y_last);
		fprintf(f, "%.1f,%.1f ", x, y);
		any = true;
		*x_last = x;
		y_last = y;
	}
}

static bool has_value(const struct plot_series *s, size_t a, size_t b,
		      enum plot_line line)
{
	for (size_t i = a; i < b; i++)
		if (!isnan(s->p[i].v[line]))
			return true;
	return false;
}

/* One line: a polyline per run with a value (and its area). */
static void polyline(FILE *f, const struct plot_series *s,
		     const struct frame *fr, const struct line_style *l)
{
	double x0, x1;

	for (size_t a = 0, b; a < s->n; a = b + 1) {
		b = run_end(s, a);
		if (!has_value(s, a, b, l->line))
			continue;
		if (l->area) {
			fprintf(f, "<polygon class=\"%s-area\" fill=\"%s\" "
				"fill-opacity=\"0.13\" stroke=\"none\" points=\"",
				l->class, l->colour);
			put_points(f, s, fr, l, a, b, &x0, &x1);
			fprintf(f, "%.1f,%.1f %.1f,%.1f\"/>\n", x1, fr->bottom,
				x0, fr->bottom);
		}
		fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" "
			"stroke-width=\"%g\" stroke-opacity=\"%g\"%s%s%s "
			"points=\"", l->class, l->colour, l->width, l->opacity,
			l->dash ? " stroke-dasharray=\"" : "",
			l->dash ? l->dash : "", l->dash ? "\"" : "");
		put_points(f, s, fr, l, a, b, &x0, &x1);
		fputs("\"/>\n", f);
	}
}

/* Every line of @s with a value, the band under them; @shown[i] set for
 * lines[i] drawn. */
static void draw_series(FILE *f, const struct plot_series *s,
			const struct frame *fr, bool *shown)
{
	band(f, s, fr);
	for (int layer = 0; layer < LAYERS; layer++)
		for (unsigned i = 0; i < NLINES; i++) {
			const struct line_style *l = &lines[i];

			if (l->layer != layer || !has_value(s, 0, s->n, l->line))
				continue;
			polyline(f, s, fr, l);
			shown[i] = true;
		}
}

static void legend(FILE *f, const bool *shown, int y)
{
	fputs("<g font-size=\"12\" fill=\"#333\">\n", f);
	for (unsigned i = 0; i < NLINES; i++) {
		if (!shown[i])
			continue;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
			"stroke-width=\"3\"%s%s%s/><text x=\"%d\" y=\"%d\">%s</text>\n",
			W - RIGHT + 15, y, W - RIGHT + 40, y, lines[i].colour,
			lines[i].dash ? " stroke-dasharray=\"" : "",
			lines[i].dash ? lines[i].dash : "", lines[i].dash ? "\"" : "",
			W - RIGHT + 46, y + 4, lines[i].label);
		y += 18;
		if (lines[i].line == PLOT_WSS) {
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"25\" height=\"10\" "
				"fill=\"" BAND_COLOUR "\" fill-opacity=\"0.2\"/><text x=\"%d\" "
				"y=\"%d\">95%% error band</text>\n", W - RIGHT + 15,
				y - 5, W - RIGHT + 46, y + 4);
			y += 18;
		}
	}
	fputs("</g>\n", f);
}

/* An SVG document @w x @h titled @title into a memory stream. */
static FILE *document(char **text, size_t *len, int h, const char *title,
		      struct errmsg *err)
{
	FILE *f = open_memstream(text, len);

	if (!f) {
		errmsg_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"%d\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">",
		W, h, W, h, (LEFT + W - RIGHT) / 2);
	put_text(f, title);
	fputs("</text>\n", f);
	return f;
}

/* The document's end; its text (the stream's, set as it closes). */
static char *finish(FILE *f, char **text, struct errmsg *err)
{
	fputs("</svg>\n", f);
	if (fclose(f) || !*text) {
		free(*text);
		errmsg_set(err, -ENOMEM, "out of memory");
		return NULL;
	}
	return *text;
}

char *plot_svg(const struct plot_series *s, const char *title,
	       struct errmsg *err)
{
	bool shown[NLINES] = { false };
	struct frame fr;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	frame_start(&fr);
	if (!extend(&fr, s)) {
		errmsg_set(err, -EINVAL, "no points to plot");
		return NULL;
	}
	frame_finish(&fr);
	frame_place(&fr, LEFT, W - RIGHT, TOP, H - BOTTOM, TICKS);
	f = document(&text, &len, H, title, err);
	if (!f)
		return NULL;
	x_axis(f, &fr, true);
	y_axis(f, &fr);
	time_title(f, &fr);
	memory_title(f, &fr);
	draw_series(f, s, &fr, shown);
	legend(f, shown, TOP + 10);
	return finish(f, &text, err);
}

static void shade(FILE *f, const struct frame *fr, double from, double upto)
{
	double x0 = x_of(fr, from), x1 = x_of(fr, upto);

	if (x1 - x0 >= 1)
		fprintf(f, "<rect class=\"absent\" x=\"%.1f\" y=\"%.1f\" "
			"width=\"%.1f\" height=\"%.1f\" fill=\"#f2f2f2\"/>\n",
			x0, fr->top, x1 - x0, fr->bottom - fr->top);
	if (x1 - x0 >= 50)
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
			"fill=\"#999\" text-anchor=\"middle\">absent</text>\n",
			(x0 + x1) / 2, (fr->top + fr->bottom) / 2);
}

/* Shades where @s has no run of points: a VM not yet there, gone, or
 * missing for a while. */
static void absent(FILE *f, const struct plot_series *s,
		   const struct frame *fr)
{
	double from = fr->t0;

	for (size_t a = 0, b; a < s->n; a = b + 1) {
		b = run_end(s, a);
		if (b == a)
			continue;
		shade(f, fr, from, s->p[a].t);
		from = s->p[b - 1].t;
	}
	shade(f, fr, from, fr->t1);
}

static double panel_top(size_t i)
{
	return TOP + 22 + (double)i * (PANEL_H + PANEL_GAP);
}

static void panel(FILE *f, const struct plot_panel *p, const struct frame *fr,
		  bool last, bool *shown)
{
	fputs("<g class=\"panel\" data-name=\"", f);
	put_text(f, p->name);
	fprintf(f, "\">\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" "
		"fill=\"#111\"><tspan font-weight=\"bold\">", fr->left,
		fr->top - 8);
	put_text(f, p->name);
	fputs("</tspan><tspan dx=\"10\" fill=\"#777\" font-size=\"12\">", f);
	put_text(f, p->note);
	fputs("</tspan></text>\n", f);
	absent(f, &p->s, fr);
	x_axis(f, fr, last);
	y_axis(f, fr);
	memory_title(f, fr);
	draw_series(f, &p->s, fr, shown);
	fputs("</g>\n", f);
}

char *plot_svg_panels(const struct plot_panel *panels, size_t n,
		      const char *title, struct errmsg *err)
{
	bool shown[NLINES] = { false }, any = false;
	int h = (int)panel_top(n ? n - 1 : 0) + PANEL_H + BOTTOM;
	struct frame all, shared, fr;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	frame_start(&all);
	frame_start(&shared);
	for (size_t i = 0; i < n; i++) {
		any |= extend(&all, &panels[i].s);
		if (!panels[i].own_scale)
			extend(&shared, &panels[i].s);
	}
	if (!any) {
		errmsg_set(err, -EINVAL, "no points to plot");
		return NULL;
	}
	frame_finish(&all);
	shared.t0 = all.t0;
	shared.t1 = all.t1;
	frame_finish(&shared);
	f = document(&text, &len, h, title, err);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		fr = shared;
		if (panels[i].own_scale) {
			frame_start(&fr);
			extend(&fr, &panels[i].s);
			fr.t0 = all.t0;
			fr.t1 = all.t1;
			frame_finish(&fr);
		}
		frame_place(&fr, LEFT, W - RIGHT, panel_top(i),
			    panel_top(i) + PANEL_H, PANEL_TICKS);
		panel(f, &panels[i], &fr, i == n - 1, shown);
	}
	time_title(f, &fr);
	legend(f, shown, (int)panel_top(0) + 10);
	return finish(f, &text, err);
}
