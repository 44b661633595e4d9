/* SPDX-License-Identifier: MIT */
/*
 * The pager: keeps at most a given number of guest RAM pages resident
 * (--mem-local) and the others in a page store (remote/page_store.h).
 *
 * Resident means present in guest RAM's memfd.  A background evictor
 * keeps the count at or below the limit: once it comes within half the
 * headroom of it, it evicts down to the headroom (the low watermark's
 * 5%, or three prefetch windows if more, at most a quarter) in batches
 * (256 pages), each revoked with the vCPUs paused or running, whichever
 * cost less lately for its number of runs: write-protect, copy
 * out, put to the store under the page's next generation (sealed by the
 * store, page_store.h; all-zero pages are not sent, only remembered as
 * ZERO; a page unchanged since it was fetched is not sent either: the
 * copy it came from is still stored under the same generation, which
 * its XXH3 noted at the fetch tells, as a swap cache keeps a clean
 * page's slot), then punch the pages out of the memfd, which frees
 * the host memory and, through KVM's MMU notifier, the guest's mapping.
 * A guest access to a page not in the memfd is a userfaultfd missing
 * fault (memory/uffd_ram.h), served by a fault thread: from the store
 * with UFFDIO_COPY once the copy opened at the page's last generation
 * (this VM's page, this page, its newest version), or as a zero page.
 * Only the faulting thread waits, and only for its page.  A fault that
 * would take the resident count beyond the limit waits for the evictor
 * first, so the limit holds (a limit of all of RAM never evicts).
 *
 * Victims: first the pages behind a sequential or cyclic scan that the
 * fault stream shows (memory/scan_detect.h), nearest first: on a loop
 * larger than the limit those are needed last (MRU), which keeps a
 * stable part of the loop resident; then the coldest 2 MiB regions of
 * the working-set monitor when one
 * runs (wss_monitor_coldest()), then pages within them; else a CLOCK of
 * the pager's own over all pages.  Either way a page referenced since
 * the hand last passed it (a fault on it, the monitor saw it written or
 * touched, a prefetched page found mapped) gets a second chance.
 *
 * Page states, a byte per page, changed only by compare-and-swap from
 * the state the mover expects; who may make which move:
 *
 *   HOLE      not in the memfd nor in the store: never evicted, or
 *             given back (pager_discard()); the first touch is a zero
 *             page                    fault thread: -> FETCHING
 *   LOCAL     in the memfd            evictor: -> EVICTING
 *                                     fault thread: -> BUSY
 *   EVICTING  in the memfd, write-protected, being copied out and put;
 *             reads go on             evictor: -> PUNCHING (put done),
 *                                              -> LOCAL (put failed)
 *                                     fault thread, on a write: -> BUSY
 *                                              (cancels the eviction)
 *   PUNCHING  stored, being punched   evictor: -> REMOTE or ZERO
 *   REMOTE    only in the store       fault thread: -> FETCHING
 *   ZERO      punched, was all zero   fault thread: -> FETCHING
 *   FETCHING  a fault thread fills it in; other faults on the page leave
 *             it to that thread, whose UFFDIO_COPY or wake-up releases
 *             them                    that thread: -> LOCAL, -> REMOTE
 *                                              (gave up), -> FAILED
 *   BUSY      a fault thread lifts a write protection, or zero-fills a
 *             hole punched behind the pager's back; or pager_discard()
 *             punches and drops a page the guest gave back; the evictor
 *             keeps off               that thread: -> LOCAL
 *                                     pager_discard(): -> HOLE
 *   FAILED    lost or corrupt in the store: the VM was stopped, the page
 *             is refused (uffd_ram_refuse(): poisoned, or fenced where
 *             the kernel has no poison; a thread touching it gets SIGBUS,
 *             a syscall or KVM_RUN EFAULT), never given made-up data
 *                                                        final
 *
 * Why a concurrent write is never lost: the evictor write-protects a
 * page (EVICTING) before copying it, so any later write faults first;
 * the fault thread moves the page EVICTING -> BUSY before it lifts the
 * protection, and the evictor punches only the pages it can still move
 * EVICTING -> PUNCHING after the put succeeded (a cancelled page's stored
 * copy is dropped).  A write that faults on a PUNCHING page waits until
 * it is REMOTE and is then woken: its retry faults the stored copy, which
 * is the content the protection kept, back in.  The sampler's write
 * protections (memory/ref_sample.h) are lifted through BUSY as well, so
 * lifting one cannot lift an eviction's; and the pages it revoked are
 * mapped back write-protected, through BUSY too (a minor fault on a page
 * being evicted cancels the eviction), so a mapping cannot either.  Read
 * the memfd with pread(), never through the mapping: the pager's threads
 * must not fault on guest RAM.
 *
 * Prefetch along a detected scan follows its direction and stride, a
 * full window, and once the fault is served the same thread reads the
 * next window ahead, all but its first page (the marker), whose fault
 * reads the window after: the scan finds its pages in place.  Else:
 * Prefetch: serving a fault also takes the next pages that are not in
 * the memfd (REMOTE ones in the same store request, runs of adjacent
 * pages merged; HOLE and ZERO ones allocated zeroed), in a window that
 * doubles (up to 64) while the pages prefetched last time were touched
 * and halves (down to 1) when most were not.  Prefetched pages go into
 * the memfd without being mapped, so a touch shows as a present page in
 * /proc/self/pagemap: that is how hits are counted (at the next fault,
 * when the page is considered for eviction, or by pager_settle()).
 * Faults on pages being prefetched wait for that one fetch.
 *
 * Pages the guest gives back (balloon inflate, free page reporting) go
 * through pager_discard(), which punches them itself: only the pager
 * knows which pages a fault thread is filling in (a punch then would
 * be undone by the fill, and the page counted resident) and which it is
 * evicting (a page punched under an eviction made its faults retry until
 * the put ended).  Every page it can claim (LOCAL, EVICTING, REMOTE,
 * ZERO -> BUSY; it waits out the microseconds of BUSY and PUNCHING)
 * leaves the resident, remote or zero count, is punched and dropped from
 * the store while still claimed (so that no later copy of the page can
 * be dropped by mistake), then becomes a HOLE: the next touch is a zero
 * page, no fetch.  A claimed EVICTING page cancels its eviction: the
 * evictor finds it no longer EVICTING, punches nothing and drops the
 * copy it put, if any, as stale; a fault on it waits for none of that.
 * Pages being fetched (a prefetch window over them) are left to their
 * fetcher, FAILED ones stay failed.
 *
 * Store trouble:
 *   -EAGAIN on a needed page (no copy reachable): the VM is paused
 *     (vm_request_pause(): the faulting vCPU cannot pause until served),
 *     the event callback says so once, the fetch is retried with a
 *     growing back-off (10 ms to 1 s) until it succeeds, which resumes
 *     the VM.  The faulting thread keeps waiting; it never gets zeros.
 *   -ENOENT, -EBADMSG (no copy opened: damaged, forged, swapped or an
 *     older version), any other error
 *     on a needed page: the VM is stopped with a host error naming the
 *     page (VM_EXIT_HOST_ERROR) and the page becomes FAILED.  A bad
 *     prefetched page is only left in the store (it fails when needed).
 *   A put that fails: the batch stays resident, the event callback says
 *     so once, and eviction retries with a back-off; faults then wait for
 *     room, so the limit holds.
 *   A replicating store whose pages fall short of their copies (memd: a
 *     server restarted) puts them back by itself; the evictor says so
 *     once when it notices, once when they are all back, and the stats
 *     carry the count (under_replicated).
 *   When the VM is ending (or the pager destroyed), a fault still
 *     waiting for an unreachable store is refused the same way: a device
 *     thread waiting there could not be stopped otherwise.
 * Both refusals release the waiting thread without data on every kernel
 * (uffd_ram.h says how, and why neither a wake alone nor a zero page
 * would do); a device thread that meets the SIGBUS survives it
 * (vm/ram_sigbus.h) and the VM ends with the pager's message, which
 * names the page.
 *
 * Lifetime: pager_create() attaches to the uffd before uffd_ram_start();
 * pager_start(), once the uffd runs and the kernel is loaded, takes the
 * resident pages from mincore() and starts the evictor; pager_destroy()
 * stops the evictor, gives up fetches in progress and detaches.  The
 * pager must outlive every thread that touches guest RAM (vCPUs, device
 * I/O threads; with vm_own(), own it before the devices), and the store
 * and the monitor (pager_set_monitor(NULL) first) must outlive it.
 *
 * Not covered: I/O that pins guest pages before transferring into them
 * (O_DIRECT) would lose what it wrote into a page evicted meanwhile; the
 * CLI refuses --mem-local with such disks.
 *
 * Threads: every function may be called from any thread; the stats are
 * readable at any time.
 */
