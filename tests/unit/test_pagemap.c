// SPDX-License-Identifier: MIT
/*
 * The page map's codec (migrate/pagemap.h), without KVM or servers:
 *  - a map saved and loaded comes back field for field (kinds,
 *    generations of every page, placement, the store's credentials);
 *  - a blob cut short at any length is refused, and so is a blob with
 *    any one field set to a hostile value (each written by an encoder
 *    of the test's own, from the layout in pagemap.h), never a crash;
 *  - any one byte flipped: refused or loaded, never out of bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "migrate/pagemap.h"
#include "util/state_buf.h"

#define NPAGES 200u

/* A map with every kind, a run of generations, two servers. */
static struct pagemap *sample_map(void)
{
	struct pagemap *m;

	if (pagemap_alloc(NPAGES, &m))
		return NULL;
	m->has_store = true;
	m->store.kind = PAGE_STORE_KIND_MEMD;
	strcpy(m->store.namespace_name, "vm-1.a_b");
	memset(m->store.ns_key, 0x11, sizeof(m->store.ns_key));
	m->store.sealed = true;
	memset(m->store.seal_key, 0x22, sizeof(m->store.seal_key));
	m->store.nservers = 2;
	m->store.replicas = 2;
	m->store.min_replicas = 1;
	m->store.down_after_ms = 30000;
	strcpy(m->store.server[0].label, "127.0.0.1:7070");
	strcpy(m->store.server[1].label, "[::1]:7071");
	m->store.server[1].identified = true;
	memset(m->store.server[1].identity, 0x33, PAGE_STORE_ID_SIZE);
	for (unsigned p = 0; p < NPAGES; p++) {
		if (p < 50) {
			m->kind[p] = PAGEMAP_SEND;
			m->gen[p] = p % 3 ? 0 : p + 1;	/* some with gens */
		} else if (p < 120) {
			m->kind[p] = PAGEMAP_REMOTE;
			m->gen[p] = p * 7 + 1;
			m->where[p] = (p % 3 + 1) |
				      (p % 5 ? 0 : PAGE_STORE_WHERE_SHORT);
		} else {
			m->kind[p] = PAGEMAP_ZERO;
			m->gen[p] = p > 190 ? 9 : 0;
		}
	}
	return m;
}

static bool same_map(const struct pagemap *a, const struct pagemap *b)
{
	return a->ram_pages == b->ram_pages && a->has_store == b->has_store &&
	       !memcmp(a->kind, b->kind, a->ram_pages) &&
	       !memcmp(a->gen, b->gen, a->ram_pages * sizeof(*a->gen)) &&
	       !memcmp(a->where, b->where, a->ram_pages * sizeof(*a->where)) &&
	       !memcmp(&a->store, &b->store, sizeof(a->store));
}

TEST(pagemap_round_trip)
{
	struct pagemap *m = sample_map(), *back = NULL;
	struct errmsg err = { "" };
	struct state_buf b;

	CHECK(m != NULL);
	state_buf_init(&b);
	CHECK_EQ(pagemap_save(m, &b), 0);
	CHECK_EQ(pagemap_load(b.data, b.len, NPAGES, &back, &err), 0);
	CHECK(back && same_map(m, back));
	CHECK_EQ(back->nsend, 50);
	CHECK_EQ(back->nremote, 70);
	CHECK_EQ(back->nzero, 80);
	pagemap_free(back);
	/* without a store, without seal, one server */
	m->has_store = false;
	memset(&m->store, 0, sizeof(m->store));
	memset(m->kind + 50, PAGEMAP_SEND, 70);
	memset(m->where, 0, NPAGES * sizeof(*m->where));
	state_buf_release(&b);
	state_buf_init(&b);
	CHECK_EQ(pagemap_save(m, &b), 0);
	CHECK_EQ(pagemap_load(b.data, b.len, NPAGES, &back, &err), 0);
	CHECK(back && same_map(m, back));
	pagemap_free(back);
	/* a map of another size is not this VM's */
	CHECK_EQ(pagemap_load(b.data, b.len, NPAGES + 1, &back, &err), -EBADMSG);
	state_buf_release(&b);
	pagemap_free(m);
}

