/* SPDX-License-Identifier: MIT */
/*
 * virtio-balloon, the traditional memory balloon (virtio 1.2 §5.5).
 *
 * Queues: 0 inflateq, 1 deflateq, 2 statsq (STATS_VQ is always offered),
 * then reporting_vq when free page reporting is enabled.  The spec
 * numbers the queues by feature (free_page_vq 3 would sit before
 * reporting_vq, but FREE_PAGE_HINT is never offered), and drivers differ
 * on whether an absent queue keeps its number: QEMU's numbering (and the
 * bundled guest's) follows what the device offers, so reporting_vq is 3;
 * Linux's virtio-mmio numbers only the queues it sets up, which is also
 * 3 since Linux always takes STATS_VQ.  A driver that declines STATS_VQ
 * but takes PAGE_REPORTING may use either 2 or 3: both are served as
 * reporting_vq then.
 *
 * Inflate: every page the driver puts in the balloon is given back to
 * the host at once: its range of the guest RAM memfd is hole-punched
 * (contiguous PFNs batched into one fallocate), so the VMM's RSS drops
 * and the page reads back as zeroes if the guest touches it again.  A
 * request naming any PFN that is not guest RAM is ignored as a whole
 * (no page of it is discarded, the buffer is completed, the request is
 * counted as bad): a buggy or hostile driver cannot make rackvm touch
 * host memory outside the guest, and the rest of the VM keeps running.
 * Deflate: nothing to do on the host (the holes fill on the next touch);
 * the pages are counted.  With a discard hook (virtio_balloon_set_discard:
 * the pager, when one keeps guest RAM) the pages given back go to the
 * hook, which punches them, instead of being punched here.
 *
 * MUST_TELL_HOST is always offered: the driver then deflates (and waits
 * for the device) before reusing a page, so a page the guest uses again
 * can never be one whose inflate request is still in flight and about to
 * be discarded.  DEFLATE_ON_OOM (optional) lets the driver deflate under
 * memory pressure without a new target; the device has nothing to do.
 *
 * Statistics: the driver posts one buffer of 10-byte entries (le16 tag,
 * le64 value); the device keeps the buffer and returns it (used, 0
 * bytes) when it wants fresh figures, periodically and whenever
 * virtio_balloon_request_stats() is called.  Free page reporting: every
 * page-aligned page of every buffer is hole-punched, then the buffer is
 * completed (Linux and QEMU use device-writable buffers; readable ones
 * are accepted too: the guest owns those pages either way).
 *
 * Threads: the target, `actual', the counters and the last statistics
 * may be read and the target set from any thread.
 */
#ifndef RACKVM_VIRTIO_BALLOON_H
#define RACKVM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/page.h"
#include "vm/vm.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

#define VIRTIO_BALLOON_CFG_NUM_PAGES 0
#define VIRTIO_BALLOON_CFG_ACTUAL 4
#define VIRTIO_BALLOON_CONFIG_SIZE 8

#define VIRTIO_BALLOON_PFN_SHIFT 12
#define VIRTIO_BALLOON_PAGE_SIZE (1u << VIRTIO_BALLOON_PFN_SHIFT)

#define VIRTIO_BALLOON_Q_INFLATE 0
#define VIRTIO_BALLOON_Q_DEFLATE 1
#define VIRTIO_BALLOON_Q_STATS 2

/* Statistics tags we know by name (§5.5.6.3, and later Linux tags). */
#define VIRTIO_BALLOON_STAT_TAGS 16
#define VIRTIO_BALLOON_STAT_ENTRY 10		/* bytes: le16 tag, le64 val */
/* Entries parsed from one buffer; more are ignored. */
#define VIRTIO_BALLOON_STATS_MAX_ENTRIES 64

struct virtio_balloon_options {
	bool deflate_on_oom;
	bool free_page_reporting;
	/* How often the device asks for fresh statistics; 0: only on
	 * request.  Milliseconds. */
	unsigned stats_interval_ms;
};

struct virtio_balloon_stats {
	uint64_t val[VIRTIO_BALLOON_STAT_TAGS];
	uint32_t valid;		/* bit per tag present in the last buffer */
	unsigned unknown;	/* entries with a tag we do not know */
};

/*
 * Pure: parses @len bytes of statistics entries.  Trailing bytes that
 * do not make a whole entry and entries past
 * VIRTIO_BALLOON_STATS_MAX_ENTRIES are ignored; a tag seen twice keeps
 * its last value.  Returns the number of entries parsed.
 */
unsigned virtio_balloon_parse_stats(const uint8_t *buf, size_t len,
				    struct virtio_balloon_stats *out);
/* "swap_in", "mem_free", ...; NULL for a tag without a name. */
const char *virtio_balloon_stat_name(unsigned tag);

struct virtio_balloon_info {
	uint32_t target_pages;		/* num_pages */
	uint32_t actual_pages;		/* what the driver says it holds */
	uint64_t inflated_pages;	/* PFNs accepted by inflate requests */
	uint64_t deflated_pages;
	uint64_t discarded_bytes;	/* hole-punched: inflate + reporting */
	uint64_t reported_bytes;	/* free page reporting */
	uint64_t bad_requests;		/* ignored: a PFN outside guest RAM */
	uint64_t discard_errors;	/* fallocate failures */
	uint64_t stats_updates;		/* statistics buffers received */
	struct virtio_balloon_stats stats;
};

struct virtio_balloon;

/* Creates virtio-mmio device @index; @out (may be NULL) receives the
 * device, which the VM owns (valid until vm_destroy()). */
int virtio_balloon_create(struct vm *vm, unsigned index,
			  const struct virtio_balloon_options *opt,
			  struct virtio_balloon **out, struct errmsg *err);

/* Takes the pages the driver gives back (inflate, free page reporting):
 * @n ranges of whole pages, adjacent ones merged, a batch at a time; it
 * punches them out of guest RAM itself.  0 or -errno (then counted in
 * discard_errors).  Called from the device's I/O thread. */
typedef int (*virtio_balloon_discard_fn)(void *opaque,
					 const struct page_range *ranges,
					 size_t n);
/* Before the VM runs; @b must not outlive @opaque. */
void virtio_balloon_set_discard(struct virtio_balloon *b,
				virtio_balloon_discard_fn fn, void *opaque);
/* Sets num_pages and raises a config interrupt.  -EINVAL if @pages is
 * more than guest RAM.  Any thread. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* Asks the driver for fresh statistics (returns its buffer).  Any
 * thread; the answer arrives asynchronously. */
void virtio_balloon_request_stats(struct virtio_balloon *b);
void virtio_balloon_get_info(struct virtio_balloon *b,
			     struct virtio_balloon_info *out);
/* Pages of guest RAM (the largest possible target). */
uint64_t virtio_balloon_ram_pages(const struct virtio_balloon *b);
/* The guest's driver has set DRIVER_OK: a target can be followed. */
bool virtio_balloon_driver_ok(struct virtio_balloon *b);

#endif
