// SPDX-License-Identifier: MIT
#include "boot/elf.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot/loader.h"

bool elf_has_magic(const uint8_t *buf, size_t size)
{
	return size >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG);
}

static int check_ident(const uint8_t *buf, size_t size, struct errmsg *err)
{
	if (!elf_has_magic(buf, size))
		return errmsg_set(err, -EINVAL, "not an ELF file (bad magic)");
	if (size < EI_NIDENT)
		return errmsg_set(err, -EINVAL,
				  "ELF file truncated: %zu bytes", size);
	if (buf[EI_CLASS] != ELFCLASS32 && buf[EI_CLASS] != ELFCLASS64)
		return errmsg_set(err, -EINVAL, "ELF class %u is not 32 or 64",
				  buf[EI_CLASS]);
	if (buf[EI_DATA] != ELFDATA2LSB)
		return errmsg_set(err, -EINVAL,
				  "ELF data encoding %u is not little-endian",
				  buf[EI_DATA]);
	if (buf[EI_VERSION] != EV_CURRENT)
		return errmsg_set(err, -EINVAL, "ELF version %u is not 1",
				  buf[EI_VERSION]);
	return 0;
}

/* Reads the class-specific header into the common fields. */
static int read_header(struct elf_file *f, uint16_t *type,
		       struct errmsg *err)
{
	if (f->is64) {
		Elf64_Ehdr h;

		if (f->size < sizeof(h))
			return errmsg_set(err, -EINVAL,
					  "ELF64 header truncated: file is %zu bytes, need %zu",
					  f->size, sizeof(h));
		memcpy(&h, f->data, sizeof(h));
		*type = h.e_type;
		f->machine = h.e_machine;
		f->entry = h.e_entry;
		f->phoff = h.e_phoff;
		f->phentsize = h.e_phentsize;
		f->phnum = h.e_phnum;
	} else {
		Elf32_Ehdr h;

		if (f->size < sizeof(h))
			return errmsg_set(err, -EINVAL,
					  "ELF32 header truncated: file is %zu bytes, need %zu",
					  f->size, sizeof(h));
		memcpy(&h, f->data, sizeof(h));
		*type = h.e_type;
		f->machine = h.e_machine;
		f->entry = h.e_entry;
		f->phoff = h.e_phoff;
		f->phentsize = h.e_phentsize;
		f->phnum = h.e_phnum;
	}
	return 0;
}

int elf_parse(struct elf_file *f, const uint8_t *buf, size_t size,
	      struct errmsg *err)
{
	size_t min_phentsize;
	uint16_t type = 0;
	int ret;

	memset(f, 0, sizeof(*f));
	ret = check_ident(buf, size, err);
	if (ret < 0)
		return ret;
	f->data = buf;
	f->size = size;
	f->is64 = buf[EI_CLASS] == ELFCLASS64;
	ret = read_header(f, &type, err);
	if (ret < 0)
		return ret;
	if (type != ET_EXEC)
		return errmsg_set(err, -EINVAL,
				  "ELF type %u is not an executable (ET_EXEC)",
				  type);
	if (f->machine != EM_386 && f->machine != EM_X86_64)
		return errmsg_set(err, -EINVAL,
				  "ELF machine %u is not x86 (3) or x86-64 (62)",
				  f->machine);
	if (f->phnum == 0)
		return errmsg_set(err, -EINVAL, "ELF has no program headers");
	if (f->phnum > ELF_MAX_PHDRS)
		return errmsg_set(err, -EINVAL,
				  "ELF has %u program headers, more than %u",
				  f->phnum, ELF_MAX_PHDRS);
	min_phentsize = f->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (f->phentsize < min_phentsize)
		return errmsg_set(err, -EINVAL,
				  "ELF program header size %u is smaller than %zu",
				  f->phentsize, min_phentsize);
	/* phnum * phentsize <= 256 * 65535: no overflow */
	if (!range_in_buffer(f->phoff, (uint64_t)f->phnum * f->phentsize, size))
		return errmsg_set(err, -EINVAL,
				  "ELF program headers at offset 0x%llx (%u x %u bytes) are outside the %zu-byte file",
				  (unsigned long long)f->phoff, f->phnum,
				  f->phentsize, size);
	return 0;
}

