/* SPDX-License-Identifier: MIT */
/*
 * The snapshot and migration stream: everything a VM is (its config, the
 * vCPUs, the in-kernel irqchip and clock, the devices, guest RAM) as one
 * versioned sequence of checksummed sections, written to a file (a
 * snapshot) or a socket (a migration).  docs/stream-format.md is the
 * wire format; this header is the C side of it.
 *
 * A stream is a header (magic, version, flags, the producer such as
 * "rackvm 0.1.0") and then sections: CONFIG first, exactly once; VM,
 * CPU, DEVICE and RAM in any order and number (a live migration sends a
 * page again when the guest dirtied it: the last copy wins); END last.
 * What the sections mean together (which vCPUs, which devices, whether
 * the config matches the destination) is the caller's business; this
 * layer guarantees framing, integrity, order and the bounds of every
 * length it hands out.
 *
 * I/O: the writer and reader use sequential write()/read() only, so any
 * blocking fd works (file, pipe, TCP or Unix socket; a socket's peer
 * going away is -EPIPE, never SIGPIPE).  Neither closes its fd.  The one
 * exception is a reader told to defer RAM checksums (a lazy restore,
 * stream_reader_defer_ram()): on a regular file it seeks past page data.
 *
 * Memory: a writer or reader holds a few buffers of STREAM_SECTION_MAX
 * bytes, allocated once and reused; a hostile length can never make the
 * reader allocate more.
 *
 * Threads: one writer or reader is used by one thread at a time.
 *
 * Errors: 0 or -errno, with one line in @err.  A reader's errors name the
 * section (its index in stream order and type) and where it starts:
 *	-EBADMSG	corrupt: checksum, unknown type or flag, a length over a
 *			limit, a payload that does not parse, bad zstd
 *	-ENODATA	truncated: the stream ended before its END section
 *	-EPROTO		order: CONFIG not first or twice, a section after END
 *	-EPROTONOSUPPORT  a stream version this rackvm does not read
 *	other		the fd's read() error
 * Errors are sticky: once a writer or reader failed, every later call
 * returns the same error (a stream cannot resynchronise).
 */
#ifndef RACKVM_MIGRATE_STREAM_H
#define RACKVM_MIGRATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errmsg.h"

#define STREAM_VERSION 1
#define STREAM_PAGES_MAX 256		/* pages per RAM section */
#define STREAM_NAME_MAX 31		/* VM_STATE_NAME_MAX - 1 */
#define STREAM_PRODUCER_MAX 64		/* bytes of the header's producer */
/* No section's stored or decompressed payload is longer: a RAM section
 * of STREAM_PAGES_MAX pages (1 MiB and a few bytes) fits twice. */
#define STREAM_SECTION_MAX (2u << 20)

enum stream_type {		/* values are the wire format: never renumber */
	STREAM_CONFIG = 1,	/* the VM config as JSON text (exactly one, first) */
	STREAM_VM = 2,		/* the in-kernel irqchip, PIT, clock (opaque bytes) */
	STREAM_CPU = 3,		/* one vCPU: u32 index, then opaque state bytes */
	STREAM_DEVICE = 4,	/* one device: its name, then opaque state bytes */
	STREAM_RAM = 5,		/* a run of up to STREAM_PAGES_MAX guest pages */
	STREAM_END = 15,	/* the last section: nothing may follow */
};

/*
 * The post-copy part of a migration (migrate.h, docs/stream-format.md);
 * never in a snapshot.  A separate enum so that code switching over a
 * snapshot's types needs no case for them; a reader that does not know
 * them refuses the stream, which is what an older destination must do.
 */
enum stream_postcopy_type {
	STREAM_PENDING = 6,	/* pages that come after the handover: a bitmap */
	STREAM_HANDOVER = 7,	/* the state is complete (empty) */
	STREAM_GO = 8,		/* the source hands the VM over (empty) */
};
/*
 * A migration of a VM that pages (--mem-local): its page map
 * (migrate/pagemap.h), which says which pages stay in the store and are
 * not sent.  Never in a snapshot; not skippable either.  The map may be
 * longer than a section: it comes in pieces, in order, each saying the
 * whole map's length and where the piece goes.
 */
