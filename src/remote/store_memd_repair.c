// SPDX-License-Identifier: MIT
/*
 * Re-replication: the pages short of their N copies (a server that
 * restarted and lost them, a put that had only min_replicas) get their
 * missing copies back, from a current copy, a batch at a time on the
 * maintenance thread, never on an op's path.
 *
 * A batch: up to REPAIR_BATCH short pages that some server not holding
 * them could take now, claimed; read from their current copies (a get,
 * which also says which server gave each page); written to the next
 * servers in their ranking until they have N copies (a put whose source
 * already counts as a copy); the new copies committed as current
 * (repair_commit()).  A page no copy of which is left anywhere is lost:
 * counted, and left to fail when the pager needs it.
 * Copies are moved as they are, sealed, tag and all: the store does not
 * know the generations (the pager does), so it cannot open them, and
 * has no need to.  A bad copy moved so is refused when read, as its
 * source would have been; a current copy elsewhere still serves the page.
 *
 * A server that stays down keeps its copies: it may come back with them
 * (a partition, a stopped process), and until then the other copies
 * serve.  Once it has been down for down_after (the spec's; default
 * DOWN_AFTER_MS, "never" to wait for ever) its copies are written off:
 * every page that has a current copy on a server up is fenced there and
 * counted short, and the repair places its missing copy on the next
 * server of its ranking, as after a restart.  A page whose every copy is
 * out of reach keeps them (writing it off would turn a pause into a
 * loss).  If the server comes back, its recovery drops the fenced copies
 * before any op may use it (store_memd_conn.c), so a written-off copy is
 * never read.  While it stays down the write-off is looked at again
 * every WRITE_OFF_EVERY_MS: pages whose other copies were out of reach
 * at first, and a put acknowledged late on a connection of before the
 * failure, are written off as soon as they qualify.
 *
 * Claims keep the repair apart from puts and drops of the same pages
 * (store_memd_internal.h): an op claims its pages and waits for the
 * repair's to be released; the repair claims only pages nobody holds and
 * never waits, so the two cannot deadlock and an op waits one batch at
 * most.
 */
#include <errno.h>
#include <pthread.h>

#include "remote/store_memd_internal.h"

#define REPAIR_SCAN (16 * REPAIR_BATCH)	/* short pages looked at a tick */

/* ---- claims -------------------------------------------------------------- */

/* The bits of word @w for pages [first, first + count) of its 64. */
static uint64_t word_mask(uint64_t w, uint64_t first, uint64_t end)
{
	uint64_t lo = first > w * 64 ? first - w * 64 : 0;
	uint64_t hi = end < (w + 1) * 64 ? end - w * 64 : 64;

	return (hi == 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);
}

static void claim_word(struct memd_store *st, uint64_t w, uint64_t mask)
{
	for (;;) {
		uint64_t old = __atomic_fetch_or(&st->claimed[w], mask,
						 __ATOMIC_ACQUIRE);

		mask &= old;		/* the repair's still */
		if (!mask)
			return;
		pthread_mutex_lock(&st->claim_lock);
		while ((__atomic_load_n(&st->claimed[w], __ATOMIC_ACQUIRE) &
			mask) == mask)
			pthread_cond_wait(&st->claim_done, &st->claim_lock);
		pthread_mutex_unlock(&st->claim_lock);
	}
}

void claim_runs(struct memd_store *st, const struct page_run *runs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t end = runs[i].first + runs[i].count;

		for (uint64_t w = runs[i].first / 64; w * 64 < end; w++)
			claim_word(st, w, word_mask(w, runs[i].first, end));
	}
}

/* The repair never waits for an op's claims: no wake-up needed. */
void release_runs(struct memd_store *st, const struct page_run *runs,
		  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t end = runs[i].first + runs[i].count;

		for (uint64_t w = runs[i].first / 64; w * 64 < end; w++)
			__atomic_fetch_and(&st->claimed[w],
					   ~word_mask(w, runs[i].first, end),
					   __ATOMIC_RELEASE);
	}
}

static void repair_release(struct memd_store *st, const struct page_run *runs,
			   size_t n)
{
	pthread_mutex_lock(&st->claim_lock);
	release_runs(st, runs, n);
	pthread_cond_broadcast(&st->claim_done);
	pthread_mutex_unlock(&st->claim_lock);
}

/* ---- choosing pages -------------------------------------------------------- */

/* Servers down now, as a mask (a hint: they may change meanwhile). */
static uint32_t servers_down(struct memd_store *st)
{
	uint32_t m = 0;

	for (unsigned s = 0; s < st->nservers; s++) {
		pthread_mutex_lock(&st->servers[s].lock);
		if (st->servers[s].down)
			m |= 1u << s;
		pthread_mutex_unlock(&st->servers[s].lock);
	}
	return m;
}

/*
 * Takes @page for the repair if it is short, nobody holds it, and some
 * server up could take a copy.  A page on its home has its copies on its
 * unfenced home servers; a spilled one may have them on any unfenced
 * server, some of which hold none (cleaned up after a failure): which
 * could take a copy only the repair's reads can say, so it is tried while
 * a source and a target may both be up.
 */