TEST(pagemap_refuses_every_truncation_and_survives_any_flip)
{
	struct pagemap *m = sample_map(), *back;
	struct errmsg err;
	struct state_buf b;
	uint8_t *copy;

	CHECK(m != NULL);
	state_buf_init(&b);
	CHECK_EQ(pagemap_save(m, &b), 0);
	copy = malloc(b.len);
	for (size_t len = 0; len < b.len; len++) {
		/* a copy of exactly @len bytes: ASan sees any read past it */
		uint8_t *cut = malloc(len ? len : 1);

		memcpy(cut, b.data, len);
		back = NULL;
		CHECK_EQ(pagemap_load(cut, len, NPAGES, &back, &err), -EBADMSG);
		CHECK(back == NULL);
		free(cut);
	}
	for (size_t i = 0; i < b.len; i++) {
		memcpy(copy, b.data, b.len);
		copy[i] ^= 0xa5;
		back = NULL;
		if (!pagemap_load(copy, b.len, NPAGES, &back, &err))
			pagemap_free(back);
	}
	free(copy);
	state_buf_release(&b);
	pagemap_free(m);
}

/* --- hostile blobs, from the test's own encoder --------------------------- */

struct spec {
	uint32_t magic, version;
	uint64_t pages;
	uint8_t has_store, kind;
	const char *name;
	uint8_t sealed, nservers, replicas, min_replicas;
	uint64_t down_after;
	const char *label1;
	uint8_t identified;
	uint64_t nruns;
	uint8_t run_kind[3], run_flags[3];
	uint64_t run_first[3], run_count[3];
	uint32_t gen, where;
	bool trailing;
};

/* Three runs: SEND 0..9, REMOTE 10..19 (gens and where), ZERO to the end. */
static struct spec good_spec(void)
{
	return (struct spec){
		.magic = PAGEMAP_MAGIC, .version = PAGEMAP_VERSION,
		.pages = NPAGES, .has_store = 1, .kind = PAGE_STORE_KIND_MEMD,
		.name = "vm1", .sealed = 1, .nservers = 2, .replicas = 2,
		.min_replicas = 2, .down_after = 0, .label1 = "10.0.0.2:7070",
		.identified = 1, .nruns = 3,
		.run_kind = { PAGEMAP_SEND, PAGEMAP_REMOTE, PAGEMAP_ZERO },
		.run_flags = { 0, PAGEMAP_RUN_GENS, 0 },
		.run_first = { 0, 10, 20 }, .run_count = { 10, 10, NPAGES - 20 },
		.gen = 4, .where = 3,
	};
}

static void encode(const struct spec *s, struct state_buf *b)
{
	uint8_t key[32] = { 1 }, id[16] = { 2 };

	state_buf_init(b);
	state_put_u32(b, s->magic);
	state_put_u32(b, s->version);
	state_put_u64(b, s->pages);
	state_put_u8(b, s->has_store);
	if (s->has_store) {
		state_put_u8(b, s->kind);
		state_put_blob(b, s->name, strlen(s->name));
		state_put_bytes(b, key, sizeof(key));
		state_put_u8(b, s->sealed);
		if (s->sealed)
			state_put_bytes(b, key, sizeof(key));
		state_put_u8(b, s->nservers);
		state_put_u8(b, s->replicas);
		state_put_u8(b, s->min_replicas);
		state_put_u64(b, s->down_after);
		for (unsigned i = 0; i < s->nservers; i++) {
			const char *label = i == 1 ? s->label1 : "10.0.0.1:7070";

			state_put_blob(b, label, strlen(label));
			state_put_u8(b, s->identified);
			state_put_bytes(b, id, sizeof(id));
		}
	}
	state_put_u64(b, s->nruns);
	for (unsigned r = 0; r < 3 && r < s->nruns; r++) {
		state_put_u8(b, s->run_kind[r]);
		state_put_u8(b, s->run_flags[r]);
		state_put_u64(b, s->run_first[r]);
		state_put_u64(b, s->run_count[r]);
		for (uint64_t k = 0; (s->run_flags[r] & PAGEMAP_RUN_GENS) &&
				     k < s->run_count[r] && k < NPAGES; k++)
			state_put_u32(b, s->gen);
		for (uint64_t k = 0; s->run_kind[r] == PAGEMAP_REMOTE &&
				     k < s->run_count[r] && k < NPAGES; k++)
			state_put_u32(b, s->where);
	}
	if (s->trailing)
		state_put_u8(b, 0);
}

