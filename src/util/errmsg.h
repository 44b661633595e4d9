/* SPDX-License-Identifier: MIT */
/*
 * Error reporting for library code.
 *
 * Library functions return 0 or a negative errno.  When a caller wants to
 * show a user *why* (which segment overlaps, which capability is missing),
 * it passes a struct errmsg; the callee fills it with one line of text.
 * Passing NULL is always allowed.  Library code never prints or exits.
 */
#ifndef RACKVM_UTIL_ERRMSG_H
#define RACKVM_UTIL_ERRMSG_H

#include <stddef.h>

struct errmsg {
	char text[512];
};

/* Formats into @e (if non-NULL) and returns @err, so callers can write
 * "return errmsg_set(e, -EINVAL, "bad magic %x", m);". */
int errmsg_set(struct errmsg *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
