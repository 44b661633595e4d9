// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the page map a migration destination loads
 * (migrate/pagemap.h), on arbitrary bytes.  Input: the first byte picks
 * the VM's size (1..256 pages, or the size the blob claims when 0, at
 * most 4096), the rest is the blob.  Checks what the destination relies
 * on: a map that loads covers every page with a known kind, its counts
 * add up, every REMOTE page has a generation and a placement on servers
 * that exist, the store's credentials are within their limits, and
 * saving it again gives back exactly the bytes it came from (a map has
 * one encoding).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/pagemap.h"
#include "util/le.h"
#include "util/state_buf.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_map(const struct pagemap *m)
{
	uint64_t send = 0, zero = 0, remote = 0;

	if (m->has_store) {
		check(m->store.nservers >= 1 && m->store.nservers <= 16);
		check(m->store.replicas >= 1 &&
		      m->store.replicas <= m->store.nservers);
		check(m->store.min_replicas >= 1 &&
		      m->store.min_replicas <= m->store.replicas);
	}
	for (uint64_t p = 0; p < m->ram_pages; p++) {
		switch (m->kind[p]) {
		case PAGEMAP_SEND:
			send++;
			check(!m->where[p]);
			break;
		case PAGEMAP_ZERO:
			zero++;
			check(!m->where[p]);
			break;
		case PAGEMAP_REMOTE:
			remote++;
			check(m->has_store && m->gen[p]);
			check(m->where[p] & 0xffffu);
			check(!((m->where[p] & 0xffffu) >> m->store.nservers));
			break;
		default:
			abort();
		}
	}
	check(send == m->nsend && zero == m->nzero && remote == m->nremote);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errmsg err;
	struct pagemap *m = NULL;
	struct state_buf again;
	uint64_t pages;

	if (size < 1)
		return 0;
	pages = data[0];
	if (!pages && size >= 1 + 16)
		pages = get_le64(data + 1 + 8);
	if (!pages || pages > 4096)
		pages = 1;
	if (pagemap_load(data + 1, size - 1, pages, &m, &err))
		return 0;
	check_map(m);
	state_buf_init(&again);
	check(pagemap_save(m, &again) == 0);
	check(again.len == size - 1 && !memcmp(again.data, data + 1, size - 1));
	state_buf_release(&again);
	pagemap_free(m);
	return 0;
}