#ifndef RACKVM_MEMORY_PAGER_H
#define RACKVM_MEMORY_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/page.h"
#include "vm/guest_mem.h"

struct page_store;
struct pager;
struct uffd_ram;
struct vm;
struct wss_monitor;

#define PAGER_DEFAULT_BATCH 256
#define PAGER_MAX_BATCH 1024
#define PAGER_DEFAULT_LOW_PCT 95
#define PAGER_MAX_PREFETCH 64
/* Below this the guest's own page tables and code can thrash. */
#define PAGER_MIN_LOCAL_PAGES 1024

enum pager_event_kind {
	PAGER_EVENT_UNREACHABLE,	/* a needed page: no copy reachable,
					 * the VM is paused */
	PAGER_EVENT_REACHABLE,		/* fetched again, the VM resumed */
	PAGER_EVENT_PAGE_LOST,		/* a needed page is lost or corrupt:
					 * the VM is stopped */
	PAGER_EVENT_EVICT_FAILED,	/* the store refused a put: eviction
					 * waits and retries */
	PAGER_EVENT_EVICT_RESUMED,
	PAGER_EVENT_COPIES_SHORT,	/* the store has pages short of their
					 * copies (a server lost or missed
					 * them), and puts them back */
	PAGER_EVENT_COPIES_BACK,	/* every page has its copies again */
};

