// SPDX-License-Identifier: MIT
/*
 * `rackvm plot`: a VM's memory over time as an SVG chart (plot_svg.h),
 * from the CSV of `rackvm run --wss-csv FILE` or from a running VM's
 * control API, sampled once a second for --follow SECONDS; or hostd's
 * balancer decision log as one panel per VM.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_server.h"
#include "api/plot_svg.h"
#include "cli/cli.h"
#include "util/page.h"

/* A CSV larger than this is refused (an hour of points is ~200 KiB). */
#define CSV_MAX (64u << 20)
/* A balancer log larger than this too (PLOT_POINTS_MAX lines of 16 VMs
 * are ~60 MiB). */
#define LOG_MAX (256u << 20)

void print_plot_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm plot (--csv FILE | --socket PATH | --name NAME)\n"
		"                   [--follow SECONDS] [--title TEXT] -o FILE.svg\n"
		"       rackvm plot --balancer-log FILE [--vms A,B,...] [--title TEXT]\n"
		"                   -o FILE.svg\n"
		"  the WSS estimate with its error band, resident, remote and the\n"
		"  balloon over time as an SVG chart\n"
		"  --csv FILE        the series `rackvm run --wss-csv FILE` wrote\n"
		"  --socket, --name  a running VM's API (as rackvm ctl); its WSS\n"
		"                    series, and resident/remote/balloon sampled\n"
		"  --follow SECONDS  sample the VM's memory once a second this long\n"
		"                    first (default 0: one sample)\n"
		"  --balancer-log FILE  hostd's balancer decision log (JSON lines):\n"
		"                    the host's budget, then one panel per VM (at\n"
		"                    most %u) with its WSS, target, resident, RAM\n"
		"  --vms A,B,...     only these VMs' panels, in this order\n",
		PLOT_VMS_MAX);
}

static char *read_file(const char *path, size_t max, struct errmsg *err)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t n;

	if (!f) {
		errmsg_set(err, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	text = malloc(max + 1);
	n = text ? fread(text, 1, max + 1, f) : 0;
	if (text && (ferror(f) || n > max)) {
		errmsg_set(err, -EFBIG, "%s: unreadable or larger than %zu bytes",
			   path, max);
		free(text);
		text = NULL;
	} else if (!text) {
		errmsg_set(err, -ENOMEM, "out of memory");
	} else {
		text[n] = 0;
	}
	fclose(f);
	return text;
}

static int from_csv(const char *path, struct plot_series *s, struct errmsg *err)
{
	char *text = read_file(path, CSV_MAX, err);
	int ret;

	if (!text)
		return -1;
	ret = plot_series_from_csv(text, PAGE_SIZE, s, err);
	free(text);
	return ret;
}

static int from_api(const char *socket, long follow, struct plot_series *s,
		    struct errmsg *err)
{
	int ret = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (long i = 0; !ret && i <= follow; i++) {
		if (i)
			sleep(1);
		ret = plot_series_sample_api(socket, s, err);
	}
	if (!ret)
		ret = plot_series_wss_api(socket, s, err);
	curl_global_cleanup();
	return ret;
}

static int write_svg(const char *path, const char *svg, struct errmsg *err)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return errmsg_set(err, -errno, "%s: %s", path, strerror(errno));
	fputs(svg, f);
	if (fclose(f))
		return errmsg_set(err, -EIO, "%s: write failed", path);
	return 0;
}

/* --vms A,B,...: the names (in @copy, cut at commas) into *@names. */
static size_t split_names(char *copy, const char ***names)
{
	size_t n = 1;

	for (const char *c = copy; *c; c++)
		n += *c == ',';
	*names = calloc(n, sizeof(**names));
	if (!*names)
		return 0;
	n = 0;
	for (char *p = copy, *comma = copy; comma; p = comma + 1) {
		comma = strchr(p, ',');
		if (comma)
			*comma = 0;
		(*names)[n++] = p;
	}
	return n;
}

/* The balancer log @path as panels drawn into @out. */
static int balancer_chart(const char *path, const char *vms, const char *title,
			  const char *out, struct errmsg *err)
{
	struct plot_balancer b = { 0 };
	char *text = read_file(path, LOG_MAX, err), *copy = NULL, *svg = NULL;
	const char **names = NULL;
	size_t n = 0;
	int ret = -ENOMEM;

	if (!text)
		return -1;
	if (vms && (!(copy = strdup(vms)) || !(n = split_names(copy, &names))))
		errmsg_set(err, ret, "out of memory");
	else
		ret = plot_balancer_from_log(text, names, n, &b, err);
	if (!ret)
		svg = plot_svg_panels(b.panel, b.n, title ? title : path, err);
	if (!ret && (!svg || write_svg(out, svg, err)))
		ret = -1;
	if (!ret)
		printf("%s: %zu VMs over %u log lines%s\n", out, b.n - 1, b.lines,
		       b.truncated ? " (an incomplete last line skipped)" : "");
	plot_balancer_free(&b);
	free(svg);
	free(names);
	free(copy);
	free(text);
	return ret;
}

int cmd_plot(int argc, char **argv)
{
	const char *csv = NULL, *socket = NULL, *name = NULL, *out = NULL;
	const char *title = NULL, *log = NULL, *vms = NULL;
	struct plot_series s = { 0 };
	struct errmsg err = { "" };
	char path[256], *svg = NULL, *end;
	long follow = 0;
	int ret;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_plot_usage(stdout);
			return 0;
		}
		if (!v)
			goto usage;
		i++;
		if (!strcmp(a, "--csv"))
			csv = v;
		else if (!strcmp(a, "--socket"))
			socket = v;
		else if (!strcmp(a, "--name"))
			name = v;
		else if (!strcmp(a, "-o"))
			out = v;
		else if (!strcmp(a, "--title"))
			title = v;
		else if (!strcmp(a, "--balancer-log"))
			log = v;
		else if (!strcmp(a, "--vms"))
			vms = v;
		else if (!strcmp(a, "--follow") &&
			 (follow = strtol(v, &end, 10)) >= 0 && follow <= 86400 &&
			 !*end && end != v)
			continue;
		else
			goto usage;
	}
	if (!out || !!csv + !!socket + !!name + !!log != 1 || (vms && !log))
		goto usage;
	if (log) {
		if (balancer_chart(log, vms, title, out, &err))
			goto fail;
		return 0;
	}
	if (name) {
		if (api_default_socket(name, path, sizeof(path), &err))
			goto fail;
		socket = path;
	}
	ret = csv ? from_csv(csv, &s, &err) : from_api(socket, follow, &s, &err);
	if (ret)
		goto fail;
	plot_series_sort(&s);
	svg = plot_svg(&s, title ? title : csv ? csv : name ? name : socket, &err);
	if (!svg || write_svg(out, svg, &err))
		goto fail;
	printf("%s: %zu points\n", out, s.n);
	free(svg);
	plot_series_free(&s);
	return 0;
fail:
	fprintf(stderr, "rackvm plot: %s\n", err.text);
	free(svg);
	plot_series_free(&s);
	return EXIT_HOST_ERROR;
usage:
	fprintf(stderr, "rackvm plot: bad or missing options\n");
	print_plot_usage(stderr);
	return EXIT_HOST_ERROR;
}
