// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "remote/page_store.h"

static const uint8_t test_secret[] = "page-store-secret";

static struct page_store_params good_params(void)
{
	return (struct page_store_params){
		.namespace_name = "vm-1.test_A",
		.secret = test_secret,
		.secret_len = sizeof(test_secret) - 1,
		.ram_pages = 64,
	};
}

TEST(page_store_open_rejects_unknown_backends)
{
	struct page_store_params p = good_params();
	struct page_store *s = NULL;
	struct errmsg err = { "" };

	CHECK_EQ(page_store_open("nfs:/mnt/swap", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "nfs:/mnt/swap") != NULL);
	CHECK(strstr(err.text, "file:PATH") != NULL);
	CHECK_EQ(page_store_open("", &p, &s, &err), -EINVAL);
	/* prefixes are whole words with their colon */
	CHECK_EQ(page_store_open("files:/tmp/x", &p, &s, &err), -EINVAL);
	CHECK_EQ(page_store_open("memcache:127.0.0.1:1", &p, &s, &err), -EINVAL);
	CHECK_EQ(page_store_open("FILE:/tmp/x", &p, &s, &err), -EINVAL);
	CHECK_EQ(page_store_open(NULL, &p, &s, &err), -EINVAL);
	CHECK_EQ(page_store_open("file:/tmp/x", NULL, &s, &err), -EINVAL);
	CHECK(s == NULL);
}

TEST(page_store_open_dispatches_by_prefix)
{
	struct page_store_params p = good_params();
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char dir[256], spec[300], desc[300];

	/* each backend answers for its own arguments */
	CHECK_EQ(page_store_open("file:", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "file store") != NULL);
	CHECK_EQ(page_store_open("memcached:nohostport", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "memcached") != NULL);
	CHECK(strstr(err.text, "nohostport") != NULL);
	/* memd's arguments are memd's business; it is not the generic
	 * "invalid memory backend" that answers */
	page_store_open("memd:", &p, &s, &err);
	CHECK(strstr(err.text, "invalid memory backend") == NULL);
	if (s) {
		page_store_destroy(s);
		s = NULL;
	}

	snprintf(dir, sizeof(dir), "%s/page-store-XXXXXX", harness_tmpdir());
	CHECK(mkdtemp(dir) != NULL);
	snprintf(spec, sizeof(spec), "file:%s", dir);
	CHECK_EQ(page_store_open(spec, &p, &s, &err), 0);
	s->ops->describe(s, desc, sizeof(desc));
	CHECK(!strncmp(desc, "file ", 5));
	page_store_destroy(s);
	page_store_destroy(NULL);
	CHECK_EQ(rmdir(dir), 0);

	snprintf(spec, sizeof(spec), "memcached:127.0.0.1:11211");
	CHECK_EQ(page_store_open(spec, &p, &s, &err), 0);
	s->ops->describe(s, desc, sizeof(desc));
	CHECK(strstr(desc, "memcached 127.0.0.1:11211") != NULL);
	page_store_destroy(s);
}

TEST(page_store_open_validates_namespace_and_secret)
{
	struct page_store_params p = good_params();
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char name[70];

	p.namespace_name = "";
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "namespace") != NULL);
	p.namespace_name = NULL;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	p.namespace_name = "vm/1";
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "vm/1") != NULL);
	p.namespace_name = "vm 1";
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	p.namespace_name = "vm:1";	/* ':' separates memcached key parts */
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	memset(name, 'a', sizeof(name));
	name[65] = 0;
	p.namespace_name = name;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	/* 64 characters is the limit: now the backend answers */
	name[64] = 0;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -ENOENT);

	p = good_params();
	p.secret = NULL;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "secret") != NULL);
	p = good_params();
	p.secret_len = 0;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	p.secret_len = 65;
	CHECK_EQ(page_store_open("file:/nonexistent/x", &p, &s, &err), -EINVAL);
	CHECK(s == NULL);
}

/* A page whose bytes all differ from a zero page and from each other's
 * neighbours, so that a swap of two is visible. */
static void pattern(uint8_t *data, unsigned salt)
{
	for (unsigned i = 0; i < PAGE_STORE_PAGE; i++)
		data[i] = (uint8_t)(i * 13 + 1 + salt);
}

/* Seals a copy of @clear as page @page generation @gen under @s. */
static void sealed_copy(const struct page_seal *s, uint64_t page, uint32_t gen,
			const uint8_t *clear, uint8_t *data, uint8_t *tag)
{
	memcpy(data, clear, PAGE_STORE_PAGE);
	page_seal_close(s, page, gen, data, tag);
}

/* Whether a copy of (@data, @tag) opens as @page @gen under @s, and then
 * holds @clear. */
static bool opens_as(const struct page_seal *s, uint64_t page, uint32_t gen,
		     const uint8_t *data, const uint8_t *tag,
		     const uint8_t *clear)
{
	uint8_t copy[PAGE_STORE_PAGE];

	memcpy(copy, data, sizeof(copy));
	return page_seal_open(s, page, gen, copy, tag) == 0 &&
	       !memcmp(copy, clear, sizeof(copy));
}

/* What a store (or the network) could do to a sealed page, each refused;
 * @sealed: the AEAD, else the plain XXH3-128 tags. */
