// SPDX-License-Identifier: MIT
/*
 * The pager under a real vCPU on /dev/kvm (the rig of pager_rig.h with a
 * VM on its guest RAM): a store that becomes unreachable pauses the VM and
 * resumes it, a VM can end while its store is unreachable, and a lost or
 * refused page stops the VM, by the pager or by the vCPU's own error
 * path, with and without UFFDIO_POISON.
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
#include "pager_rig.h"
#include "vm/ram_sigbus.h"
#include "vm/vcpu_entry.h"
#include "vm/vm.h"

/* --- a real vCPU on /dev/kvm ----------------------------------------------- */

#define KVM_MEM (16ull << 20)
#define KVM_CODE 0x100000ull
#define KVM_DATA 0x200000ull
#define KVM_NDATA 64u
#define KVM_PORT 0x80

/* mov esi, DATA; mov ecx, NDATA; xor eax, eax;
 * 1: add eax, [esi]; add esi, 0x1000; dec ecx; jnz 1b;
 * out 0x80, eax; 2: cli; hlt; jmp 2b */
static const uint8_t summer[] = {
	0xbe, 0x00, 0x00, 0x20, 0x00,
	0xb9, KVM_NDATA, 0x00, 0x00, 0x00,
	0x31, 0xc0,
	0x03, 0x06,
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,
	0x49,
	0x75, 0xf5,
	0xe7, KVM_PORT,
	0xfa, 0xf4, 0xeb, 0xfd,
};

struct guest_sum {
	uint32_t sum;
	uint64_t done;		/* atomic */
};

static void take_sum(void *opaque, unsigned vcpu_id, uint64_t offset,
		     uint8_t *data, unsigned len, bool is_write)
{
	struct guest_sum *g = opaque;

	(void)vcpu_id; (void)offset;
	if (!is_write || len != 4)
		return;
	memcpy(&g->sum, data, 4);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
}

static bool wait_sum(struct guest_sum *g)
{
	for (int i = 0; i < 3000; i++) {
		if (__atomic_load_n(&g->done, __ATOMIC_ACQUIRE))
			return true;
		rig_sleep_ms(10);
	}
	return false;
}

static void destroy_store(void *s)
{
	page_store_destroy(s);
}

/*
 * A VM whose code and data pages the pager evicted before it starts:
 * the guest sums the first word of each data page.  The store is owned
 * by the VM like the pager (destroyed after it).
 */
/* kvm_rig() options */
#define RIG_FENCE 1u		/* uffd_ram_use_fence() */
#define RIG_PAGER_SILENT 2u	/* the pager has no VM to stop or pause */

static const char *kvm_rig(struct vm *vm, struct rig *r, struct guest_sum *g,
			   uint32_t *expect, unsigned opts)
{
	static struct errmsg err;
	struct vm_config cfg = { .mem_size = KVM_MEM, .ncpus = 1 };
	struct pager_config pc;
	uint8_t page[PAGE];

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->ev.lock, NULL);
	pthread_cond_init(&r->ev.cond, NULL);
	r->mem.memfd = -1;
	if (access("/dev/kvm", R_OK | W_OK))
		return "no usable /dev/kvm";
	if (uffd_ram_probe(UFFD_RAM_MISSING | UFFD_RAM_WP, &err))
		return err.text;
	if (vm_create(vm, &cfg, &err))
		return err.text;
	r->npages = KVM_MEM / PAGE;
	*expect = 0;
	/* filler, so that there is something to evict before the data */
	memset(page, 0x5a, PAGE);
	for (uint64_t p = 600; p < 3000; p++)
		guest_mem_write(&vm->mem, p * PAGE, page, PAGE);
	for (uint32_t i = 0; i < KVM_NDATA; i++) {
		uint32_t word = 1000 + i * 7;

		memset(page, (int)i, PAGE);
		memcpy(page, &word, 4);
		guest_mem_write(&vm->mem, KVM_DATA + i * PAGE, page, PAGE);
		*expect += word;
	}
	r->store = mem_store_new(r->npages);
	pager_config_defaults(&pc);
	pc.local_pages = LIMIT;
	pc.vm = (opts & RIG_PAGER_SILENT) ? NULL : vm;
	pc.on_event = rig_on_event;
	pc.opaque = &r->ev;
	if (!r->store || vm_own(vm, destroy_store, &r->store->base) ||
	    bus_register(&vm->pio_bus, KVM_PORT, 4, take_sum, g, "sum") ||
	    guest_mem_write(&vm->mem, KVM_CODE, summer, sizeof(summer)) ||
	    uffd_ram_create(&vm->mem, 2, &r->uffd, &err) ||
	    vm_own(vm, uffd_ram_destroy, r->uffd) ||
	    ((opts & RIG_FENCE) && (uffd_ram_use_fence(r->uffd), false)) ||
	    (pc.store = &r->store->base,
	     pager_create(&vm->mem, r->uffd, &pc, &r->pager, &err)) ||
	    vm_own(vm, pager_destroy, r->pager) ||
	    uffd_ram_start(r->uffd, &err) || pager_start(r->pager, &err)) {
		/* the store is the VM's first owned resource: if the VM owns
		 * nothing yet, the store is still ours to free */
		if (r->store && !vm->nowned)
			page_store_destroy(&r->store->base);
		return "pager setup failed";
	}
	return NULL;
}

