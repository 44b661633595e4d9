// SPDX-License-Identifier: MIT
/*
 * The backend-independent part of handing a page store over
 * (store_handover.h): the steps go to the backend, export and import add
 * the page seal's key, which page_store_open() owns.
 */
#include "remote/store_handover.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "remote/page_seal.h"
#include "remote/store_backends.h"

_Static_assert(PAGE_STORE_KEY_SIZE == PAGE_SEAL_KEY_SIZE, "seal key");

static int cannot(struct page_store *s, struct errmsg *err)
{
	char desc[256];

	page_store_describe(s, desc, sizeof(desc));
	return errmsg_set(err, -ENOTSUP, "the pages of store %s cannot stay in "
			  "place: they must be sent", desc);
}

int page_store_handover(struct page_store *s, enum page_store_step step,
			struct errmsg *err)
{
	if (!page_store_can_hand_over(s))
		return cannot(s, err);
	return s->ops->handover->step(s, step, err);
}

int page_store_export(struct page_store *s, struct page_store_creds *out,
		      struct errmsg *err)
{
	if (!page_store_can_hand_over(s))
		return cannot(s, err);
	if (!s->seal)
		return errmsg_set(err, -EINVAL, "page store has no seal context");
	s->ops->handover->creds(s, out);
	out->sealed = page_seal_export_key(s->seal, out->seal_key);
	return 0;
}

uint32_t page_store_where(struct page_store *s, uint64_t page)
{
	return page_store_can_hand_over(s) ? s->ops->handover->where(s, page) : 0;
}

int page_store_import(const struct page_store_creds *c, uint64_t ram_pages,
		      const uint32_t *where, struct page_store **out,
		      struct errmsg *err)
{
	struct page_seal *seal;
	int ret;

	if (c->kind != PAGE_STORE_KIND_MEMD)
		return errmsg_set(err, -EINVAL, "page store handover: unknown "
				  "store kind %d", (int)c->kind);
	ret = page_seal_create_with_key(c->namespace_name,
					c->sealed ? c->seal_key : NULL, &seal,
					err);
	if (ret)
		return ret;
	ret = store_memd_import(c, ram_pages, where, out, err);
	if (ret) {
		page_seal_destroy(seal);
		return ret;
	}
	(*out)->seal = seal;
	return 0;
}

void page_store_creds_wipe(struct page_store_creds *c)
{
	sodium_memzero(c, sizeof(*c));
}
