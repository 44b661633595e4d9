// SPDX-License-Identifier: MIT
#include "memory/ref_sample.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "memory/dirty_log.h"
#include "util/page.h"
#include "util/clock.h"


/* per-page sample state, a byte each, changed with atomics: the fault
 * threads move ARMED -> TOUCHED, the rotating thread resets */
enum { PAGE_IDLE = 0, PAGE_ARMED = 1, PAGE_TOUCHED = 2 };

struct ref_sample {
	const struct guest_mem *mem;
	uint64_t npages;
	struct uffd_ram *uffd;
	bool own_uffd;			/* created (and destroyed) here */
	bool attached;
	uint64_t faults;		/* atomic */

	/* rotating thread only */
	uint8_t *state;			/* npages bytes */
	unsigned char *resident;	/* mincore vector, npages bytes */
	uint32_t *sample;		/* pages armed in this interval */
	uint64_t nsample;
	uint32_t *untouched;		/* last sample's, to map back */
	uint64_t nuntouched;
	uint64_t population;
	uint64_t rng;			/* xorshift64* state */
};

int ref_sample_probe(struct errmsg *err)
{
	return uffd_ram_probe(UFFD_RAM_MINOR, err);
}

/* Any minor or write-protect fault on a sampled page is a reference.
 * Mapping the page back is uffd_ram's (write-protected where the kernel
 * allows, so that KVM does not log the read as a write); a write then
 * takes one more fault, whose protection is lifted. */
static void note_fault(void *opaque, uint64_t page, enum uffd_fault_kind kind)
{
	struct ref_sample *rs = opaque;
	uint8_t armed = PAGE_ARMED;

	(void)kind;
	if (page < rs->npages)
		__atomic_compare_exchange_n(&rs->state[page], &armed,
					    PAGE_TOUCHED, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	__atomic_fetch_add(&rs->faults, 1, __ATOMIC_RELAXED);
}

pthread_t ref_sample_fault_thread(const struct ref_sample *rs)
{
	return uffd_ram_thread(rs->uffd, 0);
}

static uint64_t thread_cpu_ns(pthread_t t)
{
	clockid_t id;

	return pthread_getcpuclockid(t, &id) ? 0 : clock_ns(id);
}

uint64_t ref_sample_fault_cpu_ns(const struct ref_sample *rs)
{
	if (rs->own_uffd && uffd_ram_nthreads(rs->uffd) == 1)
		return thread_cpu_ns(uffd_ram_thread(rs->uffd, 0));
	return uffd_ram_cpu_ns(rs->uffd, UFFD_FAULT_MINOR) +
	       uffd_ram_cpu_ns(rs->uffd, UFFD_FAULT_WP);
}

bool ref_sample_reads_look_written(const struct ref_sample *rs)
{
	return !uffd_ram_has_wp(rs->uffd);
}

static int attach(struct ref_sample *rs, struct errmsg *err)
{
	struct uffd_ram_user user = {
		.modes = UFFD_RAM_MINOR |
			 (uffd_ram_has_wp(rs->uffd) ? UFFD_RAM_WP : 0),
		.observe = UFFD_OBSERVE(UFFD_FAULT_MINOR) |
			   UFFD_OBSERVE(UFFD_FAULT_WP),
		.note = note_fault,
		.opaque = rs,
	};
	int ret = uffd_ram_attach(rs->uffd, &user, err);

	rs->attached = !ret;
	return ret;
}

static int sampler_alloc(const struct guest_mem *mem, uint64_t seed,
			 struct ref_sample **out, struct errmsg *err)
{
	struct ref_sample *rs;

	if (mem->hugetlb)
		return errmsg_set(err, -ENOTSUP,
				  "reference sampling needs 4 KiB guest pages (not --hugetlb)");
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return errmsg_set(err, -ENOMEM, "reference sampling: out of memory");
	rs->mem = mem;
	rs->npages = mem->size / PAGE_SIZE;
	rs->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	rs->state = calloc(rs->npages, 1);
	rs->resident = malloc(rs->npages);
	rs->sample = malloc(rs->npages * sizeof(*rs->sample));
	rs->untouched = malloc(rs->npages * sizeof(*rs->untouched));
	*out = rs;
	if (!rs->state || !rs->resident || !rs->sample || !rs->untouched)
		return errmsg_set(err, -ENOMEM, "reference sampling: out of memory");
	return 0;
}

int ref_sample_create(const struct guest_mem *mem, uint64_t seed,
		      struct ref_sample **out, struct errmsg *err)
{
	struct ref_sample *rs = NULL;
	int ret = sampler_alloc(mem, seed, &rs, err);

	if (!ret)
		ret = uffd_ram_create(mem, 1, &rs->uffd, err);
	if (!ret) {
		rs->own_uffd = true;
		ret = attach(rs, err);
	}
	if (!ret)
		ret = uffd_ram_start(rs->uffd, err);
	if (ret) {
		ref_sample_destroy(rs);
		return ret;
	}
	*out = rs;
	return 0;
}

int ref_sample_create_on(struct uffd_ram *uffd, const struct guest_mem *mem,
			 uint64_t seed, struct ref_sample **out,
			 struct errmsg *err)
{
	struct ref_sample *rs = NULL;
	int ret = sampler_alloc(mem, seed, &rs, err);

	if (!ret) {
		rs->uffd = uffd;
		ret = attach(rs, err);
	}
	if (ret) {
		ref_sample_destroy(rs);
		return ret;
	}
	*out = rs;
	return 0;
}

void ref_sample_destroy(struct ref_sample *rs)
{
	if (!rs)
		return;
	if (rs->attached)
		uffd_ram_detach(rs->uffd, rs);
	if (rs->own_uffd)
		uffd_ram_destroy(rs->uffd);
	free(rs->state);
	free(rs->resident);
	free(rs->sample);
	free(rs->untouched);
	free(rs);
}

static uint64_t next_random(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, bound) (bound > 0), by rejection: no modulo bias. */
static uint64_t random_below(uint64_t *s, uint64_t bound)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % bound, r;

	do
		r = next_random(s);
	while (r >= limit);
	return r % bound;
}

