// SPDX-License-Identifier: MIT
/*
 * Write and reference tracking on a real /dev/kvm, with hand-assembled
 * 32-bit guests that touch a known set of pages:
 *  - the dirty log (ring and bitmap) reports exactly the pages written;
 *  - full reference sampling reports exactly the pages read (plus the
 *    code page), and every page's content is intact afterwards;
 *  - teardown with rings mapped and the uffd registered, through
 *    vm_destroy(), is clean under ASan/LSan.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot/layout.h"
#include "harness.h"
#include "memory/dirty_log.h"
#include "memory/ref_sample.h"
#include "memory/wss_monitor.h"
#include "vm/vcpu.h"
#include "vm/vcpu_entry.h"
#include "vm/vm.h"

#define CODE_ADDR 0x100000ull
#define DATA_ADDR 0x200000ull
#define STRIDE 0x3000ull	/* every third page */
#define NTOUCH 37u
#define DONE_PORT 0x80
#define MEM_SIZE (16ull << 20)

/* Reads every page it will write, says so (out 0x80), waits for the host
 * to set GO, then writes them and says so again:
 * mov edi, DATA; mov ecx, NTOUCH; 1: mov eax, [edi]; add edi, STRIDE;
 * dec ecx; jnz 1b; out 0x80, al; 2: mov eax, [GO]; test eax, eax; jz 2b;
 * mov edi, DATA; mov ecx, NTOUCH;
 * 3: mov dword [edi], 0x5a5a5a5a; add edi, STRIDE; dec ecx; jnz 3b;
 * out 0x80, al; 4: cli; hlt; jmp 4b */
#define GO_ADDR (CODE_ADDR + 0x800)

/* one walk, reading (mov eax, [edi]), then out 0x80 */
#define READ_WALK \
	0xbf, 0x00, 0x00, 0x20, 0x00, \
	0xb9, NTOUCH, 0x00, 0x00, 0x00, \
	0x8b, 0x07, \
	0x81, 0xc7, 0x00, 0x30, 0x00, 0x00, \
	0x49, \
	0x75, 0xf5, \
	0xe6, DONE_PORT
#define HALT_FOREVER 0xfa, 0xf4, 0xeb, 0xfd	/* cli; hlt; jmp back */

static const uint8_t writer[] = {
	READ_WALK,
	0xa1, 0x00, 0x08, 0x10, 0x00,
	0x85, 0xc0,
	0x74, 0xf7,
	0xbf, 0x00, 0x00, 0x20, 0x00,
	0xb9, NTOUCH, 0x00, 0x00, 0x00,
	0xc7, 0x07, 0x5a, 0x5a, 0x5a, 0x5a,
	0x81, 0xc7, 0x00, 0x30, 0x00, 0x00,
	0x49,
	0x75, 0xf1,
	0xe6, DONE_PORT,
	HALT_FOREVER,
};
_Static_assert(GO_ADDR == 0x100800 && sizeof(writer) < 0x800,
	       "the writer's code reads GO from its own page, past its end");

static const uint8_t reader[] = { READ_WALK, HALT_FOREVER };

