// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the working-set estimator's history as a snapshot
 * or migration destination loads it (memory/wss.h, wss_history.c), on
 * arbitrary bytes.  Input: the first byte picks the VM's size (1..64
 * MiB) and the second how many points its series keeps (1..16); the
 * rest is the state.  Checks what the monitor relies on: a refusal
 * changes nothing, and a history that loads has its points in time
 * order, no region seen after the last point, figures in range, and
 * saving it again gives back exactly the bytes it came from.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory/wss.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	struct wss_series series;
	struct wss_heatmap heat;
	struct wss_history h;
	struct state_reader r;
	struct errmsg err = { "" };
	struct state_buf again;
	uint64_t mib;
	double last;

	if (len < 2)
		return 0;
	mib = 1 + in[0] % 64;
	check(!wss_series_init(&series, 1 + in[1] % 16));
	check(!wss_heatmap_init(&heat, mib << 20));
	h = (struct wss_history){ .series = &series, .heat = &heat,
				  .npages = mib << 8, .smoothed = 5,
				  .sample_n = 100, .sample_ceiling = 200 };
	state_reader_init(&r, in + 2, len - 2);
	if (wss_history_load(&h, &r, 100, 4096, &err)) {
		check(err.text[0] && series.count == 0 && h.smoothed == 5 &&
		      h.sample_n == 100 && h.sample_ceiling == 200);
		for (uint64_t i = 0; i < heat.nregions; i++)
			check(heat.last_seen[i] == -1);
		goto out;
	}
	last = wss_history_last_t(&series);
	for (uint64_t i = 0; i < wss_series_len(&series); i++) {
		const struct wss_point *p = wss_series_get(&series, i);

		check(isfinite(p->t) && p->t >= 0 && p->t <= last);
		check(!i || p->t >= wss_series_get(&series, i - 1)->t);
	}
	for (uint64_t i = 0; i < heat.nregions; i++)
		check(heat.last_seen[i] == -1 ||
		      (heat.last_seen[i] >= 0 && heat.last_seen[i] <= last));
	check(h.smoothed >= 0 && h.smoothed <= (double)h.npages);
	check(h.sample_n >= 100 && h.sample_n <= 4096);
	state_buf_init(&again);
	wss_history_save(&h, &again);
	check(!state_buf_error(&again) && again.len == len - 2 &&
	      !memcmp(again.data, in + 2, len - 2));
	state_buf_release(&again);
out:
	wss_series_destroy(&series);
	wss_heatmap_destroy(&heat);
	return 0;
}
