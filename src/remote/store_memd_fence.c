// SPDX-License-Identifier: MIT
/*
 * Which copies of a page the memd store may read (see store_memd.c,
 * "Copies that are not current"): the fenced bitmap of each server and
 * the spilled bitmap, who may hold a copy and who must not be read, the
 * bookkeeping after a put, a repair and a drop (which pages are stored,
 * which are short of copies), forgetting the copies of a server that
 * lost them, and the cleanup of a server that comes back.
 *
 * Threads: the bitmaps are shared by every op thread and updated a word
 * at a time with atomic operations; a page's bits are decided by the one
 * op (or repair) holding that page, a returning server's by the
 * maintenance thread.
 */
#include <errno.h>
#include <stdbool.h>

#include "remote/store_memd_internal.h"

static uint32_t fenced_mask(const struct memd_store *st, uint64_t page)
{
	uint32_t m = 0;

	for (unsigned s = 0; s < st->nservers; s++)
		if (bit_test(st->servers[s].fenced, page))
			m |= 1u << s;
	return m;
}

uint32_t get_candidates(const struct memd_store *st,
			const struct piece *group, uint64_t page)
{
	uint32_t m = group->home;

	if (bit_test(st->spilled, page))
		m = all_servers(st);
	return m & ~fenced_mask(st, page);
}

void note_copies(struct memd_store *st, uint64_t page, unsigned copies)
{
	if (copies < st->replicas) {
		if (!bit_set(st->short_copies, page))
			__atomic_fetch_add(&st->nshort, 1, __ATOMIC_RELAXED);
	} else if (bit_clear(st->short_copies, page)) {
		__atomic_fetch_sub(&st->nshort, 1, __ATOMIC_RELAXED);
	}
}

/* The page holds no copy any more: nothing to count short. */
static void forget_page(struct memd_store *st, uint64_t page)
{
	bit_clear(st->stored, page);
	if (bit_clear(st->short_copies, page))
		__atomic_fetch_sub(&st->nshort, 1, __ATOMIC_RELAXED);
}

/*
 * After a successful put: the new copies are the only readable ones.  A
 * server tried and not acknowledged may have stored the new contents all
 * the same; fenced too, or once they are old a later spill (which makes
 * every unfenced server a candidate) could read them.
 */
void put_commit(struct op *op)
{
	struct memd_store *st = op->st;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];
		uint32_t stale = p->home | p->tried;

		for (uint32_t k = 0; k < p->count; k++) {
			uint64_t page = p->first + k;
			bool spilled = bit_test(st->spilled, page);

			for (unsigned s = 0; s < st->nservers; s++) {
				uint32_t bit = 1u << s;

				if (p->acked & bit)
					bit_clear(st->servers[s].fenced, page);
				else if ((stale & bit) || spilled)
					bit_set(st->servers[s].fenced, page);
			}
			if (p->acked & ~p->home)
				bit_set(st->spilled, page);
			else if (spilled)
				bit_clear(st->spilled, page);
			bit_set(st->stored, page);
			note_copies(st, page, (unsigned)__builtin_popcount(p->acked));
		}
	}
}

/*
 * After a repair: its copies (the same contents) join the current ones,
 * which stay as they are; a server it tried without success is fenced
 * as in put_commit().  The page is short until one round saw N copies.
 */
void repair_commit(struct op *op)
{
	struct memd_store *st = op->st;

	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];

		for (uint32_t k = 0; k < p->count; k++) {
			uint64_t page = p->first + k;

			for (unsigned s = 0; s < st->nservers; s++) {
				uint32_t bit = 1u << s;

				if (p->acked & bit)
					bit_clear(st->servers[s].fenced, page);
				else if (p->tried & bit)
					bit_set(st->servers[s].fenced, page);
			}
			if (p->acked & ~p->home)
				bit_set(st->spilled, page);
			note_copies(st, page, (unsigned)__builtin_popcount(p->acked));
		}
	}
}

/*
 * For writing off server @s's copy of @page: whether another current copy
 * is on a server of @sources (up).  A page with its N copies on its home
 * has them on its unfenced home servers, exactly.  A short one may count
 * a home server cleaned up after a failure, which holds none; a spilled
 * one may have them on any unfenced server, some of which hold none: its
 * copies are known to be in reach only when every server but @s is up and
 * N > 1.  When in doubt the copy is kept: writing off the last one would
 * turn a pause into a loss.
 */
static bool other_copy_in_reach(const struct memd_store *st, unsigned s,
				uint32_t sources, uint64_t page, uint32_t home,
				bool spilled)
{
	uint32_t others = all_servers(st) & ~(1u << s);

	if (bit_test(st->short_copies, page))
		return false;
	if (spilled)
		return st->replicas > 1 && (sources & others) == others;
	return home & sources & others & ~fenced_mask(st, page);
}

uint64_t forget_copies_on(struct memd_store *st, unsigned s, uint32_t sources)
{
	uint64_t words = (st->ram_pages + 63) / 64, n = 0, group = UINT64_MAX;
	uint32_t home = 0;

	for (uint64_t w = 0; w < words; w++) {
		uint64_t bits = __atomic_load_n(&st->stored[w], __ATOMIC_RELAXED);

		while (bits) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);
			uint32_t may;
			bool spilled;

			bits &= bits - 1;
			if (page >> GROUP_SHIFT != group) {
				group = page >> GROUP_SHIFT;
				home = group_home(st, group);
			}
			spilled = bit_test(st->spilled, page);
			may = spilled ? all_servers(st) : home;
			if (!(may & 1u << s))
				continue;
			if (sources && !other_copy_in_reach(st, s, sources, page,
							    home, spilled))
				continue;
			if (bit_set(st->servers[s].fenced, page))
				continue;
			note_copies(st, page, 0);
			n++;
		}
	}
	return n;
}