/*
 * Maps back the last sample's pages that were not touched.  Left revoked
 * they would each cost the guest a fault round trip whenever it next
 * touches them, intervals later, long after the sample that revoked them
 * was counted: a cold region the guest returns to would crawl.  Mapping
 * a page adds a PTE, which needs no MMU-notifier invalidation, but where
 * the kernel maps it writable and then write-protects it (before Linux
 * 6.5, uffd_ram.h) the protection is one, so this runs in ref_sample_arm()
 * with the vCPUs paused.  Pages touched meanwhile, punched (balloon,
 * pager) or being evicted are skipped (uffd_ram_map_back() asks the pager
 * when one runs).
 */
static void map_back_untouched(struct ref_sample *rs)
{
	uint64_t first = 0, len = 0;

	for (uint64_t i = 0; i < rs->nuntouched; i++) {
		uint32_t p = rs->untouched[i];

		/* in page order: merge neighbours */
		if (len && first + len == p) {
			len++;
			continue;
		}
		if (len)
			uffd_ram_map_back(rs->uffd, first, len);
		first = p;
		len = 1;
	}
	if (len)
		uffd_ram_map_back(rs->uffd, first, len);
	rs->nuntouched = 0;
}

static void collect(struct ref_sample *rs, const uint64_t *written,
		    uint64_t *touched, struct ref_sample_result *res)
{
	res->population = rs->population;
	res->sampled = rs->nsample;
	rs->nuntouched = 0;
	for (uint64_t i = 0; i < rs->nsample; i++) {
		uint32_t p = rs->sample[i];

		if (__atomic_exchange_n(&rs->state[p], PAGE_IDLE,
					__ATOMIC_RELAXED) != PAGE_TOUCHED) {
			rs->untouched[rs->nuntouched++] = p;
			continue;
		}
		res->touched++;
		if (!written || !bitmap_test(written, p))
			res->touched_unwritten++;
		if (touched)
			bitmap_set(touched, p);
	}
	rs->nsample = 0;
}

/* Selection sampling (Knuth's algorithm S): exactly n of the resident
 * pages, each subset equally likely, in page order, one pass. */
static void choose(struct ref_sample *rs, uint64_t n)
{
	uint64_t seen = 0;

	for (uint64_t p = 0; p < rs->npages && rs->nsample < n; p++) {
		if (!(rs->resident[p] & 1))
			continue;
		if (random_below(&rs->rng, rs->population - seen) <
		    n - rs->nsample)
			rs->sample[rs->nsample++] = (uint32_t)p;
		seen++;
	}
}

int ref_sample_arm(struct ref_sample *rs, struct errmsg *err)
{
	bool all = rs->nsample && rs->nsample == rs->population;
	uint8_t *base = rs->mem->base;

	/* revoking every page anyway: nothing to map back first */
	if (all)
		rs->nuntouched = 0;
	map_back_untouched(rs);
	for (uint64_t i = 0; i < rs->nsample; i++)
		__atomic_store_n(&rs->state[rs->sample[i]], PAGE_ARMED,
				 __ATOMIC_RELAXED);
	/* MADV_DONTNEED on a shared shmem mapping: PTEs go, pages stay
	 * (dirty bits move to the page), no content is lost */
	if (all) {
		if (madvise(base, rs->mem->size, MADV_DONTNEED) < 0)
			return errmsg_set(err, -errno, "madvise: %s", strerror(errno));
		return 0;
	}
	for (uint64_t i = 0; i < rs->nsample; i++)
		if (madvise(base + (uint64_t)rs->sample[i] * PAGE_SIZE, PAGE_SIZE,
			    MADV_DONTNEED) < 0)
			return errmsg_set(err, -errno, "madvise: %s", strerror(errno));
	return 0;
}

int ref_sample_rotate(struct ref_sample *rs, uint64_t n,
		      const uint64_t *written, uint64_t *touched,
		      struct ref_sample_result *res, struct errmsg *err)
{
	int thread_error = uffd_ram_error(rs->uffd);

	memset(res, 0, sizeof(*res));
	collect(rs, written, touched, res);
	res->faults = __atomic_load_n(&rs->faults, __ATOMIC_RELAXED);
	if (thread_error)
		return errmsg_set(err, thread_error, "userfaultfd read: %s",
				  strerror(-thread_error));

	/* which pages are RAM the guest has: page cache residency, holes
	 * (balloon, never touched) excluded */
	if (mincore(rs->mem->base, rs->mem->size, rs->resident) < 0)
		return errmsg_set(err, -errno, "mincore: %s", strerror(errno));
	rs->population = 0;
	for (uint64_t p = 0; p < rs->npages; p++)
		rs->population += rs->resident[p] & 1;
	if (n > rs->population)
		n = rs->population;
	choose(rs, n);
	return 0;
}
