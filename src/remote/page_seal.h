/* SPDX-License-Identifier: MIT */
/*
 * Sealed pages: how a VM's evicted pages are protected from the page
 * store that keeps them (page_store.h).  Every page put is sealed, every
 * page got is opened, and a copy that does not open is refused: the
 * store (a memd server, a memcached, a file, the rack network in
 * between) never sees guest memory in clear and cannot forge a page,
 * hand back another page, another VM's page or an older version of the
 * same page.
 *
 * The cipher: XChaCha20-Poly1305-IETF from libsodium (already a
 * dependency, well kept in Debian).  It is constant-time in software
 * and about as fast everywhere, where AES-GCM is only fast and safe
 * with AES-NI/PCLMUL (libsodium does not even offer AES-GCM without
 * them); its 24-byte nonce leaves room for the page number and
 * generation in clear, and its cost over ChaCha20-Poly1305-IETF is one
 * HChaCha20 block per 64-block page.
 *
 * The key: 32 random bytes drawn per VM (per page_seal object) when
 * the store is opened, kept in sodium_malloc'd memory (guard pages,
 * mlock'd so it never reaches swap, excluded from core dumps where the
 * kernel allows), read-only but for creation, wiped by
 * page_seal_destroy().  It leaves the process only when the VM migrates
 * with its pages left in place (remote/store_handover.h: in the
 * migration stream, to the destination, which creates its seal with
 * it); otherwise pages of a VM that is gone are unreadable by anyone,
 * which is what a store holds after the VM ends anyway.  A key carries
 * on across a migration with the generations the pager keeps per page,
 * and only one end puts at a time, so (page, generation) still never
 * repeats under it.
 *
 * The nonce: page number (8 bytes LE) || generation (4 bytes LE) || 12
 * zero bytes.  A nonce must never be used twice with one key for two
 * different plaintexts; here a key belongs to one VM run and the pager
 * gives every put of a page a generation larger than any before for that
 * page (page_store.h: struct page_run's gens), so (page, generation)
 * never repeats under a key.  The generation is a uint32_t: the pager
 * keeps a page resident rather than put it a 2^32nd time.
 *
 * The associated data: page number (8 LE) || generation (4 LE) ||
 * namespace name.  It binds the copy to its slot, its version and its
 * VM (the key too is per VM, the name makes a mix-up of two stores of
 * one process fail as well).
 *
 * The tag: PAGE_TAG_SIZE (16) bytes stored beside the page: the
 * Poly1305 tag when sealed.  With sealing off (trusted racks: seal=off)
 * the page travels in clear and the tag is XXH3-128 of the page with a
 * seed derived from the same associated data, so that a wrong page, a
 * stale version or a bit flip is still caught (by accident, not by an
 * attacker: anyone can compute it).
 *
 * Thread safety: after creation a page_seal is read only; every
 * function may be called from any number of threads at once.
 */
#ifndef RACKVM_REMOTE_PAGE_SEAL_H
#define RACKVM_REMOTE_PAGE_SEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"

#define PAGE_TAG_SIZE 16u
#define PAGE_SEAL_KEY_SIZE 32u

struct page_seal;

/* A new context for the namespace @name (at most 64 bytes): a fresh
 * random key when @sealed, none otherwise.  0 or -errno. */
int page_seal_create(const char *name, bool sealed, struct page_seal **out,
		     struct errmsg *err);
/* The same with a given key (@key NULL: no sealing): the destination
 * of a migration (store_handover.h). */
int page_seal_create_with_key(const char *name, const uint8_t *key,
			      struct page_seal **out, struct errmsg *err);
/* Copies the key into @key (PAGE_SEAL_KEY_SIZE bytes); false (nothing
 * copied) when not sealed. */
bool page_seal_export_key(const struct page_seal *s, uint8_t *key);
/* Wipes the key; NULL is fine. */
void page_seal_destroy(struct page_seal *s);
bool page_seal_sealed(const struct page_seal *s);

/* Seals the 4096 bytes at @data in place (with sealing off: leaves them)
 * and writes the tag. */
void page_seal_close(const struct page_seal *s, uint64_t page, uint32_t gen,
		     uint8_t *data, uint8_t tag[PAGE_TAG_SIZE]);
/* Opens a copy in place: 0 and the page in clear, or -EBADMSG when the
 * copy is not page @page at generation @gen sealed by this VM (forged,
 * swapped, replayed, damaged); @data is then garbage (libsodium may
 * wipe it) and must be fetched again. */
int page_seal_open(const struct page_seal *s, uint64_t page, uint32_t gen,
		   uint8_t *data, const uint8_t tag[PAGE_TAG_SIZE]);

#endif