static void seal_refusals(bool sealed)
{
	static uint8_t clear[PAGE_STORE_PAGE], data[PAGE_STORE_PAGE],
		old[PAGE_STORE_PAGE], old_data[PAGE_STORE_PAGE];
	uint8_t tag[PAGE_TAG_SIZE], old_tag[PAGE_TAG_SIZE];
	struct page_seal *s = NULL, *other_ns = NULL, *other_vm = NULL;

	CHECK_EQ(page_seal_create("vm-1", sealed, &s, NULL), 0);
	CHECK_EQ(page_seal_create("vm-2", sealed, &other_ns, NULL), 0);
	CHECK_EQ(page_seal_create("vm-1", sealed, &other_vm, NULL), 0);
	pattern(clear, 0);
	sealed_copy(s, 42, 7, clear, data, tag);
	/* sealed: the store never sees the page in clear */
	CHECK(sealed == !!memcmp(data, clear, sizeof(data)));
	CHECK(opens_as(s, 42, 7, data, tag, clear));	/* round trip */
	CHECK(!opens_as(s, 43, 7, data, tag, clear));	/* another page's */
	CHECK(!opens_as(s, 42 | 1ull << 40, 7, data, tag, clear));
	CHECK(!opens_as(s, 42, 8, data, tag, clear));	/* not the newest */
	CHECK(!opens_as(other_ns, 42, 7, data, tag, clear));	/* namespace */
	/* another VM of the same name: another key when sealed; the plain
	 * tag is keyless, it cannot tell */
	CHECK(sealed == !opens_as(other_vm, 42, 7, data, tag, clear));
	/* an older version of the page, replayed whole or in part */
	pattern(old, 1);
	sealed_copy(s, 42, 6, old, old_data, old_tag);
	CHECK(opens_as(s, 42, 6, old_data, old_tag, old));
	CHECK(!opens_as(s, 42, 7, old_data, old_tag, clear));
	CHECK(!opens_as(s, 42, 7, old_data, old_tag, old));
	CHECK(!opens_as(s, 42, 7, old_data, tag, clear));
	CHECK(!opens_as(s, 42, 7, data, old_tag, clear));
	/* one flipped bit anywhere in the page, or in the tag */
	for (unsigned byte = 0; byte < PAGE_STORE_PAGE; byte += 509) {
		data[byte] ^= 0x10;
		CHECK(!opens_as(s, 42, 7, data, tag, clear));
		data[byte] ^= 0x10;
	}
	data[PAGE_STORE_PAGE - 1] ^= 0x80;
	CHECK(!opens_as(s, 42, 7, data, tag, clear));
	data[PAGE_STORE_PAGE - 1] ^= 0x80;
	for (unsigned byte = 0; byte < PAGE_TAG_SIZE; byte++) {
		tag[byte] ^= 1;
		CHECK(!opens_as(s, 42, 7, data, tag, clear));
		tag[byte] ^= 1;
	}
	CHECK(opens_as(s, 42, 7, data, tag, clear));	/* all undone */
	/* a zero page's tag still depends on its number and generation */
	memset(clear, 0, sizeof(clear));
	sealed_copy(s, 1, 1, clear, data, tag);
	CHECK(opens_as(s, 1, 1, data, tag, clear));
	CHECK(!opens_as(s, 2, 1, data, tag, clear));
	CHECK(!opens_as(s, 1, 2, data, tag, clear));
	page_seal_destroy(s);
	page_seal_destroy(other_ns);
	page_seal_destroy(other_vm);
}

TEST(page_seal_round_trips_and_refuses_swapped_replayed_forged_pages)
{
	seal_refusals(true);
}

TEST(page_seal_plain_tags_still_catch_wrong_pages_and_old_versions)
{
	seal_refusals(false);
}

/* seal=on|off is taken out of every kind of spec, anywhere after the
 * prefix; anything else after seal= is refused. */
TEST(page_store_seal_option_is_parsed_once_for_every_backend)
{
	struct page_store_params p = good_params();
	struct page_store *s = NULL;
	struct errmsg err = { "" };
	char spec[512], desc[600];
	static uint8_t clear[PAGE_STORE_PAGE], data[PAGE_STORE_PAGE];
	uint8_t tag[PAGE_TAG_SIZE];
	uint32_t gen = 3;
	struct page_run r = { .first = 5, .count = 1, .data = data,
			      .tags = tag, .gens = &gen };

	CHECK_EQ(page_store_open("file:/tmp/x,seal=maybe", &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "seal=on or seal=off") != NULL);
	CHECK_EQ(page_store_open("memd:127.0.0.1:1,seal=", &p, &s, &err), -EINVAL);
	CHECK(s == NULL);
	for (int off = 0; off < 2; off++) {
		snprintf(spec, sizeof(spec), "file:%s/seal-opt%d,seal=%s",
			 harness_tmpdir(), off, off ? "off" : "on");
		CHECK_EQ(page_store_open(spec, &p, &s, &err), 0);
		CHECK(s != NULL && s->seal != NULL);
		CHECK(page_seal_sealed(s->seal) == !off);
		page_store_describe(s, desc, sizeof(desc));	/* said to users */
		CHECK(!strncmp(desc, "file ", 5));
		CHECK((strstr(desc, " seal=off") != NULL) == (off == 1));
		pattern(clear, 3);
		memcpy(data, clear, sizeof(data));
		CHECK_EQ(page_store_put(s, &r, 1, &err), 0);
		/* put sealed the buffer in place, or left it in clear */
		CHECK(!off == !!memcmp(data, clear, sizeof(data)));
		memset(data, 0, sizeof(data));
		CHECK_EQ(page_store_get(s, &r, 1, &err), 0);
		CHECK(!memcmp(data, clear, sizeof(data)));
		gen = 2;	/* an older generation than stored */
		CHECK_EQ(page_store_get(s, &r, 1, &err), -EBADMSG);
		CHECK(strstr(err.text, "page 5 (generation 2)") != NULL);
		gen = 3;
		page_store_destroy(s);
		s = NULL;
	}
}