static int load_spec(const struct spec *s, struct errmsg *err)
{
	struct pagemap *m = NULL;
	struct state_buf b;
	int ret;

	encode(s, &b);
	ret = pagemap_load(b.data, b.len, NPAGES, &m, err);
	if (!ret && (m->nremote != 10 || m->gen[15] != s->gen ||
		     m->where[15] != s->where || m->kind[5] != PAGEMAP_SEND))
		ret = -EPROTO;
	pagemap_free(m);
	state_buf_release(&b);
	return ret;
}

TEST(pagemap_refuses_hostile_values)
{
	struct errmsg err;
	struct spec s = good_spec();

	CHECK_EQ(load_spec(&s, &err), 0);	/* the encoder is right */
#define REFUSED(field, value) do {					\
		s = good_spec();					\
		s.field = value;					\
		CHECK_EQ(load_spec(&s, &err), -EBADMSG);		\
	} while (0)
	REFUSED(magic, 0x12345678);
	REFUSED(version, 2);
	REFUSED(pages, NPAGES * 2);
	REFUSED(pages, 0);
	REFUSED(kind, 2);
	REFUSED(name, "");
	REFUSED(name, "a/b");
	REFUSED(name, "x2345678901234567890123456789012345678901234567890123456789012345");
	REFUSED(sealed, 2);
	REFUSED(nservers, 0);
	REFUSED(nservers, 17);
	REFUSED(replicas, 0);
	REFUSED(replicas, 3);
	REFUSED(min_replicas, 0);
	REFUSED(min_replicas, 3);
	REFUSED(down_after, 86400001);
	REFUSED(down_after, UINT64_MAX);
	REFUSED(label1, "");
	REFUSED(label1, "a,b:1");
	REFUSED(label1, "a b:1");
	REFUSED(identified, 7);
	REFUSED(nruns, 0);
	REFUSED(nruns, 2);
	REFUSED(nruns, 4);
	REFUSED(nruns, UINT64_MAX);
	REFUSED(run_kind[0], 0);
	REFUSED(run_kind[0], 4);
	REFUSED(run_kind[0], PAGEMAP_REMOTE);	/* no gens: refused */
	REFUSED(run_flags[2], 2);
	REFUSED(run_flags[1], 0);		/* REMOTE without gens */
	REFUSED(run_first[1], 11);
	REFUSED(run_first[1], 9);
	REFUSED(run_count[0], 0);
	REFUSED(run_count[2], NPAGES);		/* past the end */
	REFUSED(run_count[2], UINT64_MAX - 5);
	REFUSED(run_count[2], NPAGES - 21);	/* ends short */
	REFUSED(gen, 0);
	REFUSED(where, 0);
	REFUSED(where, 4);			/* a third server */
	REFUSED(where, 1u << 17);
	REFUSED(where, 0x80000001u);
	REFUSED(has_store, 0);			/* remote pages, no store */
	REFUSED(has_store, 2);
	REFUSED(trailing, true);
#undef REFUSED
	/* two runs that should have been one */
	s = good_spec();
	s.run_kind[2] = PAGEMAP_REMOTE;
	s.run_flags[2] = PAGEMAP_RUN_GENS;
	CHECK_EQ(load_spec(&s, &err), -EBADMSG);
	s.run_flags[2] = 0;	/* and REMOTE needs gens */
	CHECK_EQ(load_spec(&s, &err), -EBADMSG);
	/* a different label with two servers is fine; short copies too */
	s = good_spec();
	s.where = 2 | PAGE_STORE_WHERE_SHORT;
	CHECK_EQ(load_spec(&s, &err), 0);
}

TEST(pagemap_save_refuses_a_broken_map)
{
	struct pagemap *m = sample_map();
	struct state_buf b;

	CHECK(m != NULL);
	state_buf_init(&b);
	m->where[60] = 1u << 5;		/* a server it does not have */
	CHECK_EQ(pagemap_save(m, &b), -EINVAL);
	m->where[60] = 1;
	m->gen[60] = 0;
	CHECK_EQ(pagemap_save(m, &b), -EINVAL);
	m->gen[60] = 1;
	m->has_store = false;
	CHECK_EQ(pagemap_save(m, &b), -EINVAL);
	state_buf_release(&b);
	pagemap_free(m);
}