void elf_get_phdr(const struct elf_file *f, unsigned i, struct elf_phdr *ph)
{
	const uint8_t *p = f->data + f->phoff + (uint64_t)i * f->phentsize;

	if (f->is64) {
		Elf64_Phdr h;

		memcpy(&h, p, sizeof(h));
		ph->type = h.p_type;
		ph->offset = h.p_offset;
		ph->vaddr = h.p_vaddr;
		ph->paddr = h.p_paddr;
		ph->filesz = h.p_filesz;
		ph->memsz = h.p_memsz;
		ph->align = h.p_align;
	} else {
		Elf32_Phdr h;

		memcpy(&h, p, sizeof(h));
		ph->type = h.p_type;
		ph->offset = h.p_offset;
		ph->vaddr = h.p_vaddr;
		ph->paddr = h.p_paddr;
		ph->filesz = h.p_filesz;
		ph->memsz = h.p_memsz;
		ph->align = h.p_align;
	}
}

#define NOTE_HEADER_SIZE 12	/* namesz, descsz, type: 32 bits each */

static uint64_t align_note(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

/* Scans one PT_NOTE segment.  All sizes are < 2^32 and the segment is
 * inside the buffer, so 64-bit sums cannot overflow. */
static int scan_notes(const struct elf_file *f, const struct elf_phdr *ph,
		      unsigned index, const char *name, uint32_t type,
		      const uint8_t **desc, uint32_t *descsz,
		      struct errmsg *err)
{
	const uint8_t *seg = f->data + ph->offset;
	uint64_t align = ph->align == 8 ? 8 : 4;
	size_t want_namesz = strlen(name) + 1;
	uint64_t pos = 0;

	while (ph->filesz - pos >= NOTE_HEADER_SIZE) {
		uint32_t namesz = get_le32(seg + pos);
		uint32_t dsz = get_le32(seg + pos + 4);
		uint32_t ntype = get_le32(seg + pos + 8);
		uint64_t name_off = pos + NOTE_HEADER_SIZE;
		uint64_t desc_off = align_note(name_off + namesz, align);
		uint64_t next = align_note(desc_off + dsz, align);

		if (desc_off > ph->filesz || dsz > ph->filesz - desc_off)
			return errmsg_set(err, -EINVAL,
					  "ELF note at offset 0x%llx in PT_NOTE %u (namesz %u, descsz %u) runs past the segment's %llu bytes",
					  (unsigned long long)pos, index,
					  namesz, dsz,
					  (unsigned long long)ph->filesz);
		if (ntype == type && namesz == want_namesz &&
		    !memcmp(seg + name_off, name, want_namesz)) {
			*desc = seg + desc_off;
			*descsz = dsz;
			return 1;
		}
		pos = next;
		if (pos >= ph->filesz)
			break;
	}
	return 0;
}

int elf_find_note(const struct elf_file *f, const char *name, uint32_t type,
		  const uint8_t **desc, uint32_t *descsz, struct errmsg *err)
{
	struct elf_phdr ph;
	int ret;

	for (unsigned i = 0; i < f->phnum; i++) {
		elf_get_phdr(f, i, &ph);
		if (ph.type != PT_NOTE)
			continue;
		if (!range_in_buffer(ph.offset, ph.filesz, f->size))
			return errmsg_set(err, -EINVAL,
					  "ELF PT_NOTE %u at offset 0x%llx size 0x%llx is outside the %zu-byte file",
					  i, (unsigned long long)ph.offset,
					  (unsigned long long)ph.filesz,
					  f->size);
		ret = scan_notes(f, &ph, i, name, type, desc, descsz, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int check_segment(const struct guest_mem *m, const struct elf_file *f,
			 const struct elf_phdr *ph, unsigned i,
			 struct errmsg *err)
{
	char what[48];

	if (ph->filesz > ph->memsz)
		return errmsg_set(err, -EINVAL,
				  "ELF segment %u: p_filesz 0x%llx is larger than p_memsz 0x%llx",
				  i, (unsigned long long)ph->filesz,
				  (unsigned long long)ph->memsz);
	if (!range_in_buffer(ph->offset, ph->filesz, f->size))
		return errmsg_set(err, -EINVAL,
				  "ELF segment %u: file range offset 0x%llx size 0x%llx is outside the %zu-byte file",
				  i, (unsigned long long)ph->offset,
				  (unsigned long long)ph->filesz, f->size);
	snprintf(what, sizeof(what), "ELF segment %u", i);
	return boot_check_kernel_range(m, ph->paddr, ph->memsz, what, err);
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
			   uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Both segments were range-checked, so their ends do not wrap. */
static int check_no_overlap(const struct elf_file *f, const struct elf_phdr *ph,
			    unsigned i, struct errmsg *err)
{
	struct elf_phdr other;

	for (unsigned j = 0; j < i; j++) {
		elf_get_phdr(f, j, &other);
		if (other.type != PT_LOAD || other.memsz == 0)
			continue;
		if (ranges_overlap(ph->paddr, ph->memsz, other.paddr,
				   other.memsz))
			return errmsg_set(err, -EINVAL,
					  "ELF segments %u [0x%llx, 0x%llx) and %u [0x%llx, 0x%llx) overlap",
					  j, (unsigned long long)other.paddr,
					  (unsigned long long)(other.paddr + other.memsz),
					  i, (unsigned long long)ph->paddr,
					  (unsigned long long)(ph->paddr + ph->memsz));
	}
	return 0;
}

static void copy_segment(const struct guest_mem *m, const struct elf_file *f,
			 const struct elf_phdr *ph)
{
	/* checked by check_segment(): the whole memsz range is RAM */
	uint8_t *dst = guest_mem_ptr(m, ph->paddr, ph->memsz);

	memcpy(dst, f->data + ph->offset, ph->filesz);
	memset(dst + ph->filesz, 0, ph->memsz - ph->filesz);
}

int elf_load_segments(const struct guest_mem *m, const struct elf_file *f,
		      struct elf_extent *ext, struct errmsg *err)
{
	struct elf_phdr ph;
	unsigned loaded = 0;
	int ret;

	ext->start = UINT64_MAX;
	ext->end = 0;
	/* validate everything before writing anything */
	for (unsigned i = 0; i < f->phnum; i++) {
		elf_get_phdr(f, i, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		ret = check_segment(m, f, &ph, i, err);
		if (ret < 0)
			return ret;
		ret = check_no_overlap(f, &ph, i, err);
		if (ret < 0)
			return ret;
		if (ph.paddr < ext->start)
			ext->start = ph.paddr;
		if (ph.paddr + ph.memsz > ext->end)
			ext->end = ph.paddr + ph.memsz;
		loaded++;
	}
	if (!loaded)
		return errmsg_set(err, -EINVAL, "ELF has no loadable segments");
	for (unsigned i = 0; i < f->phnum; i++) {
		elf_get_phdr(f, i, &ph);
		if (ph.type == PT_LOAD && ph.memsz)
			copy_segment(m, f, &ph);
	}
	return 0;
}

int elf_entry_to_paddr(const struct elf_file *f, uint64_t entry,
		       bool allow_virtual, uint64_t *paddr, struct errmsg *err)
{
	struct elf_phdr ph;

	for (unsigned i = 0; i < f->phnum; i++) {
		elf_get_phdr(f, i, &ph);
		if (ph.type != PT_LOAD)
			continue;
		if (entry >= ph.paddr && entry - ph.paddr < ph.memsz) {
			*paddr = entry;
			return 0;
		}
	}
	for (unsigned i = 0; allow_virtual && i < f->phnum; i++) {
		elf_get_phdr(f, i, &ph);
		if (ph.type != PT_LOAD)
			continue;
		if (entry >= ph.vaddr && entry - ph.vaddr < ph.memsz) {
			*paddr = ph.paddr + (entry - ph.vaddr);
			return 0;
		}
	}
	return errmsg_set(err, -EINVAL,
			  "entry point 0x%llx is not inside any loaded segment",
			  (unsigned long long)entry);
}
