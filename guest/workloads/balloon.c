// SPDX-License-Identifier: MIT
/*
 * balloon: follows the balloon device's target.  It polls num_pages and
 * inflates (free pages go to the device through inflateq and are never
 * touched again while there) or deflates (pages come back through
 * deflateq) in requests of up to 256 pages, writing `actual' after each,
 * until actual == target.  Each time a new target is reached it reports
 *   result: balloon actual=N target=N
 * and answers statistics requests all along.  It ends, with
 *   result: balloon done actual=N reached=K stats=S ...
 * after seconds=N (default 60), or linger_ms=M (default 2000) after the
 * targets=K-th target was reached, so that the host can still read what
 * the device saw.  The starting target of 0 does not count.
 *
 * verify=1: keep=P pages (default 256) are filled with a pattern before
 * anything else and checked at every reached target and at the end (the
 * balloon must not corrupt memory the guest keeps); every deflated page
 * is written and read back before it is reused.
 * report=1: first reports report_pages=P free pages (default 4096) through
 * the free page reporting queue, in runs of contiguous pages, then checks
 * they are still usable and counts those that read back as zeroes (the
 * device discarded them).
 */
#include "guest/io.h"
#include "guest/memory.h"
#include "guest/page_alloc.h"
#include "guest/platform.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_balloon.h"
#include "guest/workload.h"

#define POLL_NS			(1 * NSEC_PER_MSEC)
#define KEEP_MAX		4096
#define CHUNK_PFNS		((PAGE_SIZE - 16) / 8)

/* The balloon's pages, in chunks kept in pages of our own (never in a
 * balloon page: the device owns those). */
struct pfn_chunk {
	struct pfn_chunk *next;
	uint64_t n;
	uint64_t addr[CHUNK_PFNS];
};

_Static_assert(sizeof(struct pfn_chunk) <= PAGE_SIZE, "chunk fits a page");

static struct virtio_balloon bal;
static struct pfn_chunk *chunks;
static uint64_t batch[VIRTIO_BALLOON_PFNS_PER_REQ];
static uint64_t keep[KEEP_MAX];
static uint64_t nr_keep, verified_pages, deflated_checked;

static uint64_t page_word(uint64_t page, uint64_t i)
{
	return (page * 0x9e3779b97f4a7c15ull) ^ (i * 0x100000001b3ull) ^
	       0x6b626d766b636172ull;
}

static void fill_page(uint64_t page)
{
	volatile uint64_t *w = (volatile uint64_t *)page;
	uint64_t i;

	for (i = 0; i < PAGE_SIZE / 8; i++)
		w[i] = page_word(page, i);
}

static bool page_ok(uint64_t page)
{
	volatile uint64_t *w = (volatile uint64_t *)page;
	uint64_t i;

	for (i = 0; i < PAGE_SIZE / 8; i++) {
		if (w[i] != page_word(page, i))
			return false;
	}
	return true;
}

static bool page_zero(uint64_t page)
{
	volatile uint64_t *w = (volatile uint64_t *)page;
	uint64_t i;

	for (i = 0; i < PAGE_SIZE / 8; i++) {
		if (w[i])
			return false;
	}
	return true;
}

static void check_kept(void)
{
	uint64_t i;

	for (i = 0; i < nr_keep; i++)
		GUEST_ASSERT_MSG(page_ok(keep[i]), "balloon: kept page 0x%llx "
				 "lost its contents",
				 (unsigned long long)keep[i]);
	verified_pages += nr_keep;
}

static void update_stats(void)
{
	uint64_t free_bytes = page_alloc_free_pages() * PAGE_SIZE;

	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_SWAP_IN, 0);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_SWAP_OUT, 0);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_MAJFLT, 0);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_MINFLT, 0);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_MEMFREE, free_bytes);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_MEMTOT,
				platform.ram_bytes);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_AVAIL, free_bytes);
	virtio_balloon_set_stat(&bal, VIRTIO_BALLOON_S_CACHES, 0);
}

static bool push_pfn(uint64_t addr)
{
	struct pfn_chunk *ch = chunks;
	uint64_t page;

	if (!ch || ch->n == CHUNK_PFNS) {
		page = page_alloc();
		if (!page)
			return false;
		ch = (struct pfn_chunk *)page;
		ch->next = chunks;
		ch->n = 0;
		chunks = ch;
	}
	ch->addr[ch->n++] = addr;
	return true;
}

static uint64_t pop_pfn(void)
{
	struct pfn_chunk *ch = chunks;
	uint64_t addr;

	if (!ch || !ch->n)
		return 0;
	addr = ch->addr[--ch->n];
	if (!ch->n) {
		chunks = ch->next;
		page_free((uint64_t)(uintptr_t)ch);
	}
	return addr;
}

