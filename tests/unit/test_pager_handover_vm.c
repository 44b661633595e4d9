// SPDX-License-Identifier: MIT
/*
 * A paging VM handed over with its pages left in memd, with real vCPUs
 * on /dev/kvm (the KVM-free half is test_pager_handover.c): the source
 * VM's data pages are evicted to two memd servers in this process, its
 * pager exports the map, a second VM imports it, gets the resident
 * pages as the stream would bring them, and its guest, reading every
 * data page through KVM's faults, sums exactly what the source held;
 * every page of the second VM's RAM then equals the source's.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/layout.h"
#include "harness.h"
#include "memd_test_util.h"
#include "migrate/pagemap.h"
#include "pager_rig.h"
#include "util/state_buf.h"
#include "vm/vcpu_entry.h"
#include "vm/vm.h"

#define VM_MEM (16ull << 20)
#define CODE 0x100000ull
#define DATA 0x200000ull
#define NDATA 64u
#define PORT 0x80

/* mov esi, DATA; mov ecx, NDATA; xor eax, eax;
 * 1: add eax, [esi]; add esi, 0x1000; dec ecx; jnz 1b;
 * out 0x80, eax; 2: cli; hlt; jmp 2b */
static const uint8_t summer[] = {
	0xbe, 0x00, 0x00, 0x20, 0x00,
	0xb9, NDATA, 0x00, 0x00, 0x00,
	0x31, 0xc0,
	0x03, 0x06,
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,
	0x49,
	0x75, 0xf5,
	0xe7, PORT,
	0xfa, 0xf4, 0xeb, 0xfd,
};

struct sum {
	uint32_t value;
	uint64_t done;		/* atomic */
};

static void take_sum(void *opaque, unsigned vcpu_id, uint64_t offset,
		     uint8_t *data, unsigned len, bool is_write)
{
	struct sum *g = opaque;

	(void)vcpu_id; (void)offset;
	if (!is_write || len != 4)
		return;
	memcpy(&g->value, data, 4);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
}

static void destroy_store(void *s)
{
	page_store_destroy(s);
}

static int open_memd(const uint16_t *ports, struct page_store **out,
		     struct errmsg *err)
{
	struct page_store_params p = {
		.namespace_name = "vm1", .secret = (const uint8_t *)"s",
		.secret_len = 1, .ram_pages = VM_MEM / PAGE,
	};
	char spec[128];

	spec_for(spec, sizeof(spec), ports, 2, 2, "");
	return page_store_open(spec, &p, out, err);
}

/* A VM of VM_MEM on @store (owned by it) and a pager; with @m, the pages
 * to send come from @from and the map is imported before the start. */
static const char *vm_side(struct vm *vm, struct rig *r, struct sum *g,
			   struct page_store *store, const struct pagemap *m,
			   struct pager *from)
{
	static struct errmsg err;
	struct vm_config cfg = { .mem_size = VM_MEM, .ncpus = 1 };
	struct pager_config pc;
	static uint8_t page[PAGE];

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->ev.lock, NULL);
	pthread_cond_init(&r->ev.cond, NULL);
	r->npages = VM_MEM / PAGE;
	err.text[0] = 0;
	if (vm_create(vm, &cfg, &err)) {
		page_store_destroy(store);
		return err.text;
	}
	pager_config_defaults(&pc);
	pc.local_pages = LIMIT;
	/* the source never runs: its RAM is filled by this thread, and an
	 * evictor that paused its (never started) vCPUs would wait forever */
	pc.vm = m ? vm : NULL;
	pc.store = store;
	pc.on_event = rig_on_event;
	pc.opaque = &r->ev;
	if (vm_own(vm, destroy_store, store) ||
	    bus_register(&vm->pio_bus, PORT, 4, take_sum, g, "sum") ||
	    uffd_ram_create(&vm->mem, 2, &r->uffd, &err) ||
	    vm_own(vm, uffd_ram_destroy, r->uffd) ||
	    pager_create(&vm->mem, r->uffd, &pc, &r->pager, &err) ||
	    vm_own(vm, pager_destroy, r->pager))
		return err.text[0] ? err.text : "VM setup failed";
	for (uint64_t p = 0; m && p < r->npages; p++) {
		if (m->kind[p] != PAGEMAP_SEND)
			continue;
		if (pager_read_page(from, p, page, &err) ||
		    pwrite(vm->mem.memfd, page, PAGE, (off_t)(p * PAGE)) != PAGE)
			return "sending a page failed";
	}
	if ((m && pager_import(r->pager, m, &err)) ||
	    uffd_ram_start(r->uffd, &err) || pager_start(r->pager, &err))
		return err.text[0] ? err.text : "pager setup failed";
	return NULL;
}

/* The source's RAM: the code and the data first, then three times the
 * limit of filler, which pushes them out to memd; the data's sum. */
