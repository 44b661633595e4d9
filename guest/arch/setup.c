// SPDX-License-Identifier: MIT
/*
 * Ring-0 setup, run once on the boot CPU: TSS, IDT, page tables for RAM
 * above 4 GiB, then the drop to ring 3 where the runtime and workloads
 * run.  Ring 0 is emulated (slowly) on the target machines, so this does
 * only what needs ring 0 and leaves everything else to ring 3.
 */
#include <stddef.h>
#include <stdint.h>

#include "guest/arch.h"
#include "guest/bootinfo.h"
#include "guest/lapic.h"
#include "guest/platform.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	/*
	 * Every port allowed to ring 3.  IOPL 3 alone should do, but some
	 * nested hypervisors force IOPL 0 while ring 3 runs; the bitmap
	 * is honoured either way.  The CPU reads two bytes per check, so
	 * an all-ones byte follows the bitmap inside the limit.
	 */
	uint8_t iomap[65536 / 8];
	uint8_t iomap_end;
} __attribute__((packed));

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

struct table_descriptor {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define GATE_INTERRUPT_DPL0 0x8e
#define GATE_INTERRUPT_DPL3 0xee
#define TSS_TYPE_AVAILABLE 0x89
#define IST_DOUBLE_FAULT 1

/* From entry.S / vectors.S */
extern uint64_t gdt_tss[2];
extern uint64_t boot_pdpt[512];
extern char kernel_stack[];
extern const uint64_t exception_stubs[32];
void syscall_entry(void);
void lapic_timer_entry(void);
void lapic_spurious_entry(void);
__attribute__((noreturn)) void enter_user(void (*entry)(void), void *stack);
__attribute__((noreturn)) void runtime_main(void);

/* Read by the APs too (trampoline.S), hence not static. */
struct table_descriptor idt_descriptor;

static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint8_t double_fault_stack[4096] __attribute__((aligned(16)));
static uint8_t user_stack[USER_STACK_SIZE] __attribute__((aligned(16)));

/* Highest identity-mapped address: 4 GiB, or the end of the RAM above
 * it that map_high_ram() mapped. */
uint64_t mapped_limit = 4ull << 30;

static void set_gate(unsigned int vector, uint64_t handler, uint8_t type,
		     uint8_t ist)
{
	struct idt_gate *g = &idt[vector];

	g->offset_low = handler & 0xffff;
	g->selector = KERNEL_CS;
	g->ist = ist;
	g->type_attr = type;
	g->offset_mid = (handler >> 16) & 0xffff;
	g->offset_high = handler >> 32;
}

static void idt_init(void)
{
	unsigned int v;

	for (v = 0; v < 32; v++)
		set_gate(v, exception_stubs[v], GATE_INTERRUPT_DPL0,
			 v == 8 ? IST_DOUBLE_FAULT : 0);
	/* DPL 3 so that ring 3 may raise it with int 0x80. */
	set_gate(SYSCALL_VECTOR, (uint64_t)syscall_entry,
		 GATE_INTERRUPT_DPL3, 0);
	/* for SYS_SLEEP_UNTIL, the one place interrupts are enabled */
	set_gate(LAPIC_TIMER_VECTOR, (uint64_t)lapic_timer_entry,
		 GATE_INTERRUPT_DPL0, 0);
	set_gate(LAPIC_SPURIOUS_VECTOR, (uint64_t)lapic_spurious_entry,
		 GATE_INTERRUPT_DPL0, 0);
	idt_descriptor.limit = sizeof(idt) - 1;
	idt_descriptor.base = (uint64_t)idt;
	asm volatile("lidt %0" : : "m"(idt_descriptor));
}

/* Ring 3 -> ring 0 transitions land on the top of the kernel stack; a
 * double fault gets its own stack so that a broken stack still reports.
 * The I/O bitmap is all zeros already (.bss). */
static void tss_init(void)
{
	uint64_t base = (uint64_t)&tss;
	uint64_t limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)kernel_stack + KERNEL_STACK_SIZE;
	tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)double_fault_stack +
					sizeof(double_fault_stack);
	tss.iomap_base = offsetof(struct tss64, iomap);
	tss.iomap_end = 0xff;

	gdt_tss[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		     ((uint64_t)TSS_TYPE_AVAILABLE << 40) |
		     (((limit >> 16) & 0xf) << 48) |
		     (((base >> 24) & 0xff) << 56);
	gdt_tss[1] = base >> 32;
	asm volatile("ltr %w0" : : "r"(TSS_SEL));
}

/*
 * RAM above 4 GiB, 2 MiB pages, page directories from a fixed pool
 * (each maps 1 GiB, so RAM up to 32 GiB).  RAM beyond the pool stays
 * unmapped and unused: the runtime clips its RAM ranges to mapped_limit.
 */
#define HIGH_PD_POOL 28

static uint64_t high_pds[HIGH_PD_POOL][512] __attribute__((aligned(4096)));

static void map_2m(uint64_t addr, unsigned int *pds_used)
{
	unsigned int gib = addr >> 30;
	uint64_t *pd;

	if (!(boot_pdpt[gib] & PTE_P)) {
		pd = high_pds[(*pds_used)++];
		boot_pdpt[gib] = (uint64_t)pd | PTE_TABLE;
	}
	pd = (uint64_t *)(boot_pdpt[gib] & ~0xfffull);
	pd[(addr >> 21) & 511] = addr | PTE_LARGE;
}

static void map_high_ram(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *e;
	uint64_t pool_limit = (uint64_t)(4 + HIGH_PD_POOL) << 30;
	unsigned int i, pds_used = 0;
	uint64_t a, start, end;

	if (si->magic != HVM_START_MAGIC || si->version < 1)
		return;
	e = (const void *)si->memmap_paddr;
	for (i = 0; i < si->memmap_entries; i++, e++) {
		if (e->type != E820_RAM)
			continue;
		start = e->addr < (4ull << 30) ? (4ull << 30) : e->addr;
		end = e->addr + e->size;
		if (end > pool_limit)
			end = pool_limit;
		if (start >= end)
			continue;
		end = (end + 0x1fffff) & ~0x1fffffull;
		for (a = start & ~0x1fffffull; a < end; a += 0x200000)
			map_2m(a, &pds_used);
		if (end > mapped_limit)
			mapped_limit = end;
	}
}

void kernel_main(void)
{
	tss_init();
	idt_init();
	map_high_ram((const void *)(uint64_t)pvh_start_info_paddr);
	enter_user(runtime_main, user_stack + sizeof(user_stack));
}