/* Inflates by up to @want pages; returns how many went in (0 when the
 * guest is out of free memory). */
static unsigned int inflate_some(uint32_t want)
{
	unsigned int n = 0, i;
	uint64_t page;
	int err;

	if (want > VIRTIO_BALLOON_PFNS_PER_REQ)
		want = VIRTIO_BALLOON_PFNS_PER_REQ;
	while (n < want) {
		page = page_alloc();
		if (!page)
			break;
		batch[n++] = page;
	}
	if (!n)
		return 0;
	err = virtio_balloon_inflate(&bal, batch, n);
	GUEST_ASSERT_MSG(err == 0, "balloon: inflate: %s",
			 virtio_strerror(err));
	for (i = 0; i < n; i++) {
		if (!push_pfn(batch[i])) {
			/* No page left for bookkeeping: give the rest back
			 * (telling the device first) rather than lose them. */
			err = virtio_balloon_deflate(&bal, batch + i, n - i);
			GUEST_ASSERT_MSG(err == 0, "balloon: deflate: %s",
					 virtio_strerror(err));
			for (; i < n; i++)
				page_free(batch[i]);
			return 0;
		}
	}
	return n;
}

static unsigned int deflate_some(uint32_t want, bool verify)
{
	unsigned int n = 0, i;
	int err;

	if (want > VIRTIO_BALLOON_PFNS_PER_REQ)
		want = VIRTIO_BALLOON_PFNS_PER_REQ;
	while (n < want && (batch[n] = pop_pfn()))
		n++;
	if (!n)
		return 0;
	err = virtio_balloon_deflate(&bal, batch, n);
	GUEST_ASSERT_MSG(err == 0, "balloon: deflate: %s",
			 virtio_strerror(err));
	for (i = 0; i < n; i++) {
		if (verify) {
			fill_page(batch[i]);
			GUEST_ASSERT_MSG(page_ok(batch[i]), "balloon: deflated "
					 "page 0x%llx does not hold what was "
					 "written", (unsigned long long)batch[i]);
			deflated_checked++;
		}
		page_free(batch[i]);
	}
	return n;
}

/* Reports @pages free pages in runs of contiguous pages, then takes them
 * back and checks that they work. */
#define MAX_RUNS 1024
#define RUN_MAX_BYTES (1u << 30)

static uint64_t run_addr[MAX_RUNS];
static uint32_t run_len[MAX_RUNS];

static void free_page_report(uint64_t pages)
{
	uint64_t zeroed = 0, i, page, end;
	unsigned int nr_runs = 0, r, n;
	int err;

	GUEST_ASSERT_MSG(bal.reporting, "balloon: report=1 but the device "
			 "did not offer PAGE_REPORTING");
	for (i = 0; i < pages; i++) {
		page = page_alloc();
		GUEST_ASSERT_MSG(page, "balloon: out of memory for report");
		/* Non-zero contents, so that a discard shows. */
		fill_page(page);
		if (nr_runs && run_addr[nr_runs - 1] + run_len[nr_runs - 1] ==
			       page && run_len[nr_runs - 1] < RUN_MAX_BYTES) {
			run_len[nr_runs - 1] += PAGE_SIZE;
			continue;
		}
		GUEST_ASSERT_MSG(nr_runs < MAX_RUNS, "balloon: free memory "
				 "in more than %u runs", MAX_RUNS);
		run_addr[nr_runs] = page;
		run_len[nr_runs++] = PAGE_SIZE;
	}
	for (r = 0; r < nr_runs; r += n) {
		n = nr_runs - r;
		if (n > VIRTIO_BALLOON_REPORT_BUFS)
			n = VIRTIO_BALLOON_REPORT_BUFS;
		err = virtio_balloon_report(&bal, run_addr + r, run_len + r, n);
		GUEST_ASSERT_MSG(err == 0, "balloon: report: %s",
				 virtio_strerror(err));
	}
	/* The device is done with them: they are ours again, whatever
	 * they now hold. */
	for (r = 0; r < nr_runs; r++) {
		end = run_addr[r] + run_len[r];
		for (page = run_addr[r]; page < end; page += PAGE_SIZE) {
			if (page_zero(page))
				zeroed++;
			fill_page(page);
			GUEST_ASSERT_MSG(page_ok(page), "balloon: reported "
					 "page 0x%llx is not usable afterwards",
					 (unsigned long long)page);
			page_free(page);
		}
	}
	guest_result("balloon report pages=%llu runs=%u requests=%llu "
		     "zeroed=%llu usable=%llu", (unsigned long long)pages,
		     nr_runs, (unsigned long long)bal.report_reqs,
		     (unsigned long long)zeroed, (unsigned long long)pages);
}

