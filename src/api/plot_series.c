// SPDX-License-Identifier: MIT
/* plot_svg.h's series: loading it from CSV and from API replies. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_client.h"
#include "api/plot_svg.h"

int plot_series_add(struct plot_series *s, double t, struct plot_point **out,
		    struct errmsg *err)
{
	struct plot_point *grown;

	if (s->n >= PLOT_POINTS_MAX)
		return errmsg_set(err, -E2BIG, "more than %u points",
				  PLOT_POINTS_MAX);
	/* grown by doubling: the array is reallocated log(n) times */
	if (!(s->n & (s->n - 1)) || !s->n) {
		grown = realloc(s->p, (s->n ? 2 * s->n : 1) * sizeof(*s->p));
		if (!grown)
			return errmsg_set(err, -ENOMEM, "out of memory");
		s->p = grown;
	}
	*out = &s->p[s->n++];
	(*out)->t = t;
	for (unsigned i = 0; i < PLOT_LINES; i++)
		(*out)->v[i] = NAN;
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct plot_point *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

void plot_series_sort(struct plot_series *s)
{
	if (s->n)
		qsort(s->p, s->n, sizeof(*s->p), by_time);
}

void plot_series_free(struct plot_series *s)
{
	free(s->p);
	s->p = NULL;
	s->n = 0;
}

/* The CSV's columns read, by header name; the rest are passed over. */
static const struct {
	const char *name;
	int line;		/* enum plot_line, or -1 for the time */
	bool needed;
} columns[] = {
	{ "time", -1, true },
	{ "wss_pages", PLOT_WSS, true },
	{ "error_pages", PLOT_WSS_ERROR, true },
	{ "resident_pages", PLOT_RESIDENT, false },
	{ "remote_pages", PLOT_REMOTE, false },
	{ "balloon_pages", PLOT_BALLOON, false },
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))
#define CSV_FIELDS_MAX 64

/* Splits @line (modified) at commas into @f; the number of fields. */
static unsigned split(char *line, char **f)
{
	unsigned n = 0;

	for (char *p = line; n < CSV_FIELDS_MAX; p++) {
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p = 0;
	}
	return n;
}

/* A number >= 0 and finite, the whole field. */
static bool number(const char *text, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(text, &end);
	return end != text && !*end && !errno && isfinite(*out) && *out >= 0;
}

static int csv_lines(char *text, unsigned page_size, struct plot_series *s,
		     struct errmsg *err)
{
	int where[NCOLUMNS];
	char *f[CSV_FIELDS_MAX], *save = NULL, *line;
	unsigned nf, lineno = 1;

	line = strtok_r(text, "\r\n", &save);
	if (!line)
		return errmsg_set(err, -EINVAL, "the CSV is empty");
	nf = split(line, f);
	for (unsigned c = 0; c < NCOLUMNS; c++) {
		where[c] = -1;
		for (unsigned i = 0; i < nf; i++)
			if (!strcmp(f[i], columns[c].name))
				where[c] = (int)i;
		if (where[c] < 0 && columns[c].needed)
			return errmsg_set(err, -EINVAL, "the CSV's header has no "
					  "column '%s'", columns[c].name);
	}
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		struct plot_point *p;
		double v[NCOLUMNS];
		int ret;

		lineno++;
		nf = split(line, f);
		for (unsigned c = 0; c < NCOLUMNS; c++)
			if (where[c] >= 0 && ((unsigned)where[c] >= nf ||
					      !number(f[where[c]], &v[c])))
				return errmsg_set(err, -EINVAL, "CSV line %u: column "
						  "'%s' is not a number >= 0",
						  lineno, columns[c].name);
		ret = plot_series_add(s, v[0], &p, err);
		if (ret)
			return ret;
		for (unsigned c = 1; c < NCOLUMNS; c++)
			if (where[c] >= 0)
				p->v[columns[c].line] = v[c] * page_size;
	}
	return 0;
}

int plot_series_from_csv(const char *text, unsigned page_size,
			 struct plot_series *s, struct errmsg *err)
{
	char *copy = strdup(text);
	int ret;

	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = csv_lines(copy, page_size, s, err);
	free(copy);
	return ret;
}

/* @key of @o as a number >= 0, NAN if absent or null; false if it is
 * something else. */