struct pager_event {
	enum pager_event_kind kind;
	uint64_t page;		/* the page concerned */
	int error;		/* -errno, 0 for the good news */
	const char *store;	/* the store's description */
	const char *detail;	/* the reason, one line ("" if none) */
	uint64_t count;		/* COPIES_SHORT: pages short of copies */
};

struct pager_config {
	uint64_t local_pages;	/* resident limit; >= RAM pages: no eviction */
	unsigned batch;		/* pages per eviction batch */
	unsigned low_pct;	/* evict down to this % of the limit */
	unsigned max_prefetch;	/* largest prefetch window; 0: none */
	struct page_store *store;
	/* Paused while a needed page is unreachable, stopped when one is
	 * lost; NULL (tests): the event callback is all. */
	struct vm *vm;
	/* From any of the pager's threads; may be NULL. */
	void (*on_event)(void *opaque, const struct pager_event *ev);
	void *opaque;
};

void pager_config_defaults(struct pager_config *c);

#define PAGER_HIST_BUCKETS 32	/* bucket i: [2^i, 2^(i+1)) us; 0: < 2 us */

struct pager_stats {
	uint64_t ram_pages;
	uint64_t limit_pages;
	uint64_t resident;	/* in the memfd (or being filled in) */
	uint64_t remote;	/* only in the store */
	uint64_t zero;		/* punched, all zero */
	uint64_t failed;	/* lost: FAILED */
	uint64_t faults;	/* missing faults served */
	uint64_t fetches;	/* store get requests */
	uint64_t fetched_pages;	/* pages the gets brought */
	uint64_t prefetched;	/* pages taken beyond the faulting one */
	uint64_t prefetch_hits;	/* of those, seen touched */
	uint64_t evictions;	/* pages punched out */
	uint64_t cancelled;	/* evictions undone by a write */
	uint64_t clean_evictions;	/* of the evictions, pages unchanged
					 * since fetched: no put, their
					 * stored copy still held them */
	uint64_t puts;		/* store put requests */
	uint64_t bytes_in;	/* page bytes from the store */
	uint64_t bytes_out;	/* page bytes to the store */
	uint64_t unreachable;	/* fetches that found no copy reachable */
	uint64_t discarded;	/* resident, remote or zero pages given back */
	uint64_t under_replicated;	/* the store's pages short of copies
					 * (memd: being put back) */
	uint64_t store_pages;	/* pages the store holds (0: it does not say) */
	uint64_t store_lost;	/* the store's pages with no copy left */
	uint64_t left_in_place;	/* pages a migration left in the store
				 * (pager_handover_begin()), not copied */
	uint64_t fault_hist[PAGER_HIST_BUCKETS];	/* fault latency */
	uint64_t fault_us_sum;	/* the latencies of all faults, added up */
	/* Where the time goes, in us added up over the VM's life: */
	uint64_t room_wait_us;	/* faults waiting for the evictor to make room */
	uint64_t get_us;	/* store gets (faults and prefetch) */
	uint64_t put_us;	/* store puts (the evictor) */
	uint64_t evict_us;	/* the evictor's batches, puts included */
	uint64_t stall_us;	/* vCPUs paused by the evictor */
	uint64_t paused_batches;	/* eviction batches run with vCPUs paused */
	uint64_t fault_p50_us, fault_p90_us, fault_p99_us;
	unsigned prefetch_window;
};

int pager_create(const struct guest_mem *mem, struct uffd_ram *uffd,
		 const struct pager_config *cfg, struct pager **out,
		 struct errmsg *err);
