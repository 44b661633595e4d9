// SPDX-License-Identifier: MIT
/*
 * One harvest of the dirty log, every reader's own view
 * (vm_dirty_fanout.h).
 */
#include "vm/vm_dirty_fanout.h"

#include <errno.h>
#include <stdlib.h>

void dirty_fanout_init(struct dirty_fanout *f, uint64_t npages)
{
	*f = (struct dirty_fanout){ .npages = npages,
				    .words = (npages + 63) / 64 };
}

int dirty_fanout_add(struct dirty_fanout *f, struct dirty_reader **out)
{
	struct dirty_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->pending = calloc(f->words ? f->words : 1, sizeof(uint64_t));
	if (!r->pending) {
		free(r);
		return -ENOMEM;
	}
	r->next = f->readers;
	f->readers = r;
	f->nreaders++;
	*out = r;
	return 0;
}

void dirty_fanout_remove(struct dirty_fanout *f, struct dirty_reader *r)
{
	for (struct dirty_reader **p = &f->readers; *p; p = &(*p)->next) {
		if (*p != r)
			continue;
		*p = r->next;
		f->nreaders--;
		break;
	}
	free(r->pending);
	free(r);
}

void dirty_fanout_mark(struct dirty_fanout *f, uint64_t page)
{
	if (page >= f->npages)
		return;
	for (struct dirty_reader *r = f->readers; r; r = r->next)
		r->pending[page / 64] |= 1ull << (page % 64);
}

void dirty_fanout_mark_words(struct dirty_fanout *f, uint64_t first_word,
			     const uint64_t *bits, uint64_t nwords)
{
	if (first_word >= f->words)
		return;
	if (nwords > f->words - first_word)
		nwords = f->words - first_word;
	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t b = bits[w];

		/* the last word may reach past npages */
		if (first_word + w == f->words - 1 && f->npages % 64)
			b &= (1ull << (f->npages % 64)) - 1;
		if (!b)
			continue;
		for (struct dirty_reader *r = f->readers; r; r = r->next)
			r->pending[first_word + w] |= b;
	}
}

int64_t dirty_fanout_take(struct dirty_fanout *f, struct dirty_reader *r,
			  uint64_t *bitmap)
{
	int64_t added = 0;

	for (uint64_t w = 0; w < f->words; w++) {
		uint64_t b = r->pending[w];

		if (!b)
			continue;
		added += __builtin_popcountll(b & ~bitmap[w]);
		bitmap[w] |= b;
		r->pending[w] = 0;
	}
	return added;
}
