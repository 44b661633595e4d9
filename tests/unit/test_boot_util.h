/* SPDX-License-Identifier: MIT */
/*
 * Image builders for the boot loader unit tests: a minimal ELF32/ELF64
 * writer, PVH notes, Multiboot headers and a synthetic bzImage.  Each
 * test_boot_*.c includes this; the functions are static inline so every
 * file gets its own copy.
 */
#ifndef RACKVM_TESTS_TEST_BOOT_UTIL_H
#define RACKVM_TESTS_TEST_BOOT_UTIL_H

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"

/* Checks a loader result: error @want and a message containing @needle. */
#define CHECK_BOOT_ERR(ret, errp, want, needle)                           \
	do {                                                              \
		int r_ = (ret);                                           \
		if (r_ != (want) || !strstr((errp)->text, needle)) {      \
			harness_fail(__FILE__, __LINE__,                  \
				     "got %d \"%s\", want %d \"...%s...\"", \
				     r_, (errp)->text, want, needle);     \
			return;                                           \
		}                                                         \
	} while (0)

#define TEST_MEM_SIZE (64ull << 20)
#define TEST_IMAGE_MAX 0x4000

struct test_seg {
	uint32_t type;
	uint64_t paddr;
	uint64_t vaddr;		/* 0: same as paddr */
	uint64_t memsz;		/* 0: same as the data size */
	const void *data;
	uint64_t size;		/* bytes of data (p_filesz) */
};

static inline void tb_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline void tb_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint32_t tb_get32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t tb_get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* Program header @i of an image built by tb_build_elf(). */
static inline uint8_t *tb_phdr(uint8_t *img, bool is64, unsigned i)
{
	return img + (is64 ? sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr)
			   : sizeof(Elf32_Ehdr) + i * sizeof(Elf32_Phdr));
}

/* Writes an ELF executable into @img; segment data follows the program
 * headers, 16-byte aligned.  Returns the file size. */
static inline size_t tb_build_elf(uint8_t *img, bool is64, uint16_t machine,
				  uint64_t entry, const struct test_seg *segs,
				  unsigned n)
{
	size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t off = (ehsize + n * phsize + 15) & ~(size_t)15;

	memset(img, 0, TEST_IMAGE_MAX);
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	img[EI_DATA] = ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
	if (is64) {
		Elf64_Ehdr h = { 0 };

		memcpy(h.e_ident, img, EI_NIDENT);
		h.e_type = ET_EXEC;
		h.e_machine = machine;
		h.e_version = EV_CURRENT;
		h.e_entry = entry;
		h.e_phoff = ehsize;
		h.e_ehsize = ehsize;
		h.e_phentsize = phsize;
		h.e_phnum = n;
		memcpy(img, &h, sizeof(h));
	} else {
		Elf32_Ehdr h = { 0 };

		memcpy(h.e_ident, img, EI_NIDENT);
		h.e_type = ET_EXEC;
		h.e_machine = machine;
		h.e_version = EV_CURRENT;
		h.e_entry = (uint32_t)entry;
		h.e_phoff = ehsize;
		h.e_ehsize = ehsize;
		h.e_phentsize = phsize;
		h.e_phnum = n;
		memcpy(img, &h, sizeof(h));
	}
	for (unsigned i = 0; i < n; i++) {
		const struct test_seg *s = &segs[i];
		uint64_t vaddr = s->vaddr ? s->vaddr : s->paddr;
		uint64_t memsz = s->memsz ? s->memsz : s->size;

		if (is64) {
			Elf64_Phdr ph = { s->type, PF_R | PF_X, off, vaddr,
					  s->paddr, s->size, memsz, 4 };
			memcpy(tb_phdr(img, true, i), &ph, sizeof(ph));
		} else {
			Elf32_Phdr ph = { s->type, (uint32_t)off,
					  (uint32_t)vaddr, (uint32_t)s->paddr,
					  (uint32_t)s->size, (uint32_t)memsz,
					  PF_R | PF_X, 4 };
			memcpy(tb_phdr(img, false, i), &ph, sizeof(ph));
		}
		if (s->size)
			memcpy(img + off, s->data, s->size);
		off = (off + s->size + 15) & ~(size_t)15;
	}
	return off;
}

/* A Xen PHYS32_ENTRY note with a @descsz (4 or 8) byte entry. */
static inline size_t tb_pvh_note(uint8_t *note, uint64_t entry,
				 uint32_t descsz)
{
	tb_put32(note, 4);
	tb_put32(note + 4, descsz);
	tb_put32(note + 8, 18);
	memcpy(note + 12, "Xen", 4);
	if (descsz == 8)
		tb_put64(note + 16, entry);
	else
		tb_put32(note + 16, (uint32_t)entry);
	return 16 + ((descsz + 3) & ~3u);
}

/* A multiboot header (magic, flags, checksum, optional address fields). */
static inline size_t tb_mb_header(uint8_t *p, uint32_t flags,
				  const uint32_t addr[5])
{
	tb_put32(p, 0x1BADB002u);
	tb_put32(p + 4, flags);
	tb_put32(p + 8, -(0x1BADB002u + flags));
	if (!addr)
		return 12;
	for (int i = 0; i < 5; i++)
		tb_put32(p + 12 + 4 * i, addr[i]);
	return 32;
}

/* Synthetic bzImage: 1 setup sector + boot sector, then @pm_size bytes of
 * protected-mode "kernel" (pattern i & 0xff ^ 0x5a). */
#define TB_BZ_SETUP_SECTS 1
#define TB_BZ_SETUP_SIZE ((TB_BZ_SETUP_SECTS + 1) * 512)
#define TB_BZ_PM_SIZE 0x1000
#define TB_BZ_SIZE (TB_BZ_SETUP_SIZE + TB_BZ_PM_SIZE)

static inline void tb_build_bzimage(uint8_t *img)
{
	memset(img, 0, TB_BZ_SIZE);
	img[0x1f1] = TB_BZ_SETUP_SECTS;
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	img[0x200] = 0xeb;
	img[0x201] = 0x6a;		/* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f;		/* version 2.15 */
	img[0x207] = 0x02;
	img[0x211] = 0x01 | 0x80;	/* LOADED_HIGH | CAN_USE_HEAP */
	tb_put32(img + 0x22c, 0x7fffffff);	/* initrd_addr_max */
	tb_put32(img + 0x230, 0x200000);	/* kernel_alignment */
	img[0x234] = 1;				/* relocatable */
	img[0x236] = 0x03;			/* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	tb_put32(img + 0x238, 2047);		/* cmdline_size */
	tb_put64(img + 0x258, 0x1000000);	/* pref_address */
	tb_put32(img + 0x260, 0x400000);	/* init_size */
	for (unsigned i = 0; i < TB_BZ_PM_SIZE; i++)
		img[TB_BZ_SETUP_SIZE + i] = (uint8_t)(i ^ 0x5a);
}

static inline uint8_t *tb_guest(struct guest_mem *m, uint64_t gpa,
				uint64_t len)
{
	return guest_mem_ptr(m, gpa, len);
}

static inline struct boot_config tb_config(const uint8_t *k, size_t size)
{
	struct boot_config c = { 0 };

	c.kernel = k;
	c.kernel_size = size;
	c.cmdline = "console=ttyS0 quiet";
	c.ncpus = 1;
	return c;
}

#endif
