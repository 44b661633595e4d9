// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rackvm plot's readers of what it is handed (a CSV
 * file written by --wss-csv, an API reply, or hostd's balancer decision
 * log).  Any input is either refused with a message or loaded into
 * series that render to an SVG; the sanitizers catch any read or write
 * out of bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/plot_svg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The balancer log, every VM shown or (for an odd first byte) two
 * chosen. */
static void balancer_log(const char *text, bool choose)
{
	static const char *const only[] = { "a", "b" };
	struct plot_balancer b = { 0 };
	struct errmsg err = { "" };
	char *svg;

	if (plot_balancer_from_log(text, only, choose ? 2 : 0, &b, &err)) {
		if (!err.text[0])
			abort();
	} else {
		svg = plot_svg_panels(b.panel, b.n, "fuzz", &err);
		if (!svg)
			abort();
		free(svg);
	}
	plot_balancer_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plot_series s = { 0 };
	struct errmsg err = { "" };
	char *text = malloc(size + 1), *svg;
	int ret;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	ret = plot_series_from_csv(text, 4096, &s, &err);
	if (ret && !err.text[0])
		abort();
	if (!ret && s.n) {
		svg = plot_svg(&s, "fuzz", &err);
		free(svg);
	}
	plot_series_free(&s);
	s = (struct plot_series){ 0 };
	if (plot_series_from_wss_json(text, &s, &err) && !err.text[0])
		abort();
	plot_series_free(&s);
	balancer_log(text, size && (data[0] & 1));
	free(text);
	return 0;
}
