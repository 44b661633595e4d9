// SPDX-License-Identifier: MIT
/*
 * One owner of KVM's dirty log, two readers, on a real /dev/kvm: the
 * working-set monitor's reader (memory/dirty_log.h, collecting all the
 * time on a thread of its own) and a migration's (vm_track_writes_*()),
 * while a hand-assembled guest rewrites a known set of pages pass after
 * pass.  After every pass each reader has exactly the pages written:
 * neither lost any to the other's harvests (each harvest re-arms the
 * pages it found, which the other reader has not seen yet), for the
 * ring, the bitmap, and a VM created without a log.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot/layout.h"
#include "harness.h"
#include "memory/dirty_log.h"
#include "vm/vcpu_entry.h"
#include "vm/vm.h"
#include "vm/vm_dirty.h"

#define CODE_ADDR 0x100000ull
#define DATA_ADDR 0x200000ull
#define STRIDE 0x3000ull	/* every third page */
#define NTOUCH 37u
#define DONE_PORT 0x80
#define MEM_SIZE (16ull << 20)
#define NPAGES (MEM_SIZE >> 12)
#define GO_ADDR (CODE_ADDR + 0x800)
#define PASSES 6u

/* Waits for [GO] to change, then writes its value into every page and
 * says so (out 0x80), forever:
 *	xor ebx, ebx
 * top:	mov eax, [GO]; cmp eax, ebx; je top; mov ebx, eax
 *	mov edi, DATA; mov ecx, NTOUCH
 * 1:	mov [edi], eax; add edi, STRIDE; dec ecx; jnz 1b
 *	out 0x80, al; jmp top */
static const uint8_t rewriter[] = {
	0x31, 0xdb,
	0xa1, 0x00, 0x08, 0x10, 0x00,
	0x39, 0xd8,
	0x74, 0xf7,
	0x89, 0xc3,
	0xbf, 0x00, 0x00, 0x20, 0x00,
	0xb9, NTOUCH, 0x00, 0x00, 0x00,
	0x89, 0x07,
	0x81, 0xc7, 0x00, 0x30, 0x00, 0x00,
	0x49,
	0x75, 0xf5,
	0xe6, DONE_PORT,
	0xeb, 0xdc,
};
_Static_assert(GO_ADDR == 0x100800 && sizeof(rewriter) < 0x800,
	       "the code reads GO from its own page, past its end");

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

static bool is_touched_page(uint64_t page)
{
	uint64_t first = DATA_ADDR >> 12;

	return page >= first && (page - first) % (STRIDE >> 12) == 0 &&
	       (page - first) / (STRIDE >> 12) < NTOUCH;
}

/* NTOUCH when @b holds exactly the guest's pages; else -1 */
static int exactly_the_pages(const uint64_t *b)
{
	int found = 0;

	for (uint64_t p = 0; p < NPAGES; p++) {
		if (!bitmap_test(b, p))
			continue;
		if (!is_touched_page(p))
			return -1;
		found++;
	}
	return found;
}

/* The monitor's side: collects without pause into @acc. */
struct monitor {
	struct dirty_log *dl;			/* RING, BITMAP */
	struct vm_dirty_reader *reader;		/* OFF */
	pthread_mutex_t lock;
	uint64_t *acc;
	bool stop;
	int error;
	uint64_t collects;
};

static int monitor_collect_locked(struct monitor *mon)
{
	struct errmsg err;
	int64_t n = mon->dl ? dirty_log_collect(mon->dl, mon->acc, &err) :
			      vm_dirty_collect(mon->reader, mon->acc, &err);

	mon->collects++;
	return n < 0 ? (int)n : 0;
}

static void *monitor_main(void *arg)
{
	struct monitor *mon = arg;

	pthread_mutex_lock(&mon->lock);
	while (!mon->stop && !mon->error) {
		mon->error = monitor_collect_locked(mon);
		pthread_mutex_unlock(&mon->lock);
		usleep(200);
		pthread_mutex_lock(&mon->lock);
	}
	pthread_mutex_unlock(&mon->lock);
	return NULL;
}

static void destroy_dirty_log(void *obj)
{
	dirty_log_destroy(obj);
}

static void destroy_reader(void *obj)
{
	vm_dirty_close(obj);
}

/* Pass @pass: the guest rewrites its pages while both readers collect;
 * NULL, or what went wrong. */
