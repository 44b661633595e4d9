// SPDX-License-Identifier: MIT
/*
 * blkbench: block I/O through the virtio-blk driver, from ring 3.
 *   mode=seqread|randread    read ops blocks (sequential from block 0, or
 *                            uniformly random within span blocks)
 *   mode=seqwrite|randwrite  write ops pattern blocks
 *   mode=verify              write blocks 0..ops-1, flush, read them all
 *                            back and check every byte
 * with bs-byte blocks and up to depth requests in flight.
 *
 * Block layout (little-endian 64-bit words), so that the host can check
 * the image afterwards (tests/integration/test_virtio_qemu.sh):
 *   word 0         BLOCK_MAGIC ("rackvmbk")
 *   word 1         block number (byte offset / bs)
 *   word 2         seed
 *   words 3..n-2   splitmix64(seed << 32 ^ block * GOLDEN + i)
 *   word n-1       checksum: c = 0xcbf29ce484222325, then for every
 *                  earlier word w: c = (c ^ w) * 0x100000001b3
 * Every block read that carries the magic is checked (number and
 * checksum; in verify mode the seed and every word too); "valid" counts
 * them and "sum" adds up their checksums, so a seqread over what verify
 * wrote reports verify's sum.
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

#define BLOCK_MAGIC	0x6b626d766b636172ull	/* "rackvmbk" */
#define GOLDEN		0x9e3779b97f4a7c15ull
#define FNV_OFFSET	0xcbf29ce484222325ull
#define FNV_PRIME	0x100000001b3ull
#define MAX_BS		(1u << 20)
#define MAX_DEPTH	128

enum blk_mode { SEQREAD, RANDREAD, SEQWRITE, RANDWRITE, VERIFY };
static const char *const mode_names[] = {
	"seqread", "randread", "seqwrite", "randwrite", "verify"
};

static struct virtio_blk blk;

struct bench {
	enum blk_mode mode;
	uint32_t bs;
	uint64_t seed;
	uint64_t span;		/* blocks random I/O picks from */
	uint64_t rng;
	uint64_t valid;		/* blocks read that carry the pattern */
	uint64_t sum;		/* of their checksums */
	bool strict;		/* every block read must be valid, seed too */
};

struct slot {
	uint64_t *buf;
	uint64_t block;
	bool write;
};

static struct slot slots[MAX_DEPTH];

