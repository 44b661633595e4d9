/* SPDX-License-Identifier: MIT */
/*
 * The readers of one VM's dirty log, each with its own view: pages one
 * harvest of KVM's log found written are marked in every reader's
 * pending bitmap, and a reader takes (and clears) only its own.  So the
 * working-set monitor and a migration can both read the log, each seeing
 * every page written since it last looked, and neither takes pages from
 * the other.  No KVM here (vm/vm_dirty.c harvests and locks); plain
 * data, unit-tested on its own.
 *
 * Pages and bitmaps as in memory/dirty_log.h: page i is bit i % 64 of
 * word i / 64.  Not thread-safe: the caller serialises every call on a
 * fanout and its readers.
 */
#ifndef RACKVM_VM_VM_DIRTY_FANOUT_H
#define RACKVM_VM_VM_DIRTY_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

struct dirty_reader {
	struct dirty_reader *next;
	uint64_t *pending;	/* marked, not taken yet */
	void *owner;		/* the caller's: vm_dirty.c's owner */
};

struct dirty_fanout {
	uint64_t npages;
	uint64_t words;
	struct dirty_reader *readers;
	unsigned nreaders;
};

void dirty_fanout_init(struct dirty_fanout *f, uint64_t npages);
/* A new reader with nothing pending (-ENOMEM). */
int dirty_fanout_add(struct dirty_fanout *f, struct dirty_reader **out);
/* Unlinks and frees @r. */
void dirty_fanout_remove(struct dirty_fanout *f, struct dirty_reader *r);

/* Marks @page for every reader; a page past the end is ignored. */
void dirty_fanout_mark(struct dirty_fanout *f, uint64_t page);
/* Marks the set bits of @bits, @nwords words that start at word
 * @first_word of the page space, for every reader; what lies past the
 * end is ignored. */
void dirty_fanout_mark_words(struct dirty_fanout *f, uint64_t first_word,
			     const uint64_t *bits, uint64_t nwords);
/* ORs @r's pending pages into @bitmap (f->words words) and clears them;
 * returns how many bits of @bitmap it set that were clear. */
int64_t dirty_fanout_take(struct dirty_fanout *f, struct dirty_reader *r,
			  uint64_t *bitmap);

#endif
