// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: rackvm plot's readers of what it is handed (a CSV
 * file written by --wss-csv, or an API reply).  Any input is either
 * refused with a message or loaded into a series that renders to an SVG;
 * the sanitizers catch any read or write out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/plot_svg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	free(text);
	return 0;
}