static uint64_t splitmix64(uint64_t x)
{
	x += GOLDEN;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t word_at(uint64_t seed, uint64_t block, uint64_t i)
{
	return splitmix64((seed << 32 ^ block * GOLDEN) + i);
}

static uint64_t checksum(const uint64_t *w, uint64_t nwords)
{
	uint64_t c = FNV_OFFSET, i;

	for (i = 0; i < nwords - 1; i++)
		c = (c ^ w[i]) * FNV_PRIME;
	return c;
}

static void fill_block(uint64_t *w, uint32_t bs, uint64_t block,
		       uint64_t seed)
{
	uint64_t n = bs / 8, i;

	w[0] = BLOCK_MAGIC;
	w[1] = block;
	w[2] = seed;
	for (i = 3; i < n - 1; i++)
		w[i] = word_at(seed, block, i);
	w[n - 1] = checksum(w, n);
}

static void check_block(struct bench *bn, const uint64_t *w, uint64_t block)
{
	uint64_t n = bn->bs / 8, i;

	if (w[0] != BLOCK_MAGIC) {
		GUEST_ASSERT_MSG(!bn->strict,
				 "blkbench: block %llu has no pattern "
				 "(word 0 is 0x%llx)",
				 (unsigned long long)block,
				 (unsigned long long)w[0]);
		return;
	}
	GUEST_ASSERT_MSG(w[1] == block,
			 "blkbench: block %llu holds block %llu's data",
			 (unsigned long long)block, (unsigned long long)w[1]);
	GUEST_ASSERT_MSG(w[n - 1] == checksum(w, n),
			 "blkbench: block %llu: bad checksum",
			 (unsigned long long)block);
	if (bn->strict) {
		GUEST_ASSERT_MSG(w[2] == bn->seed,
				 "blkbench: block %llu written with seed %llu",
				 (unsigned long long)block,
				 (unsigned long long)w[2]);
		for (i = 3; i < n - 1; i++)
			GUEST_ASSERT_MSG(w[i] == word_at(bn->seed, block, i),
					 "blkbench: block %llu word %llu is "
					 "0x%llx", (unsigned long long)block,
					 (unsigned long long)i,
					 (unsigned long long)w[i]);
	}
	bn->valid++;
	bn->sum += w[n - 1];
}

/* Block of the @i-th request of a pass. */
static uint64_t pick_block(struct bench *bn, bool random, uint64_t i)
{
	return random ? xorshift(&bn->rng) % bn->span : i;
}

/* Runs @ops requests (reads, or writes of the pattern) with up to
 * @depth in flight. */
static void run_pass(struct bench *bn, bool write, bool random, uint64_t ops,
		     unsigned int depth)
{
	uint64_t submitted = 0, completed = 0;
	uint32_t spb = bn->bs / VIRTIO_BLK_SECTOR_SIZE;
	unsigned int free_top = depth, i;
	struct slot *free_slots[MAX_DEPTH];
	struct slot *s;
	void *cookie;
	int st;

	for (i = 0; i < depth; i++)
		free_slots[i] = &slots[i];
	while (completed < ops) {
		while (submitted < ops && free_top &&
		       virtio_blk_room(&blk)) {
			s = free_slots[--free_top];
			s->block = pick_block(bn, random, submitted);
			s->write = write;
			if (write)
				fill_block(s->buf, bn->bs, s->block, bn->seed);
			st = virtio_blk_submit(&blk, write ? VIRTIO_BLK_T_OUT :
					       VIRTIO_BLK_T_IN,
					       s->block * spb, s->buf, bn->bs,
					       s);
			GUEST_ASSERT_MSG(st == 0, "blkbench: submit: %s",
					 virtio_strerror(st));
			submitted++;
		}
		virtio_blk_kick(&blk);
		st = virtio_blk_complete(&blk, &cookie);
		s = cookie;
		GUEST_ASSERT_MSG(st == VIRTIO_BLK_S_OK,
				 "blkbench: %s of block %llu: %s",
				 s && s->write ? "write" : "read",
				 s ? (unsigned long long)s->block : 0ull,
				 virtio_blk_status_name(st));
		if (!s->write)
			check_block(bn, s->buf, s->block);
		free_slots[free_top++] = s;
		completed++;
	}
}

static enum blk_mode parse_mode(const char *s)
{
	unsigned int i;

	if (!s)
		return RANDREAD;
	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(s, mode_names[i]))
			return i;
	}
	guest_assert_fail(__FILE__, __LINE__,
			  "blkbench: mode=%s, expected seqread, randread, "
			  "seqwrite, randwrite or verify", s);
}

/* Gives each slot a bs-byte buffer from free RAM. */
static void place_buffers(uint32_t bs, unsigned int depth)
{
	static struct mem_range ranges[MAX_FREE_RANGES];
	unsigned int n = free_ram_ranges(ranges), r, i;

	for (r = 0; r < n; r++) {
		if (ranges[r].end - ranges[r].start >= (uint64_t)bs * depth)
			break;
	}
	GUEST_ASSERT_MSG(r < n, "blkbench: no %llu bytes of free RAM",
			 (unsigned long long)bs * depth);
	for (i = 0; i < depth; i++)
		slots[i].buf = (uint64_t *)(uintptr_t)(ranges[r].start +
						       (uint64_t)i * bs);
}

