// SPDX-License-Identifier: MIT
/*
 * Where the memd store's pages go (see store_memd.c for the rules):
 * ranking the servers of a group, cutting an op's runs into pieces that
 * share their servers, picking each round's servers for a put (the next
 * ones in the ranking until a piece has its copies) or a get (the next
 * candidate copy), reading the round's answers back into the pieces, and
 * saying why an op failed.
 *
 * Threads: the calling op's only.  It reads the store's configuration,
 * writes its own struct op, and reaches the servers' pools only through
 * op_link().  Which copies may be read is store_memd_fence.c's to say.
 */
#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#include "remote/store_memd_internal.h"

/* @group's servers, best first: rendezvous hashing, see store_memd.c. */
static void rank_servers(const struct memd_store *st, uint64_t group,
			 uint8_t *order)
{
	uint64_t weight[MAX_SERVERS];

	for (unsigned s = 0; s < st->nservers; s++) {
		weight[s] = XXH3_64bits_withSeed(&group, sizeof(group),
						 st->servers[s].seed);
		order[s] = (uint8_t)s;
	}
	for (unsigned i = 1; i < st->nservers; i++) {
		uint8_t s = order[i];
		unsigned j = i;

		for (; j > 0 && weight[order[j - 1]] < weight[s]; j--)
			order[j] = order[j - 1];
		order[j] = s;
	}
}

uint32_t group_home(const struct memd_store *st, uint64_t group)
{
	uint8_t order[MAX_SERVERS];
	uint32_t home = 0;

	rank_servers(st, group, order);
	for (unsigned k = 0; k < st->replicas; k++)
		home |= 1u << order[k];
	return home;
}

struct piece *add_piece(struct op *op, const struct piece *p)
{
	if (op->npieces == op->cap) {
		size_t cap = op->cap ? op->cap * 2 : 16;
		struct piece *n = realloc(op->pieces, cap * sizeof(*n));

		if (!n)
			return NULL;
		op->pieces = n;
		op->cap = cap;
	}
	op->pieces[op->npieces] = *p;
	return &op->pieces[op->npieces++];
}

/*
 * Cuts the runs into pieces: within a group, and, with @servers, where
 * the servers @servers gives a page change (pages given none are left
 * out unless @keep_empty).  Without @servers every piece may use every
 * server.
 */
int split_runs(struct op *op, const struct page_run *runs, size_t n,
	       page_servers_fn servers, bool keep_empty)
{
	struct memd_store *st = op->st;

	for (size_t i = 0; i < n; i++) {
		for (uint32_t pos = 0; pos < runs[i].count;) {
			uint64_t page = runs[i].first + pos;
			uint64_t group = page >> GROUP_SHIFT;
			uint64_t group_end = (group + 1) << GROUP_SHIFT;
			uint32_t len = (uint32_t)(group_end - page);
			struct piece p = { .run = (uint32_t)i };

			if (len > runs[i].count - pos)
				len = runs[i].count - pos;
			rank_servers(st, group, p.order);
			for (unsigned k = 0; k < st->replicas; k++)
				p.home |= 1u << p.order[k];
			for (uint32_t k = 0; k < len;) {
				uint32_t m = servers ? servers(st, &p, page + k) :
						       all_servers(st);
				uint32_t end = k + 1;

				while (servers && end < len &&
				       servers(st, &p, page + end) == m)
					end++;
				if (!servers)
					end = len;
				p.first = page + k;
				p.count = end - k;
				p.data = runs[i].data ? runs[i].data +
					 (size_t)(pos + k) * PAGE_STORE_PAGE : NULL;
				p.tags = runs[i].tags ? runs[i].tags +
					 (size_t)(pos + k) * PAGE_TAG_SIZE : NULL;
				p.gens = runs[i].gens ? runs[i].gens + pos + k : NULL;
				p.allowed = m;
				if ((m || keep_empty) && !add_piece(op, &p)) {
					op_fatal(op, -ENOMEM, "out of memory");
					return -ENOMEM;
				}
				k = end;
			}
			pos += len;
		}
	}
	return 0;
}

