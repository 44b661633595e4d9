// SPDX-License-Identifier: MIT
/* Helpers for the platform devices' state tests (devices_state_util.h). */
#include "devices_state_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dev_save(struct vm *vm, const char *name, struct state_buf *b)
{
	const struct vm_state_entry *e = vm_state_find(vm, name);
	int ret;

	state_buf_init(b);
	if (!e)
		return -ENOENT;
	ret = e->ops->save(e->opaque, b);
	if (ret)
		state_buf_release(b);
	return ret;
}

int dev_load(struct vm *vm, const char *name, const void *data, size_t len,
	     struct errmsg *err)
{
	const struct vm_state_entry *e = vm_state_find(vm, name);
	struct state_reader r;
	uint8_t *copy;
	int ret;

	if (!e)
		return -ENOENT;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	state_reader_init(&r, copy, len);
	ret = e->ops->load(e->opaque, &r, err);
	free(copy);
	return ret;
}

bool same_bytes(const struct state_buf *a, const struct state_buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data,
							 a->len));
}

bool same_state(struct vm *a, struct vm *b, const char *name)
{
	struct state_buf sa, sb;
	bool same = false;

	if (!dev_save(a, name, &sa) && !dev_save(b, name, &sb)) {
		same = same_bytes(&sa, &sb);
		state_buf_release(&sb);
	}
	state_buf_release(&sa);
	if (!same)
		fprintf(stderr, "%s: states differ\n", name);
	return same;
}

static bool names_device(const char *text, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(text, name, n) && !strncmp(text + n, ": ", 2);
}

bool load_refused(struct vm *vm, const char *name, const void *data,
		  size_t len, int want_ret, const char *want)
{
	struct errmsg err = { { 0 } };
	struct state_buf before, after;
	bool ok = true;
	int ret;

	if (dev_save(vm, name, &before))
		return false;
	ret = dev_load(vm, name, data, len, &err);
	if (!ret || (want_ret && ret != want_ret)) {
		fprintf(stderr, "%s: load of %zu bytes returned %d\n", name,
			len, ret);
		ok = false;
	}
	if (!names_device(err.text, name) ||
	    (want && !strstr(err.text, want))) {
		fprintf(stderr, "%s: message \"%s\", wanted \"%s\"\n", name,
			err.text, want ? want : "");
		ok = false;
	}
	if (dev_save(vm, name, &after) || !same_bytes(&before, &after)) {
		fprintf(stderr, "%s: a refused load changed the state\n", name);
		ok = false;
	}
	state_buf_release(&before);
	state_buf_release(&after);
	return ok;
}

bool truncations_refused(struct vm *vm, const char *name,
			 const struct state_buf *good)
{
	uint8_t *longer;
	bool ok = true;

	for (size_t len = 0; len < good->len && ok; len++)
		ok = load_refused(vm, name, good->data, len, -EBADMSG,
				  len < 4 ? "has no version" : "truncated");
	longer = calloc(1, good->len + 1);
	if (!longer)
		return false;
	memcpy(longer, good->data, good->len);
	if (ok)
		ok = load_refused(vm, name, longer, good->len + 1, -EBADMSG,
				  "1 byte past its end");
	free(longer);
	return ok;
}

bool version_refused(struct vm *vm, const char *name,
		     const struct state_buf *good)
{
	static const uint32_t versions[] = { 0, 2, 0xffffffffu };
	uint8_t *bad;
	bool ok = true;

	if (good->len < 4)
		return false;
	bad = malloc(good->len);
	if (!bad)
		return false;
	memcpy(bad, good->data, good->len);
	for (unsigned i = 0; i < 3 && ok; i++) {
		for (unsigned j = 0; j < 4; j++)
			bad[j] = (uint8_t)(versions[i] >> (8 * j));
		ok = load_refused(vm, name, bad, good->len, -EPROTONOSUPPORT,
				  "layout version");
	}
	free(bad);
	return ok;
}
