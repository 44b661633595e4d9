// SPDX-License-Identifier: MIT
/*
 * `rackvm plot`: a VM's memory over time as an SVG chart (plot_svg.h),
 * from the CSV of `rackvm run --wss-csv FILE` or from a running VM's
 * control API, sampled once a second for --follow SECONDS.
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

void print_plot_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm plot (--csv FILE | --socket PATH | --name NAME)\n"
		"                   [--follow SECONDS] [--title TEXT] -o FILE.svg\n"
		"  the WSS estimate with its error band, resident, remote and the\n"
		"  balloon over time as an SVG chart\n"
		"  --csv FILE        the series `rackvm run --wss-csv FILE` wrote\n"
		"  --socket, --name  a running VM's API (as rackvm ctl); its WSS\n"
		"                    series, and resident/remote/balloon sampled\n"
		"  --follow SECONDS  sample the VM's memory once a second this long\n"
		"                    first (default 0: one sample)\n");
}

static char *read_file(const char *path, struct errmsg *err)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t n;

	if (!f) {
		errmsg_set(err, -errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	text = malloc(CSV_MAX + 1);
	n = text ? fread(text, 1, CSV_MAX + 1, f) : 0;
	if (text && (ferror(f) || n > CSV_MAX)) {
		errmsg_set(err, -EFBIG, "%s: unreadable or larger than %u bytes",
			   path, CSV_MAX);
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
	char *text = read_file(path, err);
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

int cmd_plot(int argc, char **argv)
{
	const char *csv = NULL, *socket = NULL, *name = NULL, *out = NULL;
	const char *title = NULL;
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
		else if (!strcmp(a, "--follow") &&
			 (follow = strtol(v, &end, 10)) >= 0 && follow <= 86400 &&
			 !*end && end != v)
			continue;
		else
			goto usage;
	}
	if (!out || !!csv + !!socket + !!name != 1)
		goto usage;
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