enum stream_pagemap_type {
	STREAM_PAGEMAP = 9,
};
/*
 * Pre-copy's rounds: after a round's pages the source asks whether the
 * destination has loaded everything so far, and waits for the answer
 * (a line, "SYNCED").  The bytes a socket holds would otherwise reach
 * the destination only after the source paused the VM, as downtime,
 * and the round's bandwidth would be the socket's, not the link's.
 * Empty; never in a snapshot; not skippable.
 */
enum stream_sync_type {
	STREAM_SYNC = 10,
};
#define STREAM_PAGEMAP_HDR 16	/* u64 the map's length, u64 the offset */
#define STREAM_PAGEMAP_PIECE (1u << 20)	/* bytes a writer puts in one */
#define STREAM_PAGEMAP_TOTAL_MAX (1ull << 40)
#define STREAM_PENDING_HDR 16	/* u64 first page, u32 count, u32 zero */
/* Pages one PENDING section covers at most. */
#define STREAM_PENDING_MAX ((STREAM_SECTION_MAX - STREAM_PENDING_HDR) * 8u)

/* "config", "vm", "cpu", "device", "ram", "end", "pending", "handover",
 * "go", "pagemap", "sync"; "unknown" otherwise. */
const char *stream_type_name(unsigned type);

struct stream_options {
	bool compress;		/* zstd on RAM sections */
	int level;		/* zstd level; 0: the default (1, fast) */
};

/* What went through a writer or reader so far: bytes of the stream
 * (header included), sections (END included), guest pages in RAM
 * sections and how many of those were zero pages. */
struct stream_counts {
	uint64_t bytes;
	uint64_t sections;
	uint64_t pages;
	uint64_t zero_pages;
};

/* --- writing --------------------------------------------------------- */

struct stream_writer;

/*
 * Writes the stream header at once: magic, STREAM_VERSION, flags and
 * @producer (1..STREAM_PRODUCER_MAX printable ASCII bytes, such as
 * "rackvm 0.1.0").  @opt may be NULL (no compression).  -EINVAL for a
 * bad producer or zstd level, -ENOMEM, or the write's error.
 */
int stream_writer_create(int fd, const char *producer,
			 const struct stream_options *opt,
			 struct stream_writer **out, struct errmsg *err);

/*
 * One section each.  The first must be CONFIG, nothing may follow
 * stream_finish(); a payload over STREAM_SECTION_MAX is -EMSGSIZE.
 * stream_put() takes CONFIG and VM, and the empty HANDOVER, GO and SYNC
 * (the others have their own calls).
 */
int stream_put(struct stream_writer *w, enum stream_type type,
	       const void *data, size_t len, struct errmsg *err);
int stream_put_cpu(struct stream_writer *w, unsigned index,
		   const void *state, size_t len, struct errmsg *err);
/* @name: 1..STREAM_NAME_MAX printable ASCII bytes (vm_state's names). */
int stream_put_device(struct stream_writer *w, const char *name,
		      const void *state, size_t len, struct errmsg *err);
/*
 * @npages (1..STREAM_PAGES_MAX) pages of PAGE_SIZE bytes at @data, guest
 * page numbers @first_page...  All-zero pages travel as bits of a bitmap,
 * not as data.  With compression on, the payload is zstd-compressed and
 * kept raw when that does not shrink it.  Written to a regular file, a
 * raw section's page data starts at a multiple of PAGE_SIZE in the
 * stream (a snapshot file can be read or mapped page by page); to
 * anything else it is not padded.
 */
int stream_put_pages(struct stream_writer *w, uint64_t first_page,
		     const uint8_t *data, uint32_t npages, struct errmsg *err);