static bool repair_take(struct memd_store *st, uint64_t page, uint32_t down)
{
	struct piece p = { .home = group_home(st, page >> GROUP_SHIFT) };
	uint32_t up = all_servers(st) & ~down;
	bool room = bit_test(st->spilled, page) ?
		    __builtin_popcount(up) >= 2 :
		    (up & ~get_candidates(st, &p, page)) != 0;

	/* the cheap test first: most pages wait for a server to be up */
	if (!room || bit_set(st->claimed, page))
		return false;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* an op may have put or dropped it before we held it */
	if (bit_test(st->short_copies, page) && bit_test(st->stored, page))
		return true;
	/* dropped while forget_copies_on() counted it short: nothing to
	 * put back, and nobody else would clear it */
	if (!bit_test(st->stored, page) && bit_clear(st->short_copies, page))
		__atomic_fetch_sub(&st->nshort, 1, __ATOMIC_RELAXED);
	__atomic_fetch_and(&st->claimed[page / 64], ~(1ull << (page % 64)),
			   __ATOMIC_RELEASE);
	return false;
}

/*
 * Up to REPAIR_BATCH short pages from the cursor on, taken, as runs into
 * st->repair_data.  It looks at REPAIR_SCAN short pages at most, so that
 * a tick costs little while most of them wait for a server.
 */
static size_t repair_pick(struct memd_store *st, struct page_run *runs)
{
	uint64_t words = (st->ram_pages + 63) / 64, pages = 0, seen = 0;
	uint64_t w0 = st->repair_cursor / 64;
	uint32_t down = servers_down(st);
	size_t n = 0;

	for (uint64_t i = 0; i <= words && pages < REPAIR_BATCH &&
	     seen < REPAIR_SCAN; i++) {
		uint64_t w = (w0 + i) % words;
		uint64_t bits = __atomic_load_n(&st->short_copies[w],
						__ATOMIC_RELAXED);

		while (bits && pages < REPAIR_BATCH && seen++ < REPAIR_SCAN) {
			uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);
			struct page_run *last = n ? &runs[n - 1] : NULL;

			bits &= bits - 1;
			st->repair_cursor = page + 1;
			if (!repair_take(st, page, down))
				continue;
			if (last && last->first + last->count == page) {
				last->count++;
			} else {
				runs[n++] = (struct page_run){
					.first = page, .count = 1,
					.data = st->repair_data +
						pages * PAGE_STORE_PAGE,
					.tags = st->repair_tags +
						pages * PAGE_TAG_SIZE,
				};
			}
			pages++;
		}
	}
	if (st->repair_cursor >= st->ram_pages)
		st->repair_cursor = 0;
	return n;
}

/* ---- servers down for good ------------------------------------------------ */

void write_off_down_servers(struct memd_store *st)
{
	int64_t now = now_ms();
	uint32_t down;

	if (!st->down_after_ms)
		return;
	down = servers_down(st);
	for (unsigned s = 0; s < st->nservers; s++) {
		struct remote *r = &st->servers[s];
		int64_t since;

		if (!(down & 1u << s))
			continue;
		pthread_mutex_lock(&r->lock);
		since = r->down ? r->down_since_ms : now;
		pthread_mutex_unlock(&r->lock);
		if (now - since < st->down_after_ms ||
		    now - st->written_off_ms[s] < WRITE_OFF_EVERY_MS)
			continue;
		st->written_off_ms[s] = now;
		forget_copies_on(st, s, all_servers(st) & ~down);
	}
}

/* ---- a batch ---------------------------------------------------------------- */

/* The pages no copy of which was found anywhere: lost. */
static void repair_count_lost(struct op *op)
{
	for (size_t i = 0; i < op->npieces; i++) {
		const struct piece *p = &op->pieces[i];

		if (p->state != PIECE_FAILED || p->unreachable || p->refused)
			continue;
		for (uint32_t k = 0; k < p->count; k++)
			note_copies(op->st, p->first + k, op->st->replicas);
		__atomic_fetch_add(&op->st->nlost, p->count, __ATOMIC_RELAXED);
	}
}

/* The pieces read, as pieces to write: their source counts as a copy. */
static int repair_pieces(struct op *put, const struct op *got)
{
	for (size_t i = 0; i < got->npieces; i++) {
		struct piece p = got->pieces[i];

		if (p.state != PIECE_OK)
			continue;
		p.tried = p.acked;
		p.round = 0;
		p.state = PIECE_PENDING;
		p.full = p.unreachable = p.refused = p.bad_sum = p.alone = false;
		if (!add_piece(put, &p))
			return -ENOMEM;
	}
	return 0;
}

static void repair_batch(struct memd_store *st, struct page_run *runs,
			 size_t n)
{
	struct errmsg ignored;
	struct op got, put;

	op_init(&got, st);
	split_runs(&got, runs, n, get_candidates, true);
	while (!got.fatal && get_pick_sources(&got)) {
		run_round(&got, MEMD_OP_GET);
		get_collect(&got);
	}
	repair_count_lost(&got);
	op_init(&put, st);
	if (!got.fatal && !repair_pieces(&put, &got)) {
		while (!put.fatal && put_pick_targets(&put)) {
			run_round(&put, MEMD_OP_PUT);
			put_collect(&put);
		}
		if (!put.fatal)
			repair_commit(&put);
	}
	op_finish(&put);
	op_finish(&got);
	/* copies on servers tried without success, which it fenced */
	drop_pages(st, runs, n, DROP_STALE, &ignored);
}

bool repair_tick(struct memd_store *st)
{
	struct page_run runs[REPAIR_BATCH];
	uint64_t before = __atomic_load_n(&st->nshort, __ATOMIC_RELAXED);
	size_t n;

	if (!before)
		return false;
	n = repair_pick(st, runs);
	if (!n)
		return false;
	repair_batch(st, runs, n);
	repair_release(st, runs, n);
	return __atomic_load_n(&st->nshort, __ATOMIC_RELAXED) < before;
}
