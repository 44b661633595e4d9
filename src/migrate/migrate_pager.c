// SPDX-License-Identifier: MIT
/*
 * Pre-copy of a VM that pages (--mem-local, migrate.h): its evicted
 * pages are not copied when its store can hand them over (memd): the
 * destination gets the page map with the namespace's credentials and
 * reads them from memd itself.
 *
 * There are no rounds while the guest runs: reading a page the pager
 * evicted would fetch it (or read a hole), and a page can move between
 * guest RAM and the store between two rounds without the dirty log
 * seeing it.  So the pager is frozen with the VM paused and what is
 * resident (at most its --mem-local limit) is sent then: the downtime
 * is that limit over the link, not the guest's RAM.
 */
#include <errno.h>
#include <string.h>

#include "memory/pager.h"
#include "migrate/migrate_internal.h"
#include "migrate/pagemap.h"
#include "util/page.h"
#include "util/state_buf.h"

/* Every SEND page of @map, in runs (short ones written together), read
 * through the frozen pager. */
static int send_resident(struct migration *mg, struct pager *p,
			 const struct pagemap *map, struct stream_writer *w,
			 struct errmsg *err)
{
	uint64_t page = 0;
	int ret = stream_writer_batch(w, true, err);

	while (!ret && page < map->ram_pages) {
		uint64_t first = page;
		uint32_t n = 0;

		if (map->kind[page] != PAGEMAP_SEND) {
			page++;
			continue;
		}
		while (!ret && page < map->ram_pages && n < STREAM_PAGES_MAX &&
		       map->kind[page] == PAGEMAP_SEND) {
			ret = pager_read_page(p, page, mg->buf + (size_t)n * PAGE_SIZE,
					      err);
			page++;
			n++;
		}
		if (ret)
			break;
		if (__atomic_load_n(&mg->cancel, __ATOMIC_RELAXED))
			return errmsg_set(err, -ECANCELED, "cancelled");
		ret = stream_put_pages(w, first, mg->buf, n, err);
		pthread_mutex_lock(&mg->lock);
		mg->st.pages_sent += n;
		mg->st.bytes_sent += (uint64_t)n * PAGE_SIZE;
		mg->st.pages_remaining = map->nsend > mg->st.pages_sent ?
					 map->nsend - mg->st.pages_sent : 0;
		pthread_mutex_unlock(&mg->lock);
	}
	return ret ? ret : stream_writer_batch(w, false, err);
}

int migrate_pager_stop_and_copy(struct migration *mg, struct stream_writer *w,
				struct errmsg *err)
{
	struct pager *p = machine_pager(mg->m);
	struct pager_handover_stats hs;
	struct pagemap *map = NULL;
	struct state_buf blob;
	int ret = migrate_pause(mg, err);

	if (ret)
		return ret;
	state_buf_init(&blob);
	ret = pager_handover_begin(p, &blob, &map, &hs, err);
	if (ret) {
		state_buf_release(&blob);
		return ret;
	}
	mg->pager_frozen = true;
	pthread_mutex_lock(&mg->lock);
	mg->st.round = 1;
	mg->st.pages_remaining = hs.pages_send;
	mg->st.pages_left_in_store = hs.pages_left;
	mg->st.bytes_left_in_store = hs.bytes_left;
	pthread_mutex_unlock(&mg->lock);
	ret = blob.error ? -ENOMEM : 0;
	if (ret)
		errmsg_set(err, ret, "out of memory for the page map");
	else
		ret = stream_put_pagemap(w, blob.data, blob.len, err);
	if (!ret)
		ret = send_resident(mg, p, map, w, err);
	pagemap_free(map);
	state_buf_release(&blob);
	return ret ? ret : migrate_send_state_end(mg, w, err);
}

void migrate_pager_settle(struct migration *mg, bool handed_over)
{
	struct pager *p = machine_pager(mg->m);

	if (!mg->pager_frozen)
		return;
	mg->pager_frozen = false;
	if (handed_over)
		pager_handover_release(p);
	else
		pager_handover_cancel(p);
}