static void balloon_run(const struct cmdline *c)
{
	uint64_t seconds = cmdline_u64(c, "seconds", 60);
	uint64_t targets = cmdline_u64(c, "targets", 0);
	uint64_t linger_ns = cmdline_u64(c, "linger_ms", 2000) *
			     NSEC_PER_MSEC;
	bool verify = cmdline_u64(c, "verify", 0);
	uint64_t report_pages = cmdline_u64(c, "report_pages", 4096);
	uint64_t now, end, i, reached = 0;
	uint32_t target, actual = 0, last_reported = 0;
	bool short_said = false;
	int err;

	nr_keep = verify ? cmdline_u64(c, "keep", 256) : 0;
	GUEST_ASSERT_MSG(nr_keep <= KEEP_MAX, "balloon: keep must be <= %u",
			 KEEP_MAX);
	page_alloc_init();
	for (i = 0; i < nr_keep; i++) {
		keep[i] = page_alloc();
		GUEST_ASSERT_MSG(keep[i], "balloon: no memory for kept pages");
		fill_page(keep[i]);
	}
	update_stats();
	err = virtio_balloon_init(&bal, c, 0);
	GUEST_ASSERT_MSG(err == 0, "balloon: virtio-balloon: %s",
			 virtio_strerror(err));
	GUEST_PRINTF("balloon: features 0x%llx stats=%d reporting=%d "
		     "deflate_on_oom=%d free %llu of %llu pages",
		     (unsigned long long)bal.dev->features, bal.stats_vq,
		     bal.reporting, bal.deflate_on_oom,
		     (unsigned long long)page_alloc_free_pages(),
		     (unsigned long long)page_alloc_total_pages());
	if (cmdline_u64(c, "report", 0))
		free_page_report(report_pages);

	tsc_hz();
	now = rdtsc();
	end = now + ns_to_tsc(seconds * NSEC_PER_SEC);
	while (now < end) {
		update_stats();
		err = virtio_balloon_poll_stats(&bal);
		GUEST_ASSERT_MSG(err >= 0, "balloon: stats: %s",
				 virtio_strerror(err));
		target = virtio_balloon_target(&bal);
		if (target > actual) {
			uint32_t got = inflate_some(target - actual);

			if (got) {
				actual += got;
				virtio_balloon_set_actual(&bal, actual);
				continue;
			}
			/* Out of memory: hold where we are (with
			 * DEFLATE_ON_OOM the device knows we may). */
			if (!short_said)
				GUEST_PRINTF("balloon: out of memory at "
					     "actual=%u target=%u", actual,
					     target);
			short_said = true;
		} else if (target < actual) {
			actual -= deflate_some(actual - target, verify);
			virtio_balloon_set_actual(&bal, actual);
			continue;
		} else if (target != last_reported) {
			last_reported = target;
			short_said = false;
			if (verify)
				check_kept();
			guest_result("balloon actual=%u target=%u", actual,
				     target);
			if (targets && ++reached == targets) {
				uint64_t linger_end = rdtsc() +
						      ns_to_tsc(linger_ns);

				if (linger_end < end)
					end = linger_end;
			}
		}
		tsc_delay_ns(POLL_NS);
		now = rdtsc();
	}
	if (verify)
		check_kept();
	update_stats();
	guest_result("balloon done actual=%u reached=%llu stats=%llu "
		     "inflates=%llu deflates=%llu verified=%llu "
		     "deflated_checked=%llu", actual,
		     (unsigned long long)reached,
		     (unsigned long long)bal.stats_requests,
		     (unsigned long long)bal.inflate_reqs,
		     (unsigned long long)bal.deflate_reqs,
		     (unsigned long long)verified_pages,
		     (unsigned long long)deflated_checked);
	GUEST_ASSERT_MSG(!targets || reached >= targets,
			 "balloon: reached %llu of %llu targets in %llu s",
			 (unsigned long long)reached,
			 (unsigned long long)targets,
			 (unsigned long long)seconds);
	guest_done(0);
}

static const char *const balloon_params[] = {
	"seconds", "targets", "linger_ms", "verify", "keep", "report",
	"report_pages", NULL
};

const struct workload workload_balloon = {
	.name = "balloon",
	.usage = "seconds=N targets=K linger_ms=M verify=0|1 keep=P "
		 "report=0|1 report_pages=P: follows the balloon target",
	.params = balloon_params,
	.run = balloon_run,
};