static uint32_t drop_targets(const struct memd_store *st,
			     const struct piece *group, uint64_t page)
{
	uint32_t m = group->home | fenced_mask(st, page);

	return bit_test(st->spilled, page) ? all_servers(st) : m;
}

static uint32_t stale_targets(const struct memd_store *st,
			      const struct piece *group, uint64_t page)
{
	(void)group;
	return fenced_mask(st, page);
}

static uint32_t every_server(const struct memd_store *st,
			     const struct piece *group, uint64_t page)
{
	(void)group;
	(void)page;
	return all_servers(st);
}

/* Drops on the servers @mode picks; those that cannot be reached are
 * fenced for the pages instead.  Fails only for a fatal error. */
int drop_pages(struct memd_store *st, const struct page_run *runs,
	       size_t n, enum drop_mode mode, struct errmsg *err)
{
	static const page_servers_fn pick[] = {
		[DROP_PAGES] = drop_targets,
		[DROP_STALE] = stale_targets,
		[DROP_EVERYWHERE] = every_server,
	};
	struct op op;
	int ret;

	op_init(&op, st);
	split_runs(&op, runs, n, pick[mode], false);
	for (size_t i = 0; i < op.npieces && !op.fatal; i++) {
		struct piece *p = &op.pieces[i];

		for (unsigned s = 0; s < st->nservers; s++)
			if ((p->allowed & 1u << s) && op_link(&op, s))
				p->round |= 1u << s;
	}
	if (!op.fatal) {
		run_round(&op, MEMD_OP_DROP);
		put_collect(&op);	/* the same: acked per server */
	}
	for (size_t i = 0; i < op.npieces && !op.fatal; i++) {
		const struct piece *p = &op.pieces[i];

		for (uint32_t k = 0; k < p->count; k++) {
			uint64_t page = p->first + k;

			for (unsigned s = 0; s < st->nservers; s++) {
				if (p->acked & 1u << s)
					bit_clear(st->servers[s].fenced, page);
				else if (p->allowed & 1u << s)
					bit_set(st->servers[s].fenced, page);
			}
			if (mode != DROP_STALE) {
				bit_clear(st->spilled, page);
				forget_page(st, page);
			}
		}
	}
	ret = op.fatal ? errmsg_set(err, op.fatal, "%s", op.fatal_why.text) : 0;
	op_finish(&op);
	return ret;
}

/* Adds a DROP of [first, first + count) to @l, a request per limit. */
static int add_drop_run(struct link *l, uint64_t first, uint32_t count)
{
	struct creq *q = l->nreqs ? &l->reqs[l->nreqs - 1] : NULL;

	if (!q || q->nruns == MEMD_MAX_RUNS ||
	    q->npages + count > MEMD_MAX_DROP_PAGES) {
		q = link_new_req(l, MEMD_OP_DROP);
		if (!q)
			return -ENOMEM;
	}
	q->runs[q->nruns++] = (struct page_run){ .first = first, .count = count };
	q->npages += count;
	return 0;
}

/* Drops, on a server coming back, the pages fenced on it, a batch of
 * requests at a time, clearing their bits once acknowledged. */
int clean_fenced(struct memd_store *st, unsigned s, struct conn **c,
		 struct errmsg *err)
{
	uint64_t *fenced = st->servers[s].fenced;
	uint64_t page = 0;
	int ret = 0;

	while (page < st->ram_pages && !ret) {
		struct op op;
		struct link *l;

		op_init(&op, st);
		l = &op.links[s];
		*l = (struct link){ .state = LINK_UP, .conn = *c };
		while (page < st->ram_pages && l->nreqs < 64 && !ret) {
			uint64_t end;

			if (page % 64 == 0 &&
			    !__atomic_load_n(&fenced[page / 64], __ATOMIC_RELAXED)) {
				page += 64;
				continue;
			}
			if (!bit_test(fenced, page)) {
				page++;
				continue;
			}
			for (end = page + 1; end < st->ram_pages &&
			     end - page < MEMD_MAX_DROP_PAGES && bit_test(fenced, end);)
				end++;
			ret = add_drop_run(l, page, (uint32_t)(end - page));
			page = end;
		}
		if (!ret && l->nreqs)
			exchange(&op);
		for (size_t i = 0; i < l->nreqs && !ret; i++) {
			struct creq *q = &l->reqs[i];

			if (q->status != MEMD_ST_OK) {
				ret = errmsg_set(err, -EAGAIN, "%s",
						 op.last_why.text[0] ?
						 op.last_why.text : "cleanup refused");
				break;
			}
			for (size_t j = 0; j < q->nruns; j++)
				for (uint32_t k = 0; k < q->runs[j].count; k++)
					bit_clear(fenced, q->runs[j].first + k);
		}
		if (l->failed && !ret)
			ret = errmsg_set(err, -EAGAIN, "%s", op.last_why.text);
		*c = l->conn;			/* NULL if the link failed */
		l->conn = NULL;
		op_finish(&op);
	}
	return ret;
}