static void blkbench_run(const struct cmdline *c)
{
	struct bench bn = { 0 };
	uint64_t ops = cmdline_u64(c, "ops", 1024);
	uint64_t depth = cmdline_u64(c, "depth", 16);
	uint64_t blocks, requests, t0, ns, bytes;
	int err;

	bn.mode = parse_mode(cmdline_get(c, "mode"));
	bn.bs = cmdline_u64(c, "bs", 4096);
	bn.seed = cmdline_u64(c, "seed", 1);
	bn.rng = splitmix64(bn.seed);
	GUEST_ASSERT_MSG(bn.bs >= 512 && bn.bs <= MAX_BS && !(bn.bs % 512),
			 "blkbench: bs=%u must be a multiple of 512 up to %u",
			 bn.bs, MAX_BS);
	GUEST_ASSERT_MSG(depth >= 1 && depth <= MAX_DEPTH,
			 "blkbench: depth must be 1..%d", MAX_DEPTH);
	GUEST_ASSERT_MSG(ops > 0, "blkbench: ops must be > 0");

	err = virtio_blk_init(&blk, c, 0);
	GUEST_ASSERT_MSG(err == 0, "blkbench: virtio-blk: %s",
			 virtio_strerror(err));
	blocks = blk.capacity * VIRTIO_BLK_SECTOR_SIZE / bn.bs;
	uart_printf("blkbench: capacity %llu sectors (%llu blocks of %u), "
		    "queue %u%s%s%s\n", (unsigned long long)blk.capacity,
		    (unsigned long long)blocks, bn.bs, blk.vq.size,
		    blk.vq.indirect ? ", indirect" : "",
		    blk.vq.event_idx ? ", event_idx" : "",
		    blk.read_only ? ", read-only" : "");
	bn.span = cmdline_u64(c, "span", blocks);
	GUEST_ASSERT_MSG(bn.span >= 1 && bn.span <= blocks,
			 "blkbench: span=%llu, the disk has %llu blocks",
			 (unsigned long long)bn.span,
			 (unsigned long long)blocks);
	if (bn.mode == SEQREAD || bn.mode == SEQWRITE || bn.mode == VERIFY)
		GUEST_ASSERT_MSG(ops <= blocks,
				 "blkbench: ops=%llu, the disk has %llu blocks",
				 (unsigned long long)ops,
				 (unsigned long long)blocks);
	place_buffers(bn.bs, depth);
	tsc_hz();		/* calibrate outside the timed part */

	requests = ops;
	t0 = rdtsc();
	switch (bn.mode) {
	case SEQREAD:
	case RANDREAD:
		run_pass(&bn, false, bn.mode == RANDREAD, ops, depth);
		break;
	case SEQWRITE:
	case RANDWRITE:
		run_pass(&bn, true, bn.mode == RANDWRITE, ops, depth);
		break;
	case VERIFY:
		bn.strict = true;
		run_pass(&bn, true, false, ops, depth);
		err = virtio_blk_flush(&blk);
		GUEST_ASSERT_MSG(err == VIRTIO_BLK_S_OK,
				 "blkbench: flush: %s",
				 virtio_blk_status_name(err));
		run_pass(&bn, false, false, ops, depth);
		GUEST_ASSERT_EQ(bn.valid, ops);
		requests = 2 * ops;
		break;
	}
	ns = tsc_to_ns(rdtsc() - t0);
	bytes = requests * bn.bs;

	/* Writes are reported durable: flush them outside the timing. */
	if (bn.mode == SEQWRITE || bn.mode == RANDWRITE) {
		err = virtio_blk_flush(&blk);
		GUEST_ASSERT_MSG(err == VIRTIO_BLK_S_OK,
				 "blkbench: flush: %s",
				 virtio_blk_status_name(err));
	}
	guest_result("blkbench mode=%s ops=%llu seconds=" SECONDS_FMT
		     " iops=%llu mb_per_s=%llu.%02llu bs=%u depth=%llu "
		     "valid=%llu sum=0x%016llx notifies=%llu",
		     mode_names[bn.mode], (unsigned long long)ops,
		     SECONDS_ARGS(ns),
		     (unsigned long long)rate_per_sec(requests, ns),
		     (unsigned long long)(rate_per_sec(bytes, ns) / 1000000),
		     (unsigned long long)(rate_per_sec(bytes, ns) / 10000 % 100),
		     bn.bs, (unsigned long long)depth,
		     (unsigned long long)bn.valid,
		     (unsigned long long)bn.sum,
		     (unsigned long long)blk.vq.notifies);
	guest_done(0);
}

static const char *const blkbench_params[] = {
	"ops", "mode", "bs", "seed", "depth", "span", NULL
};

const struct workload workload_blkbench = {
	.name = "blkbench",
	.usage = "ops=N mode=seqread|randread|seqwrite|randwrite|verify "
		 "bs=4096 depth=16 seed=S span=BLOCKS",
	.params = blkbench_params,
	.run = blkbench_run,
};
