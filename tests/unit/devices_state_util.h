/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the platform devices' state tests (test_devices_state*.c):
 * save and load a registered device by name, compare states, and check
 * that a blob is refused the way vm/vm_state.h asks (an error naming
 * the device, nothing applied).  The bool helpers say what went wrong
 * on stderr, which is the test's log.
 */
#ifndef RACKVM_TESTS_DEVICES_STATE_UTIL_H
#define RACKVM_TESTS_DEVICES_STATE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/errmsg.h"
#include "util/state_buf.h"
#include "vm/vm.h"
#include "vm/vm_state.h"

/* @b is initialised here, and released again on failure; -errno,
 * -ENOENT if nothing registered @name. */
int dev_save(struct vm *vm, const char *name, struct state_buf *b);
/* Loads a copy of @data of exactly @len bytes (so that ASan sees any
 * read past its end). */
int dev_load(struct vm *vm, const char *name, const void *data, size_t len,
	     struct errmsg *err);
bool same_bytes(const struct state_buf *a, const struct state_buf *b);
/* Device @name saves the same bytes on @a and @b. */
bool same_state(struct vm *a, struct vm *b, const char *name);
/* The load fails with @want_ret (0: any error), a message that starts
 * with "@name: " and contains @want (NULL: anything), and the device
 * saves the same bytes after as before. */
bool load_refused(struct vm *vm, const char *name, const void *data,
		  size_t len, int want_ret, const char *want);
/* Every prefix of @good shorter than it, and @good with a byte more. */
bool truncations_refused(struct vm *vm, const char *name,
			 const struct state_buf *good);
/* @good with versions 0, 2 and 0xffffffff in its first u32. */
bool version_refused(struct vm *vm, const char *name,
		     const struct state_buf *good);

#endif
