/* SPDX-License-Identifier: MIT */
/*
 * The pager's insides, shared by its files and by nothing else: include
 * it from src/memory/pager*.c only.  pager.h is the API and says what the
 * pager does (page states and their moves, store trouble, lifetime); this
 * says who does which part of it.
 *
 * Files, and the threads that run them:
 *   pager.c         create/start/destroy, the queries and stats, and the
 *                   helpers every part uses (clock, back-off, events);
 *                   the API may be called from any thread
 *   pager_policy.c  what stays resident: the resident budget, the
 *                   evictor's choice of victims, the prefetch window and
 *                   its hit count; fault threads and the evictor
 *   pager_fault.c   the uffd callbacks: serving missing faults with their
 *                   prefetch, write-protect and minor faults; uffd_ram's
 *                   fault threads, and the sampler's thread through
 *                   uffd_ram_map_back()
 *   pager_evict.c   the evictor thread: protect, copy out, put, punch
 *   pager_evict_cost.c  whether a batch revokes with the vCPUs paused
 *   pager_store.c   batches to and from the page store: runs of adjacent
 *                   pages, the retry while no copy is reachable
 *   pager_discard.c pages the guest gave back: claimed, punched, dropped
 *                   from the store; the balloon's I/O thread
 *   pager_handover.c  a migration that leaves the remote pages in place:
 *                   freezing, the page map out and in; the migration's
 *                   thread
 *
 * What protects what in struct pager:
 *   - set at create, read-only after: mem, uffd, store, vm, cfg,
 *     store_desc, npages, pagemap_fd, and the arrays' pointers;
 *   - atomic: state[] (compare-and-swap only, see move_state()), flags[],
 *     limit, resident, the counters in c, put_failing (written by the
 *     evictor), stopping (read);
 *   - lock: stopping (written), the fetch pool, unreachable_waiters, and
 *     it is the mutex of the work, room and stop conditions;
 *   - prefetch_lock: window, last[], nlast;
 *   - monitor_lock: monitor;
 *   - scan_lock: scan (the detector: fed by fault threads and the
 *     monitor's touches, asked by fault threads and the evictor);
 *   - the evictor thread's alone: cold..cold_off, hand, the batch arrays
 *     (buf, cand, tags, zero, put, committed, clean_hit, runs) and
 *     put_delay_ns;
 *   - gen[page]: written by the evictor only while it holds the page
 *     EVICTING, read by whoever holds it FETCHING later (the state's
 *     release/acquire orders the two);
 *   - clean[page]: likewise, by whoever holds the page: set by the
 *     fault thread that fetched it (FETCHING), cleared by the evictor
 *     when it puts the page or finds it all zero (EVICTING), by
 *     pager_discard() (BUSY) and by a zero refill (BUSY).
 *
 * Generations: every put of a page gets gen[page] + 1 (page_store.h:
 * the seal's nonce and associated data hold it), and a get asks for
 * exactly gen[page], so that an older copy of the page is refused like a
 * forged one.  A put that fails still used its generation: the next one
 * is never sealed under the same nonce.  4 bytes a guest page (1 MiB per
 * GiB of guest RAM); a page whose generation is exhausted (2^32 - 1
 * puts) stays resident.
 * No lock is held across a store request or a uffd operation, and no
 * thread of the pager touches guest RAM through its mapping.
 *
 * Functions shared between the files are declared here with a pager_
 * prefix; the one-line atomic accessors are static inline, so that the
 * fault path pays no call for them.
 */
#ifndef RACKVM_MEMORY_PAGER_INTERNAL_H
#define RACKVM_MEMORY_PAGER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <xxhash.h>

#include "memory/pager.h"
#include "memory/scan_detect.h"
#include "remote/page_store.h"
#include "util/clock.h"

struct uffd_ram_user;
struct wss_cold_region;

/* See pager.h for the moves between them. */
enum page_state {
	PS_HOLE = 0,
	PS_LOCAL,
	PS_EVICTING,
	PS_PUNCHING,
	PS_REMOTE,
	PS_ZERO,
	PS_FETCHING,
	PS_BUSY,
	PS_FAILED,
};

/* Per-page flags, a second byte array, changed with atomic bit ops. */
#define PF_REF 1u		/* referenced since the hand last passed */
#define PF_PREFETCHED 2u	/* prefetched, not yet seen touched */
#define PF_DISCARD 4u		/* BUSY: claimed by pager_discard() */

#define FETCH_POOL 16
#define RETRY_FIRST_NS 10000000ull	/* store back-off: 10 ms .. 1 s */
#define RETRY_MAX_NS 1000000000ull

/* One fault's fetch: the faulting page first, then the window's pages,
 * ascending; each with the state it was claimed from. */
