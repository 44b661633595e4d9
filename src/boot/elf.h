/* SPDX-License-Identifier: MIT */
/*
 * ELF parsing shared by the PVH and Multiboot loaders: ELF32 and ELF64,
 * little-endian x86.  elf_parse() validates the file and program header
 * table against the buffer once; the accessors below rely on that.
 */
#ifndef RACKVM_BOOT_ELF_H
#define RACKVM_BOOT_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "vm/guest_mem.h"

/* Real kernels have a handful; the cap bounds the work an image can ask
 * for (segment overlap checks are quadratic, note scans linear each). */
#define ELF_MAX_PHDRS 256

struct elf_file {
	const uint8_t *data;
	size_t size;
	bool is64;
	uint16_t machine;
	uint64_t entry;
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
};

/* Normalised program header (ELF32 fields widened). */
struct elf_phdr {
	uint32_t type;
	uint64_t offset;
	uint64_t vaddr;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint64_t align;
};

/* Physical extent of the loaded segments. */
struct elf_extent {
	uint64_t start;
	uint64_t end;
};

bool elf_has_magic(const uint8_t *buf, size_t size);

int elf_parse(struct elf_file *f, const uint8_t *buf, size_t size,
	      struct errmsg *err);

/* Program header @i (< f->phnum) of a parsed file. */
void elf_get_phdr(const struct elf_file *f, unsigned i, struct elf_phdr *ph);

/* Looks for a note (@name, @type) in the PT_NOTE segments.  Returns 1
 * and the descriptor if found, 0 if absent, -EINVAL if a note segment is
 * malformed. */
int elf_find_note(const struct elf_file *f, const char *name, uint32_t type,
		  const uint8_t **desc, uint32_t *descsz, struct errmsg *err);

/* Validates every PT_LOAD (inside the file, filesz <= memsz, RAM at or
 * above 1 MiB and below 4 GiB, no overlaps), then copies them to their
 * p_paddr and zero-fills the rest of memsz. */
int elf_load_segments(const struct guest_mem *m, const struct elf_file *f,
		      struct elf_extent *ext, struct errmsg *err);

/* Translates an entry address to a physical one inside a loaded segment:
 * first as a physical address, then (if @allow_virtual) as a virtual one
 * through that segment's p_vaddr -> p_paddr. */
int elf_entry_to_paddr(const struct elf_file *f, uint64_t entry,
		       bool allow_virtual, uint64_t *paddr,
		       struct errmsg *err);

#endif
