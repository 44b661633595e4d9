// SPDX-License-Identifier: MIT
/*
 * bench/seal_cost: what sealing costs a page (page_seal.h), on one core:
 * seal (page_seal_close) and open (page_seal_open) of a 4 KiB page,
 * sealed (XChaCha20-Poly1305) and plain (XXH3-128 tags, seal=off).
 *
 *   build/bench/seal_cost [PAGES]      (default 20000)
 *
 * Prints per mode the median of 5 passes over PAGES distinct pages, in
 * microseconds per page for seal, open and both, and the implied MB/s.
 * bench/farmem prints it beside its sealed/plain runtime ratios.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote/page_seal.h"
#include "util/page.h"

#define PASSES 5

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median seconds of PASSES passes of seal (@open false) or open over
 * @pages pages; -1 if a page did not open. */
static double pass(const struct page_seal *s, uint8_t *buf, uint8_t *tags,
		   unsigned pages, unsigned gen, bool open)
{
	double t[PASSES];

	for (int p = 0; p < PASSES; p++) {
		double t0 = now_s();

		for (unsigned i = 0; i < pages; i++) {
			uint8_t *page = buf + (size_t)i * PAGE_SIZE;
			uint8_t *tag = tags + (size_t)i * PAGE_TAG_SIZE;

			if (!open)
				page_seal_close(s, i, gen + (unsigned)p, page, tag);
			else if (page_seal_open(s, i, gen + (unsigned)p, page, tag))
				return -1;
		}
		t[p] = now_s() - t0;
		/* open what this pass sealed, seal again for the next */
		for (unsigned i = 0; i < pages; i++) {
			uint8_t *page = buf + (size_t)i * PAGE_SIZE;
			uint8_t *tag = tags + (size_t)i * PAGE_TAG_SIZE;

			if (!open)
				page_seal_open(s, i, gen + (unsigned)p, page, tag);
			else if (p + 1 < PASSES)
				page_seal_close(s, i, gen + (unsigned)p + 1, page, tag);
		}
	}
	qsort(t, PASSES, sizeof(t[0]), cmp_double);
	return t[PASSES / 2];
}

int main(int argc, char **argv)
{
	unsigned pages = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20000;
	uint8_t *buf, *tags;

	if (!pages || pages > 1000000) {
		fprintf(stderr, "usage: seal_cost [PAGES 1..1000000]\n");
		return 2;
	}
	buf = malloc((size_t)pages * PAGE_SIZE);
	tags = malloc((size_t)pages * PAGE_TAG_SIZE);
	if (!buf || !tags)
		return 1;
	for (size_t i = 0; i < (size_t)pages * PAGE_SIZE; i++)
		buf[i] = (uint8_t)(i * 131 + i / 4096);
	for (int sealed = 1; sealed >= 0; sealed--) {
		struct page_seal *s;
		double seal_s, open_s;

		if (page_seal_create("seal-cost", sealed, &s, NULL))
			return 1;
		seal_s = pass(s, buf, tags, pages, 1, false);
		/* pages now in clear; seal them at the generation open wants */
		for (unsigned i = 0; i < pages; i++)
			page_seal_close(s, i, 100, buf + (size_t)i * PAGE_SIZE,
					tags + (size_t)i * PAGE_TAG_SIZE);
		open_s = pass(s, buf, tags, pages, 100, true);
		page_seal_destroy(s);
		if (seal_s < 0 || open_s < 0) {
			fprintf(stderr, "seal_cost: a page did not open\n");
			return 1;
		}
		printf("seal_cost: %s seal_us=%.2f open_us=%.2f both_us=%.2f "
		       "mb_s=%.0f\n", sealed ? "sealed" : "plain",
		       seal_s * 1e6 / pages, open_s * 1e6 / pages,
		       (seal_s + open_s) * 1e6 / pages,
		       2.0 * pages * PAGE_SIZE / (seal_s + open_s) / 1e6);
	}
	free(buf);
	free(tags);
	return 0;
}
