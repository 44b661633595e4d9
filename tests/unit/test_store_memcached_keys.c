// SPDX-License-Identifier: MIT
/*
 * The memcached store's keys against real memcached processes: the
 * documented format, and that namespace and secret both keep stores
 * apart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "harness.h"
#include "memcached_test_util.h"

/* Overwrites page @page's value behind the store's back with @len bytes,
 * through the text protocol, under the key the store uses. */
static int plant_value(unsigned port, uint64_t page, size_t len)
{
	char key[128], head[200], reply[64];
	char *cmd;
	int hlen, ret;

	snprintf(key, sizeof(key), "vm-mc:%016llx:%llx",
		 (unsigned long long)XXH3_64bits(test_secret,
						 sizeof(test_secret) - 1),
		 (unsigned long long)page);
	hlen = snprintf(head, sizeof(head), "set %s 0 0 %zu\r\n", key, len);
	cmd = malloc((size_t)hlen + len + 2);
	if (!cmd)
		return -1;
	memcpy(cmd, head, (size_t)hlen);
	memset(cmd + hlen, 'x', len);
	memcpy(cmd + hlen + len, "\r\n", 2);
	ret = mc_command(port, cmd, (size_t)hlen + len + 2, "STORED\r\n",
			 reply, sizeof(reply));
	free(cmd);
	return ret;
}

static void bad_lengths(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 6, 3 } };
	struct errmsg err = { "" };

	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), 0);
	/* the key format is what the store documents */
	CHECK_EQ(plant_value(f->srv[0].port, 7, 100), 0);
	CHECK_EQ(check_one(f->s, 7, 0, &err), -EBADMSG);
	CHECK(strstr(err.text, "100 bytes") != NULL);
	CHECK(strstr(err.text, "0x7") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EBADMSG);
	CHECK_EQ(plant_value(f->srv[0].port, 7, 0), 0);
	CHECK_EQ(check_one(f->s, 7, 0, &err), -EBADMSG);
	CHECK(strstr(err.text, "0 bytes") != NULL);
	CHECK_EQ(plant_value(f->srv[0].port, 8, 4096 + 8 + 1), 0);
	CHECK_EQ(check_one(f->s, 8, 0, &err), -EBADMSG);
	/* the neighbour is untouched and the connection still in step */
	CHECK_EQ(check_one(f->s, 6, 0, &err), 0);
	/* a put repairs */
	CHECK_EQ(put_runs(f->s, batch, 1, 1, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 1, &err), 0);
}

TEST(memcached_store_rejects_values_of_wrong_length)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 1, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	bad_lengths(&f);
	fixture_stop(&f);
}

/*
 * What a client that can list the server's keys learns (issue 13): keys
 * are the documented keyed hashes, not page numbers, and nothing in
 * them is a fast hash of the secret (before, each key carried
 * XXH3-64(secret), against which guesses cost nanoseconds).
 */
static void secrets(struct fixture *f)
{
	static const uint8_t other[] = "another-secret";
	struct page_store_params same =
		params("vm-mc", test_secret, sizeof(test_secret) - 1);
	struct page_store_params diff = params("vm-mc", other, sizeof(other) - 1);
	struct page_store_params ns =
		params("vm-other", test_secret, sizeof(test_secret) - 1);
	struct page_store *a = NULL, *b = NULL, *c = NULL;
	struct errmsg err = { "" };
	int r_same, r_diff, r_ns;

	CHECK_EQ(put_one(f->s, 9, 0, &err), 0);
	CHECK_EQ(page_store_open(f->spec, &same, &a, &err), 0);
	r_same = check_one(a, 9, 0, &err);
	page_store_destroy(a);
	CHECK_EQ(page_store_open(f->spec, &diff, &b, &err), 0);
	r_diff = check_one(b, 9, 0, &err);
	page_store_destroy(b);
	CHECK_EQ(page_store_open(f->spec, &ns, &c, &err), 0);
	r_ns = check_one(c, 9, 0, &err);
	page_store_destroy(c);
	CHECK_EQ(r_same, 0);
	CHECK_EQ(r_diff, -ENOENT);
	CHECK_EQ(r_ns, -ENOENT);
}

TEST(memcached_store_keys_depend_on_namespace_and_secret)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 1, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	secrets(&f);
	fixture_stop(&f);
}