/* The VM goes with everything it owns (store, uffd, pager). */
static void kvm_rig_destroy(struct vm *vm, struct rig *r)
{
	vm_destroy(vm);
	pthread_cond_destroy(&r->ev.cond);
	pthread_mutex_destroy(&r->ev.lock);
}

static int kvm_start(struct vm *vm)
{
	struct vcpu_entry entry = {
		.mode = VCPU_MODE_PROTECTED32,
		.rip = KVM_CODE, .code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};

	return vm_start(vm, &entry, NULL);
}

static int verify_code(struct vm *vm)
{
	return memcmp(vm->mem.base + KVM_CODE, summer, sizeof(summer));
}

static bool data_evicted(struct rig *r)
{
	return a_stored_page(r->store, KVM_DATA / PAGE, KVM_NDATA) !=
	       UINT64_MAX;
}

TEST(pager_pauses_a_vm_for_an_unreachable_store_then_resumes_it)
{
	struct guest_sum g = { 0 };
	struct pager_stats st;
	uint32_t expect;
	struct rig r;
	struct vm vm;
	const char *skip = kvm_rig(&vm, &r, &g, &expect, 0);

	if (skip)
		SKIP(skip);
	CHECK(settle_below(&r, LIMIT));
	CHECK(data_evicted(&r));
	pager_set_limit(r.pager, r.npages);
	store_set(r.store, &r.store->fail_get, -EAGAIN);
	CHECK_EQ(kvm_start(&vm), 0);
	CHECK(wait_event(&r, PAGER_EVENT_UNREACHABLE, 1));
	/* the VM is held: no zeros, no result */
	CHECK(!__atomic_load_n(&g.done, __ATOMIC_ACQUIRE));
	store_set(r.store, &r.store->fail_get, 0);
	CHECK(wait_sum(&g));
	CHECK_EQ(g.sum, expect);
	CHECK(wait_event(&r, PAGER_EVENT_REACHABLE, 1));
	pager_get_stats(r.pager, &st);
	CHECK(st.faults > 0);
	CHECK_EQ(st.failed, 0);
	/* every pause the pager asked for was undone */
	pthread_mutex_lock(&vm.lock);
	CHECK_EQ(vm.pause_depth, 0);
	pthread_mutex_unlock(&vm.lock);
	kvm_rig_destroy(&vm, &r);
}

/*
 * The VM ends while the vCPU waits for a page no store can give: the
 * fault is refused (poison, or the fence without it) rather than left
 * waiting, so the VM stops at once, and the guest never got data.
 * Before the fence, kernels without poison kept the vCPU waiting until
 * the store came back (rackvm run's shutdown guard ended the process).
 */
