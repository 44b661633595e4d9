// SPDX-License-Identifier: MIT
/*
 * plot_svg.h's reader of hostd's balancer decision log: one JSON object
 * a line as balancer_log_line() writes it, into the host's panel and
 * one panel per VM.  The log is untrusted: every field used is checked
 * and a line that is not right is refused with its number and field.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/plot_svg.h"

struct log_reader {
	struct plot_balancer *b;
	bool filtered;			/* only the panels made up front */
	bool seen[1 + PLOT_VMS_MAX];	/* in this line */
	unsigned lineno;
	double t0, last_t;
};

/* What one VM's entry of a line gives. */
struct vm_entry {
	const char *name, *policy;
	double shares, ram, wss, wss_error, resident, target;
};

/* @key of @o: a finite number >= 0, or NAN for null or absent when
 * @nullable. */
static bool number(json_t *o, const char *key, bool nullable, double *out)
{
	json_t *v = json_object_get(o, key);

	*out = NAN;
	if (!v || json_is_null(v))
		return nullable;
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out) && *out >= 0;
}

/* @key of @o: a string of 1 to @max - 1 bytes, or NULL for null or
 * absent when @nullable. */
static bool text(json_t *o, const char *key, bool nullable, size_t max,
		 const char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return nullable;
	if (!json_is_string(v) || !json_string_length(v) ||
	    json_string_length(v) >= max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*out = json_string_value(v);
	return true;
}

/* A line refused: its number, the VM's index in "vms" (or -1) and the
 * field. */
static int bad(const struct log_reader *r, long vm, const char *field,
	       const char *what, struct errmsg *err)
{
	if (vm < 0)
		return errmsg_set(err, -EINVAL, "balancer log line %u: field "
				  "'%s' %s", r->lineno, field, what);
	return errmsg_set(err, -EINVAL, "balancer log line %u: vms[%ld]: "
			  "field '%s' %s", r->lineno, vm, field, what);
}

#define NOT_SIZE "is not a number >= 0"

static int read_entry(const struct log_reader *r, json_t *o, long i,
		      struct vm_entry *e, struct errmsg *err)
{
	json_t *wss;

	if (!json_is_object(o))
		return bad(r, i, "vms", "holds something not an object", err);
	if (!text(o, "vm", false, sizeof(r->b->panel[0].name), &e->name))
		return bad(r, i, "vm", "is not a name of 1 to 63 bytes", err);
	if (!text(o, "policy", true, 16, &e->policy))
		return bad(r, i, "policy", "is not a policy name", err);
	if (!number(o, "shares", true, &e->shares))
		return bad(r, i, "shares", NOT_SIZE, err);
	if (!number(o, "ram", false, &e->ram))
		return bad(r, i, "ram", NOT_SIZE, err);
	if (!number(o, "resident", false, &e->resident))
		return bad(r, i, "resident", NOT_SIZE, err);
	if (!number(o, "target", false, &e->target))
		return bad(r, i, "target", NOT_SIZE, err);
	e->wss = e->wss_error = NAN;
	wss = json_object_get(o, "wss");
	if (wss && !json_is_null(wss) && !json_is_object(wss))
		return bad(r, i, "wss", "is neither null nor an object", err);
	if (json_is_object(wss) && (!number(wss, "estimate", false, &e->wss) ||
				    !number(wss, "error", false, &e->wss_error)))
		return bad(r, i, "wss", "has no estimate and error >= 0", err);
	return 0;
}

/* The panel of VM @name: the one it has, a new one, or NULL when the
 * chart does not show it. */
static int panel_of(struct log_reader *r, const char *name,
		    struct plot_panel **out, struct errmsg *err)
{
	struct plot_balancer *b = r->b;
	struct plot_panel *p;

	*out = NULL;
	for (size_t i = 1; i < b->n; i++)
		if (!strcmp(b->panel[i].name, name)) {
			*out = &b->panel[i];
			return 0;
		}
	if (r->filtered)
		return 0;
	if (b->n == 1 + PLOT_VMS_MAX)
		return errmsg_set(err, -E2BIG, "balancer log line %u: VM '%s' "
				  "is one more than the %u a chart shows: "
				  "choose some with --vms", r->lineno, name,
				  PLOT_VMS_MAX);
	p = &b->panel[b->n++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	*out = p;
	return 0;
}

static int add_point(struct log_reader *r, struct plot_panel *p, double t,
		     struct plot_point **out, struct errmsg *err)
{
	int ret = plot_series_add(&p->s, t, out, err);

	if (ret == -E2BIG && p == r->b->panel)
		return errmsg_set(err, ret, "balancer log line %u: more than "
				  "the %u lines a chart holds: plot a part of "
				  "the log", r->lineno, PLOT_POINTS_MAX);
	if (ret == -E2BIG)
		return errmsg_set(err, ret, "balancer log line %u: VM '%s' has "
				  "more than the %u points a chart holds: plot "
				  "a part of the log", r->lineno, p->name,
				  PLOT_POINTS_MAX);
	return ret;
}

static int take_vm(struct log_reader *r, const struct vm_entry *e, double t,
		   struct errmsg *err)
{
	struct plot_panel *p;
	struct plot_point *pt;
	int ret = panel_of(r, e->name, &p, err);

	if (ret || !p)
		return ret;
	if (r->seen[p - r->b->panel])
		return errmsg_set(err, -EINVAL, "balancer log line %u: VM '%s' "
				  "is in it twice", r->lineno, e->name);
	r->seen[p - r->b->panel] = true;
	ret = add_point(r, p, t, &pt, err);
	if (ret)
		return ret;
	pt->v[PLOT_WSS] = e->wss;
	pt->v[PLOT_WSS_ERROR] = e->wss_error;
	pt->v[PLOT_RESIDENT] = e->resident;
	pt->v[PLOT_TARGET] = e->target;
	pt->v[PLOT_RAM] = e->ram;
	if (e->policy && !isnan(e->shares))
		snprintf(p->note, sizeof(p->note), "policy %s, shares %g",
			 e->policy, e->shares);
	else if (e->policy)
		snprintf(p->note, sizeof(p->note), "policy %s", e->policy);
	return 0;
}

/* A gap in each VM's panel that has points and is not in this line. */
static int mark_gaps(struct log_reader *r, double t, struct errmsg *err)
{
	struct plot_balancer *b = r->b;
	struct plot_point *pt;
	int ret;

	for (size_t i = 1; i < b->n; i++) {
		const struct plot_series *s = &b->panel[i].s;
		bool in_gap = true;

		for (unsigned l = 0; s->n && l < PLOT_LINES; l++)
			in_gap &= isnan(s->p[s->n - 1].v[l]);
		if (r->seen[i] || in_gap)
			continue;
		ret = add_point(r, &b->panel[i], t, &pt, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int take_line(struct log_reader *r, json_t *o, struct errmsg *err)
{
	double t, budget, targets, resident = 0;
	struct plot_point *pt;
	json_t *vms, *v;
	size_t i;
	int ret;

	if (!json_is_object(o))
		return errmsg_set(err, -EINVAL, "balancer log line %u is not a "
				  "JSON object", r->lineno);
	if (!number(o, "t", false, &t))
		return bad(r, -1, "t", NOT_SIZE, err);
	if (!number(o, "budget", false, &budget))
		return bad(r, -1, "budget", NOT_SIZE, err);
	if (!number(o, "targets", false, &targets))
		return bad(r, -1, "targets", NOT_SIZE, err);
	vms = json_object_get(o, "vms");
	if (!json_is_array(vms))
		return bad(r, -1, "vms", "is not an array", err);
	if (!r->b->lines)
		r->t0 = r->last_t = t;
	if (t < r->last_t)
		return bad(r, -1, "t", "goes back in time", err);
	r->last_t = t;
	t -= r->t0;
	memset(r->seen, 0, sizeof(r->seen));
	json_array_foreach(vms, i, v) {
		struct vm_entry e;

		ret = read_entry(r, v, (long)i, &e, err);
		if (!ret)
			ret = take_vm(r, &e, t, err);
		if (ret)
			return ret;
		resident += e.resident;
	}
	ret = mark_gaps(r, t, err);
	if (!ret)
		ret = add_point(r, &r->b->panel[0], t, &pt, err);
	if (ret)
		return ret;
	pt->v[PLOT_BUDGET] = budget;
	pt->v[PLOT_TARGET] = targets;
	pt->v[PLOT_RESIDENT] = resident;
	r->b->lines++;
	return 0;
}

static int read_lines(struct log_reader *r, const char *text,
		      struct errmsg *err)
{
	for (const char *line = text; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		json_t *o;
		int ret;

		r->lineno++;
		if (strspn(line, " \t\r") >= len) {
			line += len + !!nl;
			continue;
		}
		o = json_loadb(line, len, 0, NULL);
		if (!o && !nl) {
			r->b->truncated = true;
			return 0;
		}
		ret = o ? take_line(r, o, err) :
		      errmsg_set(err, -EINVAL, "balancer log line %u is not "
				 "JSON", r->lineno);
		json_decref(o);
		if (ret)
			return ret;
		line += len + !!nl;
	}
	return 0;
}

static int make_panels(struct log_reader *r, const char *const *only,
		       size_t n_only, struct errmsg *err)
{
	struct plot_balancer *b = r->b;

	snprintf(b->panel[0].name, sizeof(b->panel[0].name), "host");
	snprintf(b->panel[0].note, sizeof(b->panel[0].note),
		 "budget, sum of targets, sum of resident");
	b->panel[0].own_scale = true;
	b->n = 1;
	if (n_only > PLOT_VMS_MAX)
		return errmsg_set(err, -E2BIG, "%zu VMs chosen: a chart shows "
				  "at most %u", n_only, PLOT_VMS_MAX);
	for (size_t i = 0; i < n_only; i++) {
		if (strlen(only[i]) >= sizeof(b->panel[0].name) || !only[i][0])
			return errmsg_set(err, -EINVAL, "'%.80s' is not a VM "
					  "name of 1 to 63 bytes", only[i]);
		snprintf(b->panel[b->n++].name, sizeof(b->panel[0].name), "%s",
			 only[i]);
	}
	r->filtered = n_only > 0;
	return 0;
}

int plot_balancer_from_log(const char *text, const char *const *only,
			   size_t n_only, struct plot_balancer *b,
			   struct errmsg *err)
{
	struct log_reader r = { .b = b };
	int ret = make_panels(&r, only, n_only, err);

	if (!ret)
		ret = read_lines(&r, text, err);
	if (!ret && !b->lines)
		ret = errmsg_set(err, -EINVAL, "the balancer log has no lines");
	for (size_t i = 1; !ret && i < b->n; i++)
		if (!b->panel[i].s.n)
			ret = errmsg_set(err, -EINVAL, "VM '%s' is not in the "
					 "balancer log", b->panel[i].name);
	return ret;
}

void plot_balancer_free(struct plot_balancer *b)
{
	for (size_t i = 0; i < b->n; i++)
		plot_series_free(&b->panel[i].s);
	b->n = 0;
}
