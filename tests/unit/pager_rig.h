/* SPDX-License-Identifier: MIT */
/*
 * The pager's test rig (tests/unit/test_pager*.c): an in-memory page store
 * that logs every request and can fail, delay or corrupt on demand, and
 * guest RAM with its uffd, that store and a pager, plus the helpers the
 * tests share to write, verify and wait.  No VM: test_pager_vm.c adds one.
 */
#ifndef RACKVM_TESTS_PAGER_RIG_H
#define RACKVM_TESTS_PAGER_RIG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vm/guest_mem.h"
#include "memory/pager.h"
#include "memory/ref_sample.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"

#define PAGE 4096ull
#define LIMIT 1024u		/* pages: 4 MiB */

struct mem_req {
	char op;		/* 'p'ut, 'g'et, 'd'rop */
	uint64_t first;
	uint32_t count;
};

struct mem_store {
	struct page_store base;
	pthread_mutex_t lock;
	uint64_t npages;
	uint8_t *data;			/* as put: sealed */
	uint8_t *tags;
	uint8_t *held;
	struct mem_req *log;
	size_t nlog, cap;
	uint64_t zero_pages_put;
	/* failure injection: while fail_* is nonzero, that op returns it */
	int fail_get, fail_put;
	int put_delay_us;
};

struct events {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned count[PAGER_EVENT_COPIES_BACK + 1];
	uint64_t last_page;
	int last_error;
};

struct rig {
	struct guest_mem mem;
	struct uffd_ram *uffd;
	struct mem_store *store;
	struct pager *pager;
	struct events ev;
	uint64_t npages;
};

/* the store (mem_store_new()'s, freed by page_store_destroy()) */
struct mem_store *mem_store_new(uint64_t npages);
void store_set(struct mem_store *m, int *field, int value);
/* the rig: rig_init() returns NULL, or why the pager cannot run here
 * (the test skips); the helpers are commented where they are defined */
/* counts the pager's events into the rig's (pager_config.on_event) */
void rig_on_event(void *opaque, const struct pager_event *e);
bool wait_event(struct rig *r, enum pager_event_kind kind, unsigned n);
unsigned events_of(struct rig *r, enum pager_event_kind kind);
void rig_destroy(struct rig *r);
const char *rig_init(struct rig *r, uint64_t mem_mib, uint64_t limit,
		     unsigned threads, unsigned prefetch, bool sampler,
		     struct ref_sample **rs);
uint64_t word_of(uint64_t page, unsigned word, uint64_t gen);
bool write_pages(struct rig *r, uint64_t first, uint64_t n, uint64_t gen);
uint64_t verify_pages(struct rig *r, uint64_t first, uint64_t n,
		      uint64_t gen);
void rig_sleep_ms(unsigned ms);
bool settle_below(struct rig *r, uint64_t limit);
void wait_still(struct rig *r, struct pager_stats *st);
void quiesce(struct rig *r, struct pager_stats *st);
uint64_t memfd_resident(struct rig *r, uint64_t first, uint64_t n,
			uint64_t *outside);
bool accounted(struct rig *r, const struct pager_stats *st,
	       uint64_t first, uint64_t n, uint64_t slack);
uint64_t logged(struct mem_store *m, char op, uint32_t min_count);
uint64_t a_stored_page(struct mem_store *m, uint64_t first, uint64_t n);
ssize_t read_via_pipe(const void *addr, void *out, size_t len);

#endif
