// SPDX-License-Identifier: MIT
/*
 * pagelost: a virtio-blk request whose guest memory the host has lost,
 * for tests/integration/test_pager.sh (rackvm run --mem-local with a
 * file: store the test corrupts).  The guest fills a buffer, pushes it
 * out to the page store by writing other memory, says where it is and
 * waits while the test corrupts those pages in the store, then makes the
 * device read them (the guest itself never touches them again):
 *   target=data    the data of a write: the device copies it to the
 *                  disk with pwritev (a syscall meets the page)
 *   target=header  request headers, one per buffer page, each with a
 *                  page of data: the device loads them (a load in the
 *                  device's I/O thread meets the page)
 *   pages=N        buffer pages (default 32, at most 64); the test
 *                  corrupts them all
 *   churn=M        MiB written after the buffer to push it out (default
 *                  48; several times --mem-local), page by page in a
 *                  scattered order: a sequential churn is a scan, which
 *                  the pager's scan resistance keeps from pushing the
 *                  other pages out (memory/scan_detect.h)
 *   wait_ms=T      the wait for the test (default 4000)
 * The buffer holds 0xa5 bytes: on the disk, nothing else may appear.
 *
 * Output: "pagelost: target=T gpa=0xADDR pages=N ready", after which
 * the host must stop the VM (it lost the page); if the request completes
 * instead, the guest fails.
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest/io.h"
#include "guest/memory.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_blk.h"
#include "guest/workload.h"

#define PAD_PAGES 128	/* untouched: beyond the pager's prefetch window */
#define FILL 0xa5
#define CHURN_FILL 0x5c
#define TIMEOUT_NS 30000000000ull
#define MAX_PAGES 64	/* a request each for header: within the queue */

static struct virtio_blk blk;
static struct mem_range ranges[MAX_FREE_RANGES];
static volatile uint8_t status[MAX_PAGES];

/* [pad][buffer][pad][churn] in the first free range that holds it. */
static uint8_t *find_room(uint64_t bytes)
{
	unsigned int n = free_ram_ranges(ranges), r;

	for (r = 0; r < n; r++)
		if (ranges[r].end - ranges[r].start >= bytes)
			return (uint8_t *)(uintptr_t)ranges[r].start;
	guest_assert_fail(__FILE__, __LINE__,
			  "pagelost: no free range of %llu bytes",
			  (unsigned long long)bytes);
}

/* Every page once, in the order of a prime stride (a permutation of
 * fewer than CHURN_STRIDE pages), far beyond any scan's. */
#define CHURN_STRIDE 1000003ull

static void churn(uint8_t *from, uint64_t bytes)
{
	uint64_t n = bytes / PAGE_SIZE, i, k;

	for (i = 0; i < n; i++) {
		uint64_t *w = (uint64_t *)(from + (i * CHURN_STRIDE % n) * PAGE_SIZE);

		for (k = 0; k < PAGE_SIZE / 8; k++)
			w[k] = CHURN_FILL * 0x0101010101010101ull ^ k;
	}
}

static void wait_ms(uint64_t ms)
{
	uint64_t end = rdtsc() + ms * (tsc_hz() / 1000);

	while (rdtsc() < end)
		asm volatile("pause");
}

/*
 * One OUT request per buffer page, each with its header in that page
 * and one page of data (@data) for sectors page * 8..: the device loads
 * the headers in order, and the first one in a page the host lost stops
 * the VM.  (Which pages the churn pushed out is the pager's business: a
 * few may still be resident, and their requests complete, writing the
 * guest's data where it asked.)
 */
static int write_with_headers_in(uint8_t *buf, uint64_t pages, uint8_t *data)
{
	uint64_t i;
	uint32_t len;
	int err = 0;

	for (i = 0; i < pages; i++) {
		uint8_t *hdr = buf + i * PAGE_SIZE;
		struct vq_buf bufs[3] = {
			{ (uintptr_t)hdr, sizeof(struct virtio_blk_req_hdr), false },
			{ (uintptr_t)data, PAGE_SIZE, false },
			{ (uintptr_t)&status[i], 1, true },
		};

		status[i] = 0xff;
		if (vq_add(&blk.vq, bufs, 3, (void *)&status[i]))
			return -1;
	}
	vq_kick(&blk.vq);
	for (i = 0; i < pages; i++)
		if (!vq_wait(&blk.vq, &len, TIMEOUT_NS, &err))
			return err;
	return status[pages - 1];
}

static void pagelost_run(const struct cmdline *c)
{
	const char *target = cmdline_get(c, "target");
	uint64_t pages = cmdline_u64(c, "pages", 32);
	uint64_t churn_bytes = cmdline_u64(c, "churn", 48) << 20;
	uint64_t ms = cmdline_u64(c, "wait_ms", 4000);
	bool header = target && !strcmp(target, "header");
	uint64_t len = pages * PAGE_SIZE;
	uint8_t *base, *buf;
	uint64_t i;
	int ret;

	GUEST_ASSERT_MSG(!target || header || !strcmp(target, "data"),
			 "pagelost: target=%s, expected data or header", target);
	GUEST_ASSERT_MSG(pages >= 1 && pages <= MAX_PAGES,
			 "pagelost: pages=%llu, expected 1 to %u",
			 (unsigned long long)pages, MAX_PAGES);
	GUEST_ASSERT_MSG(virtio_blk_init(&blk, c, 0) == 0,
			 "pagelost: no virtio-blk disk");
	GUEST_ASSERT_MSG(blk.capacity * VIRTIO_BLK_SECTOR_SIZE >= len,
			 "pagelost: the disk is smaller than %llu bytes",
			 (unsigned long long)len);
	tsc_hz();
	base = find_room((2 * PAD_PAGES + pages) * PAGE_SIZE + churn_bytes);
	buf = base + PAD_PAGES * PAGE_SIZE;
	memset(buf, FILL, len + PAGE_SIZE);	/* and the headers' data page */
	for (i = 0; header && i < pages; i++) {
		struct virtio_blk_req_hdr h = {
			.type = VIRTIO_BLK_T_OUT, .reserved = 0, .sector = i * 8,
		};

		memcpy(buf + i * PAGE_SIZE, &h, sizeof(h));
	}
	churn(buf + len + PAD_PAGES * PAGE_SIZE, churn_bytes);
	uart_printf("pagelost: target=%s gpa=0x%llx pages=%llu ready\n",
		    header ? "header" : "data", (unsigned long long)(uintptr_t)buf,
		    (unsigned long long)pages);
	wait_ms(ms);
	if (header)
		ret = write_with_headers_in(buf, pages, buf + len);
	else
		ret = virtio_blk_write(&blk, 0, buf, (uint32_t)len);
	guest_assert_fail(__FILE__, __LINE__,
			  "pagelost: the request completed (%d): the lost page "
			  "was not refused", ret);
}

static const char *const pagelost_params[] = {
	"target", "pages", "churn", "wait_ms", NULL
};

const struct workload workload_pagelost = {
	.name = "pagelost",
	.usage = "target=data|header pages=N churn=MiB wait_ms=T",
	.params = pagelost_params,
	.run = pagelost_run,
};