static void ends_while_unreachable(bool fence)
{
	struct guest_sum g = { 0 };
	struct vm_exit ex;
	uint32_t expect;
	struct rig r;
	struct vm vm;
	const char *skip = kvm_rig(&vm, &r, &g, &expect, fence ? RIG_FENCE : 0);

	if (skip)
		SKIP(skip);
	CHECK(settle_below(&r, LIMIT));
	CHECK(data_evicted(&r));
	pager_set_limit(r.pager, r.npages);
	/* the code page is back: what cannot be had is the guest's data */
	CHECK_EQ(verify_code(&vm), 0);
	store_set(r.store, &r.store->fail_get, -EAGAIN);
	CHECK_EQ(kvm_start(&vm), 0);
	CHECK(wait_event(&r, PAGER_EVENT_UNREACHABLE, 1));
	CHECK(r.ev.last_page >= KVM_DATA / PAGE &&
	      r.ev.last_page < KVM_DATA / PAGE + KVM_NDATA);
	vm_request_exit(&vm, VM_EXIT_SIGNAL, 15, 0, "stopped by the test");
	vm_wait(&vm, &ex);
	CHECK(!__atomic_load_n(&g.done, __ATOMIC_ACQUIRE));
	CHECK_EQ(ex.reason, VM_EXIT_SIGNAL);
	kvm_rig_destroy(&vm, &r);
}

TEST(pager_lets_a_vm_end_while_its_store_is_unreachable)
{
	ends_while_unreachable(false);
}

TEST(pager_lets_a_vm_end_while_its_store_is_unreachable_without_poison)
{
	ends_while_unreachable(true);
}

/*
 * The guest's data page is lost in the store, and the vCPU needs it.
 * Told of the VM, the pager stops it naming the page, and the vCPU
 * waiting in the fault is released without data.  With
 * RIG_PAGER_SILENT the pager only refuses the page, and what stops the
 * VM is the vCPU's own error path, whichever way KVM reports the page:
 * SIGBUS (poison), KVM_RUN's EFAULT (the fence), or, where KVM emulated
 * the access, an MMIO exit at the page's address (on this test's 6.18
 * host, for both; it used to be answered as an unclaimed MMIO read, and
 * the guest summed 0xffffffff for the lost word and finished).  Before
 * the fence, kernels without poison kept the vCPU waiting.
 */
static void vcpu_meets_lost_page(unsigned opts)
{
	struct guest_sum g = { 0 };
	struct vm_exit ex;
	uint32_t expect;
	uint64_t lost;
	char want[64];
	struct rig r;
	struct vm vm;
	const char *skip = kvm_rig(&vm, &r, &g, &expect, opts);

	if (skip)
		SKIP(skip);
	/* without UFFDIO_POISON the unforced variant takes the fence too */
	CHECK(settle_below(&r, LIMIT));
	CHECK(data_evicted(&r));
	pager_set_limit(r.pager, r.npages);
	CHECK_EQ(verify_code(&vm), 0);
	lost = a_stored_page(r.store, KVM_DATA / PAGE, KVM_NDATA);
	CHECK(lost != UINT64_MAX);
	pthread_mutex_lock(&r.store->lock);
	r.store->held[lost] = 0;
	pthread_mutex_unlock(&r.store->lock);
	CHECK_EQ(kvm_start(&vm), 0);
	vm_wait(&vm, &ex);
	CHECK(!__atomic_load_n(&g.done, __ATOMIC_ACQUIRE));
	CHECK_EQ(ex.reason, VM_EXIT_HOST_ERROR);
	snprintf(want, sizeof(want), "guest page %llu ", (unsigned long long)lost);
	/* KVM_RUN's EFAULT (the fence: forced, or this kernel's only way)
	 * says no more than "bad address" */
	if (!(opts & RIG_PAGER_SILENT) ||
	    (!(opts & RIG_FENCE) && uffd_ram_has_poison(r.uffd)))
		CHECK(strstr(ex.detail, want) != NULL);
	CHECK(wait_event(&r, PAGER_EVENT_PAGE_LOST, 1));
	CHECK_EQ(r.ev.last_page, lost);
	kvm_rig_destroy(&vm, &r);
}

TEST(pager_stops_the_vm_when_a_vcpu_needs_a_lost_page)
{
	vcpu_meets_lost_page(0);
}

TEST(pager_stops_the_vm_when_a_vcpu_needs_a_lost_page_without_poison)
{
	vcpu_meets_lost_page(RIG_FENCE);
}

TEST(vcpu_stops_the_vm_on_a_refused_page)
{
	vcpu_meets_lost_page(RIG_PAGER_SILENT);
}

TEST(vcpu_stops_the_vm_on_a_refused_page_without_poison)
{
	vcpu_meets_lost_page(RIG_PAGER_SILENT | RIG_FENCE);
}

/* mem_local changed at run time (the API's PATCH /vm/memory): a lowered
 * limit is met by evicting down to it with nothing lost, a raised one
 * lets the pages back in as they are touched, without evicting more. */
