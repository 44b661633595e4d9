// SPDX-License-Identifier: MIT
/*
 * Multiboot v1 test kernel.  Checks the information the boot loader
 * handed over, prints what it saw on COM1 and reports through the
 * isa-debug-exit port: 0 = every check passed, 1 = something failed.
 * It runs under rackvm and QEMU alike, so the checks accept what either
 * legitimately provides (QEMU's BIOS reports a different memory map).  The
 * command line is "KERNEL ARGS", as GRUB and QEMU pass it: the token must
 * be argv[1], the way kernels that build argv (kvm-unit-tests) read it.
 * Ring-0 code may be emulated slowly, so it does little besides port I/O.
 */
#include <stdint.h>

#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_THR_EMPTY 0x20
#define DEBUG_EXIT_PORT 0xf4

#define MB_LOADER_MAGIC 0x2BADB002u
#define MBI_MEM (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MMAP (1u << 6)
#define MAX_MMAP_ENTRIES 32

/* The command line's first argument after the kernel's name (the test
 * passes it). */
#define CMDLINE_TOKEN "mbtest=hello"

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

void mb_main(uint32_t magic, const struct mb_info *mbi);

static int failures;

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc_serial(char c)
{
	/* bounded: a UART model that never sets THRE must not hang us */
	for (int i = 0; i < 1000 && !(inb(COM1_LSR) & LSR_THR_EMPTY); i++)
		;
	outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

static void put_hex(uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	char buf[19];
	int i = 18;

	buf[i] = 0;
	do {
		buf[--i] = digits[v & 0xf];
		v >>= 4;
	} while (v && i > 2);
	buf[--i] = 'x';
	buf[--i] = '0';
	puts_serial(buf + i);
}

static void put_dec(uint32_t v)
{
	char buf[11];
	int i = 10;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_serial(buf + i);
}

static void check(int ok, const char *what)
{
	puts_serial(ok ? "ok " : "FAIL ");
	puts_serial(what);
	putc_serial('\n');
	if (!ok)
		failures++;
}

/* True if the second space-separated word of @s is @word. */
static int argv1_is(const char *s, const char *word)
{
	while (*s == ' ')
		s++;
	while (*s && *s != ' ')
		s++;
	while (*s == ' ')
		s++;
	while (*word && *s == *word)
		s++, word++;
	return !*word && (!*s || *s == ' ');
}

/* Walks the mmap; checks the entries are well-formed and that RAM at
 * 1 MiB is reported with at least mem_upper KiB. */
static void check_mmap(const struct mb_info *mbi)
{
	uint32_t pos = 0, n = 0;
	int ram_at_1m = 0, ram_at_0 = 0;

	while (pos + sizeof(struct mb_mmap_entry) <= mbi->mmap_length &&
	       n < MAX_MMAP_ENTRIES) {
		const struct mb_mmap_entry *e =
			(const void *)(uintptr_t)(mbi->mmap_addr + pos);

		puts_serial("mmap ");
		put_hex(e->addr);
		putc_serial(' ');
		put_hex(e->len);
		putc_serial(' ');
		put_dec(e->type);
		putc_serial('\n');
		if (e->size < 20)
			break;
		if (e->type == 1 && e->addr == 0 && e->len >= 0x80000)
			ram_at_0 = 1;
		if (e->type == 1 && e->addr <= 0x100000 &&
		    e->addr + e->len >= 0x100000 + (uint64_t)mbi->mem_upper * 1024)
			ram_at_1m = 1;
		pos += e->size + 4;
		n++;
	}
	check(n >= 2, "mmap has entries");
	check(ram_at_0, "mmap RAM at 0");
	check(ram_at_1m, "mmap RAM from 1 MiB covers mem_upper");
}

void mb_main(uint32_t magic, const struct mb_info *mbi)
{
	puts_serial("multiboot-test: start\n");
	check(magic == MB_LOADER_MAGIC, "magic in eax");
	if (magic != MB_LOADER_MAGIC)
		goto out;
	check((mbi->flags & (MBI_MEM | MBI_CMDLINE | MBI_MMAP)) ==
		      (MBI_MEM | MBI_CMDLINE | MBI_MMAP),
	      "info flags");
	puts_serial("mem_lower=");
	put_dec(mbi->mem_lower);
	puts_serial(" mem_upper=");
	put_dec(mbi->mem_upper);
	putc_serial('\n');
	check(mbi->mem_lower >= 600 && mbi->mem_lower <= 640, "mem_lower");
	/* run with 128M: at least 100 MiB above 1 MiB, at most 127 MiB */
	check(mbi->mem_upper >= 100 * 1024 && mbi->mem_upper <= 127 * 1024,
	      "mem_upper");
	if (mbi->flags & MBI_MMAP)
		check_mmap(mbi);
	if (mbi->flags & MBI_CMDLINE) {
		const char *cmdline = (const char *)(uintptr_t)mbi->cmdline;

		puts_serial("cmdline: ");
		puts_serial(cmdline);
		putc_serial('\n');
		check(argv1_is(cmdline, CMDLINE_TOKEN),
		      "cmdline token is argv[1], after the kernel's name");
	}
out:
	puts_serial(failures ? "multiboot-test: FAIL\n"
			     : "multiboot-test: PASS\n");
	outb(DEBUG_EXIT_PORT, failures ? 1 : 0);
}