static uint32_t fill(struct vm *vm)
{
	static uint8_t page[PAGE];
	uint32_t expect = 0;

	guest_mem_write(&vm->mem, CODE, summer, sizeof(summer));
	for (uint32_t i = 0; i < NDATA; i++) {
		uint32_t word = 1000 + i * 7;

		memset(page, (int)i, PAGE);
		memcpy(page, &word, 4);
		guest_mem_write(&vm->mem, DATA + i * PAGE, page, PAGE);
		expect += word;
	}
	/* in no order a scan detector would see (a sequential one would
	 * have the pager evict the filler just behind it, MRU, and keep
	 * the data) */
	memset(page, 0x5a, PAGE);
	for (uint64_t i = 0; i < 3 * LIMIT; i++) {
		uint64_t p = 600 + i * 7919 % (3 * LIMIT);

		memcpy(page + 8, &p, sizeof(p));
		guest_mem_write(&vm->mem, p * PAGE, page, PAGE);
	}
	return expect;
}

static int start(struct vm *vm)
{
	struct vcpu_entry entry = {
		.mode = VCPU_MODE_PROTECTED32,
		.rip = CODE, .code_selector = BOOT_CODE_SELECTOR,
		.data_selector = BOOT_DATA_SELECTOR,
	};

	return vm_start(vm, &entry, NULL);
}

TEST(pager_handover_moves_a_vm_with_its_pages_left_in_memd)
{
	struct test_server srv[2];
	uint16_t ports[2];
	struct page_store *src_store, *dst_store;
	struct pager_handover_stats hs;
	struct errmsg err = { "" };
	struct pagemap *m = NULL;
	struct sum g1 = { 0 }, g2 = { 0 };
	struct state_buf blob;
	struct vm src, dst;
	struct vm_exit ex;
	struct rig rs, rd;
	uint8_t *ram = malloc(VM_MEM);
	uint64_t remote_data = 0;
	uint32_t expect;
	const char *why;

	if (access("/dev/kvm", R_OK | W_OK))
		SKIP("no usable /dev/kvm");
	memset(srv, 0, sizeof(srv));
	CHECK(ram != NULL);
	CHECK_EQ(servers_start(srv, 2, ports), 0);
	CHECK_EQ(open_memd(ports, &src_store, &err), 0);
	why = vm_side(&src, &rs, &g1, src_store, NULL, NULL);
	if (why && strstr(why, "userfaultfd"))
		SKIP(why);
	CHECK(why == NULL);
	expect = fill(&src);
	CHECK(settle_below(&rs, LIMIT));
	state_buf_init(&blob);
	CHECK_EQ(pager_handover_begin(rs.pager, &blob, &m, &hs, &err), 0);
	for (uint32_t i = 0; i < NDATA; i++)
		remote_data += m->kind[DATA / PAGE + i] == PAGEMAP_REMOTE;
	CHECK(remote_data > 0);
	CHECK(hs.pages_left > 1000);
	fprintf(stderr, "  %llu pages (%llu MiB) left in memd, %llu data "
		"pages among them, %llu sent\n",
		(unsigned long long)hs.pages_left,
		(unsigned long long)(hs.bytes_left >> 20),
		(unsigned long long)remote_data,
		(unsigned long long)hs.pages_send);
	/* the source's RAM as it is, to compare */
	for (uint64_t p = 0; p < VM_MEM / PAGE; p++)
		CHECK_EQ(pager_read_page(rs.pager, p, ram + p * PAGE, &err), 0);
	pagemap_free(m);
	m = NULL;

	CHECK_EQ(pagemap_load(blob.data, blob.len, VM_MEM / PAGE, &m, &err), 0);
	CHECK_EQ(pagemap_open_store(m, &dst_store, &err), 0);
	why = vm_side(&dst, &rd, &g2, dst_store, m, rs.pager);
	CHECK(why == NULL);
	/* GO: the source lets go and ends, its pages stay */
	pager_handover_release(rs.pager);
	vm_destroy(&src);
	CHECK_EQ(pager_handover_commit(rd.pager, &err), 0);
	CHECK_EQ(start(&dst), 0);
	for (int i = 0; i < 3000 && !__atomic_load_n(&g2.done, __ATOMIC_ACQUIRE);
	     i++)
		rig_sleep_ms(10);
	CHECK(__atomic_load_n(&g2.done, __ATOMIC_ACQUIRE));
	CHECK_EQ(g2.value, expect);
	vm_request_exit(&dst, VM_EXIT_SIGNAL, 15, 0, "stopped by the test");
	vm_wait(&dst, &ex);
	/* and the rest of RAM, page by page (faults in what is remote) */
	for (uint64_t p = 0; p < VM_MEM / PAGE; p++)
		if (memcmp(dst.mem.base + p * PAGE, ram + p * PAGE, PAGE))
			CHECK_EQ(p, UINT64_MAX);
	vm_destroy(&dst);
	pagemap_free(m);
	state_buf_release(&blob);
	servers_stop(srv, 2);
	free(ram);
}