/*
 * A PENDING section: bit i of @bits (byte i / 8, bit i % 8, least
 * significant first) set says page @first_page + i comes after the
 * handover; @npages 1..STREAM_PENDING_MAX.  Bits past @npages are
 * ignored (written as zeros).
 */
int stream_put_pending(struct stream_writer *w, uint64_t first_page,
		       const uint8_t *bits, uint32_t npages,
		       struct errmsg *err);
/* The @len bytes of a page map (1..2^40), in as many PAGEMAP sections
 * as it takes. */
int stream_put_pagemap(struct stream_writer *w, const uint8_t *map,
		       size_t len, struct errmsg *err);
/* The END section.  The writer then takes nothing more. */
int stream_finish(struct stream_writer *w, struct errmsg *err);
void stream_writer_counts(const struct stream_writer *w,
			  struct stream_counts *out);
/* Frees the writer; does not close its fd.  NULL is allowed. */
void stream_writer_destroy(struct stream_writer *w);
/*
 * With @on, RAM sections of up to 64 KiB are gathered and written 256
 * KiB at a time (scattered dirty pages make many small sections, and a
 * write per section is dear); @on false writes what is gathered.  Any
 * other section, and a larger one, writes the batch first, so the
 * stream stays in order and a section the other end answers leaves at
 * once.  Never on where a RAM section must leave at once (post-copy's
 * urgent pages).  The write's error, sticky.
 */
int stream_writer_batch(struct stream_writer *w, bool on, struct errmsg *err);

/* --- reading --------------------------------------------------------- */

struct stream_reader;

/*
 * Reads and checks the header: "not a rackvm stream" (-EBADMSG) for a
 * bad magic, "stream version 7, this rackvm reads 1" (-EPROTONOSUPPORT),
 * -EBADMSG for a bad checksum, unknown flags or a bad producer, -ENODATA
 * when the stream ends inside the header.
 */
int stream_reader_create(int fd, struct stream_reader **out,
			 struct errmsg *err);
/* The header's producer ("rackvm 0.1.0"), NUL-terminated, printable. */
const char *stream_reader_producer(const struct stream_reader *r);

/*
 * A raw RAM section whose checksum a deferring reader did not check
 * (stream_reader_defer_ram()): what stream_verify_deferred() needs to
 * check it later.  The checksum is XXH3-64, seeded with @index, of the
 * section's 8-byte header and its @len bytes of payload, as for every
 * section (docs/stream-format.md).  Offsets are in the stream, which
 * are the file's when the stream starts at the file's start.
 */
struct stream_deferred {
	unsigned index;		/* the section's: the checksum's seed */
	uint64_t start;		/* the section's header */
	uint32_t len;		/* its stored payload, at start + 8 */
	uint64_t checksum;	/* what the section's last 8 bytes say */
};

struct stream_section {
	enum stream_type type;
	unsigned index;		/* 0, 1, ... in stream order, for messages */
	const uint8_t *data;	/* payload after decompression, valid until
				 * the next stream_next() */
	size_t len;
	uint64_t payload_offset; /* where the stored payload starts in the
				  * stream */
	bool compressed;	/* the stored payload was compressed
				 * (payload_offset then says nothing about
				 * pages) */
	/* A RAM section whose page data was not read: @data and @len
	 * hold only its head (RAM header, zero bitmap, padding), checked;
	 * @check says how to verify the whole section later. */
	bool deferred;
	struct stream_deferred check;
};

/*
 * The next section, checked: checksum, type, flags, length, the layout
 * of a CPU, DEVICE, RAM or END payload, order (CONFIG first and once,
 * nothing after END).  Sections of a type this version does not know
 * but that are marked skippable are checked and passed over.  Called
 * again after END, it looks for anything following: -EPROTO names it,
 * -ENODATA says the stream ended there (stream_reader_finish() is the
 * same check with 0 for that case).
 */
int stream_next(struct stream_reader *r, struct stream_section *s,
		struct errmsg *err);