static bool field(json_t *o, const char *key, double *out)
{
	json_t *v = json_object_get(o, key);

	*out = NAN;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_number(v) || json_number_value(v) < 0 ||
	    !isfinite(json_number_value(v)))
		return false;
	*out = json_number_value(v);
	return true;
}

int plot_series_from_wss_json(const char *body, struct plot_series *s,
			      struct errmsg *err)
{
	json_t *o = json_loads(body, 0, NULL), *list, *pt;
	double page, t, wss, e;
	int ret = 0;
	size_t i;

	list = json_object_get(o, "points");
	if (!json_is_array(list) || !field(o, "page_size", &page) || !(page > 0))
		ret = errmsg_set(err, -EINVAL, "the WSS reply has no points "
				 "or page_size");
	json_array_foreach(list, i, pt) {
		struct plot_point *p;

		if (ret)
			break;
		if (!field(pt, "time", &t) || isnan(t) ||
		    !field(pt, "wss_pages", &wss) || !field(pt, "error_pages", &e)) {
			ret = errmsg_set(err, -EINVAL, "WSS point %zu is not "
					 "numbers >= 0", i);
			break;
		}
		ret = plot_series_add(s, t, &p, err);
		if (!ret) {
			p->v[PLOT_WSS] = wss * page;
			p->v[PLOT_WSS_ERROR] = e * page;
		}
	}
	json_decref(o);
	return ret;
}

int plot_series_from_memory_json(const char *body, double t,
				 struct plot_series *s, struct errmsg *err)
{
	json_t *o = json_loads(body, 0, NULL);
	double resident = NAN, remote = NAN, balloon = NAN;
	struct plot_point *p = NULL;
	int ret;

	if (!json_is_object(o) || !field(o, "resident", &resident) ||
	    !field(o, "remote", &remote) || !field(o, "balloon_actual", &balloon))
		ret = errmsg_set(err, -EINVAL, "the memory reply is not an object "
				 "of sizes");
	else
		ret = plot_series_add(s, t, &p, err);
	if (!ret) {
		p->v[PLOT_RESIDENT] = resident;
		p->v[PLOT_REMOTE] = remote;
		p->v[PLOT_BALLOON] = balloon;
	}
	json_decref(o);
	return ret;
}

#define PLOT_TIMEOUT_MS 5000

/* GET @path's body into *@body (malloc'ed); a status not 2xx is
 * -EPROTO with the VM's error (or 1 for 409, "none here", when
 * @conflict_ok). */
static int get(const char *socket, const char *path, bool conflict_ok,
	       char **body, struct errmsg *err)
{
	struct api_client_reply r;
	int ret = api_client_request(socket, "GET", path, NULL, PLOT_TIMEOUT_MS,
				     &r, err);

	if (ret)
		return ret;
	if (r.status == 409 && conflict_ok)
		ret = 1;
	else if (r.status != 200)
		ret = errmsg_set(err, -EPROTO, "GET %s: HTTP %ld: %.200s", path,
				 r.status, r.body);
	if (ret)
		api_client_reply_free(&r);
	else
		*body = r.body;
	return ret;
}

int plot_series_sample_api(const char *socket, struct plot_series *s,
			   struct errmsg *err)
{
	char *vm = NULL, *mem = NULL;
	json_t *o;
	double t = 0;
	int ret = get(socket, "/vm", false, &vm, err);

	if (!ret)
		ret = get(socket, "/vm/memory", false, &mem, err);
	o = vm ? json_loads(vm, 0, NULL) : NULL;
	if (!ret && (!field(o, "uptime_seconds", &t) || isnan(t)))
		ret = errmsg_set(err, -EINVAL, "GET /vm: no uptime_seconds");
	if (!ret)
		ret = plot_series_from_memory_json(mem, t, s, err);
	json_decref(o);
	free(vm);
	free(mem);
	return ret;
}

int plot_series_wss_api(const char *socket, struct plot_series *s,
			struct errmsg *err)
{
	char *body = NULL;
	int ret = get(socket, "/vm/memory/wss", true, &body, err);

	if (ret == 1)
		return 0;
	if (!ret)
		ret = plot_series_from_wss_json(body, s, err);
	free(body);
	return ret;
}