/* Picks the next servers for the pieces short of copies; false when none
 * is left to try. */
bool put_pick_targets(struct op *op)
{
	bool any = false;

	for (size_t i = 0; i < op->npieces && !op->fatal; i++) {
		struct piece *p = &op->pieces[i];
		int need = (int)op->st->replicas - __builtin_popcount(p->acked);

		p->round = 0;
		for (unsigned k = 0; k < op->st->nservers && need > 0; k++) {
			unsigned s = p->order[k];

			if (p->tried & 1u << s)
				continue;
			p->tried |= 1u << s;
			if (!op_link(op, s)) {
				p->unreachable = true;
				p->full |= op->links[s].error == -ENOSPC;
				continue;
			}
			p->round |= 1u << s;
			need--;
			any = true;
		}
	}
	return any && !op->fatal;
}

void put_collect(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs; i++) {
			struct creq *q = &l->reqs[i];

			for (uint32_t j = 0; j < q->npieces; j++) {
				struct piece *p = &op->pieces[q->piece[j]];

				if (q->status == MEMD_ST_OK)
					p->acked |= 1u << s;
				else if (q->status == MEMD_ST_FULL)
					p->full = true;
				else
					p->unreachable = true;
			}
		}
	}
}

/* Why a put failed, from its first piece short of min_replicas copies. */
int put_failure(struct op *op, struct errmsg *err)
{
	const struct memd_store *st = op->st;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];
		unsigned copies = (unsigned)__builtin_popcount(p->acked);

		if (copies >= st->min_replicas)
			continue;
		if (p->full)
			return errmsg_set(err, -ENOSPC, "memd: page %llu found room "
					  "for %u of the %u copies it needs "
					  "(capacity reached)",
					  (unsigned long long)p->first, copies,
					  st->min_replicas);
		return errmsg_set(err, -EAGAIN, "memd: page %llu got %u of the %u "
				  "copies it needs (%s)",
				  (unsigned long long)p->first, copies,
				  st->min_replicas,
				  op->last_why.text[0] ? op->last_why.text :
				  "servers down");
	}
	return 0;
}

/* Each pending piece's next candidate in ranking order; false when no
 * piece has one left. */
bool get_pick_sources(struct op *op)
{
	bool any = false;

	for (size_t i = 0; i < op->npieces && !op->fatal; i++) {
		struct piece *p = &op->pieces[i];

		p->round = 0;
		if (p->state != PIECE_PENDING)
			continue;
		for (unsigned k = 0; k < op->st->nservers && !p->round; k++) {
			unsigned s = p->order[k];

			if (!(p->allowed & 1u << s) || (p->tried & 1u << s))
				continue;
			p->tried |= 1u << s;
			if (op_link(op, s))
				p->round = 1u << s;
			else if (op->links[s].error == -EACCES)
				p->refused = true;
			else
				p->unreachable = true;
		}
		if (p->round)
			any = true;
		else
			p->state = PIECE_FAILED;
	}
	return any && !op->fatal;
}

/*
 * Splits piece @idx: the pages @which marks (every page if NULL) go on as
 * new pending pieces, a run of them each or, with @alone, a page each in
 * a request of its own; the rest of it is done.  @bad_sum: they came back
 * with a bad checksum; @again: servers they may be asked again.
 */
