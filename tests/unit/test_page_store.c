// SPDX-License-Identifier: MIT
#include <errno.h>
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

TEST(page_checksum_depends_on_page_number_and_every_bit)
{
	uint8_t data[PAGE_STORE_PAGE];
	uint64_t base;

	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	base = page_checksum(42, data);
	CHECK_EQ(page_checksum(42, data), base);	/* deterministic */
	/* the same bytes under another number: a misplaced page fails */
	CHECK(page_checksum(43, data) != base);
	CHECK(page_checksum(0, data) != base);
	CHECK(page_checksum(42ull | (1ull << 40), data) != base);
	/* one flipped bit anywhere, first byte to last */
	for (unsigned byte = 0; byte < sizeof(data); byte += 509) {
		for (unsigned bit = 0; bit < 8; bit++) {
			data[byte] ^= (uint8_t)(1u << bit);
			CHECK(page_checksum(42, data) != base);
			data[byte] ^= (uint8_t)(1u << bit);
		}
	}
	data[sizeof(data) - 1] ^= 0x80;
	CHECK(page_checksum(42, data) != base);
	data[sizeof(data) - 1] ^= 0x80;
	CHECK_EQ(page_checksum(42, data), base);
	/* a zero page still has a checksum that depends on its number */
	memset(data, 0, sizeof(data));
	CHECK(page_checksum(1, data) != page_checksum(2, data));
}
