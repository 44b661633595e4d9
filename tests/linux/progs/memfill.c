// SPDX-License-Identifier: MIT
/*
 * memfill MIB PASSES [HOLD_FILE]: the Linux test guest's memory integrity
 * check.  Fills MIB MiB of anonymous memory with a pattern that names each
 * page, the pass and a per-run seed, then reads every page back, PASSES
 * times (each pass writes a new pattern, so a page that comes back from
 * an older pass, or zeroed, is caught); PASSES "Ns": as many passes as
 * fit in N seconds (at least one), to hold a working set for a while.  With HOLD_FILE, after the last
 * pass it prints "memfill: filled" and waits until HOLD_FILE exists,
 * then checks everything once more: the data must survive whatever the
 * host did meanwhile (a balloon inflated and deflated around it).
 *
 * Output (stdout, one line each):
 *   memfill: start mib=M passes=P pages=N
 *   memfill: pass=I bad=B seconds=S          per pass (timed: the first)
 *   memfill: filled                          with HOLD_FILE
 *   memfill: bad page I word W is X, expected Y   the first few bad pages
 *   memfill: done mib=M passes=P bad=B seconds=S
 * Exit status: 0 if no page was bad, 1 if one was, 2 on a usage or
 * allocation error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define WORDS (PAGE / sizeof(uint64_t))
#define REPORT_MAX 8

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every word differs from page to page, pass to pass and run to run;
 * none is zero, so a page that comes back zeroed is caught. */
static uint64_t word_of(uint64_t page, unsigned word, unsigned pass,
			uint64_t seed)
{
	uint64_t x = seed ^ (page << 20) ^ ((uint64_t)word << 8) ^ pass;

	x *= 0x9e3779b97f4a7c15ull;
	return (x ^ (x >> 31)) | 1;
}

static void fill(uint64_t *mem, uint64_t pages, unsigned pass, uint64_t seed)
{
	for (uint64_t p = 0; p < pages; p++)
		for (unsigned w = 0; w < WORDS; w++)
			mem[p * WORDS + w] = word_of(p, w, pass, seed);
}

static uint64_t verify(const uint64_t *mem, uint64_t pages, unsigned pass,
		       uint64_t seed, unsigned *reported)
{
	uint64_t bad = 0;

	for (uint64_t p = 0; p < pages; p++) {
		for (unsigned w = 0; w < WORDS; w++) {
			uint64_t want = word_of(p, w, pass, seed);
			uint64_t got = mem[p * WORDS + w];

			if (got == want)
				continue;
			if (*reported < REPORT_MAX) {
				printf("memfill: bad page %llu word %u is 0x%016llx, expected 0x%016llx\n",
				       (unsigned long long)p, w,
				       (unsigned long long)got,
				       (unsigned long long)want);
				(*reported)++;
			}
			bad++;
			break;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
	char *unit = NULL;
	unsigned passes = argc > 2 ? (unsigned)strtoul(argv[2], &unit, 0) : 0;
	double for_s = unit && *unit == 's' ? passes : 0;
	const char *hold = argc > 3 ? argv[3] : NULL;
	uint64_t pages = (uint64_t)mib * (1024 * 1024 / PAGE), bad = 0;
	uint64_t seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
	unsigned reported = 0, pass;
	double t0 = now_s();
	uint64_t *mem;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || argc > 4 || !mib || !passes) {
		fprintf(stderr, "usage: memfill MIB PASSES [HOLD_FILE]\n");
		return 2;
	}
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("memfill: mmap");
		return 2;
	}
	printf("memfill: start mib=%lu passes=%u pages=%llu\n", mib, passes,
	       (unsigned long long)pages);
	if (for_s)
		passes = UINT32_MAX;
	for (pass = 1; pass <= passes; pass++) {
		double ts = now_s();
		uint64_t b;

		fill(mem, pages, pass, seed);
		b = verify(mem, pages, pass, seed, &reported);
		bad += b;
		/* timed: the first pass only, the console is slow */
		if (!for_s || pass == 1)
			printf("memfill: pass=%u bad=%llu seconds=%.2f\n", pass,
			       (unsigned long long)b, now_s() - ts);
		if (for_s && now_s() - t0 >= for_s)
			passes = pass;
	}
	if (pass > passes)
		pass = passes;
	if (hold) {
		printf("memfill: filled\n");
		while (access(hold, F_OK))
			usleep(100000);
		bad += verify(mem, pages, pass, seed, &reported);
	}
	printf("memfill: done mib=%lu passes=%u bad=%llu seconds=%.2f\n", mib,
	       passes, (unsigned long long)bad, now_s() - t0);
	munmap(mem, pages * PAGE);
	return bad ? 1 : 0;
}