static int split_piece(struct op *op, size_t idx, const bool *which,
		       bool alone, bool bad_sum, uint32_t again)
{
	struct piece p = op->pieces[idx];

	op->pieces[idx].state = PIECE_SPLIT;
	for (uint32_t k = 0; k < p.count;) {
		struct piece part = p;
		uint32_t end = k + 1;

		if (which && !which[k]) {
			k++;
			continue;
		}
		while (!alone && end < p.count && (!which || which[end]))
			end++;
		part.first = p.first + k;
		part.count = end - k;
		part.data = p.data + (size_t)k * PAGE_STORE_PAGE;
		/* a repair's copy has no generations (it moves records as
		 * they are) */
		part.tags = p.tags ? p.tags + (size_t)k * PAGE_TAG_SIZE : NULL;
		part.gens = p.gens ? p.gens + k : NULL;
		part.state = PIECE_PENDING;
		part.bad_sum |= bad_sum;
		part.alone = alone;
		part.tried &= ~again;
		if (!add_piece(op, &part)) {
			op_fatal(op, -ENOMEM, "out of memory");
			return -ENOMEM;
		}
		k = end;
	}
	return 0;
}

void get_collect(struct op *op)
{
	for (unsigned s = 0; s < op->st->nservers; s++) {
		struct link *l = &op->links[s];

		for (size_t i = 0; i < l->nreqs && !op->fatal; i++) {
			struct creq *q = &l->reqs[i];

			for (uint32_t j = 0; j < q->npieces; j++) {
				size_t idx = q->piece[j];
				struct piece *p = &op->pieces[idx];
				bool bad[1u << GROUP_SHIFT], any_bad = false;

				if (q->status == -1)
					p->unreachable = true;
				else if (q->status != MEMD_ST_OK &&
					 q->status != MEMD_ST_NO_PAGE)
					p->refused = true;
				/* NO_PAGE for a request of several pages says
				 * one is missing, not which: each is asked
				 * again alone, before the next copy (else one
				 * missing page sends its neighbours there, or
				 * has the repair count them lost) */
				if (q->status == MEMD_ST_NO_PAGE && q->npages > 1) {
					if (split_piece(op, idx, NULL, true, false,
							1u << s))
						return;
					continue;
				}
				if (q->status != MEMD_ST_OK)
					continue;
				for (uint32_t k = 0; p->gens && k < p->count; k++) {
					bad[k] = page_seal_open(op->st->base.seal,
								p->first + k, p->gens[k],
								p->data + (size_t)k * PAGE_STORE_PAGE,
								p->tags + (size_t)k * PAGE_TAG_SIZE);
					any_bad |= bad[k];
				}
				if (!any_bad) {
					p->state = PIECE_OK;
					p->acked = 1u << s;	/* the source */
				} else if (split_piece(op, idx, bad, false, true, 0)) {
					return;
				}
			}
		}
	}
}

/*
 * The batch's error, from its worst failed page.  Per page: a copy that
 * may sit on a server out of reach makes it -EAGAIN (nothing is lost
 * yet), else servers that refused us -EACCES, else copies that do not open
 * everywhere -EBADMSG, else -ENOENT.  Across pages the fatal ones win.
 */
int get_failure(struct op *op, struct errmsg *err)
{
	const struct piece *worst = NULL;
	int rank = 0;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];
		int r;

		if (p->state != PIECE_FAILED)
			continue;
		r = p->unreachable ? 1 : p->refused ? 4 : p->bad_sum ? 3 : 2;
		if (r > rank) {
			rank = r;
			worst = p;
		}
	}
	if (!worst)
		return 0;
	if (rank == 4)
		return errmsg_set(err, -EACCES, "every memd server that may hold "
				  "page %llu refused us (%s)",
				  (unsigned long long)worst->first,
				  op->last_why.text);
	if (rank == 3)
		return errmsg_set(err, -EBADMSG, "page %llu (generation %u) did "
				  "not open from any memd copy: damaged, forged, "
				  "another page's or an older version",
				  (unsigned long long)worst->first,
				  worst->gens ? worst->gens[0] : 0);
	if (rank == 2)
		return errmsg_set(err, -ENOENT, "page %llu is not stored on any "
				  "memd server", (unsigned long long)worst->first);
	return errmsg_set(err, -EAGAIN, "no memd server holding page %llu is "
			  "reachable (%s)", (unsigned long long)worst->first,
			  op->last_why.text[0] ? op->last_why.text :
			  "all down");
}