struct fetch {
	unsigned n;
	uint64_t pages[1 + PAGER_MAX_PREFETCH];
	uint8_t from[1 + PAGER_MAX_PREFETCH];
	bool ok[1 + PAGER_MAX_PREFETCH];
	uint8_t tags[(1 + PAGER_MAX_PREFETCH) * PAGE_TAG_SIZE];
	struct page_run runs[1 + PAGER_MAX_PREFETCH];
	uint8_t *data;			/* (1 + PAGER_MAX_PREFETCH) pages */
};

/* What revoking a batch's pages cost lately, by way (pager_evict_cost.c). */
struct evict_cost {
	uint64_t batches;
	uint64_t paused_ns, running_ns;	/* moving averages, 0: none yet */
};
#define EVICT_COST_CLASSES 4

struct pager_counters {			/* all atomic */
	uint64_t remote, zero, failed;
	uint64_t faults, fetches, fetched_pages, prefetched, prefetch_hits;
	uint64_t evictions, cancelled, puts, bytes_in, bytes_out;
	uint64_t clean_evictions;
	uint64_t unreachable, discarded;
	uint64_t hist[PAGER_HIST_BUCKETS];
	uint64_t fault_us_sum;	/* the faults' latencies added up */
	/* where the time goes, in ns added up (pager_stats says what) */
	uint64_t room_wait_ns, get_ns, put_ns, evict_ns, stall_ns;
	uint64_t paused_batches;
};

struct pager {
	const struct guest_mem *mem;
	struct uffd_ram *uffd;
	struct page_store *store;
	struct vm *vm;
	struct pager_config cfg;
	char store_desc[256];
	uint64_t npages;
	uint8_t *state;			/* npages, enum page_state */
	uint8_t *flags;			/* npages, PF_* */
	uint32_t *gen;			/* npages: the last put's generation */
	/* npages: XXH3 (seeded with clean_seed) of the page as it was
	 * last fetched from the store, where its stored copy at gen[page]
	 * still holds exactly that: an eviction that finds the same
	 * content punches without a put (0: no such copy) */
	uint64_t *clean;
	uint64_t clean_seed;
	/* bitmap: pages brought in for the guest (a fault, its read-ahead)
	 * since pager_take_brought_in() last took them */
	uint64_t *brought_in;
	int pagemap_fd;			/* -1: hits are not counted */
	bool attached;

	uint64_t limit;			/* atomic */
	uint64_t resident;		/* atomic */
	struct pager_counters c;

	pthread_mutex_t lock;		/* the rest of this block */
	pthread_cond_t work;		/* to the evictor: over the limit */
	pthread_cond_t room;		/* from the evictor: pages freed */
	pthread_cond_t stop;		/* stopping was set */
	bool stopping;			/* written under lock, read atomic */
	pthread_t evictor;
	bool evictor_started;
	struct fetch *pool[FETCH_POOL];
	unsigned npool;
	unsigned unreachable_waiters;
	unsigned room_waiters;		/* atomic: faults waiting for room */

	pthread_mutex_t prefetch_lock;	/* the window and the last prefetch */
	unsigned window;
	uint64_t last[PAGER_MAX_PREFETCH];
	unsigned nlast;

	pthread_mutex_t monitor_lock;
	struct wss_monitor *monitor;

	pthread_mutex_t scan_lock;	/* scan */
	struct scan_detect scan;

	/* the evictor's own */
	struct wss_cold_region *cold;	/* region order, coldest first */
	uint64_t ncold, cold_pos, cold_off;
	uint64_t hand;			/* CLOCK */
	struct scan_victims vict[SCAN_STREAMS];	/* scans' pages first */
	struct evict_cost cost[EVICT_COST_CLASSES];
	uint8_t *buf;			/* batch pages */
	uint64_t *cand;
	uint8_t *tags;			/* batch * PAGE_TAG_SIZE */
	uint8_t *zero, *put, *committed, *clean_hit;
	struct page_run *runs;
	bool put_failing;		/* atomic: the store refuses puts */
	uint64_t put_delay_ns;
	bool copies_short;		/* said the store is short of copies */

	/* migration with pages left in place (pager_handover.c) */
	bool frozen;			/* under lock, read atomic: new faults
					 * wait (p->stop wakes them) */
	bool frozen_evict;		/* under lock, read atomic: no eviction */
	bool evicting;			/* under lock: the evictor is at work */
	bool hold_evict;		/* under lock, read atomic: imported,
					 * not committed: put nothing */
	unsigned in_fault;		/* atomic: missing faults being served */
	uint64_t left_in_place;		/* pages exported as REMOTE */
};

/* --- atomic accessors ----------------------------------------------------- */