int pager_start(struct pager *p, struct errmsg *err);
/* void * for vm_own(). */
void pager_destroy(void *p);

/* Victims from @m's hot/cold map from now on (NULL: CLOCK). */
void pager_set_monitor(struct pager *p, struct wss_monitor *m);
/* pager_set_monitor(p, NULL), shaped for vm_own(): owned after the
 * monitor, it runs before the monitor goes. */
void pager_forget_monitor(void *p);
/* Marks the pages set in either bitmap (memfd order, dirty_log.h)
 * referenced; shaped for wss_config.on_pages. */
void pager_note_pages(void *p, const uint64_t *written,
		      const uint64_t *touched);
/* ORs into @bitmap (memfd order) the pages brought in for the guest
 * since the last call (demand faults and their read-ahead: the working
 * set of a VM that pages, which the monitor's sample of resident pages
 * does not see), forgets them, and returns how many were not yet set in
 * @bitmap; shaped for wss_config.take_referenced. */
uint64_t pager_take_brought_in(void *p, uint64_t *bitmap);
/* The guest gave @n ranges of pages back (see above); shaped for
 * virtio_balloon_set_discard().  0, or -EINVAL (nothing done) if a range
 * is outside guest RAM, -EBUSY (nothing done) while a migration holds
 * the pager (pager_handover_begin() to cancel, pager_import() to
 * commit), or -errno if a punch failed (those pages stay as they were). */
int pager_discard(void *p, const struct page_range *ranges, size_t n);
/* Changes the resident limit (the evictor follows). */
void pager_set_limit(struct pager *p, uint64_t local_pages);

void pager_get_stats(struct pager *p, struct pager_stats *st);

/*
 * Migration with the remote pages left in place (issue 16;
 * migrate/pagemap.h, remote/store_handover.h).  In order:
 *
 * Source, VM paused: pager_handover_begin() freezes the pager (no
 * eviction, no fetch in flight; a fault that comes in waits), tells the
 * store (BEGIN) and appends the page map with the store's credentials
 * to @blob: resident pages SEND, all-zero and never-touched ZERO,
 * stored ones REMOTE if the store can hand over (memd), else SEND
 * (file, memcached: pager_read_page() gets them).  @st says what is
 * left in place; with @map, the map itself (m->kind[page] ==
 * PAGEMAP_SEND: the stream must carry it) for the caller to
 * pagemap_free().  -ETIMEDOUT if the pager does not come to rest within
 * 10 s, -EIO for a page lost in the store, -errno from the store; on
 * failure the pager is as before.  Then, once the migration:
 *   failed before GO:  pager_handover_cancel(): as if nothing happened;
 *   sent GO:           pager_handover_release(): the store lets go of
 *                      its namespace (not dropped at its end) and the
 *                      pager stays frozen until destroyed.
 * While frozen, pager_read_page() reads any page without faulting.
 *
 * Destination: pagemap_load(), pagemap_open_store() (the pager's
 * cfg.store), pager_create(), then pager_import() before pager_start():
 * REMOTE pages start remote at their generation (the first touch
 * fetches them), ZERO ones are holes, SEND ones arrive through the
 * stream.  Until pager_handover_commit() (once the source said GO) the
 * pager puts nothing in the store (no eviction: a fault that needs room
 * waits for the commit; the pages the stream brings are as many as were
 * resident on the source, within the limit) and the store does not drop the namespace at its end;
 * after it, both are the destination's own.
 */
struct pagemap;
struct state_buf;

struct pager_handover_stats {
	uint64_t pages_left;	/* REMOTE: not copied, read in place */
	uint64_t bytes_left;	/* the same in bytes ("saved N MiB") */
	uint64_t pages_send;	/* SEND: the stream carries them */
	uint64_t pages_zero;	/* ZERO: neither */
};

int pager_handover_begin(struct pager *p, struct state_buf *blob,
			 struct pagemap **map, struct pager_handover_stats *st,
			 struct errmsg *err);
void pager_handover_cancel(struct pager *p);
void pager_handover_release(struct pager *p);
/* While frozen: page @page's contents into @buf (PAGE_SIZE bytes): from
 * the memfd, the store, or zeros.  0 or -errno. */
int pager_read_page(struct pager *p, uint64_t page, void *buf,
		    struct errmsg *err);

int pager_import(struct pager *p, const struct pagemap *m,
		 struct errmsg *err);
/* 0, or -errno from the store (which then stays not ours). */
int pager_handover_commit(struct pager *p, struct errmsg *err);
/* Counts the prefetched pages touched since their last check (pagemap):
 * once at the end, before the last pager_get_stats(). */
void pager_settle(struct pager *p);

#endif