/*
 * For a lazy restore, which reads pages only when the guest touches
 * them: from now on stream_next() reads of an uncompressed RAM section
 * only its section header, RAM header, zero bitmap, padding and
 * checksum, seeking past the page data.  Everything that can be checked
 * on those bytes is (flags, order, the RAM table's rules, the stored
 * length against the pages, the stream not ending inside the section);
 * the checksum is not: the section comes back with s->deferred set and
 * s->check, and its pages are to be trusted only once
 * stream_verify_deferred() said so.  Other sections, compressed RAM
 * ones included, are read and checked as always, and the counts are the
 * same as without deferring.  0; -ESPIPE (nothing changes) when the fd
 * is not a regular file, as a pipe or socket is.
 */
int stream_reader_defer_ram(struct stream_reader *r);
/*
 * Reads the section @d describes from @fd (pread(): any thread, no
 * reader needed, the fd's offset untouched) and checks its checksum: 0,
 * -EBADMSG "section 7 (ram) at byte 123456: checksum mismatch",
 * -ENODATA if the file now ends inside it, -EINVAL for a @d no reader
 * gives, -ENOMEM, or the read's error; @err names the section.
 */
int stream_verify_deferred(int fd, const struct stream_deferred *d,
			   struct errmsg *err);
/*
 * For a stream that ends where its fd does (a snapshot file, a sender
 * that closes the connection): 0 when END was read and nothing follows
 * it; -EPROTO when something does; -ENODATA before END.  Do not call it
 * on a connection whose sender waits for an answer after END: it reads
 * until end of file.
 */
int stream_reader_finish(struct stream_reader *r, struct errmsg *err);
void stream_reader_counts(const struct stream_reader *r,
			  struct stream_counts *out);

/* A CPU section's vCPU index and state bytes (pointing into s->data). */
int stream_section_cpu(const struct stream_section *s, unsigned *index,
		       const uint8_t **state, size_t *len,
		       struct errmsg *err);
/* A DEVICE section's name (NUL-terminated) and state bytes. */
int stream_section_device(const struct stream_section *s,
			  char name[STREAM_NAME_MAX + 1],
			  const uint8_t **state, size_t *len,
			  struct errmsg *err);
/*
 * A RAM section's pages: checks first_page + npages <= @ram_pages (else
 * -EBADMSG naming the section, and @fn is not called), then calls @fn for
 * each page in order with its PAGE_SIZE bytes (NULL for a zero page)
 * and, when the section was not compressed, the byte offset of those
 * bytes in the stream (0 for a zero page or a compressed section).  A
 * non-zero return of @fn stops the walk and is returned as it is, @err
 * untouched (@fn may report through @opaque).  A deferred section
 * (s->deferred) has no page data read: @data is NULL for every page, and
 * the offset alone tells a data page (non-zero) from a zero page (0).
 */
int stream_section_pages(const struct stream_section *s, uint64_t ram_pages,
			 int (*fn)(void *opaque, uint64_t page,
				   const uint8_t *data, uint64_t stream_offset),
			 void *opaque, struct errmsg *err);
/*
 * A PENDING section's range and bitmap (pointing into s->data): checks
 * first_page + npages <= @ram_pages (else -EBADMSG naming the section).
 */
int stream_section_pending(const struct stream_section *s,
			   uint64_t ram_pages, uint64_t *first_page,
			   uint32_t *npages, const uint8_t **bits,
			   struct errmsg *err);
/*
 * A PAGEMAP section's piece: the whole map's length (1..2^40), where
 * this piece starts in it and its bytes (1 or more, pointing into
 * s->data, inside the map).  Whether pieces come in order and whether
 * the map's length suits the VM is the caller's to check.
 */
int stream_section_pagemap(const struct stream_section *s, uint64_t *total,
			   uint64_t *offset, const uint8_t **bytes,
			   size_t *len, struct errmsg *err);
/* Frees the reader; does not close its fd.  NULL is allowed. */
void stream_reader_destroy(struct stream_reader *r);

#endif