static inline void add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline void sub(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_sub(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static inline uint8_t load_state(struct pager *p, uint64_t page)
{
	return __atomic_load_n(&p->state[page], __ATOMIC_ACQUIRE);
}

static inline void set_state(struct pager *p, uint64_t page, uint8_t s)
{
	__atomic_store_n(&p->state[page], s, __ATOMIC_RELEASE);
}

static inline bool move_state(struct pager *p, uint64_t page, uint8_t from,
			      uint8_t to)
{
	return __atomic_compare_exchange_n(&p->state[page], &from, to, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline void set_flag(struct pager *p, uint64_t page, uint8_t f)
{
	__atomic_fetch_or(&p->flags[page], f, __ATOMIC_RELAXED);
}

/* The guest needed @page (or its read-ahead brought it): the working-set
 * monitor counts it as referenced, which it cannot see otherwise while
 * the page is not resident. */
static inline void mark_brought_in(struct pager *p, uint64_t page)
{
	__atomic_fetch_or(&p->brought_in[page / 64], 1ull << (page % 64),
			  __ATOMIC_RELAXED);
}

/* Clears @f, true if it was set (exactly one caller sees it set). */
static inline bool take_flag(struct pager *p, uint64_t page, uint8_t f)
{
	return __atomic_fetch_and(&p->flags[page], (uint8_t)~f,
				  __ATOMIC_RELAXED) & f;
}

/* What clean[] holds for a page's content: never 0 (0 says no copy). */
static inline uint64_t page_hash(const struct pager *p, const uint8_t *data)
{
	uint64_t h = XXH3_64bits_withSeed(data, PAGE_SIZE, p->clean_seed);

	return h ? h : 1;
}

static inline bool stopping(struct pager *p)
{
	return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE);
}

/* --- pager.c: helpers for every part -------------------------------------- */

bool pager_giving_up(struct pager *p);
void pager_backoff(struct pager *p, uint64_t ns, bool or_vm_end);
void pager_emit(struct pager *p, enum pager_event_kind kind, uint64_t page,
		int error, const char *detail);

/* --- pager_handover.c: freezing for a migration -------------------------- */

/* Around serving a missing fault: enter waits while the pager is frozen. */
void pager_fault_enter(struct pager *p);
void pager_fault_exit(struct pager *p);
/* The same for pager_discard(), which does not wait: false (nothing
 * entered) while frozen or held. */
bool pager_try_enter(struct pager *p);
/* The evictor may not start a batch (frozen, or imported and held). */
static inline bool pager_evict_held(struct pager *p)
{
	return __atomic_load_n(&p->frozen_evict, __ATOMIC_SEQ_CST) ||
	       __atomic_load_n(&p->hold_evict, __ATOMIC_ACQUIRE);
}

/* --- pager_policy.c: budget, victims, prefetch window --------------------- */

bool pager_at_limit(struct pager *p);
uint64_t pager_headroom(struct pager *p);
void pager_wake_evictor(struct pager *p);
bool pager_try_reserve(struct pager *p, uint64_t n);
void pager_reserve_for_fault(struct pager *p);
void pager_room_made(struct pager *p);
bool pager_settle_prefetched(struct pager *p, uint64_t page);
unsigned pager_window_now(struct pager *p);
/* The evictor's only: */
void pager_refresh_cold(struct pager *p);
unsigned pager_choose_victims(struct pager *p, unsigned want);

/* --- pager_fault.c: the uffd callbacks ------------------------------------ */

/* The uffd user the pager attaches as: its modes and callbacks. */
void pager_fault_user(struct pager *p, struct uffd_ram_user *user);

/* --- pager_evict.c: the evictor ------------------------------------------- */

void *pager_evictor_thread(void *arg);
int pager_punch(struct pager *p, uint64_t page, uint64_t count);
unsigned pager_run_end(struct pager *p, unsigned i, unsigned n,
		       const uint8_t *mask);

/* --- pager_evict_cost.c: revoking with the vCPUs paused or running ------ */

bool pager_evict_choose_paused(struct pager *p, unsigned runs);
/* true if the vCPUs are paused now (then pager_evict_resume() them) */
bool pager_evict_pause(struct pager *p);
void pager_evict_resume(struct pager *p, bool paused);
void pager_evict_cost_note(struct pager *p, unsigned runs, bool paused,
			   uint64_t ns);

/* --- pager_store.c: store batches ----------------------------------------- */

int pager_get_remote(struct pager *p, struct fetch *f, struct errmsg *err);
int pager_wait_for_store(struct pager *p, struct fetch *f,
			 struct errmsg *err);
/* The evictor's only: */
int pager_put_batch(struct pager *p, unsigned n, const uint8_t *alive);
void pager_drop_stale(struct pager *p, unsigned n, const uint8_t *stale);

#endif