static const char *one_pass(struct vm *vm, struct monitor *mon, uint64_t *mig,
			    uint64_t *counter, uint32_t pass)
{
	struct errmsg err;
	int ret;

	/* the pages' first faults may log them dirty on some kernels,
	 * reads too: pass 1 absorbs that, then each pass must show
	 * exactly its writes to both readers */
	pthread_mutex_lock(&mon->lock);
	memset(mon->acc, 0, bitmap_words(NPAGES) * 8);
	pthread_mutex_unlock(&mon->lock);
	memset(mig, 0, bitmap_words(NPAGES) * 8);
	if (guest_mem_write(&vm->mem, GO_ADDR, &pass, 4))
		return "cannot write GO";
	/* the migration collects meanwhile too */
	for (int i = 0; __atomic_load_n(counter, __ATOMIC_RELAXED) < pass;
	     i++) {
		if (vm_track_writes_collect(vm, mig, &err) < 0)
			return "the migration's collect failed";
		if (i > 30000)
			return "the guest did not finish its pass";
		sleep_ms(1);
	}
	if (vm_track_writes_collect(vm, mig, &err) < 0)
		return "the migration's collect failed";
	pthread_mutex_lock(&mon->lock);
	ret = mon->error ? mon->error : monitor_collect_locked(mon);
	if (!ret && pass > 1 && exactly_the_pages(mon->acc) != NTOUCH)
		ret = 1;
	pthread_mutex_unlock(&mon->lock);
	if (ret < 0)
		return "the monitor's collect failed";
	if (ret)
		return "the monitor's pages are not exactly those written";
	if (pass > 1 && exactly_the_pages(mig) != NTOUCH)
		return "the migration's pages are not exactly those written";
	return NULL;
}

static void both_readers_see_every_page(enum vm_dirty_log mode)
{
	struct vm_config cfg = { .mem_size = MEM_SIZE, .ncpus = 1,
				 .dirty_log = mode };
	struct vcpu_entry entry = {
		.mode = VCPU_MODE_PROTECTED32,
		.rip = CODE_ADDR, .code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};
	struct monitor mon = { .lock = PTHREAD_MUTEX_INITIALIZER };
	uint64_t counter = 0, *mig = calloc(bitmap_words(NPAGES), 8);
	struct errmsg err = { "" };
	const char *bad = NULL;
	pthread_t thread;
	struct vm vm;
	int ret;

	mon.acc = calloc(bitmap_words(NPAGES), 8);
	CHECK(mig && mon.acc);
	if (access("/dev/kvm", R_OK | W_OK))
		SKIP("no usable /dev/kvm");
	ret = vm_create(&vm, &cfg, &err);
	if (ret == -ENOTSUP)
		SKIP(err.text);
	CHECK_EQ(ret, 0);
	CHECK_EQ(bus_register(&vm.pio_bus, DONE_PORT, 1, count_writes,
			      &counter, "done"), 0);
	CHECK_EQ(guest_mem_write(&vm.mem, CODE_ADDR, rewriter,
				 sizeof(rewriter)), 0);
	if (mode == VM_DIRTY_LOG_OFF) {
		CHECK_EQ(vm_dirty_open(&vm, &mon.reader, &err), 0);
		CHECK_EQ(vm_own(&vm, destroy_reader, mon.reader), 0);
	} else {
		CHECK_EQ(dirty_log_create(&vm, &mon.dl, &err), 0);
		CHECK_EQ(vm_own(&vm, destroy_dirty_log, mon.dl), 0);
	}
	CHECK_EQ(vm_start(&vm, &entry, &err), 0);
	CHECK_EQ(vm_track_writes_begin(&vm, &err), 0);
	CHECK_EQ(vm_track_writes_begin(&vm, &err), -EALREADY);
	CHECK_EQ(pthread_create(&thread, NULL, monitor_main, &mon), 0);
	/* a failure stops the loop, so the monitor's thread is joined
	 * before anything is checked (it uses the VM) */
	for (uint32_t pass = 1; pass <= PASSES && !bad; pass++)
		bad = one_pass(&vm, &mon, mig, &counter, pass);
	pthread_mutex_lock(&mon.lock);
	mon.stop = true;
	pthread_mutex_unlock(&mon.lock);
	pthread_join(thread, NULL);
	if (bad) {
		printf("%s\n", bad);
		vm_destroy(&vm);	/* its vCPU uses this stack frame */
	}
	CHECK(bad == NULL);
	printf("monitor collected %llu times over %u passes\n",
	       (unsigned long long)mon.collects, PASSES);
	vm_track_writes_end(&vm);
	vm_track_writes_end(&vm);
	/* the monitor's reader goes on alone */
	memset(mig, 0, bitmap_words(NPAGES) * 8);
	CHECK_EQ(vm_track_writes_collect(&vm, mig, &err), -EINVAL);
	vm_destroy(&vm);
	free(mon.acc);
	free(mig);
}

TEST(dirty_owner_ring_feeds_monitor_and_migration_alike)
{
	both_readers_see_every_page(VM_DIRTY_LOG_RING);
}

TEST(dirty_owner_bitmap_feeds_monitor_and_migration_alike)
{
	both_readers_see_every_page(VM_DIRTY_LOG_BITMAP);
}

TEST(dirty_owner_without_a_vm_log_feeds_two_readers_alike)
{
	both_readers_see_every_page(VM_DIRTY_LOG_OFF);
}