static void count_writes(void *opaque, unsigned vcpu_id, uint64_t offset,
			 uint8_t *data, unsigned len, bool is_write)
{
	(void)vcpu_id; (void)offset; (void)data; (void)len;
	if (is_write)
		__atomic_fetch_add((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Waits until the guest has said it is done @n times. */
static bool wait_count(uint64_t *counter, uint64_t n)
{
	/* ring-0 code is emulated slowly on this nested machine */
	for (int i = 0; i < 3000; i++) {
		if (__atomic_load_n(counter, __ATOMIC_RELAXED) >= n)
			return true;
		sleep_ms(10);
	}
	return false;
}

static bool wait_done(uint64_t *counter)
{
	return wait_count(counter, 1);
}

static const char *create_vm(struct vm *vm, enum vm_dirty_log dl,
			     const uint8_t *code, size_t len, uint64_t *counter)
{
	struct vm_config cfg = { .mem_size = MEM_SIZE, .ncpus = 1,
				 .dirty_log = dl };
	static struct errmsg err;

	if (access("/dev/kvm", R_OK | W_OK))
		return "no usable /dev/kvm";
	if (vm_create(vm, &cfg, &err))
		return err.text;
	if (bus_register(&vm->pio_bus, DONE_PORT, 1, count_writes, counter,
			 "done") ||
	    guest_mem_write(&vm->mem, CODE_ADDR, code, len)) {
		vm_destroy(vm);
		return "VM setup failed";
	}
	return NULL;
}

static int start(struct vm *vm)
{
	struct vcpu_entry entry = {
		.mode = VCPU_MODE_PROTECTED32,
		.rip = CODE_ADDR, .code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};

	return vm_start(vm, &entry, NULL);
}

static bool is_touched_page(uint64_t page)
{
	uint64_t first = DATA_ADDR >> 12;

	return page >= first && (page - first) % (STRIDE >> 12) == 0 &&
	       (page - first) / (STRIDE >> 12) < NTOUCH;
}

static void destroy_dirty_log(void *obj)
{
	dirty_log_destroy(obj);
}

static void destroy_ref_sample(void *obj)
{
	ref_sample_destroy(obj);
}

static void dirty_log_reports_exactly(enum vm_dirty_log mode)
{
	uint64_t counter = 0, npages = MEM_SIZE >> 12, found = 0;
	uint64_t *bitmap = calloc(bitmap_words(npages), 8);
	struct dirty_log *dl;
	struct errmsg err;
	const char *skip;
	struct vm vm;

	CHECK(bitmap != NULL);
	skip = create_vm(&vm, mode, writer, sizeof(writer), &counter);
	if (skip) {
		free(bitmap);
		SKIP(skip);
	}
	CHECK_EQ(vm.dirty_log, mode);
	CHECK_EQ(dirty_log_create(&vm, &dl, &err), 0);
	CHECK_EQ(vm_own(&vm, destroy_dirty_log, dl), 0);
	/* the host's writes (code) are not the guest's: nothing yet */
	CHECK_EQ(dirty_log_collect(dl, bitmap, &err), 0);
	CHECK_EQ(start(&vm), 0);
	/* The guest has read every page it will write.  Some kernels (Debian
	 * 12's 6.1) map a page writable on its first fault, a read too, and
	 * log it dirty then; this interval absorbs that, so the next one
	 * holds exactly the writes on any kernel. */
	CHECK(wait_count(&counter, 1));
	CHECK(dirty_log_collect(dl, bitmap, &err) >= 0);
	memset(bitmap, 0, bitmap_words(npages) * 8);
	CHECK_EQ(guest_mem_write(&vm.mem, GO_ADDR, &(uint32_t){ 1 }, 4), 0);
	CHECK(wait_count(&counter, 2));
	CHECK_EQ(dirty_log_collect(dl, bitmap, &err), NTOUCH);
	for (uint64_t p = 0; p < npages; p++) {
		if (!bitmap_test(bitmap, p))
			continue;
		found++;
		CHECK(is_touched_page(p));
	}
	CHECK_EQ(found, NTOUCH);
	/* and they were reported once: the next interval is empty */
	memset(bitmap, 0, bitmap_words(npages) * 8);
	CHECK_EQ(dirty_log_collect(dl, bitmap, &err), 0);
	vm_destroy(&vm);
	free(bitmap);
}

TEST(dirty_ring_reports_exactly_the_pages_written)
{
	dirty_log_reports_exactly(VM_DIRTY_LOG_RING);
}

TEST(dirty_bitmap_reports_exactly_the_pages_written)
{
	dirty_log_reports_exactly(VM_DIRTY_LOG_BITMAP);
}

static uint8_t pattern_of(uint64_t page)
{
	return (uint8_t)(page * 7 + 1);
}

TEST(full_sampling_sees_exactly_the_pages_read_and_loses_nothing)
{
	uint64_t counter = 0, npages = MEM_SIZE >> 12;
	uint64_t *touched = calloc(bitmap_words(npages), 8);
	uint8_t *page = malloc(4096);
	struct ref_sample_result res;
	struct ref_sample *rs;
	struct errmsg err;
	const char *skip;
	struct vm vm;
	int ret;

	CHECK(touched && page);
	if (ref_sample_probe(&err)) {
		free(touched);
		free(page);
		SKIP("userfaultfd minor faults on shmem unavailable");
	}
	skip = create_vm(&vm, VM_DIRTY_LOG_OFF, reader, sizeof(reader), &counter);
	if (skip) {
		free(touched);
		free(page);
		SKIP(skip);
	}
	/* a pattern in the pages the guest reads and in as many it does
	 * not, written by the host before any trapping */
	for (uint64_t p = DATA_ADDR >> 12; p < (DATA_ADDR >> 12) + 3 * NTOUCH; p++) {
		memset(page, pattern_of(p), 4096);
		CHECK_EQ(guest_mem_write(&vm.mem, p << 12, page, 4096), 0);
	}
	ret = ref_sample_create(&vm.mem, 42, &rs, &err);
	CHECK_EQ(ret, 0);
	CHECK_EQ(vm_own(&vm, destroy_ref_sample, rs), 0);
	CHECK_EQ(ref_sample_rotate(rs, REF_SAMPLE_ALL, NULL, NULL, &res, &err), 0);
	CHECK_EQ(res.sampled, 0);
	CHECK_EQ(ref_sample_arm(rs, &err), 0);
	CHECK_EQ(start(&vm), 0);
	CHECK(wait_done(&counter));
	CHECK_EQ(ref_sample_rotate(rs, 0, NULL, touched, &res, &err), 0);
	/* resident: the code page and the 3 * NTOUCH pattern pages */
	CHECK_EQ(res.population, 3 * NTOUCH + 1);
	CHECK_EQ(res.sampled, 3 * NTOUCH + 1);
	CHECK_EQ(res.touched, NTOUCH + 1);
	CHECK_EQ(res.touched_unwritten, NTOUCH + 1);
	for (uint64_t p = 0; p < npages; p++)
		CHECK_EQ(bitmap_test(touched, p),
			 is_touched_page(p) || p == CODE_ADDR >> 12);
	/* every byte is still there, read through the revoked mapping */
	for (uint64_t p = DATA_ADDR >> 12; p < (DATA_ADDR >> 12) + 3 * NTOUCH; p++) {
		const uint8_t *hva = guest_mem_ptr(&vm.mem, p << 12, 4096);

		for (unsigned i = 0; i < 4096; i++)
			CHECK_EQ(hva[i], pattern_of(p));
	}
	vm_destroy(&vm);
	free(touched);
	free(page);
}

static void count_points(void *opaque, const struct wss_point *p)
{
	(void)p;
	__atomic_fetch_add((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
}

TEST(wss_monitor_runs_both_modes_and_tears_down_cleanly)
{
	struct wss_cold_region cold[4];
	uint64_t counter = 0, points = 0;
	struct wss_monitor *m;
	struct wss_config cfg;
	struct errmsg err;
	const char *skip;
	struct vm vm;

	if (ref_sample_probe(&err))
		SKIP("userfaultfd minor faults on shmem unavailable");
	skip = create_vm(&vm, VM_DIRTY_LOG_AUTO, writer, sizeof(writer), &counter);
	if (skip)
		SKIP(skip);
	wss_config_defaults(&cfg);
	cfg.interval_ns = 20000000;
	cfg.full = true;
	cfg.on_interval = count_points;
	cfg.opaque = &points;
	CHECK_EQ(wss_monitor_create(&vm, &cfg, &m, &err), 0);
	CHECK_EQ(vm_own(&vm, wss_monitor_destroy, m), 0);
	CHECK_EQ(wss_monitor_start(m, &err), 0);
	CHECK_EQ(start(&vm), 0);
	/* the writer reads its pages, then writes them once told to: kernels
	 * that do not log a read fault as a write see only the writes */
	CHECK(wait_count(&counter, 1));
	CHECK_EQ(guest_mem_write(&vm.mem, GO_ADDR, &(uint32_t){ 1 }, 4), 0);
	CHECK(wait_count(&counter, 2));
	/* two more intervals: the one holding the writes has ended */
	uint64_t seen = __atomic_load_n(&points, __ATOMIC_RELAXED) + 2;

	for (int i = 0; i < 500 && __atomic_load_n(&points, __ATOMIC_RELAXED) < seen; i++)
		sleep_ms(10);
	CHECK(__atomic_load_n(&points, __ATOMIC_RELAXED) >= seen);
	CHECK_EQ(wss_monitor_coldest(m, cold, 4), 4);
	/* the guest's data region was written: it is not among the coldest */
	for (int i = 0; i < 4; i++)
		CHECK(cold[i].index != DATA_ADDR >> 21);
	/* vm_destroy stops the vCPU (it may sit in a trapped fault), then
	 * the monitor, the uffd, the rings */
	vm_destroy(&vm);
}
