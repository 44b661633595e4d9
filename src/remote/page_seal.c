// SPDX-License-Identifier: MIT
/*
 * Sealed pages (page_seal.h says what and why): XChaCha20-Poly1305 under
 * a per-VM key, or XXH3-128 tags when sealing is off.
 */
#include "remote/page_seal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util/page.h"

#define AD_MAX (8 + 4 + 64)

struct page_seal {
	bool sealed;
	uint8_t *key;		/* sodium_malloc'd, read-only once drawn */
	size_t name_len;
	char name[64];
};

_Static_assert(PAGE_SEAL_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "the exported key");

static int seal_create(const char *name, bool sealed, const uint8_t *key,
		       struct page_seal **out, struct errmsg *err)
{
	size_t len = name ? strlen(name) : 0;
	struct page_seal *s;

	if (len > sizeof(s->name))
		return errmsg_set(err, -EINVAL, "page seal: namespace name over "
				  "64 bytes");
	if (sealed && sodium_init() < 0)
		return errmsg_set(err, -EIO, "page seal: libsodium cannot start");
	s = calloc(1, sizeof(*s));
	if (!s)
		return errmsg_set(err, -ENOMEM, "page seal: out of memory");
	s->sealed = sealed;
	s->name_len = len;
	memcpy(s->name, name, len);
	if (sealed) {
		/* sodium_malloc: guard pages and mlock (never swapped out);
		 * the key is read-only from here on */
		s->key = sodium_malloc(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
		if (!s->key) {
			free(s);
			return errmsg_set(err, -ENOMEM, "page seal: cannot allocate "
					  "locked memory for the key");
		}
		if (key)
			memcpy(s->key, key, PAGE_SEAL_KEY_SIZE);
		else
			crypto_aead_xchacha20poly1305_ietf_keygen(s->key);
		sodium_mprotect_readonly(s->key);
	}
	*out = s;
	return 0;
}

int page_seal_create(const char *name, bool sealed, struct page_seal **out,
		     struct errmsg *err)
{
	return seal_create(name, sealed, NULL, out, err);
}

int page_seal_create_with_key(const char *name, const uint8_t *key,
			      struct page_seal **out, struct errmsg *err)
{
	return seal_create(name, key != NULL, key, out, err);
}

bool page_seal_export_key(const struct page_seal *s, uint8_t *key)
{
	if (!s->sealed)
		return false;
	memcpy(key, s->key, PAGE_SEAL_KEY_SIZE);
	return true;
}

void page_seal_destroy(struct page_seal *s)
{
	if (!s)
		return;
	sodium_free(s->key);	/* wipes it first */
	free(s);
}

bool page_seal_sealed(const struct page_seal *s)
{
	return s->sealed;
}

static void put_le(uint8_t *out, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

/* page (8) || gen (4) || name: the associated data; returns its length. */
static size_t make_ad(const struct page_seal *s, uint64_t page, uint32_t gen,
		      uint8_t ad[AD_MAX])
{
	put_le(ad, page, 8);
	put_le(ad + 8, gen, 4);
	memcpy(ad + 12, s->name, s->name_len);
	return 12 + s->name_len;
}

/* page (8) || gen (4) || zeros: unique per key, page_seal.h says why. */
static void make_nonce(uint64_t page, uint32_t gen,
		       uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	put_le(n, page, 8);
	put_le(n + 8, gen, 4);
}

/* The plain mode's tag: XXH3-128 seeded by a hash of the associated
 * data, so that page number, generation and namespace all change it. */
static void plain_tag(const struct page_seal *s, uint64_t page, uint32_t gen,
		      const uint8_t *data, uint8_t tag[PAGE_TAG_SIZE])
{
	uint8_t ad[AD_MAX];
	size_t adlen = make_ad(s, page, gen, ad);
	XXH128_hash_t h = XXH3_128bits_withSeed(data, PAGE_SIZE,
						XXH3_64bits(ad, adlen));

	put_le(tag, h.low64, 8);
	put_le(tag + 8, h.high64, 8);
}

void page_seal_close(const struct page_seal *s, uint64_t page, uint32_t gen,
		     uint8_t *data, uint8_t tag[PAGE_TAG_SIZE])
{
	uint8_t ad[AD_MAX], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	size_t adlen;

	if (!s->sealed) {
		plain_tag(s, page, gen, data, tag);
		return;
	}
	adlen = make_ad(s, page, gen, ad);
	make_nonce(page, gen, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		data, tag, NULL, data, PAGE_SIZE, ad, adlen, NULL, nonce, s->key);
}

int page_seal_open(const struct page_seal *s, uint64_t page, uint32_t gen,
		   uint8_t *data, const uint8_t tag[PAGE_TAG_SIZE])
{
	uint8_t ad[AD_MAX], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint8_t want[PAGE_TAG_SIZE];
	size_t adlen;

	if (!s->sealed) {
		plain_tag(s, page, gen, data, want);
		return memcmp(want, tag, PAGE_TAG_SIZE) ? -EBADMSG : 0;
	}
	adlen = make_ad(s, page, gen, ad);
	make_nonce(page, gen, nonce);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		data, NULL, data, PAGE_SIZE, tag, ad, adlen, nonce, s->key) ?
	       -EBADMSG : 0;
}
